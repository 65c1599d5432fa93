"""Shared fixtures. Tests that need Redis get a real redis-server on a free port.

The test layers (`unit` / `e2e`, declared by each module) are checked by the hooks of tests/layers.py; the
real stack that the API tests read (simulate -> ingest -> flow -> serve) is the `stack` fixture of
tests/stack.py. Both are imported here, which registers them with pytest.
"""

from __future__ import annotations

import pytest
import redis

from callpulse.redis_local import free_port, start_redis, stop_redis
from tests.layers import pytest_collection_modifyitems, pytest_runtest_call, pytest_runtest_setup
from tests.stack import stack

__all__ = ["pytest_collection_modifyitems", "pytest_runtest_call", "pytest_runtest_setup", "stack"]


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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A real local Redis Cluster (3 masters, 3 replicas, Debian's redis-server) for the session."""
    from callpulse.redis_local import LocalCluster

    cluster = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster):
    """The session's cluster, emptied before each test that asks for it."""
    import redis as _redis

    client = _redis.RedisCluster.from_url(redis_cluster.url)
    client.flushall(target_nodes=_redis.RedisCluster.PRIMARIES)
    client.close()
    return redis_cluster.url
