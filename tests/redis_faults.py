"""A redis-server of a test's own that can be stopped, restarted (same port, same files) or wiped.

Runs with AOF (``appendfsync everysec``), as docs/operations.md asks for production: a graceful
stop (SHUTDOWN) fsyncs the AOF, so a restart brings back every acknowledged write.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from callpulse.redis_local import free_port, start_redis, stop_redis


class RedisProcess:
    def __init__(self, workdir: Path, *, persist: bool = True):
        self.workdir = workdir
        self.persist = persist
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> RedisProcess:
        self.proc = start_redis(self.port, self.workdir, persist=self.persist)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_redis(self.proc)  # SIGTERM: redis-server fsyncs the AOF and exits
            self.proc = None

    def wipe(self) -> None:
        """Stop and delete the data files: the next start is an empty Redis (a restart without persistence)."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
