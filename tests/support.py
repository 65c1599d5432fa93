"""Helpers for tests and benchmarks: a real uvicorn server on a free port, and the flow as a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CALLPULSE = [sys.executable, "-m", "callpulse.cli"]


class ServerThread:
    """uvicorn serving ``app`` in a thread of this process (its own event loop) on a free port."""

    def __init__(self, app, port: int | None = None):
        import uvicorn

        from callpulse.redis_local import free_port

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        from api.sockets import BoundedHTTPProtocol

        self.config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="on",
                                     timeout_graceful_shutdown=2, http=BoundedHTTPProtocol)
        self.server = uvicorn.Server(self.config)
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def env_for(redis_url: str) -> dict:
    env = dict(os.environ)
    env["CALLPULSE_REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_flow(redis_url: str, *extra: str) -> subprocess.Popen:
    """`callpulse flow --replay --no-recovery [extra]` as a subprocess (stop with stop_process)."""
    return subprocess.Popen(CALLPULSE + ["flow", "--replay", "--no-recovery", *extra], cwd=ROOT,
                            env=env_for(redis_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_cli(redis_url: str, *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(CALLPULSE + list(args), cwd=ROOT, env=env_for(redis_url), input=input,
                          capture_output=True, timeout=timeout)


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


async def read_sse(response: httpx.Response, on_event) -> None:
    """Parse an SSE response body; ``on_event(event, id, data)`` returns True to stop."""
    event, eid, data = None, None, []
    async for line in response.aiter_lines():
        if line == "":
            if data or event:
                if on_event(event or "message", eid, "\n".join(data)):
                    return
            event, eid, data = None, None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "id":
            eid = value
        elif name == "data":
            data.append(value)


def wait_until(pred, timeout: float = 20, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


async def async_wait_until(pred, timeout: float = 20, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
