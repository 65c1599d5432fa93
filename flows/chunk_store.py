"""Recovery snapshots that write each frozen chunk of a campaign's state once (docs/flow.md, *Recovery*).

Bytewax snapshots a key's whole state every epoch in which it changed. A
million-contact campaign seals millions of attempts into immutable
`engine.storage.sealed_base.FrozenChunk`s; pickling them every epoch would make the cost of
an epoch grow with the campaign's history. Here the state is written in the
recovery format (engine.storage.recovery_format) with this store's `put` for the stored
types (`engine.storage.recovery_format.STORED_TYPES`): a frozen chunk or a block of
contact columns is written once to ``<recovery dir>/chunks/<key>.chunk``
(content-addressed: the same chunk is the same file; its content a record of
the same format) and the snapshot holds only its key. So what an epoch writes is
the campaign's hot state (changed blocks, open attempts, aggregates) plus the
chunks frozen since the last epoch. Snapshots and chunk files written before
the format (pickles) are still read (`engine.storage.recovery_format.decode`).

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

import os
import socket
import threading
import time
from pathlib import Path

from engine.storage.recovery_format import decode, encode

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
            data = encode(chunk.chunk_data())
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
        return read_chunk(self.dir, key)

    def dumps(self, obj) -> bytes:
        """``obj`` in the recovery format, its stored pieces written apart and named by key."""
        return encode(obj, self.put)

    def loads(self, data: bytes):
        return decode(data, self.get)


def read_chunk(chunks_dir: Path, key: str):
    """The stored piece ``key`` from a chunk directory (read-only: no store is opened for it)."""
    path = chunks_dir / f"{key}.chunk"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RuntimeError(f"recovery snapshot names chunk {key}, missing from {chunks_dir}: the recovery "
                           "directory is incomplete (restore it whole, or start a fresh one and replay)") from None
    chunk = decode(data)  # (a file written before the recovery format: a plain pickle, read as legacy)
    if chunk.key != key:
        raise RuntimeError(f"chunk file {path} does not hold chunk {key} (corrupt recovery dir)")
    return chunk


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
