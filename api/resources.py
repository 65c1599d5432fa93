"""What one API process holds open while it serves: built by the app's lifespan from `ApiSettings`, closed by it.

`Resources.open` turns the one Redis URL into the clients the app needs, inside the server's event loop:

- ``redis``: the shared async client. Standalone: a bounded pool that waits (not fails) under bursts, e.g.
  hundreds of SSE clients connecting at once; a Redis Cluster: one capped pool per node, the client follows
  MOVED/ASK and failovers by itself. A pooled connection made before a Redis restart is stale (its first
  command fails): such commands are retried on a fresh connection, a few times and quickly, instead of
  failing a request, or worse an SSE stream whose response has already started;
- ``pubsub_redis``: the live hub's subscription, without retries (a lost subscription must be noticed: the
  hub closes its streams and subscribes again, api/live.py);
- ``sync_redis``: the sync client of the thread-pool work (ingest, webhook store). On a Redis Cluster that
  cannot be reached at start it is dialled again in the background (redis-py's cluster client connects when
  made) and its users answer 503 meanwhile (`sync_client`);
- ``hub``: the live hub (on a cluster, sharded pub/sub of the followed campaigns and orgs only);
- ``ingest_limits``: the per-key rate limits of POST /v1/events, on the app's connection pool;
- ``webhooks``: the webhook deliverer, when this process runs one.

Routes get them through the ``Annotated`` dependencies of api/deps.py; nothing is built inside a request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis as redis_sync
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff

from api import webhook_delivery
from api.live import LiveHub
from api.live_shards import ShardedLiveHub
from api.metrics import ApiMetrics
from api.rate_limit import IngestLimits
from api.settings import ApiSettings
from flows.redis_connect import connect, is_cluster_or_guess

log = logging.getLogger("callpulse.api.resources")

SYNC_DIAL_MAX_S = 5.0  # a Redis Cluster unreachable at start: the sync client is dialled again at most this apart


@dataclass
class Resources:
    cluster: bool  # a Redis Cluster node: redis-py's cluster clients
    redis: aioredis.Redis | aioredis.RedisCluster
    pubsub_redis: aioredis.Redis | aioredis.RedisCluster
    pool: aioredis.BlockingConnectionPool | None  # standalone only (a cluster client has one per node)
    hub: LiveHub
    ingest_limits: IngestLimits
    webhooks: webhook_delivery.Deliverer | None
    sync_redis: redis_sync.Redis | redis_sync.RedisCluster | None = None
    dialling: asyncio.Task | None = None

    @classmethod
    def open(cls, settings: ApiSettings, metrics: ApiMetrics) -> Resources:
        """Build and start everything (in the server's event loop: the lifespan)."""
        url = settings.redis_url
        cluster = is_cluster_or_guess(url, settings.redis_cluster)
        redis, pubsub_redis, pool = _async_clients(settings, cluster)
        limits = IngestLimits(url, requests=settings.ingest_rate, events=settings.ingest_event_rate)
        limits.bind(pool, cluster=cluster)
        hub_class = ShardedLiveHub if cluster else LiveHub
        hub = hub_class(redis, max_alert_queue=settings.max_alert_queue, pubsub_redis=pubsub_redis)
        deliverer = None
        if settings.webhooks:
            deliverer = webhook_delivery.Deliverer(redis, settings.delivery, metrics=metrics,
                                                   allow=settings.webhook_allow)
        res = cls(cluster, redis, pubsub_redis, pool, hub, limits, deliverer)
        res._open_sync(settings)
        hub.start()
        if deliverer is not None:
            deliverer.start()
        return res

    def _open_sync(self, settings: ApiSettings) -> None:
        try:
            self.sync_redis = connect(settings.redis_url, cluster=self.cluster)
        except Exception as exc:  # a cluster client dials at once (RedisClusterException is no RedisError)
            log.warning("Redis Cluster at %s not reachable (%s): dialling again in the background",
                        settings.redis_url, exc)
            self.dialling = asyncio.get_running_loop().create_task(self._dial_sync(settings.redis_url))

    async def _dial_sync(self, url: str) -> None:
        delay = 0.25
        while self.sync_redis is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, SYNC_DIAL_MAX_S)
            try:
                self.sync_redis = await asyncio.to_thread(connect, url, cluster=self.cluster)
            except Exception:
                continue

    def sync_client(self) -> redis_sync.Redis | redis_sync.RedisCluster:
        """The sync client; a redis ConnectionError (answered 503 + Retry-After) while it is still dialled."""
        if self.sync_redis is None:
            raise redis_sync.ConnectionError("the Redis Cluster has not been reached yet")
        return self.sync_redis

    async def close(self) -> None:
        if self.dialling is not None:
            self.dialling.cancel()
        if self.webhooks is not None:
            await self.webhooks.stop()
        await self.hub.stop()
        await self.redis.aclose()
        await self.pubsub_redis.aclose()
        if self.pool is not None:
            await self.pool.disconnect()
        if self.sync_redis is not None:
            self.sync_redis.close()


def _async_clients(settings: ApiSettings, cluster: bool) -> tuple:
    """(the shared client, the pub/sub client, the standalone pool or None): see the module docstring."""
    url, cap = settings.redis_url, settings.redis_max_connections
    if cluster:
        return (aioredis.RedisCluster.from_url(url, max_connections=cap, health_check_interval=30,
                                               retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), 6)),
                aioredis.RedisCluster.from_url(url), None)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=cap, timeout=10, health_check_interval=30,
        retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        retry_on_error=[redis_sync.ConnectionError, redis_sync.TimeoutError])
    return (aioredis.Redis(connection_pool=pool), aioredis.Redis.from_url(url, retry=AsyncRetry(NoBackoff(), 0)),
            pool)
