"""Recovery snapshots that write each frozen chunk of a campaign's state once (docs/flow.md, *Recovery*).

Bytewax snapshots a key's whole state every epoch in which it changed. A
million-contact campaign seals millions of attempts into immutable
`engine.sealed.FrozenChunk`s; pickling them every epoch would make the cost of
an epoch grow with the campaign's history. Here the state is pickled with a
dispatch table for the stored types (`STORED_TYPES`): a frozen chunk or a
block of contact columns is written once to
``<recovery dir>/chunks/<key>.chunk`` (content-addressed: the same chunk is
the same file) and the snapshot holds only its key. So what an epoch writes is
the campaign's hot state (changed blocks, open attempts, aggregates) plus the
chunks frozen since the last epoch. Snapshots from before the dispatch table
named the pieces by persistent id; `_Unpickler.persistent_load` still reads them.

Chunk files are written to a temporary name, fsynced and renamed before the
snapshot that names them is handed to Bytewax, so a committed snapshot never
names a missing chunk. The flow never deletes chunk files yet: one written
for an epoch that never committed (a crash) is an unreferenced file, harmless;
back up and restore the recovery directory whole.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
from pathlib import Path

from engine.contact_blocks import ColumnBlock, ColumnBlockRef
from engine.sealed import FrozenChunk

# Content-addressed pieces of a state written once and then only named: sealed attempt chunks and blocks
# of the contact columns. Each has `chunk_key` and `chunk_data()` (what is written to its file).
STORED_TYPES = (FrozenChunk, ColumnBlock, ColumnBlockRef)

TAG = "callpulse-chunk"


_STORES: dict[str, ChunkStore] = {}


def store_for(recovery_dir: str | os.PathLike) -> ChunkStore:
    """One store per directory per process (the workers of a process share it)."""
    key = str(Path(recovery_dir).resolve())
    if key not in _STORES:
        _STORES[key] = ChunkStore(key)
    return _STORES[key]


class ChunkStore:
    def __init__(self, recovery_dir: str | os.PathLike):
        self.dir = Path(recovery_dir) / "chunks"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.known = {p.stem for p in self.dir.glob("*.chunk")}

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.chunk"

    def put(self, chunk) -> str:
        """Write a stored piece (one of STORED_TYPES) unless its key is known; its key."""
        key = chunk.chunk_key
        if key not in self.known:
            data = pickle.dumps(chunk.chunk_data(), protocol=pickle.HIGHEST_PROTOCOL)
            tmp = self.dir / f".{key}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path(key))
            self.known.add(key)
        return key

    def get(self, key: str):
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            raise RuntimeError(f"recovery snapshot names chunk {key}, missing from {self.dir}: the recovery "
                               "directory is incomplete (restore it whole, or start a fresh one and replay)") from None
        chunk = pickle.loads(data)
        if chunk.key != key:
            raise RuntimeError(f"chunk file {self._path(key)} does not hold chunk {key} (corrupt recovery dir)")
        return chunk

    def dumps(self, obj) -> bytes:
        buf = io.BytesIO()
        _Pickler(buf, self).dump(obj)
        return buf.getvalue()

    def loads(self, data: bytes):
        return _Unpickler(io.BytesIO(data), self).load()


_LOADING = threading.local()  # the store a `loads` in this thread resolves stored pieces from


def _stored_piece(key: str):
    """Unpickling a stored piece: read it from the store of the `ChunkStore.loads` running in this thread."""
    store = getattr(_LOADING, "store", None)
    if store is None:
        raise pickle.UnpicklingError(f"stored piece {key} outside ChunkStore.loads")
    return store.get(key)


class _Pickler(pickle.Pickler):
    """Stored pieces go through a dispatch table (looked up in C only for objects pickle has no fast path
    for), not `persistent_id`, which the pickler would call in Python for every object of the state."""

    def __init__(self, file, store: ChunkStore):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.store = store
        reduce = self._reduce_stored
        self.dispatch_table = {t: reduce for t in STORED_TYPES}

    def _reduce_stored(self, obj):
        return _stored_piece, (self.store.put(obj),)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, store: ChunkStore):
        super().__init__(file)
        self.store = store

    def persistent_load(self, pid):
        """Snapshots written before the dispatch table named stored pieces by persistent id."""
        tag, key = pid
        if tag != TAG:
            raise pickle.UnpicklingError(f"unknown persistent id {tag!r}")
        return self.store.get(key)

    def load(self):
        _LOADING.store, previous = self.store, getattr(_LOADING, "store", None)
        try:
            return super().load()
        finally:
            _LOADING.store = previous
