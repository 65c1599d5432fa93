"""Recovery snapshots that write each frozen chunk of a campaign's state once (docs/flow.md, *Recovery*).

Bytewax snapshots a key's whole state every epoch in which it changed. A
million-contact campaign seals millions of attempts into immutable
`engine.sealed_base.FrozenChunk`s; pickling them every epoch would make the cost of
an epoch grow with the campaign's history. Here the state is pickled with a
dispatch table for the stored types (`STORED_TYPES`): a frozen chunk or a
block of contact columns is written once to
``<recovery dir>/chunks/<key>.chunk`` (content-addressed: the same chunk is
the same file) and the snapshot holds only its key. So what an epoch writes is
the campaign's hot state (changed blocks, open attempts, aggregates) plus the
chunks frozen since the last epoch. Snapshots from before the dispatch table
named the pieces by persistent id; `_Unpickler.persistent_load` still reads them.

Chunk files are written to a temporary name, fsynced and renamed, and the
directory is fsynced (so the rename itself survives a power cut), before the
snapshot that names them is handed to Bytewax, so a committed snapshot never
names a missing chunk. A write that fails (disk full, I/O error) removes its
temporary file. Temporary files are named ``.<key>.<host>.<pid>.<thread>.tmp``:
when a store is opened it removes those a crash left behind, i.e. those of a
process of this host that no longer runs, and another host's older than
``STALE_TMP_S`` (a shared directory), never one a live writer may still
rename. The flow never deletes chunk files yet: one written
for an epoch that never committed (a crash) is an unreferenced file, harmless;
back up and restore the recovery directory whole.
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import threading
import time
from pathlib import Path

from engine.contact_blocks import ColumnBlock, ColumnBlockRef
from engine.sealed_base import FrozenChunk

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


STALE_TMP_S = 3600.0  # a temporary file of another host this old belongs to no live write (a write takes ms)
HOST = socket.gethostname().replace(".", "_") or "localhost"


class ChunkStore:
    def __init__(self, recovery_dir: str | os.PathLike):
        self.dir = Path(recovery_dir) / "chunks"
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.dir.parent)
        self.known = {p.stem for p in self.dir.glob("*.chunk")}
        self.removed_tmp = remove_stale_tmp(self.dir)

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.chunk"

    def put(self, chunk) -> str:
        """Write a stored piece (one of STORED_TYPES) unless its key is known; its key."""
        key = chunk.chunk_key
        if key not in self.known:
            data = pickle.dumps(chunk.chunk_data(), protocol=pickle.HIGHEST_PROTOCOL)
            tmp = self.dir / f".{key}.{HOST}.{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self._path(key))
            except BaseException:
                try:
                    tmp.unlink(missing_ok=True)  # never leave a failed write behind (disk full: free its space)
                except OSError:
                    pass
                raise
            _fsync_dir(self.dir)  # the rename is durable before a snapshot names the chunk
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _started_at(pid: int) -> float | None:
    """When process ``pid`` started (Linux /proc; None when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks since boot
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _writer_may_run(pid: int, written_at: float) -> bool:
    """Whether a process of this host with ``pid`` may still be writing a file last written at ``written_at``:
    it runs, and started before that write (a container restarts its processes with the same pids)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's)
        pass
    started = _started_at(pid)
    return started is None or started <= written_at + 1.0  # 1 s: the coarse boot time of /proc/stat


def remove_stale_tmp(directory: Path, now: float | None = None) -> list[str]:
    """Remove the temporary files of chunk writes that can no longer finish; their names.

    ``.<key>.<host>.<pid>.<thread>.tmp`` (``.<key>.<pid>.tmp`` before hosts were named): removed when
    the host is this one and no process with that pid runs here since before the file was written
    (a crash, or a restarted container that reuses pids); another host's when it is older than
    ``STALE_TMP_S``. A live writer's file (this or another process or thread) is never touched."""
    now = time.time() if now is None else now
    removed = []
    for p in directory.glob(".*.tmp"):
        parts = p.name[1:-len(".tmp")].split(".")
        host, pid = (HOST, parts[1]) if len(parts) == 2 else (parts[1], parts[2]) if len(parts) == 4 else (None, "")
        try:
            written_at = p.stat().st_mtime
            if host == HOST and pid.isdigit():
                stale = not _writer_may_run(int(pid), written_at)
            else:  # another host's (a shared directory): it cannot be asked; by age
                stale = now - written_at > STALE_TMP_S
            if stale:
                p.unlink()
                removed.append(p.name)
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
    return removed


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
