"""The FastAPI application (SPEC §4): `build_app` builds one app from the routers of api/routes/.

One settings object per process (`ApiSettings`, api/settings.py, read and checked before the app is built);
what the process holds open while it serves (Redis clients, the live hub, rate limits, the webhook deliverer:
`Resources`, api/resources.py) is built by the lifespan from it and closed there. Routes read both through
the dependencies of api/deps.py. See docs/api.md.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import redis as redis_sync
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline

from api import docs_pages, openapi_doc, sse_cap, stream_tokens
from api.auth import AuthError
from api.campaign_metrics import CampaignGauges
from api.dataset_guard import DatasetGuard
from api.dot_segments import DotSegments
from api.metrics import ApiMetrics, MetricsMiddleware
from api.resources import Resources
from api.responses import OrjsonResponse
from api.routes import ROUTERS
from api.settings import ApiSettings
from api.sockets import StallReaper

REDIS_RETRY_AFTER_S = 1  # a blip or a failover: try again soon
OOM_RETRY_AFTER_S = 10  # an operator has to free memory or raise maxmemory
# the response headers a page on another origin may read (CORS shows it only the safelisted ones otherwise):
# when to retry (429, 503), the alert min_sample of /live, a CSV's file name, a 405's methods, a 401's scheme
EXPOSED_HEADERS = ("Retry-After", "X-Min-Sample", "Content-Disposition", "Allow", "WWW-Authenticate")


def create_app(redis_url: str, **overrides) -> FastAPI:
    """The API app for ``redis_url``: `build_app` of `ApiSettings.from_env(redis_url, **overrides)`.

    ``overrides`` are `ApiSettings` fields (e.g. ``dev_mode``, ``heartbeat_s``, ``ingest_rate``, ``webhooks``,
    ``sse_max_connections``, ``cors_origins``); one that is None, or not given, comes from the environment
    (``CALLPULSE_DEV``, ``CALLPULSE_INGEST_RATE``, ...) or the default. A malformed setting is a ValueError
    naming it, raised here, before any server starts (`callpulse api` prints it as one line)."""
    return build_app(ApiSettings.from_env(redis_url, **overrides))


def build_app(settings: ApiSettings) -> FastAPI:
    """One app for one settings object. The metrics, the SSE cap and the stall reaper are made here (the
    middleware counts with the metrics from the first request on); the Redis side is the lifespan's."""
    metrics = ApiMetrics(CampaignGauges(max_campaigns=settings.metrics_max_campaigns,
                                        cache_s=settings.metrics_cache_s, scan_keys=settings.metrics_scan_keys))
    reaper = StallReaper(settings.sse_stall_s, metrics)
    # the docs pages (/docs, /redoc) load Swagger UI / ReDoc from the fastapi-offline package, not a CDN, and
    # fetch nothing else from outside (api/docs_pages.py): they work on a machine without internet access
    app = FastAPIOffline(
        title="callpulse API",
        version="1",
        description="Real-time metrics for outbound dialer campaigns: REST, ingest and server-sent events. "
                    "Auth: `Authorization: Bearer <key>` (org keys `ak_…`; user tokens `pat_…` with `X-Org`).",
        default_response_class=OrjsonResponse,
        lifespan=_lifespan(settings, metrics, reaper),
        docs_url="/docs",
        redoc_url=None,  # our own /redoc (api/docs_pages.py): ReDoc's bundle would fetch its logo from a CDN
        generate_unique_id_function=openapi_doc.operation_id,  # getCampaignStats, not get_stats_v1_…_get
    )
    app.state.settings = settings
    app.state.dev_mode = settings.dev_mode  # (read by tests; requests use the settings)
    app.state.metrics = metrics
    app.state.guard = DatasetGuard()
    app.state.reaper = reaper
    app.state.sse_cap = sse_cap.SseCap(settings.sse_max_connections)
    stream_tokens.keep_tokens_out_of_logs()
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_cors(app, settings.cors_origins)
    app.add_middleware(DotSegments)  # outermost: ids "." and ".." sent as %252E / %252E%252E (docs/api.md)
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    openapi_doc.install(app)
    docs_pages.install(app)
    return app


def _lifespan(settings: ApiSettings, metrics: ApiMetrics, reaper: StallReaper):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        resources = Resources.open(settings, metrics)  # in the server's event loop (api/resources.py)
        app.state.resources = resources
        app.state.hub = resources.hub  # (watched by tests and tools; routes use api/deps.py)
        reaper.start()
        try:
            yield
        finally:
            await reaper.stop()
            await resources.close()
    return lifespan


def _add_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    # CORS is off unless origins are listed (CALLPULSE_CORS_ORIGINS=https://a.example,https://b.example):
    # browsers then may call the API from those pages only; the dashboard at / is same-origin anyway
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["GET", "POST", "DELETE"],
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
