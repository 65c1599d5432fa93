"""Dataset identity: detect a wiped or replaced Redis instead of serving a partial dataset.

``callpulse:dataset`` holds a random id, created once (``SET NX``) by the first writer of a
dataset (`callpulse flow` at start, `callpulse keys create`). The flow keeps the id it works
on in its recovery directory (file ``dataset-id``) and in memory; its recovery state (stream
positions, campaign states) belongs to that one dataset. If Redis loses its data (a restart
without persistence, FLUSHALL) or is replaced by another instance, the key is missing or
different:

- the flow refuses to start, or stops writing and exits (code 3), and records the reason in
  the flow status (``dataset_error``), instead of writing a partial dataset on top; a flow without
  recovery state does not adopt a new dataset while that loss is recorded, until an operator
  starts it with ``--accept-new-dataset`` (and ``--dataset-file`` keeps its id across its restarts);
- the API answers ``/readyz`` and every ``/v1`` endpoint with 503 and that reason
  (`api.dataset_guard`), instead of 401s (the API keys are gone too) and half-empty campaigns.

What an operator does then: docs/operations.md ("After data loss").
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from pathlib import Path

import redis

from engine.storage.keys import PREFIX, flow_status_key

DATASET_KEY = f"{PREFIX}:dataset"
RECOVERY_FILE = "dataset-id"
EXIT_DATASET_LOST = 3  # exit status of `callpulse flow` when it refuses to write


class DatasetLost(redis.RedisError):
    """Redis does not hold the dataset the flow's state belongs to (a RedisError, so that redis-py
    drops a connection whose check failed; never retried: it is not a connection error)."""


def _s(v) -> str | None:
    return v.decode() if isinstance(v, bytes) else v


def current(client) -> str | None:
    return _s(client.get(DATASET_KEY))


def ensure(client) -> str:
    """The dataset id of this Redis, created if there is none yet."""
    new = "ds-%d-%s" % (int(time.time()), secrets.token_hex(6))
    client.set(DATASET_KEY, new, nx=True)
    return current(client) or new


def lost_message(expected: str, found: str | None, where: str) -> str:
    found_text = f"dataset {found}" if found else f"no dataset ({DATASET_KEY} is missing)"
    return (f"Redis holds {found_text}, but {where} belongs to dataset {expected}: Redis data was lost "
            f"(restarted without persistence, flushed) or this is another Redis. Refusing to write a partial "
            f"dataset; see docs/operations.md, 'After data loss'.")


def report_lost(client, message: str) -> None:
    """Record the refusal in the flow status (what /readyz shows); best effort."""
    try:
        client.hset(flow_status_key(), mapping={"dataset_error": message, "dataset_error_ms": int(time.time() * 1000)})
    except Exception:
        pass


class LossNotAcknowledged(DatasetLost):
    """A flow without recovery state would adopt a new dataset, but a loss of the old one is recorded in
    Redis and no operator has acknowledged it (``--accept-new-dataset``)."""


def recorded_loss(client) -> str | None:
    """The loss a flow recorded in this Redis (``dataset_error`` in the flow status), if any."""
    return _s(client.hget(flow_status_key(), "dataset_error"))


def adopt_at_start(client, recovery_dir: Path | None, *, id_file: Path | None = None,
                   accept_new: bool = False) -> str:
    """The dataset id the flow will work on; raises DatasetLost unless its recovery state provably belongs
    to the dataset in Redis.

    - recovery state from dataset D and Redis holds D: go on;
    - recovery state from D, Redis holds nothing or E: DatasetLost (``accept_new`` changes nothing while
      the directory holds state: move it aside);
    - recovery state without an identity (``dataset-id`` missing or empty, yet the directory holds
      snapshots or chunks): DatasetLost. Nothing proves it belongs to this Redis, and adopting it
      would mix two datasets for good (the file would be written with the wrong id);
    - no recorded id and no state (a new recovery dir): adopt Redis's id (created if none) and record it.

    Without recovery (``recovery_dir`` None) the id is recorded in ``id_file`` when given
    (``--dataset-file``; a different id in Redis later: DatasetLost, unless ``accept_new``). And a flow
    without recovery never adopts a new dataset silently after a loss: while Redis holds a recorded loss
    (``dataset_error``, written by the flow that found its dataset gone), it raises LossNotAcknowledged
    unless ``accept_new`` (``--accept-new-dataset``: the operator has acted, docs/operations.md).
    """
    path = recovery_dir / RECOVERY_FILE if recovery_dir is not None else id_file
    recorded = path.read_text().strip() if path is not None and path.is_file() else None
    found = current(client)
    if recorded and found == recorded:
        return recorded
    if recorded and not accept_new:
        if recovery_dir is not None:
            raise DatasetLost(lost_message(recorded, found, f"the recovery state in {recovery_dir}"))
        raise DatasetLost(lost_message(recorded, found, f"this flow (its last run, recorded in {path})")
                          + " Once you have acted, start the flow once with --accept-new-dataset.")
    if recorded and recovery_dir is not None and holds_state(recovery_dir):  # accept_new
        raise DatasetLost(
            f"--accept-new-dataset: the recovery directory {recovery_dir} holds the state of dataset {recorded}, "
            f"and Redis holds {f'dataset {found}' if found else 'no dataset'}: that state cannot be adopted by "
            f"another dataset. Move the directory aside to start afresh; see docs/operations.md, 'After data "
            f"loss'.")
    if not recorded and recovery_dir is not None and holds_state(recovery_dir):
        why = "is empty" if (recovery_dir / RECOVERY_FILE).is_file() else "is missing"
        raise DatasetLost(
            f"the recovery directory {recovery_dir} holds recovery state but its {RECOVERY_FILE} file {why}, so "
            f"nothing proves that state belongs to the dataset in this Redis "
            f"({found or 'none yet'}). Refusing to resume it (a partial dataset would be written); restore "
            f"{RECOVERY_FILE} from the backup of that directory, or move the directory aside to start "
            f"afresh from the ingest streams; see docs/operations.md, 'Dataset identity'.")
    loss = recorded_loss(client) if recovery_dir is None and not accept_new else None
    if loss:
        raise LossNotAcknowledged(
            f"Redis holds a recorded dataset loss, not yet acknowledged ({loss!r}); it now holds "
            f"{f'dataset {found}' if found else 'no dataset'}. Refusing to adopt that silently (without recovery "
            f"a restart rebuilds only what the streams still hold). Restore Redis from a backup, or follow "
            f"docs/operations.md, 'After data loss', then start the flow once with --accept-new-dataset.")
    ds = found or ensure(client)
    if path is not None:
        write_durably(path, ds + "\n")
    return ds


def holds_state(recovery_dir: Path) -> bool:
    """Whether a recovery directory holds anything to resume: a Bytewax partition with an execution,
    a frontier, a commit or a snapshot recorded, or a stored chunk (flows/chunk_store.py)."""
    if any((recovery_dir / "chunks").glob("*.chunk")):
        return True
    for part in recovery_dir.glob("part-*.sqlite3"):
        conn = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
        try:
            for table in ("exs", "fronts", "commits", "snaps"):
                if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                    return True
        except sqlite3.DatabaseError:
            return True  # unreadable: not provably empty
        finally:
            conn.close()
    return False


def write_durably(path: Path, text: str) -> None:
    """Write a small file so that a crash leaves the old content or the new, never a torn or empty one:
    a temporary file, fsynced, renamed over, and the directory fsynced (the rename itself is durable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves nothing behind
        except OSError:
            pass
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
