"""Shared fixtures. Tests that need Redis get a real redis-server on a free port."""

from __future__ import annotations

import pytest
import redis

from callpulse.redis_local import free_port, start_redis, stop_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server for the whole test session; yields its URL."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_redis(proc)


@pytest.fixture
def redis_url(redis_server):
    """The session's Redis, emptied before each test that asks for it."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
