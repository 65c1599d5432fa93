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


def run_measured(argv: list[str], env: dict) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stderr) of one command, from the kernel's accounting (wait4)."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err.seek(0)
    text = err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}):\n{text[-3000:]}")
    return wall, usage.ru_maxrss * 1024, text


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
