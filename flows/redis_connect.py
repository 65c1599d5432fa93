"""One way to connect to Redis from a URL, standalone or Redis Cluster (docs/operations.md, *Redis Cluster*).

`CALLPULSE_REDIS_URL` may name a standalone Redis or any node of a Redis Cluster. Which one it is, is
asked once per URL (``INFO cluster``: ``cluster_enabled:1``) and remembered for the process; the answer
picks redis-py's client: `redis.Redis` / `redis.asyncio.Redis`, or `redis.RedisCluster` /
`redis.asyncio.RedisCluster`, which follow the cluster's slot map (MOVED, ASK, failover) by themselves.
The setting ``CALLPULSE_REDIS_CLUSTER`` = ``1`` / ``0`` skips the question (a process that must start while
Redis is down): the process's settings object reads it (`cluster_from`) and passes it in as ``cluster``; this
module reads no environment. A cluster has one database: a URL that names another than 0 is refused with a
clear error.
"""

from __future__ import annotations

from urllib.parse import urlparse

import redis
import redis.asyncio as aioredis

DEFAULT_REDIS_URL = "redis://localhost:6379/0"  # CALLPULSE_REDIS_URL unset: every process's default
CLUSTER_SETTING = "CALLPULSE_REDIS_CLUSTER"
_KNOWN: dict[str, bool] = {}


class RedisUrlError(ValueError):
    """A Redis URL the product cannot use (a database other than 0 on a cluster)."""


def cluster_from(setting: str | None) -> bool | None:
    """The value of ``CALLPULSE_REDIS_CLUSTER`` as a settings object holds it: True / False for ``1`` / ``0``,
    None (ask Redis) when unset or anything else."""
    setting = (setting or "").strip()
    return setting == "1" if setting in ("0", "1") else None


def is_cluster(url: str, cluster: bool | None = None) -> bool:
    """Whether ``url`` names a node of a Redis Cluster: ``cluster`` when the settings say so, else asked once
    per URL and process."""
    if cluster is not None:
        return cluster
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


def is_cluster_or_guess(url: str, cluster: bool | None = None) -> bool:
    """`is_cluster`, for a process that must start even while Redis is down (the API): an unreachable Redis
    is taken for a standalone one, not remembered (set ``CALLPULSE_REDIS_CLUSTER=1`` where that guess is wrong)."""
    try:
        return is_cluster(url, cluster)
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _check_db(url: str) -> None:
    path = urlparse(url).path.strip("/")
    if path not in ("", "0"):
        raise RedisUrlError(f"{url} names database {path}, but a Redis Cluster has only database 0: "
                            f"use a URL ending in /0 (or none)")


def connect(url: str, *, cluster: bool | None = None, **kwargs) -> redis.Redis | redis.RedisCluster:
    """A sync client for ``url``: `redis.RedisCluster` on a cluster, else `redis.Redis` (``cluster``: the
    settings' ``CALLPULSE_REDIS_CLUSTER``, None to ask Redis)."""
    if is_cluster(url, cluster):
        _check_db(url)
        kwargs.pop("redis_connect_func", None)  # per-connection hooks are the standalone client's
        return redis.RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def connect_async(url: str, *, cluster: bool | None = None, **kwargs) -> aioredis.Redis | aioredis.RedisCluster:
    """An asyncio client for ``url``: `redis.asyncio.RedisCluster` on a cluster, else `redis.asyncio.Redis`."""
    if is_cluster(url, cluster):
        _check_db(url)
        return aioredis.RedisCluster.from_url(url, **kwargs)
    return aioredis.Redis.from_url(url, **kwargs)
