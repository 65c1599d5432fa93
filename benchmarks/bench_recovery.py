"""The recovery format (engine.storage.recovery_format) beside the pickle it replaced, on one campaign state, side by side.

    callpulse bench recovery [N] [CHECKPOINTS]

Folds the first N events (default 3,000,000) of ``var/bench/voice-1000000.ndjson`` (made by ``callpulse bench
scale --contacts 1000000 --reuse``) into one campaign state, and at CHECKPOINTS (default 10) evenly spaced
points writes its snapshot both ways, each into a chunk store of its own (so each writes its frozen chunks
and contact blocks the first time it meets them, as the flow does):

- **pickle (STATE_VERSION 5)**: the state pickled whole with a dispatch table for the stored pieces only,
  as `flows.chunk_store` did before the format (classes named by module path, the state's ``__dict__``);
- **recovery format (6)**: `engine.storage.recovery_format.encode`: records by tag, the state by parts.

The order alternates at every checkpoint. Prints the time and bytes of each, their ratio, and the time to
read the last snapshot back both ways (the resume), with the /stats bodies compared.
"""

from __future__ import annotations

import io
import pickle
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from engine.state.campaign import CampaignState
from engine.state.gate import OK, EventGate
from engine.storage.recovery_format import STORED_TYPES, decode
from engine.validation.validate import parse_event
from engine.views.snapshot import build_snapshot
from flows.chunk_store import ChunkStore

HERE = Path(__file__).resolve().parent.parent
DATA = HERE / "var/bench/voice-1000000.ndjson"


class LegacyPickler(pickle.Pickler):
    """The snapshot pickler of STATE_VERSION 5 (flows/chunk_store.py before the recovery format)."""

    def __init__(self, file, store: ChunkStore):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.store = store
        self.dispatch_table = {t: self._reduce_stored for t in STORED_TYPES}

    def _reduce_stored(self, obj):
        return _legacy_stored_piece, (self.store.put(obj),)


def _legacy_stored_piece(key):  # (only pickled, by name, never called here)
    raise AssertionError(key)


def legacy_dumps(value, store: ChunkStore) -> bytes:
    buf = io.BytesIO()
    LegacyPickler(buf, store).dump(value)
    return buf.getvalue()


class LegacyReader(pickle.Unpickler):
    def __init__(self, file, store: ChunkStore):
        super().__init__(file)
        self.store = store

    def find_class(self, module, name):
        if name == "_legacy_stored_piece":
            return self.store.get
        return super().find_class(module, name)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
    checkpoints = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    if not DATA.exists():
        sys.exit(f"bench recovery: {DATA} is missing: run `callpulse bench scale --contacts 1000000 --reuse` first")
    with open(DATA, "rb") as f:
        events = [parse_event(ln) for ln in islice(f, n)]
    gate = EventGate()
    first = events[0]
    st = CampaignState(first["org_id"], first["campaign_id"], collect_details=False, lateness_ms=gate.lateness_ms)
    every = max(1, len(events) // checkpoints)
    times = {"pickle": 0.0, "format": 0.0}
    sizes = {"pickle": 0, "format": 0}
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        stores = {"pickle": ChunkStore(a), "format": ChunkStore(b)}
        writers = {"pickle": lambda v: legacy_dumps(v, stores["pickle"]), "format": stores["format"].dumps}
        last: dict[str, bytes] = {}
        for i, ev in enumerate(events, 1):
            if gate.check(ev) == OK:
                st.apply(ev)
            if i % every == 0 or i == len(events):
                order = ("pickle", "format") if (i // every) % 2 else ("format", "pickle")
                for name in order:
                    value = (6, st, 0, False, 0.0, 0.0, gate)
                    t0 = time.perf_counter()
                    data = writers[name](value)
                    times[name] += time.perf_counter() - t0
                    sizes[name] += len(data)
                    last[name] = data
                print(f"  {i:,} events: {len(st.table):,} contacts", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        old = LegacyReader(io.BytesIO(last["pickle"]), stores["pickle"]).load()
        read_pickle = time.perf_counter() - t0
        t0 = time.perf_counter()
        new = decode(last["format"], stores["format"].get)
        read_format = time.perf_counter() - t0
        same = build_snapshot(old[1]) == build_snapshot(new[1]) == build_snapshot(st)
    contacts = len(st.table)
    print(f"### Recovery format vs pickle: one campaign, {len(events):,} events, {contacts:,} contacts, "
          f"{checkpoints} snapshots\n")
    print("| snapshot | write time, all snapshots (s) | bytes, all snapshots | read the last (s) |")
    print("|---|---|---|---|")
    print(f"| pickle (STATE_VERSION 5) | {times['pickle']:.3f} | {sizes['pickle']:,} | {read_pickle:.3f} |")
    print(f"| recovery format (6) | {times['format']:.3f} | {sizes['format']:,} | {read_format:.3f} |")
    print(f"\nformat / pickle: write time **{times['format'] / times['pickle']:.2f}**, bytes "
          f"**{sizes['format'] / sizes['pickle']:.2f}**, read **{read_format / read_pickle:.2f}**; "
          f"/stats bodies after reading back {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
