"""The campaign snapshots a recovery directory holds (Bytewax's ``part-*.sqlite3`` files), read-only.

Bytewax keeps each stateful step's snapshots in its partitions' ``snaps`` table: ``(step_id, state_key,
snap_epoch, ser_change)``, ``ser_change`` being the pickled value the step's ``snapshot()`` returned (our
bytes in the recovery format, engine.storage.recovery_format) or NULL when the key was discarded (a retired
campaign). `latest_campaign_snapshots` gives the newest row of each campaign; `read_value` decodes it
(with the directory's chunk store). Used by ``callpulse flow --show-snapshot``.
"""

from __future__ import annotations

import io
import pickle
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from engine.storage.keys import split_route_key
from engine.storage.recovery_format import decode, is_current
from flows.chunk_store import read_chunk

CAMPAIGN_STEP = "callpulse.campaign"


class CampaignSnapshot(NamedTuple):
    org_id: str
    campaign_id: str
    epoch: int
    partition: str
    data: bytes | None  # None: the campaign was discarded (retired) at that epoch


class _BytesOnly(pickle.Unpickler):
    """``ser_change`` is a pickled bytes object: anything that names code is not ours to run."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a snapshot row names {module}.{name}")


def latest_campaign_snapshots(recovery_dir: Path) -> list[CampaignSnapshot]:
    """The newest snapshot of every campaign in the directory, sorted by org and campaign."""
    newest: dict[str, CampaignSnapshot] = {}
    for part in sorted(recovery_dir.glob("part-*.sqlite3")):
        conn = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT state_key, snap_epoch, ser_change FROM snaps WHERE step_id = ?",
                                (CAMPAIGN_STEP,)).fetchall()
        finally:
            conn.close()
        for key, epoch, blob in rows:
            names = split_route_key(key)
            if names is None or (key in newest and newest[key].epoch >= epoch):
                continue
            data = _BytesOnly(io.BytesIO(blob)).load() if blob is not None else None
            newest[key] = CampaignSnapshot(names[0], names[1], epoch, part.name, data)
    return sorted(newest.values(), key=lambda s: (s.org_id, s.campaign_id))


def read_value(recovery_dir: Path, snap: CampaignSnapshot) -> tuple[str, Any]:
    """(the format's name, the decoded snapshot value) of a campaign snapshot that holds data."""
    assert snap.data is not None
    fmt = "callpulse-recovery/1" if is_current(snap.data) else "legacy pickle"
    chunks = recovery_dir / "chunks"
    return fmt, decode(snap.data, lambda key: read_chunk(chunks, key))
