"""One way to connect to Redis from a URL, standalone or Redis Cluster (docs/operations.md, *Redis Cluster*).

`CALLPULSE_REDIS_URL` may name a standalone Redis or any node of a Redis Cluster. Which one it is, is
asked once per URL (``INFO cluster``: ``cluster_enabled:1``) and remembered for the process; the answer
picks redis-py's client: `redis.Redis` / `redis.asyncio.Redis`, or `redis.RedisCluster` /
`redis.asyncio.RedisCluster`, which follow the cluster's slot map (MOVED, ASK, failover) by themselves.
``CALLPULSE_REDIS_CLUSTER`` = ``1`` / ``0`` skips the question (a process that must start while Redis
is down). A cluster has one database: a URL that names another than 0 is refused with a clear error.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import redis
import redis.asyncio as aioredis

CLUSTER_SETTING = "CALLPULSE_REDIS_CLUSTER"
_KNOWN: dict[str, bool] = {}


class RedisUrlError(ValueError):
    """A Redis URL the product cannot use (a database other than 0 on a cluster)."""


def is_cluster(url: str) -> bool:
    """Whether ``url`` names a node of a Redis Cluster (asked once per URL and process)."""
    setting = os.environ.get(CLUSTER_SETTING, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    known = _KNOWN.get(url)
    if known is None:
        # asked on database 0: a cluster refuses SELECT, and a wrong database is refused below with its reason
        probe = redis.Redis.from_url(urlparse(url)._replace(path="/0").geturl(), socket_connect_timeout=5,
                                     socket_timeout=5)
        try:
            known = _KNOWN[url] = str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
        finally:
            probe.close()
    return known


def is_cluster_or_guess(url: str) -> bool:
    """`is_cluster`, for a process that must start even while Redis is down (the API): an unreachable Redis
    is taken for a standalone one, not remembered (set ``CALLPULSE_REDIS_CLUSTER=1`` where that guess is wrong)."""
    try:
        return is_cluster(url)
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _check_db(url: str) -> None:
    path = urlparse(url).path.strip("/")
    if path not in ("", "0"):
        raise RedisUrlError(f"{url} names database {path}, but a Redis Cluster has only database 0: "
                            f"use a URL ending in /0 (or none)")


def connect(url: str, **kwargs) -> redis.Redis | redis.RedisCluster:
    """A sync client for ``url``: `redis.RedisCluster` on a cluster, else `redis.Redis`."""
    if is_cluster(url):
        _check_db(url)
        kwargs.pop("redis_connect_func", None)  # per-connection hooks are the standalone client's
        return redis.RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def connect_async(url: str, **kwargs) -> aioredis.Redis | aioredis.RedisCluster:
    """An asyncio client for ``url``: `redis.asyncio.RedisCluster` on a cluster, else `redis.asyncio.Redis`."""
    if is_cluster(url):
        _check_db(url)
        return aioredis.RedisCluster.from_url(url, **kwargs)
    return aioredis.Redis.from_url(url, **kwargs)
