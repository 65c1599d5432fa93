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


# ---------------------------------------------------------------- layers: `pytest -m unit` runs in seconds
# A test module that starts real processes or servers (Redis, the flow, the API, Chromium) is `e2e`;
# every other test is `unit` (pure engine, reference model, validators). CI runs both.
_E2E_MARKERS = ("redis_server", "redis_url", "redis_client", "redis_cluster", "cluster_url", "RedisProcess",
                "ServerThread", "subprocess",
                "playwright", "run_cli", "start_flow")
_module_layer: dict[str, str] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "unit: a fast test with no process or server (pytest -m unit)")
    config.addinivalue_line("markers", "e2e: a test on the real stack (Redis, flow, API, Chromium)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath)
        layer = _module_layer.get(path)
        if layer is None:
            with open(path, encoding="utf-8") as f:
                source = f.read()
            layer = _module_layer[path] = "e2e" if any(m in source for m in _E2E_MARKERS) else "unit"
        item.add_marker(getattr(pytest.mark, layer))


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
