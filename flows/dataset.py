"""Dataset identity: detect a wiped or replaced Redis instead of serving a partial dataset.

``callpulse:dataset`` holds a random id, created once (``SET NX``) by the first writer of a
dataset (`callpulse flow` at start, `callpulse keys create`). The flow keeps the id it works
on in its recovery directory (file ``dataset-id``) and in memory; its recovery state (stream
positions, campaign states) belongs to that one dataset. If Redis loses its data (a restart
without persistence, FLUSHALL) or is replaced by another instance, the key is missing or
different:

- the flow refuses to start, or stops writing and exits (code 3), and records the reason in
  the flow status (``dataset_error``), instead of writing a partial dataset on top;
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

from engine.keys import PREFIX, flow_status_key

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


def adopt_at_start(client, recovery_dir: Path | None) -> str:
    """The dataset id the flow will work on; raises DatasetLost unless its recovery state provably belongs
    to the dataset in Redis.

    - recovery state from dataset D and Redis holds D: go on;
    - recovery state from D, Redis holds nothing or E: DatasetLost;
    - recovery state without an identity (``dataset-id`` missing or empty, yet the directory holds
      snapshots or chunks): DatasetLost. Nothing proves it belongs to this Redis, and adopting it
      would mix two datasets for good (the file would be written with the wrong id);
    - no recorded id and no state (a new recovery dir, or ``--no-recovery``): adopt Redis's id
      (created if none) and record it.
    """
    path = recovery_dir / RECOVERY_FILE if recovery_dir is not None else None
    recorded = path.read_text().strip() if path is not None and path.is_file() else None
    found = current(client)
    if recorded:
        if found != recorded:
            raise DatasetLost(lost_message(recorded, found, f"the recovery state in {recovery_dir}"))
        return recorded
    if recovery_dir is not None and holds_state(recovery_dir):
        why = "is empty" if path.is_file() else "is missing"
        raise DatasetLost(
            f"the recovery directory {recovery_dir} holds recovery state but its {RECOVERY_FILE} file {why}, so "
            f"nothing proves that state belongs to the dataset in this Redis "
            f"({found or 'none yet'}). Refusing to resume it (a partial dataset would be written); restore "
            f"{RECOVERY_FILE} from the backup of that directory, or move the directory aside to start "
            f"afresh from the ingest streams; see docs/operations.md, 'Dataset identity'.")
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
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
