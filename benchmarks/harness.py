"""What the process-level benchmarks share: the CLI path, a private redis-server, and running one
`callpulse` command with the kernel's figures for it (wall time, peak RSS, stderr)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callpulse.redis_local import free_port, start_redis, stop_redis  # noqa: E402

CLI = str(ROOT / ".venv" / "bin" / "callpulse")
if not os.path.exists(CLI):
    CLI = shutil.which("callpulse") or str(Path(sys.executable).with_name("callpulse"))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _status_bytes(pid: int, field: bytes) -> int:
    """A size field of /proc/<pid>/status in bytes, 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _peak_rss(pid: int) -> int:
    """The process's own peak RSS in bytes (VmHWM: its image since exec), 0 once it is gone."""
    return _status_bytes(pid, b"VmHWM:")


def current_rss(pid: int) -> int:
    """The process's RSS now, in bytes (VmRSS), 0 once it is gone."""
    return _status_bytes(pid, b"VmRSS:")


def run_measured(argv: list[str], env: dict) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stderr) of one command.

    The peak is the child's VmHWM, polled every 20 ms until it exits. Not wait4's ru_maxrss: a child
    forked from this process counts this process's pages until it execs, so a benchmark holding a big
    event list would be charged for it (what made an earlier many-campaigns figure 1.8 GB)."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _peak_rss(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err.seek(0)
    text = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{text[-3000:]}")
    return wall, peak, text


@contextlib.contextmanager
def private_redis(prefix: str):
    """(work dir, client, env with CALLPULSE_REDIS_URL) of a redis-server of its own; removed after."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    server = start_redis(port, work / "redis")
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        yield work, client, dict(os.environ, CALLPULSE_REDIS_URL=url, PYTHONUNBUFFERED="1")
    finally:
        client.close()
        stop_redis(server)
        shutil.rmtree(work, ignore_errors=True)
