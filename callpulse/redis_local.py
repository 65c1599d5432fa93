"""Start (or find) a local redis-server process: used by `callpulse demo` and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_reachable(url: str, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def start_redis(port: int, workdir: Path, *, persist: bool = False) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:``port`` with its files in ``workdir``; wait until it answers.

    ``persist`` turns on AOF (``appendfsync everysec``) so the demo survives a restart;
    tests run without persistence for speed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (run scripts/setup.sh, or apt-get install redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--daemonize", "no", "--loglevel", "warning"]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"] if persist else ["--appendonly", "no"]
    # its own session: a Ctrl-C in the terminal (SIGINT to the foreground process group) must reach
    # the command that started it, which stops it in order, not kill it under the flow
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode} on port {port}")
        if is_reachable(url, timeout=0.2):
            return proc
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"redis-server on port {port} did not answer within 10 s")


def stop_redis(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
