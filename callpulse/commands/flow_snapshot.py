"""``callpulse flow --show-snapshot ORG/CAMPAIGN|all``: what a recovery directory holds, for an operator.

Reads the directory only (Bytewax's partitions and the chunk files; no Redis, no flow started):
- ``all``: every campaign with a snapshot, its epoch, partition, size and format;
- ``ORG/CAMPAIGN``: that campaign's newest snapshot in full: state version, frame bookkeeping, each part
  of its state summarised (engine.storage.recovery_inspect) and the ``/stats`` body it gives.
Exit 0; 1 when the directory or the campaign has no snapshot.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson


def show_snapshot(recovery_dir: str, which: str) -> int:
    from engine.storage.recovery_inspect import describe_snapshot
    from flows.recovery_snapshots import latest_campaign_snapshots, read_value

    path = Path(recovery_dir)
    if not any(path.glob("part-*.sqlite3")):
        print(f"callpulse flow: no recovery partitions in {path}", file=sys.stderr)
        return 1
    snaps = latest_campaign_snapshots(path)
    if which == "all":
        out = [{"campaign": f"{s.org_id}/{s.campaign_id}", "epoch": s.epoch, "partition": s.partition,
                "bytes": len(s.data) if s.data is not None else 0, "retired": s.data is None} for s in snaps]
        _print(out)
        return 0
    org, _sep, camp = which.partition("/")
    found = [s for s in snaps if (s.org_id, s.campaign_id) == (org, camp)]
    if not found:
        print(f"callpulse flow: no snapshot of campaign {which} in {path} (--show-snapshot all lists them)",
              file=sys.stderr)
        return 1
    snap = found[0]
    head = {"campaign": which, "epoch": snap.epoch, "partition": snap.partition}
    if snap.data is None:
        _print(head | {"retired": True, "note": "discarded at this epoch: its state is in the campaign archive"})
        return 0
    fmt, value = read_value(path, snap)
    _print(head | {"bytes": len(snap.data), "format": fmt} | describe_snapshot(value))
    return 0


def _print(obj) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
