"""The FastAPI application (SPEC §4): `create_app` builds one app from the routers of api/routes/.

One shared async Redis client and one live hub (one pub/sub subscription) per process, made by the
lifespan and kept on ``app.state`` with the settings; routes read them through api/deps.py. See docs/api.md.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import redis as redis_sync
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff

from api import docs_pages, openapi_doc, sse_cap, stream_tokens, webhook_delivery
from api.auth import AuthError, dev_mode_from_env
from api.dataset_guard import DatasetGuard
from api.dot_segments import DotSegments
from api.env_settings import check_redis_url
from api.live import LiveHub
from api.live_shards import ShardedLiveHub
from api.metrics import ApiMetrics, MetricsMiddleware
from api.rate_limit import IngestLimits
from api.responses import OrjsonResponse
from api.routes import ROUTERS
from api.settings import ApiSettings
from api.sockets import StallReaper
from flows.redis_connect import is_cluster_or_guess

REDIS_RETRY_AFTER_S = 1  # a blip or a failover: try again soon
OOM_RETRY_AFTER_S = 10  # an operator has to free memory or raise maxmemory
# the response headers a page on another origin may read (CORS shows it only the safelisted ones otherwise):
# when to retry (429, 503), the alert min_sample of /live, a CSV's file name, a 405's methods, a 401's scheme
EXPOSED_HEADERS = ("Retry-After", "X-Min-Sample", "Content-Disposition", "Allow", "WWW-Authenticate")


def create_app(redis_url: str, *, dev_mode: bool | None = None, heartbeat_s: float = 5.0,
               min_frame_interval_s: float = 0.25, ping_s: float = 15.0, max_replay: int = 1000,
               max_alert_queue: int = 1000, flow_lag_bound_ms: int = 30_000,
               redis_max_connections: int = 64, sse_stall_s: float = 10.0,
               cors_origins: str | None = None, ingest_rate: str | None = None,
               ingest_event_rate: str | None = None, webhooks: bool | None = None,
               sse_max_connections: int | None = None) -> FastAPI:
    """Build the API app. ``dev_mode`` (default: env ``CALLPULSE_DEV=1``) also accepts the fixed demo key.
    ``ingest_rate`` / ``ingest_event_rate``: per-key limits of POST /v1/events (default: env
    ``CALLPULSE_INGEST_RATE`` / ``CALLPULSE_INGEST_EVENT_RATE``; off when unset), api/rate_limit.py.
    ``webhooks``: run the webhook deliverer in this process (default: env ``CALLPULSE_WEBHOOKS``, on
    unless 0), api/webhook_delivery.py. ``sse_max_connections``: open SSE streams this process serves before it
    answers 503 (default: env ``CALLPULSE_SSE_MAX_CONNECTIONS``, else 10 000), api/sse_cap.py."""
    # every setting is read and checked here, before the server starts: a bad one is a ValueError naming it,
    # which `callpulse api` prints as one line (not a traceback from the lifespan)
    check_redis_url(redis_url)
    if webhooks is None:
        webhooks = webhook_delivery.enabled_from_env()
    delivery = webhook_delivery.DeliverySettings.from_env() if webhooks else None
    settings = ApiSettings(
        redis_url=redis_url, dev_mode=dev_mode_from_env() if dev_mode is None else dev_mode,
        heartbeat_s=heartbeat_s, min_frame_interval_s=min_frame_interval_s, ping_s=ping_s, max_replay=max_replay,
        max_alert_queue=max_alert_queue, flow_lag_bound_ms=flow_lag_bound_ms,
        redis_max_connections=redis_max_connections, sse_stall_s=sse_stall_s,
        sse_max_connections=sse_cap.max_from_env() if sse_max_connections is None else sse_max_connections)
    if settings.sse_max_connections < 1:
        raise ValueError(f"--sse-max-connections {settings.sse_max_connections}: at least 1 SSE connection")
    metrics = ApiMetrics()
    ingest_limits = IngestLimits.from_env(redis_url, ingest_rate, ingest_event_rate)
    reaper = StallReaper(sse_stall_s, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = app.state
        # bounded pool that waits (not fails) under bursts: e.g. hundreds of SSE clients connecting at once
        # a pooled connection made before a Redis restart is stale: its first command fails. Retry such
        # commands on a fresh connection (a few times, quickly) instead of failing a request, or worse an
        # SSE stream whose response has already started
        state.cluster = is_cluster_or_guess(redis_url)  # a Redis Cluster node: redis-py's cluster clients
        if state.cluster:
            # one pool per node, each capped; the client follows MOVED/ASK and failovers by itself
            pool = None
            state.redis = aioredis.RedisCluster.from_url(
                redis_url, max_connections=redis_max_connections, health_check_interval=30,
                retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), 6))
            state.pubsub_redis = aioredis.RedisCluster.from_url(redis_url)
        else:
            pool = aioredis.BlockingConnectionPool.from_url(
                redis_url, max_connections=redis_max_connections, timeout=10, health_check_interval=30,
                retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), 3),
                retry_on_error=[redis_sync.ConnectionError, redis_sync.TimeoutError])
            state.redis = aioredis.Redis(connection_pool=pool)
            state.pubsub_redis = aioredis.Redis.from_url(redis_url, retry=AsyncRetry(NoBackoff(), 0))
        ingest_limits.bind(pool, cluster=state.cluster)
        state.sync_redis = None  # made on first use (api/deps.py)
        # a cluster: sharded pub/sub, only the channels of the campaigns and orgs with local clients
        hub_class = ShardedLiveHub if state.cluster else LiveHub
        state.hub = hub_class(state.redis, max_alert_queue=max_alert_queue, pubsub_redis=state.pubsub_redis)
        state.hub.start()
        reaper.start()
        state.webhooks = webhook_delivery.Deliverer(state.redis, delivery, metrics=metrics) if webhooks else None
        if state.webhooks is not None:
            state.webhooks.start()
        try:
            yield
        finally:
            if state.webhooks is not None:
                await state.webhooks.stop()
            await reaper.stop()
            await state.hub.stop()
            await state.redis.aclose()
            await state.pubsub_redis.aclose()
            if pool is not None:
                await pool.disconnect()
            if state.sync_redis is not None:
                state.sync_redis.close()

    # the docs pages (/docs, /redoc) load Swagger UI / ReDoc from the fastapi-offline package, not a CDN, and
    # fetch nothing else from outside (api/docs_pages.py): they work on a machine without internet access
    app = FastAPIOffline(
        title="callpulse API",
        version="1",
        description="Real-time metrics for outbound dialer campaigns: REST, ingest and server-sent events. "
                    "Auth: `Authorization: Bearer <key>` (org keys `ak_…`; user tokens `pat_…` with `X-Org`).",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,  # our own /redoc (api/docs_pages.py): ReDoc's bundle would fetch its logo from a CDN
        generate_unique_id_function=openapi_doc.operation_id,  # getCampaignStats, not get_stats_v1_…_get
    )
    app.state.settings = settings
    app.state.dev_mode = settings.dev_mode
    app.state.metrics = metrics
    app.state.guard = DatasetGuard()
    app.state.reaper = reaper
    app.state.sse_cap = sse_cap.SseCap(settings.sse_max_connections)
    app.state.ingest_limits = ingest_limits
    stream_tokens.keep_tokens_out_of_logs()
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_cors(app, cors_origins)
    app.add_middleware(DotSegments)  # outermost: ids "." and ".." sent as %252E / %252E%252E (docs/api.md)
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    openapi_doc.install(app)
    docs_pages.install(app)
    return app


def _add_cors(app: FastAPI, cors_origins: str | None) -> None:
    # CORS is off unless origins are listed (CALLPULSE_CORS_ORIGINS=https://a.example,https://b.example):
    # browsers then may call the API from those pages only; the dashboard at / is same-origin anyway
    origins = [o.strip() for o in (cors_origins if cors_origins is not None
                                   else os.environ.get("CALLPULSE_CORS_ORIGINS", "")).split(",") if o.strip()]
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Org", "Last-Event-ID"],
                           expose_headers=list(EXPOSED_HEADERS))


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def _auth_error(request, exc: AuthError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return OrjsonResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(redis_sync.RedisError)
    async def _redis_error(request, exc):
        # Always retryable: the ingest path stores a retried body exactly once (flows/ingest_claims.py).
        if isinstance(exc, redis_sync.exceptions.OutOfMemoryError):
            detail, wait = ("Redis is out of memory (maxmemory reached); nothing of what failed was stored "
                            "twice: retry the same body later"), OOM_RETRY_AFTER_S
        else:
            detail, wait = f"Redis unavailable: {type(exc).__name__}; retry the same body", REDIS_RETRY_AFTER_S
        return OrjsonResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(wait)})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc: RequestValidationError):
        errors = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            errors.append({"field": ".".join(loc[1:]) or ".".join(loc), "in": loc[0] if loc else None,
                           "msg": e.get("msg"), "type": e.get("type")})
        fields = ", ".join(sorted({x["field"] for x in errors}))
        return OrjsonResponse({"detail": f"invalid {fields}", "errors": errors}, status_code=422)
