"""POST /v1/events: a JSON array or NDJSON body of events (SPEC §1), per-key rate limits (api/rate_limit.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api import models
from api.deps import LimitsDep, MetricsDep, SettingsDep, SyncRedisDep, WritePrincipal
from api.ingest import ingest_body, ingest_items, json_body_problem
from api.responses import OrjsonResponse, limited
from engine.validation.events import MAX_BODY_BYTES, EventRejected, split_body

router = APIRouter(tags=["ingest"])


def too_large() -> OrjsonResponse:
    return OrjsonResponse({"detail": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)


@router.post("/v1/events", response_model=models.IngestResult,
             responses={413: {"description": "body or batch too large"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"$ref": "#/components/schemas/IngestBody"}},  # api/event_schema.py
                 "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def ingest_events(request: Request, p: WritePrincipal, sync_redis: SyncRedisDep, limits: LimitsDep,
                        metrics: MetricsDep, settings: SettingsDep):
    """Ingest a JSON array or NDJSON body (SPEC §1). Same validation and de-dup as `callpulse ingest`.
    `late` lists the accepted events the campaign's watermark already makes late: the flow will count
    them in `diagnostics.late` instead of applying them (docs/api.md, *Late events*)."""
    denied = await limits.check_request(p.key_id)
    if denied:
        return limited(denied)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return too_large()
        chunks.append(chunk)
    body = b"".join(chunks)
    problem = json_body_problem(body, request.headers.get("content-type", ""))
    if problem:
        return OrjsonResponse({"detail": problem}, status_code=400)
    # parsing, validation and the two pipelined round trips run off the event loop (api/ingest.py)
    try:
        if limits.events:  # count the body's events first (every item counts)
            items = await run_in_threadpool(split_body, body)
            denied = await limits.check_events(p.key_id, len(items))
            if denied:
                return limited(denied)
            result = await run_in_threadpool(ingest_items, sync_redis, items, p.org_id, settings)
        else:
            result = await run_in_threadpool(ingest_body, sync_redis, body, p.org_id, settings)
    except EventRejected as err:
        return OrjsonResponse({"detail": err.reason}, status_code=413)
    metrics.events_accepted.labels("accepted").inc(result["accepted"])
    metrics.events_accepted.labels("duplicate").inc(result["duplicates"])
    metrics.events_accepted.labels("rejected").inc(len(result["rejected"]))
    return OrjsonResponse(result)
