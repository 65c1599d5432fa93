"""The FastAPI application (SPEC §4): REST, ingest, SSE, health, metrics.

`create_app(redis_url, *, dev_mode=False)` builds one app with one shared async Redis client
and one live hub (one pub/sub subscription) per process. See docs/api.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import pathlib
import re
import time
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Literal, Optional

import anyio
import orjson
import redis as redis_sync
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api import models, openapi_doc, stream_tokens
from api.auth import AuthError, Principal, authenticate, dev_mode_from_env
from api.call_filters import attempt_index, call_page, callback_attempt_ids
from api.dataset_guard import DatasetGuard
from api.detail_reads import activity_entries, contacts_with_trails, fill_numbers
from api.plans import plan_block, read_plan
from api.rate_limit import Denied, IngestLimits
from api.run_ranges import RunRanges
from api.sockets import StallReaper
from api.live import LiveHub, campaign_events, org_alert_events
from api.org_live import org_summary_events
from api.metrics import ApiMetrics, MetricsMiddleware
from engine.activity import ACTIVITY_KINDS, CALLBACK_FILTERS, OUTCOME_FILTERS
from engine.events import (BATCH_STATUSES, CONTACT_STATUSES, FINAL_CONTACT_STATUSES, MAX_BODY_BYTES, EventRejected,
                           format_time, parse_event, parse_time, split_body, validate_event)
from engine.keys import (ALERT_FIELD, attempt_details_key, batch_details_key,
                         contact_details_key, contact_index_key, daily_key, flow_status_key, org_alerts_stream,
                         org_campaigns_key, replies_index_key, replies_key, stats_key, transcript_key)

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
_ID_RE = re.compile(ID_PATTERN)
CHUNK = 500
QUARTER_HOUR_MS = 900_000  # the flow stores daily counters per UTC quarter-hour (engine.state.QUARTER_HOUR)
ContactStatus = Literal[CONTACT_STATUSES]  # type: ignore[valid-type]
CallbackFilter = Literal[("all",) + CALLBACK_FILTERS]  # type: ignore[valid-type]
OutcomeFilter = Literal[OUTCOME_FILTERS]  # type: ignore[valid-type]
CALLBACK_HELP = ("all (default: no filter); requested: the attempt's contact has asked for a callback; "
                 "pending: its contact has a callback open now; completed / cancelled: its contact has a "
                 "callback closed that way")
OUTCOME_HELP = "an ended attempt's outcome, or active: dialed and not ended"
ActivityKind = Literal[ACTIVITY_KINDS]  # type: ignore[valid-type]
BatchStatus = Literal[BATCH_STATUSES]  # type: ignore[valid-type]


class OrjsonResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def limited(denied: Denied) -> Response:
    """429 (with Retry-After) or 413 for a request over a per-key ingest limit (api/rate_limit.py)."""
    return OrjsonResponse(denied.body(), status_code=denied.status, headers=denied.headers())


def raw_json(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


def _dec(b) -> str:
    return b.decode() if isinstance(b, bytes) else b


# ====================================================================== app factory

def create_app(redis_url: str, *, dev_mode: bool | None = None, heartbeat_s: float = 5.0,
               min_frame_interval_s: float = 0.25, ping_s: float = 15.0, max_replay: int = 1000,
               max_alert_queue: int = 1000, flow_lag_bound_ms: int = 30_000,
               redis_max_connections: int = 64, sse_stall_s: float = 10.0,
               cors_origins: str | None = None, ingest_rate: str | None = None,
               ingest_event_rate: str | None = None, webhooks: bool | None = None) -> FastAPI:
    """Build the API app. ``dev_mode`` (default: env ``CALLPULSE_DEV=1``) also accepts the fixed demo key.
    ``ingest_rate`` / ``ingest_event_rate``: per-key limits of POST /v1/events (default: env
    ``CALLPULSE_INGEST_RATE`` / ``CALLPULSE_INGEST_EVENT_RATE``; off when unset), api/rate_limit.py.
    ``webhooks``: run the webhook deliverer in this process (default: env ``CALLPULSE_WEBHOOKS``, on
    unless 0), api/webhook_delivery.py."""
    from api import webhook_delivery, webhook_routes

    if webhooks is None:
        webhooks = webhook_delivery.enabled_from_env()
    if dev_mode is None:
        dev_mode = dev_mode_from_env()
    metrics = ApiMetrics()
    guard = DatasetGuard()
    reaper = StallReaper(sse_stall_s, metrics)
    ingest_limits = IngestLimits.from_env(redis_url, ingest_rate, ingest_event_rate)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # bounded pool that waits (not fails) under bursts: e.g. hundreds of SSE clients connecting at once
        # a pooled connection made before a Redis restart is stale: its first command fails. Retry such
        # commands on a fresh connection (a few times, quickly) instead of failing a request, or worse an
        # SSE stream whose response has already started
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=redis_max_connections, timeout=10, health_check_interval=30,
            retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), 3),
            retry_on_error=[redis_sync.ConnectionError, redis_sync.TimeoutError])
        app.state.redis = aioredis.Redis(connection_pool=pool)
        ingest_limits.bind(pool)
        app.state.sync_redis = None
        app.state.pubsub_redis = aioredis.Redis.from_url(redis_url, retry=AsyncRetry(NoBackoff(), 0))
        app.state.hub = LiveHub(app.state.redis, max_alert_queue=max_alert_queue,
                                pubsub_redis=app.state.pubsub_redis)
        app.state.hub.start()
        reaper.start()
        app.state.webhooks = webhook_delivery.Deliverer(app.state.redis, metrics=metrics) if webhooks else None
        if app.state.webhooks is not None:
            app.state.webhooks.start()
        try:
            yield
        finally:
            if app.state.webhooks is not None:
                await app.state.webhooks.stop()
            await reaper.stop()
            await app.state.hub.stop()
            await app.state.redis.aclose()
            await app.state.pubsub_redis.aclose()
            await pool.disconnect()
            if app.state.sync_redis is not None:
                app.state.sync_redis.close()

    # the docs pages (/docs, /redoc) load Swagger UI / ReDoc from the fastapi-offline package, not a CDN:
    # they work on a machine without internet access
    app = FastAPIOffline(
        title="callpulse API",
        version="1",
        description="Real-time metrics for outbound dialer campaigns: REST, ingest and server-sent events. "
                    "Auth: `Authorization: Bearer <key>` (org keys `ak_…`; user tokens `pat_…` with `X-Org`).",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.metrics = metrics
    stream_tokens.keep_tokens_out_of_logs()
    app.state.dev_mode = dev_mode
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # CORS is off unless origins are listed (CALLPULSE_CORS_ORIGINS=https://a.example,https://b.example):
    # browsers then may call the API from those pages only; the dashboard at / is same-origin anyway
    origins = [o.strip() for o in (cors_origins if cors_origins is not None
                                   else os.environ.get("CALLPULSE_CORS_ORIGINS", "")).split(",") if o.strip()]
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Org", "Last-Event-ID"])

    # ------------------------------------------------------------------ errors
    @app.exception_handler(AuthError)
    async def _auth_error(request, exc: AuthError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return OrjsonResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(redis_sync.RedisError)
    async def _redis_error(request, exc):
        return OrjsonResponse({"detail": f"Redis unavailable: {type(exc).__name__}"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc: RequestValidationError):
        errors = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            errors.append({"field": ".".join(loc[1:]) or ".".join(loc), "in": loc[0] if loc else None,
                           "msg": e.get("msg"), "type": e.get("type")})
        fields = ", ".join(sorted({x["field"] for x in errors}))
        return OrjsonResponse({"detail": f"invalid {fields}", "errors": errors}, status_code=422)

    # ------------------------------------------------------------------ auth dependencies
    bearer = HTTPBearer(auto_error=False, description="org key `ak_…` or user token `pat_…` (with X-Org)")

    def need(scope: str):
        async def dep(request: Request, creds: Optional[HTTPAuthorizationCredentials] = Security(bearer),
                      x_org: Optional[str] = Header(None, pattern=ID_PATTERN,
                                                    description="org id (user tokens: required)")) -> Principal:
            # a wiped dataset has no API keys either: say so (503 + reason) before auth would say 401
            problem = await guard.problem(request.app.state.redis)
            if problem:
                raise HTTPException(503, problem)
            if creds is None and "token" in request.query_params or \
                    creds is not None and stream_tokens.looks_like_stream_token(creds.credentials):
                raise AuthError(401, f"stream tokens open only {stream_tokens.SSE_ROUTES} (as ?token=); "
                                     "other routes need an API key")
            authorization = f"Bearer {creds.credentials}" if creds is not None else None
            p = await authenticate(request.app.state.redis, authorization, x_org, dev_mode=dev_mode)
            if scope not in p.scopes:
                raise AuthError(403, f"this key lacks the {scope!r} scope")
            return p
        return dep

    read = need("campaigns:read")
    write_events = need("events:write")

    async def read_stream(request: Request, creds: Optional[HTTPAuthorizationCredentials] = Security(bearer),
                          x_org: Optional[str] = Header(None, pattern=ID_PATTERN, description="org id (user tokens)"),
                          token: Optional[str] = Query(None, max_length=200, description=(
                              "a stream token from POST /v1/stream-tokens, for clients that cannot send "
                              "headers (a browser EventSource); instead of Authorization"))) -> Principal:
        """SSE routes: an API key (as `read`) or a stream token (api/stream_tokens.py)."""
        if token is None:
            return await read(request, creds, x_org)
        if creds is not None:
            raise AuthError(400, "send either Authorization or ?token=, not both")
        problem = await guard.problem(request.app.state.redis)
        if problem:
            raise HTTPException(503, problem)
        return await stream_tokens.authenticate(request.app.state.redis, token, dev_mode=dev_mode,
                                                campaign_id=request.path_params.get("campaign_id"))

    def R(request: Request) -> aioredis.Redis:
        return request.app.state.redis

    CampaignId = Path(..., pattern=ID_PATTERN, description="campaign id")

    async def stats_or_404(r, org: str, camp: str) -> bytes:
        body = await r.get(stats_key(org, camp))
        if body is None:
            raise HTTPException(404, f"campaign {camp!r} not found")
        return body

    async def exists_or_404(r, org: str, camp: str) -> None:
        if not await r.exists(stats_key(org, camp)):
            raise HTTPException(404, f"campaign {camp!r} not found")

    # ------------------------------------------------------------------ dashboard (issue #6; docs/dashboard.md)
    # One static page (no build step) for both routes; the page itself picks the view from the path and
    # reads the SSE stream with fetch() + Authorization header, resuming with Last-Event-ID.
    dashboard = (pathlib.Path(__file__).parent / "dashboard.html").read_bytes()
    page_headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                               "style-src 'unsafe-inline'; img-src 'self' data: blob:; "
                                               "media-src https: http:; frame-ancestors 'none'"}

    @app.get("/", tags=["dashboard"], response_class=Response, include_in_schema=False)
    async def dashboard_page():
        """The live campaign dashboard: campaign list (key typed in the page or given as ?key=)."""
        return Response(dashboard, media_type="text/html; charset=utf-8", headers=page_headers)

    @app.get("/campaigns/{campaign_id}", tags=["dashboard"], response_class=Response, include_in_schema=False)
    async def dashboard_campaign_page(campaign_id: str = Path(..., pattern=ID_PATTERN)):
        """The same page, opened on one campaign's live view."""
        return Response(dashboard, media_type="text/html; charset=utf-8", headers=page_headers)
    # ------------------------------------------------------------------ end of dashboard section

    # ------------------------------------------------------------------ health
    @app.get("/healthz", tags=["ops"])
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request):
        r = R(request)
        out = {"status": "ready", "redis": False, "flow_lag_ms": None, "lag_bound_ms": flow_lag_bound_ms}
        try:
            await asyncio.wait_for(r.ping(), timeout=2)
            out["redis"] = True
            st = {_dec(k): _dec(v) for k, v in (await r.hgetall(flow_status_key())).items()}
            problem = await guard.problem(r)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            out.update(status="not_ready", reason=f"Redis unreachable: {type(exc).__name__}")
            return OrjsonResponse(out, status_code=503)
        if problem:
            out.update(status="not_ready", reason=problem)
            return OrjsonResponse(out, status_code=503)
        marks = [int(st[k]) for k in ("tick_ms", "write_ms") if st.get(k, "").isdigit()]
        if not marks:
            out.update(status="not_ready", reason="the flow has not reported yet")
            return OrjsonResponse(out, status_code=503)
        lag = max(0, int(time.time() * 1000) - max(marks))
        out["flow_lag_ms"] = lag
        out["flow_mode"] = st.get("mode")
        if lag > flow_lag_bound_ms:
            out.update(status="not_ready", reason=f"flow lag {lag} ms over {flow_lag_bound_ms} ms")
            return OrjsonResponse(out, status_code=503)
        out["hub"] = request.app.state.hub.ready.is_set()
        return out

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus_metrics(request: Request):
        metrics.subscribers.set(request.app.state.hub.count())
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    # ------------------------------------------------------------------ ingest
    @app.post("/v1/events", tags=["ingest"], response_model=models.IngestResult,
              responses={413: {"description": "body or batch too large"}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/IngestBody"}},  # api/event_schema.py
                  "application/x-ndjson": {"schema": {"type": "string"}}}}})
    async def post_events(request: Request, p: Principal = Depends(write_events)):
        """Ingest a JSON array or NDJSON body (SPEC §1). Same validation and de-dup as `callpulse ingest`."""
        denied = await ingest_limits.check_request(p.key_id)
        if denied:
            return limited(denied)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return OrjsonResponse({"detail": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return OrjsonResponse({"detail": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
            chunks.append(chunk)
        problem = json_body_problem(b"".join(chunks), request.headers.get("content-type", ""))
        if problem:
            return OrjsonResponse({"detail": problem}, status_code=400)
        if request.app.state.sync_redis is None:
            request.app.state.sync_redis = redis_sync.Redis.from_url(redis_url)
        # parsing, validation and the two pipelined round trips run off the event loop, so that a
        # 10 000-event body does not stall the SSE fan-out
        try:
            if ingest_limits.events:  # count the body's events first (every item counts)
                items = await run_in_threadpool(split_body, b"".join(chunks))
                denied = await ingest_limits.check_events(p.key_id, len(items))
                if denied:
                    return limited(denied)
                accepted, duplicates, rejected = await run_in_threadpool(
                    ingest_items, request.app.state.sync_redis, items, p.org_id)
            else:
                accepted, duplicates, rejected = await run_in_threadpool(
                    ingest_body, request.app.state.sync_redis, b"".join(chunks), p.org_id)
        except EventRejected as err:
            return OrjsonResponse({"detail": err.reason}, status_code=413)
        metrics.events_accepted.labels("accepted").inc(accepted)
        metrics.events_accepted.labels("duplicate").inc(duplicates)
        metrics.events_accepted.labels("rejected").inc(len(rejected))
        return OrjsonResponse({"accepted": accepted, "duplicates": duplicates, "rejected": rejected})

    # ------------------------------------------------------------------ campaigns
    async def org_stats(r, org: str) -> list[tuple[str, dict]]:
        ids = sorted(_dec(x) for x in await r.smembers(org_campaigns_key(org)))
        out = []
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            bodies = await r.mget([stats_key(org, c) for c in part])
            for c, b in zip(part, bodies):
                if b is not None:
                    out.append((c, orjson.loads(b)))
        return out

    def summary(body: dict) -> dict:
        return {"campaign_id": body["campaign_id"], "name": body.get("name"), "channel": body.get("channel"),
                "kind": body.get("kind"), "status": body.get("status"), "as_of": body.get("as_of"),
                "live": body.get("live")}

    @app.get("/v1/campaigns", tags=["campaigns"], response_model=models.CampaignList)
    async def list_campaigns(request: Request, p: Principal = Depends(read)):
        """The org's campaigns (by id) with status and live block."""
        rows = await org_stats(R(request), p.org_id)
        return OrjsonResponse({"org_id": p.org_id, "campaigns": [summary(b) for _c, b in rows]})

    @app.get("/v1/campaigns/{campaign_id}", tags=["campaigns"], response_model=models.CampaignDetail)
    async def get_campaign(request: Request, campaign_id: str = CampaignId, p: Principal = Depends(read)):
        """Config, status and live block of one campaign."""
        body = orjson.loads(await stats_or_404(R(request), p.org_id, campaign_id))
        out = summary(body)
        out["org_id"] = body["org_id"]
        out["config"] = body.get("config")
        return OrjsonResponse(out)

    @app.get("/v1/campaigns/{campaign_id}/stats", tags=["campaigns"], response_model=models.StatsBody)
    async def get_stats(request: Request, campaign_id: str = CampaignId, p: Principal = Depends(read)):
        """Everything of SPEC §3 for the campaign: the body the flow stored with its last frame."""
        return raw_json(await stats_or_404(R(request), p.org_id, campaign_id))

    # ---- detail helpers (api/detail_reads.py)
    @app.get("/v1/campaigns/{campaign_id}/contacts", tags=["detail"], response_model=models.ContactsPage)
    async def list_contacts(request: Request, campaign_id: str = CampaignId,
                            status: Optional[ContactStatus] = Query(None, description="only contacts now in this status"),
                            contact_id: Optional[str] = Query(None, pattern=ID_PATTERN,
                                                              description="only this contact (a page of 0 or 1)"),
                            limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=10**9),
                            p: Principal = Depends(read)):
        """Contacts ordered by id, each with its attempts trail (`contact_id`: one contact's whole trail)."""
        r = R(request)
        await exists_or_404(r, p.org_id, campaign_id)
        idx = contact_index_key(p.org_id, campaign_id, status)
        if contact_id is not None:  # a filter like status: an unknown contact is an empty page, not a 404
            known = await r.zscore(idx, contact_id) is not None
            total, ids = int(known), [contact_id] if known and offset == 0 else []
        else:
            total = await r.zcard(idx)
            ids = [_dec(x) for x in await r.zrange(idx, offset, offset + limit - 1)]
        contacts = await contacts_with_trails(r, p.org_id, campaign_id, ids)
        return OrjsonResponse({"total": total, "limit": limit, "offset": offset, "status": status,
                               "contact_id": contact_id, "contacts": contacts})

    async def transcripts(r, org: str, camp: str, aids: list[str]) -> list[list[dict]]:
        if not aids:
            return []
        pipe = r.pipeline(transaction=False)
        for a in aids:
            pipe.hgetall(transcript_key(org, camp, a))
        out = []
        for h in await pipe.execute():
            lines = []
            for eid, raw in h.items():
                line = orjson.loads(raw)
                ts = line.get("ts")
                if type(ts) is int:
                    ts_ms = ts
                    with contextlib.suppress(TypeError, ValueError):
                        line["ts"] = format_time(ts)
                else:
                    ts_ms = _ts_ms(ts)
                lines.append((ts_ms, _dec(eid), line))
            lines.sort(key=lambda x: (x[0], x[1]))
            out.append([x[2] for x in lines])
        return out

    def call_row(att: dict, runs: RunRanges) -> dict:
        att = dict(att)
        att["run"] = runs.run_of(att.pop("started_ms", None))  # resolved at read time (api/run_ranges.py)
        return att

    async def run_ranges(r, org: str, camp: str) -> RunRanges:
        return RunRanges(orjson.loads(await stats_or_404(r, org, camp)))

    RunQuery = Query(None, ge=1, le=2**63 - 1, description="only the attempts of this run (restart) number")

    @app.get("/v1/campaigns/{campaign_id}/calls", tags=["detail"], response_model=models.CallsPage)
    async def list_calls(request: Request, campaign_id: str = CampaignId,
                         page: int = Query(1, ge=1, le=10**7), limit: int = Query(50, ge=1, le=200),
                         order: Literal["desc", "asc"] = Query("desc", description="by dial time"),
                         callback: CallbackFilter = Query("all", description=CALLBACK_HELP),
                         outcome: Optional[OutcomeFilter] = Query(None, description=OUTCOME_HELP),
                         run: Optional[int] = RunQuery, p: Principal = Depends(read)):
        """Call attempts (newest dial first by default) with transcript and recording URL; `callback`,
        `outcome` and `run` filter them (an attempt must match each given), `total` counts what they keep."""
        r = R(request)
        await exists_or_404(r, p.org_id, campaign_id)
        runs = await run_ranges(r, p.org_id, campaign_id)
        bounds = None if run is None else runs.score_range(run)
        if run is not None and bounds is None:
            total, aids = 0, []  # no such run (never started, or withdrawn)
        else:
            total, aids = await call_page(r, p.org_id, campaign_id, callback=callback, outcome=outcome,
                                          desc=order == "desc", start=(page - 1) * limit, count=limit,
                                          score_range=bounds)
        recs = await r.hmget(attempt_details_key(p.org_id, campaign_id), aids) if aids else []
        trs = await transcripts(r, p.org_id, campaign_id, aids)
        calls = []
        for aid, raw, tr in zip(aids, recs, trs):
            att = call_row(orjson.loads(raw), runs) if raw is not None else {"attempt_id": aid, "run": None}
            att["transcript"] = tr
            calls.append(att)
        await fill_numbers(r, p.org_id, campaign_id, calls)
        return OrjsonResponse({"total": total, "page": page, "limit": limit, "callback": callback,
                               "outcome": outcome, "run": run, "calls": calls})

    REPORT_COLUMNS = ["attempt_id", "contact_id", "direction", "from", "to", "pass", "run", "follow_up", "started_at",
                      "answered_at", "bridged_at", "ended_at", "amd_result", "outcome", "result", "sip_code",
                      "sip_text", "ring_ms", "call_length_ms", "handle_ms", "wrap_ms", "conversation_id",
                      "recording_url", "evaluation"]

    async def iter_attempts(r, org: str, camp: str, outcome: str | None = None,
                            lo: str = "-inf", hi: str = "+inf"):
        """Attempt records (of one outcome class when given) in dial-time order, CHUNK at a time
        (score cursor: constant memory); ``lo``/``hi``: a range of dial-time scores (one run's)."""
        idx, details = attempt_index(org, camp, outcome), attempt_details_key(org, camp)
        last_score, at_score, current = lo, 0, None
        while True:
            rows = await r.zrangebyscore(idx, last_score, hi, start=at_score, num=CHUNK, withscores=True)
            if not rows:
                return
            ids = [_dec(m) for m, _s in rows]
            recs = await r.hmget(details, ids)
            out = []
            for (m, score), raw in zip(rows, recs):
                if score == current:
                    at_score += 1
                else:
                    current, last_score, at_score = score, repr(score), 1
                if raw is not None:
                    out.append(orjson.loads(raw))
            for att in await fill_numbers(r, org, camp, out):
                yield att
            if len(rows) < CHUNK:
                return

    @app.get("/v1/campaigns/{campaign_id}/attempt-report.csv", tags=["detail"], response_class=StreamingResponse,
             responses={200: {"content": {"text/csv": {}}}})
    async def attempt_report(request: Request, campaign_id: str = CampaignId,
                             callback: CallbackFilter = Query("all", description=CALLBACK_HELP),
                             outcome: Optional[OutcomeFilter] = Query(None, description=OUTCOME_HELP),
                             run: Optional[int] = RunQuery, p: Principal = Depends(read)):
        """One CSV row per attempt in dial-time order, streamed, with the run it belongs to; the same
        filters as `/calls`."""
        r = R(request)
        runs = await run_ranges(r, p.org_id, campaign_id)
        bounds = ("-inf", "+inf") if run is None else runs.score_range(run)

        async def filtered():
            if callback == "all":
                async for att in iter_attempts(r, p.org_id, campaign_id, outcome, *bounds):
                    yield att
                return
            ids = await callback_attempt_ids(r, p.org_id, campaign_id, callback, outcome, bounds)
            for i in range(0, len(ids), CHUNK):
                part = ids[i:i + CHUNK]
                recs = [orjson.loads(x) for x in await r.hmget(attempt_details_key(p.org_id, campaign_id), part) if x]
                for att in await fill_numbers(r, p.org_id, campaign_id, recs):
                    yield att

        async def gen():
            yield csv_line(REPORT_COLUMNS)
            if bounds is None:
                return  # no such run
            async for att in filtered():
                att["run"] = runs.run_of(att.get("started_ms"))
                yield csv_line([att.get(c) for c in REPORT_COLUMNS])

        return StreamingResponse(gen(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{campaign_id}-attempts.csv"'})

    EXPORT_COLUMNS = ["contact_id", "status", "retry_number", "status_at", "batch_id", "phone_number", "email",
                      "added_at", "attempts_dialed", "last_outcome", "last_attempt_at", "variables"]

    async def iter_contacts(r, org: str, camp: str):
        idx = contact_index_key(org, camp)
        cursor = "-"
        while True:
            ids = [_dec(x) for x in await r.zrangebylex(idx, cursor, "+", start=0, num=CHUNK)]
            if not ids:
                return
            for rec in await contacts_with_trails(r, org, camp, ids):
                yield rec
            if len(ids) < CHUNK:
                return
            cursor = "(" + ids[-1]

    @app.get("/v1/campaigns/{campaign_id}/export", tags=["detail"], response_class=StreamingResponse,
             responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
    async def export(request: Request, campaign_id: str = CampaignId,
                     format: Literal["csv", "json"] = Query("json"), p: Principal = Depends(read)):
        """Every contact of the campaign with its attempts trail (JSON array) or one CSV row per contact; streamed."""
        r = R(request)
        await exists_or_404(r, p.org_id, campaign_id)
        if format == "json":
            async def gen():
                yield b"["
                first = True
                async for rec in iter_contacts(r, p.org_id, campaign_id):
                    yield (b"" if first else b",") + orjson.dumps(rec)
                    first = False
                yield b"]"
            return StreamingResponse(gen(), media_type="application/json")

        async def gen_csv():
            yield csv_line(EXPORT_COLUMNS)
            async for rec in iter_contacts(r, p.org_id, campaign_id):
                last = rec["attempts"][-1] if rec.get("attempts") else {}
                row = dict(rec, last_outcome=last.get("outcome"), last_attempt_at=last.get("started_at"))
                yield csv_line([row.get(c) for c in EXPORT_COLUMNS])
        return StreamingResponse(gen_csv(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{campaign_id}-contacts.csv"'})

    @app.get("/v1/campaigns/{campaign_id}/batches", tags=["detail"], response_model=models.BatchesPage)
    async def list_batches(request: Request, campaign_id: str = CampaignId,
                           skip: int = Query(0, ge=0, le=10**9), limit: int = Query(50, ge=1, le=200),
                           status: Optional[BatchStatus] = Query(None),
                           p: Principal = Depends(read)):
        """Per-batch status, contact counters (by status, buckets) and retry breakdown, ordered by batch id."""
        r = R(request)
        body = orjson.loads(await stats_or_404(r, p.org_id, campaign_id))
        batches = [orjson.loads(raw) async for _k, raw in _hscan(r, batch_details_key(p.org_id, campaign_id))]
        if status is not None:
            batches = [b for b in batches if b["status"] == status]
        batches.sort(key=lambda b: b["batch_id"])
        for b in batches:
            bs = b["contacts"]["by_status"]
            b["contacts"]["buckets"] = {
                "pending": bs["pending"] + bs["retrying"] + bs["followup_scheduled"],
                "in_progress": bs["dispatched"] + bs["in_progress"], "completed": bs["completed"],
                "exhausted": sum(bs[s] for s in FINAL_CONTACT_STATUSES if s != "completed")}
        return OrjsonResponse({"total": len(batches), "skip": skip, "limit": limit,
                               "batch_counts": body.get("batch_counts"),
                               "batches": batches[skip:skip + limit]})

    async def daily_cells(r, org: str, camp: str) -> dict[int, list[int]]:
        return {int(q): orjson.loads(v) async for q, v in _hscan(r, daily_key(org, camp))}

    @app.get("/v1/campaigns/{campaign_id}/stats/daily", tags=["campaigns"], response_model=models.DailyStats)
    async def stats_daily(request: Request, campaign_id: str = CampaignId,
                          start: date = Query(..., description="first local date, YYYY-MM-DD"),
                          end: date = Query(..., description="last local date, YYYY-MM-DD"),
                          p: Principal = Depends(read)):
        """Daily rows (SPEC §3 Daily): every local day of [start, end] in the campaign's time zone, zeros
        included; each fact on the local date of its own event."""
        from engine.daily import MAX_DAYS, rows_from_quarters

        r = R(request)
        body = orjson.loads(await stats_or_404(r, p.org_id, campaign_id))
        tw = body["config"]["time_window"]
        tz = tw["tz"] if tw else "UTC"
        # an empty range (end < start) has no days; a longer one than MAX_DAYS is cut (and says so)
        truncated = end >= start and (end - start).days >= MAX_DAYS
        last = start + timedelta(days=MAX_DAYS - 1) if truncated else end
        try:
            rows = rows_from_quarters(await daily_cells(r, p.org_id, campaign_id), tz, start, last) \
                if end >= start else []
        except (OverflowError, ValueError):  # days at the ends of the calendar (year 1 / 9999) in the zone
            rows = []
        out = {"campaign_id": campaign_id, "tz": tz, "days": rows}
        if truncated:
            out["truncated_to_days"] = MAX_DAYS
        return OrjsonResponse(out)

    @app.get("/v1/campaigns/{campaign_id}/activity", tags=["detail"], response_model=models.ActivityPage)
    async def activity(request: Request, campaign_id: str = CampaignId,
                       kind: Optional[ActivityKind] = Query(None, description="only entries of this kind"),
                       page: int = Query(1, ge=1, le=10**7), limit: int = Query(50, ge=1, le=200),
                       p: Principal = Depends(read)):
        """What happened to the campaign, newest first: creation and config changes (field, from, to),
        status changes, pauses and resumes, batch status changes and abandon alerts (engine/activity.py)."""
        r = R(request)
        await exists_or_404(r, p.org_id, campaign_id)
        entries = await activity_entries(r, p.org_id, campaign_id)
        if kind is not None:
            entries = [e for e in entries if e["kind"] == kind]
        first = (page - 1) * limit
        return OrjsonResponse({"total": len(entries), "page": page, "limit": limit, "kind": kind,
                               "entries": entries[first:first + limit]})

    @app.get("/v1/campaigns/{campaign_id}/replies", tags=["campaigns"], response_model=models.RepliesPage)
    async def replies(request: Request, campaign_id: str = CampaignId,
                      sentiment: Optional[Literal["positive", "neutral", "negative"]] = Query(None),
                      page: int = Query(1, ge=1, le=10**7), per_page: int = Query(50, ge=1, le=200),
                      p: Principal = Depends(read)):
        """Email replies, newest first, optionally of one sentiment (the earliest reply of each message)."""
        r = R(request)
        await exists_or_404(r, p.org_id, campaign_id)
        ids = [_dec(x) for x in await r.zrevrange(replies_index_key(p.org_id, campaign_id), 0, -1)]
        records = []
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i:i + CHUNK]
            records += [orjson.loads(v) for v in await r.hmget(replies_key(p.org_id, campaign_id), chunk) if v]
        if sentiment is not None:
            records = [x for x in records if x["sentiment"] == sentiment]
        first = (page - 1) * per_page
        return OrjsonResponse({"total": len(records), "page": page, "per_page": per_page,
                               "replies": records[first:first + per_page]})

    # ------------------------------------------------------------------ org-wide
    @app.get("/v1/benchmarks", tags=["org"], response_model=models.Benchmarks)
    async def get_benchmarks(request: Request, kind: str = Query(..., min_length=1, max_length=200),
                             p: Principal = Depends(read)):
        """Per rate: mean and p25/p50/p75 over the org's campaigns of this `kind`."""
        from engine.benchmarks import benchmarks

        bodies = [b for _c, b in await org_stats(R(request), p.org_id)]
        return OrjsonResponse({"org_id": p.org_id, "kind": kind, "rates": benchmarks(bodies, p.org_id, kind)})

    @app.get("/v1/usage", tags=["org"], response_model=models.Usage)
    async def usage(request: Request, period: str = Query("all", pattern=r"^(all|\d{4}-\d{2}|\d{4}-\d{2}-\d{2})$",
                                                          description="all, YYYY-MM or YYYY-MM-DD (UTC)"),
                    p: Principal = Depends(read)):
        """Usage of the org: lifetime totals from the stats bodies; for a month/day, dials (from the attempt index)."""
        r = R(request)
        rows = await org_stats(r, p.org_id)
        lo = hi = None
        if period != "all":
            try:
                if len(period) == 7:
                    d0 = date(int(period[:4]), int(period[5:7]), 1)
                    d1 = (d0.replace(day=28) + timedelta(days=4)).replace(day=1)
                else:
                    d0 = date.fromisoformat(period)
                    d1 = d0 + timedelta(days=1)
            except OverflowError:  # the last month/day of year 9999: up to the end of the calendar
                d1 = date.max
            except ValueError:
                raise RequestValidationError([{"loc": ("query", "period"), "msg": "not a valid month or date",
                                               "type": "value_error"}]) from None
            lo = int(datetime(d0.year, d0.month, d0.day, tzinfo=timezone.utc).timestamp() * 1000)
            hi = int(datetime(d1.year, d1.month, d1.day, tzinfo=timezone.utc).timestamp() * 1000)
        per = []
        for camp, b in rows:
            row = {"campaign_id": camp, "channel": b.get("channel")}
            if lo is None:
                row.update(dials=b["attempts"]["total"], connected=b["outcomes"]["connected"],
                           emails_sent=b["email"]["emails_sent"], cost_usd=b["costs"]["total_usd"],
                           contacts=b["contacts"]["total"])
            else:
                cells = [c for q, c in (await daily_cells(r, p.org_id, camp)).items()
                         if lo // QUARTER_HOUR_MS <= q < hi // QUARTER_HOUR_MS]
                row.update(dials=sum(c[0] for c in cells), connected=sum(c[2] for c in cells),
                           emails_sent=sum(c[5] for c in cells),
                           cost_usd=sum(c[8] for c in cells) / 1_000_000, contacts=None)
            per.append(row)

        def tot(k):
            vals = [x[k] for x in per]
            if any(v is None for v in vals):
                return None
            return round(sum(vals), 6) if k == "cost_usd" else sum(vals)

        out = {"org_id": p.org_id, "period": period,
               "from": None if lo is None else datetime.fromtimestamp(lo / 1000, timezone.utc).isoformat(),
               "to": None if hi is None else datetime.fromtimestamp(hi / 1000, timezone.utc).isoformat(),
               "campaigns": len(per),
               "totals": {k: tot(k) for k in ("dials", "connected", "emails_sent", "cost_usd", "contacts")},
               "by_campaign": per}
        if lo is not None:
            out["note"] = "per-period figures count facts by their event time in UTC; contacts are lifetime-only"
        out["plan"] = plan_block(await read_plan(r, p.org_id), out["totals"]["emails_sent"])
        return OrjsonResponse(out)

    @app.get("/v1/alerts/recent", tags=["alerts"], response_model=models.AlertsRecent)
    async def alerts_recent(request: Request, limit: int = Query(50, ge=1, le=1000),
                            campaign_id: Optional[str] = Query(None, pattern=ID_PATTERN),
                            p: Principal = Depends(read)):
        """The org's latest alerts, newest first."""
        r = R(request)
        out = []
        last = "+"
        while len(out) < limit:
            entries = await r.xrevrange(org_alerts_stream(p.org_id), last, "-", count=CHUNK)
            for sid, fields in entries:
                raw = fields.get(ALERT_FIELD)
                if raw is None:
                    continue
                rec = orjson.loads(raw)
                if campaign_id is None or rec.get("campaign_id") == campaign_id:
                    rec["stream_id"] = _dec(sid)
                    out.append(rec)
                    if len(out) >= limit:
                        break
            if len(entries) < CHUNK:
                break
            last = "(" + _dec(entries[-1][0])
        return OrjsonResponse({"alerts": out})

    # ------------------------------------------------------------------ SSE
    @app.post("/v1/stream-tokens", tags=["live"], status_code=201, response_model=models.StreamToken)
    async def create_stream_token(request: Request, body: Optional[models.StreamTokenRequest] = None,
                                  p: Principal = Depends(read)):
        """A short-lived read-only token that opens the SSE routes as `?token=` (for a browser `EventSource`):
        org-wide, or for one campaign (`campaign_id`). docs/api.md, *Stream tokens*."""
        body = body or models.StreamTokenRequest()
        if body.campaign_id is not None:
            await exists_or_404(R(request), p.org_id, body.campaign_id)
        out = await stream_tokens.issue(R(request), p, body.campaign_id, body.ttl_s)
        return OrjsonResponse(out, status_code=201, headers={"Cache-Control": "no-store"})

    def sse_response(request: Request, make_gen, extra_headers: dict | None = None):
        stop = anyio.Event()  # set by sse-starlette on server shutdown: the generator ends the stream cleanly
        # a client whose send stalls for sse_stall_s is cut off (api/sockets.py); send_timeout is the backstop
        body = reaper.watch(make_gen(stop), request.client)
        return EventSourceResponse(body, ping=ping_s, send_timeout=30, shutdown_event=stop,
                                   shutdown_grace_period=1.0,
                                   headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                            **(extra_headers or {})})

    async def hub_ready(request: Request):
        hub = request.app.state.hub
        if not hub.ready.is_set():
            try:
                await asyncio.wait_for(hub.ready.wait(), timeout=5)
            except asyncio.TimeoutError:
                raise HTTPException(503, "live feed unavailable (Redis pub/sub not connected)") from None
        return hub

    @app.get("/v1/campaigns/{campaign_id}/live", tags=["live"], response_class=EventSourceResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def live(request: Request, campaign_id: str = CampaignId, p: Principal = Depends(read_stream),
                   last_event_id: Optional[str] = Header(None, max_length=200)):
        """SSE: `event: frame` (data: LiveFrame, the /stats body + `seq`) and `event: alert` (data: LevelAlert or
        ForecastAlert); resume with `Last-Event-ID`. A browser `EventSource` authenticates with `?token=` (a stream
        token from POST /v1/stream-tokens)."""
        r = R(request)
        await exists_or_404(r, p.org_id, campaign_id)
        hub = await hub_ready(request)
        # the flow's alert min_sample: the dashboard shows "too few answers to judge" below it
        min_sample = {"X-Min-Sample": str(await hub.min_sample.get(r))}
        return sse_response(request, lambda stop: campaign_events(
            hub, r, p.org_id, campaign_id, last_event_id, heartbeat_s=heartbeat_s,
            min_interval_s=min_frame_interval_s, max_replay=max_replay, metrics=metrics, stop=stop), min_sample)

    @app.get("/v1/live", tags=["live"], response_class=EventSourceResponse,
             responses={200: {"description": "`event: snapshot` (data: OrgLiveSnapshot), then `event: campaign` "
                                             "(data: OrgLiveSummary) per changed campaign",
                              "content": {"text/event-stream": {"schema": {
                                  "$ref": "#/components/schemas/OrgLiveSnapshot"}}}}})
    async def org_live(request: Request, p: Principal = Depends(read),
                       last_event_id: Optional[str] = Header(None, max_length=200)):
        """SSE: every campaign of the org — a snapshot on (re)connect, then one summary per change (coalesced)."""
        hub = await hub_ready(request)
        return sse_response(request, lambda stop: org_summary_events(
            hub, R(request), p.org_id, min_interval_s=min_frame_interval_s, metrics=metrics, stop=stop))

    @app.get("/v1/alerts", tags=["alerts"], response_class=EventSourceResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def alerts_live(request: Request, p: Principal = Depends(read_stream),
                          last_event_id: Optional[str] = Header(None, max_length=200)):
        """SSE of every alert of the org (`event: alert`, data: LevelAlert or ForecastAlert, id = org alert stream
        id); resume with `Last-Event-ID`. Also opens with `?token=` (an org-wide stream token)."""
        hub = await hub_ready(request)
        return sse_response(request, lambda stop: org_alert_events(hub, R(request), p.org_id, last_event_id,
                                                          max_replay=max_replay, metrics=metrics, stop=stop))

    webhook_routes.install(app, need("campaigns:manage"), redis_url)  # /v1/webhooks (issue #12)
    openapi_doc.install(app)
    return app


# ====================================================================== helpers

def json_body_problem(body: bytes, content_type: str) -> str | None:
    """Why a JSON-array body (or any body sent as application/json) cannot be split, or None.

    NDJSON goes line by line (a bad line is one rejection); but a JSON array with one bad element
    (NaN, invalid UTF-8, ...) would otherwise be taken for one NDJSON line and reported as a single
    ``malformed`` at index 0, so it is refused whole, saying where it breaks."""
    text = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    stripped = text.lstrip(b" \t\r\n")
    is_json = content_type.split(";")[0].strip().lower() == "application/json"
    if not stripped or not (is_json or stripped[:1] == b"["):
        return None
    try:
        text.decode("utf-8")  # orjson would place an invalid byte at offset 0; this finds it
    except UnicodeDecodeError as exc:
        start = exc.start + (len(body) - len(text))
        line = body.count(b"\n", 0, start) + 1
        return (f"the body is not valid JSON: invalid UTF-8 at byte offset {start} (line {line}); "
                f"send a JSON array of events, or NDJSON (one event per line)")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if not is_json and stripped[:1] != b"[":
            return None
        return (f"the body is not valid JSON: {exc.msg} at byte offset {exc.pos} (line {exc.lineno}, "
                f"column {exc.colno}); send a JSON array of events, or NDJSON (one event per line)")
    if is_json and not isinstance(value, (list, dict)):
        return "a JSON body must be an array of events or one event object"
    return None


def ingest_body(client, body: bytes, org_id: str) -> tuple[int, int, list[dict]]:
    """Split, validate (live mode) and append a POST /v1/events body: (accepted, duplicates, rejections).

    Raises EventRejected("too_large") for a body over the limits. The append is
    `flows.ingest_writer.accept_events`, the path `callpulse ingest` takes.
    """
    return ingest_items(client, split_body(body), org_id)


def ingest_items(client, items: list, org_id: str) -> tuple[int, int, list[dict]]:
    """Validate (live mode) and append the items of a split POST /v1/events body (see `ingest_body`)."""
    from flows.ingest_writer import accept_events

    now_ms = int(time.time() * 1000)
    valid, rejected = [], []
    for i, item in enumerate(items):
        try:
            ev = parse_event(item, now_ms=now_ms) if isinstance(item, bytes) else validate_event(item, now_ms=now_ms)
        except EventRejected as err:
            rejected.append({"index": i, **err.as_dict()})
            continue
        if ev["org_id"] != org_id:
            rejected.append({"index": i, "code": "forbidden_org", "field": "org_id",
                             "reason": f"field 'org_id' names org {ev['org_id']!r}; this key may only "
                                       f"write to org {org_id!r}"})
            continue
        valid.append(ev)
    if not valid:
        return 0, 0, rejected
    fresh = accept_events(client, valid)
    accepted = sum(1 for f in fresh if f)
    return accepted, len(fresh) - accepted, rejected


def _ts_ms(ts) -> int:
    try:
        return parse_time(ts, "ts")
    except Exception:  # noqa: BLE001 - unknown shape: sort first
        return -1


async def _hscan(r, key: str):
    cursor = 0
    while True:
        cursor, items = await r.hscan(key, cursor, count=CHUNK)
        for k, v in items.items():
            yield k, v
        if not cursor:
            return


_FORMULA_START = ("=", "@", "\t", "\r")


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return orjson.dumps(v).decode()
    s = str(v)
    # spreadsheet formula injection: neutralise cells a spreadsheet would evaluate
    if s and (s[0] in _FORMULA_START or (s[0] in "+-" and not _NUMBERISH.match(s))):
        return "'" + s
    return s


_NUMBERISH = re.compile(r"^[+-][0-9 ().-]*$")


def csv_line(values) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buf.getvalue().encode()
