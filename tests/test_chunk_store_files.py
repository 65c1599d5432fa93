"""Reliability #12: the recovery chunk files (flows/chunk_store.py) on a real directory.

- a write that fails (disk full: a real ENOSPC from /dev/full; a failing rename) leaves no temporary
  file behind, and the next write of the same chunk succeeds;
- the directory is fsynced after the rename (the rename itself is durable);
- temporary files a crash left behind are removed when a store opens, those of a live writer (this or
  another process of this host, or another host's recent one) never.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time

import pytest

from engine.storage.contact_blocks import ColumnBlock
from flows import chunk_store
from flows.chunk_store import HOST, ChunkStore

pytestmark = pytest.mark.e2e


def Piece(key: str, payload: bytes = b"x" * 1000) -> ColumnBlock:
    """A stored piece as ChunkStore sees one: a block of contact columns with a chosen key."""
    return ColumnBlock((payload,), b"", key=key)


def _tmp_files(store: ChunkStore) -> list[str]:
    return sorted(p.name for p in store.dir.glob(".*.tmp"))


def test_a_write_that_fails_leaves_no_temporary_file(tmp_path, monkeypatch):
    store = ChunkStore(tmp_path)
    real_open = open
    made = []

    def open_on_a_full_disk(path, mode="r", *args, **kwargs):
        # a real ENOSPC: the temporary file is made, but it is /dev/full, so its write fails
        if str(path).endswith(".tmp") and "w" in mode:
            os.symlink("/dev/full", path)
            made.append(path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(chunk_store, "open", open_on_a_full_disk, raising=False)
    with pytest.raises(OSError) as exc:
        store.put(Piece("k1"))
    assert exc.value.errno == errno.ENOSPC and len(made) == 1
    assert _tmp_files(store) == [] and not os.path.lexists(made[0])
    assert "k1" not in store.known and not (store.dir / "k1.chunk").exists()
    monkeypatch.undo()
    assert store.put(Piece("k1")) == "k1"  # the next epoch writes it
    assert store.get("k1").columns == (b"x" * 1000,) and _tmp_files(store) == []


def test_a_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    store = ChunkStore(tmp_path)

    def refuse(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(chunk_store.os, "replace", refuse)
    with pytest.raises(OSError):
        store.put(Piece("k2"))
    assert _tmp_files(store) == [] and "k2" not in store.known
    monkeypatch.undo()
    store.put(Piece("k2"))
    assert (store.dir / "k2.chunk").exists() and _tmp_files(store) == []


def test_the_directory_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    store = ChunkStore(tmp_path)
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync-dir" if stat.S_ISDIR(st.st_mode) else "fsync-file", st.st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", None))
        return real_replace(src, dst)

    monkeypatch.setattr(chunk_store.os, "fsync", fsync)
    monkeypatch.setattr(chunk_store.os, "replace", replace)
    store.put(Piece("k3"))
    kinds = [k for k, _ in events]
    assert kinds == ["fsync-file", "rename", "fsync-dir"]
    assert events[-1][1] == os.stat(store.dir).st_ino  # the chunks directory, after the rename
    events.clear()
    store.put(Piece("k3"))  # known: nothing written, nothing synced
    assert events == []


def test_stale_temporary_files_are_removed_when_a_store_opens_live_ones_never(tmp_path):
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.05)
        names = {
            "dead_pid": f".a.{HOST}.{dead.pid}.1.tmp",  # a crashed writer of this host
            "old_format_dead": f".b.{dead.pid}.tmp",  # written before hosts were named
            "live_pid": f".c.{HOST}.{live.pid}.1.tmp",  # another process writing right now
            "this_process": f".d.{HOST}.{os.getpid()}.2.tmp",  # a worker thread of this process
            "other_host_recent": ".e.otherhost.123.1.tmp",
            "other_host_old": ".f.otherhost.123.1.tmp",
            "before_this_process": f".g.{HOST}.{os.getpid()}.3.tmp",  # a restarted container reuses pids
        }
        for name in names.values():
            (chunks / name).write_bytes(b"partial")
        hour_ago = time.time() - chunk_store.STALE_TMP_S - 60
        os.utime(chunks / names["other_host_old"], (hour_ago, hour_ago))
        os.utime(chunks / names["before_this_process"], (hour_ago, hour_ago))
        (chunks / "kept.chunk").write_bytes(b"chunk")

        store = ChunkStore(tmp_path)
        left = set(_tmp_files(store))
        assert left == {names["live_pid"], names["this_process"], names["other_host_recent"]}
        assert set(store.removed_tmp) == {names["dead_pid"], names["old_format_dead"], names["other_host_old"],
                                          names["before_this_process"]}
        assert (chunks / "kept.chunk").exists() and "kept" in store.known
    finally:
        live.kill()
        live.wait()
