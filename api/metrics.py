"""Prometheus metrics of one API process (`GET /metrics`), in a registry of its own per app."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.campaign_metrics import CampaignGauges


class ApiMetrics:
    def __init__(self, campaigns: CampaignGauges):
        self.registry = CollectorRegistry()
        self.requests = Counter("callpulse_api_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("callpulse_api_request_seconds", "HTTP request latency (to the response start)",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.subscribers = Gauge("callpulse_api_sse_subscribers", "connected SSE subscribers",
                                 registry=self.registry)
        self.frames_sent = Counter("callpulse_api_sse_frames_sent_total", "SSE frame events sent",
                                   registry=self.registry)
        self.alerts_sent = Counter("callpulse_api_sse_alerts_sent_total", "SSE alert events sent",
                                   registry=self.registry)
        self.sse_refused = Counter("callpulse_api_sse_refused_total",
                                   "SSE connections answered 503 because this process held its maximum "
                                   "(CALLPULSE_SSE_MAX_CONNECTIONS)", registry=self.registry)
        self.sse_dropped = Counter("callpulse_api_sse_dropped_total",
                                   "SSE clients cut off because a send stalled (a client that does not read)",
                                   registry=self.registry)
        self.events_accepted = Counter("callpulse_api_events_total", "POST /v1/events results", ["result"],
                                       registry=self.registry)
        self.webhook_attempts = Counter("callpulse_api_webhook_attempts_total",
                                        "webhook delivery attempts by the state they left the delivery in",
                                        ["state"], registry=self.registry)
        # per-campaign gauges from the stored stats bodies; refreshed (cached) by the /metrics route
        self.campaigns = campaigns
        self.registry.register(self.campaigns)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware (does not buffer streaming responses): counts and times requests.

    Latency is measured to the start of the response, so long-lived SSE streams are not
    recorded as hour-long requests.
    """

    def __init__(self, app, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                self.metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - t0)
                self.metrics.requests.labels(scope["method"], path, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, send_wrapper)
