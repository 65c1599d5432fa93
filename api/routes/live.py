"""Live: stream tokens and the server-sent event routes. The fan-out itself is the live hub (api/live.py,
api/org_live.py); these routes authenticate, check the campaign, and wrap the hub's generators in an SSE response."""

from __future__ import annotations

import asyncio

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.exceptions import HTTPException
from sse_starlette.sse import EventSourceResponse

from api import models, sse_cap, stream_tokens
from api.deps import CampaignId, HubDep, MetricsDep, ReadPrincipal, RedisDep, SettingsDep, StreamPrincipal
from api.live import LiveHub
from api.live_streams import RetryOnce, campaign_events, org_alert_events, org_summary_events
from api.read_model.campaigns import ensure_campaign
from api.responses import OrjsonResponse
from api.sse_cap import CappedEventSourceResponse

router = APIRouter()


@router.post("/v1/stream-tokens", tags=["live"], status_code=201, response_model=models.StreamToken)
async def create_stream_token(r: RedisDep, p: ReadPrincipal, body: models.StreamTokenRequest | None = None):
    """A short-lived read-only token that opens the SSE routes as `?token=` (for a browser `EventSource`):
    org-wide, or for one campaign (`campaign_id`). docs/api.md, *Stream tokens*."""
    body = body or models.StreamTokenRequest()
    if body.campaign_id is not None:
        await ensure_campaign(r, p.org_id, body.campaign_id)
    out = await stream_tokens.issue(r, p, body.campaign_id, body.ttl_s)
    return OrjsonResponse(out, status_code=201, headers={"Cache-Control": "no-store"})


def sse_response(request: Request, make_gen, extra_headers: dict | None = None) -> EventSourceResponse:
    slot = request.app.state.sse_cap.take()  # this process's cap on open SSE streams (api/sse_cap.py)
    if slot is None:
        request.app.state.metrics.sse_refused.inc()
        raise HTTPException(503, f"this API process holds its maximum of {request.app.state.sse_cap.limit} SSE "
                                 f"connections: retry later, or on another process",
                            headers={"Retry-After": str(sse_cap.RETRY_AFTER_S)})
    stop = anyio.Event()  # set by sse-starlette on server shutdown: the generator ends the stream cleanly
    # a client whose send stalls for sse_stall_s is cut off (api/sockets.py); send_timeout is the backstop
    # `retry:` rides on the first event or keep-alive, never alone; keep-alives are bare comment lines
    # (api/live_streams.RetryOnce: what httpx-sse would otherwise yield as empty messages)
    retry = RetryOnce()
    body = request.app.state.reaper.watch(retry.body(make_gen(stop)), request.client)
    response = CappedEventSourceResponse(body, ping=request.app.state.settings.ping_s,
                                         ping_message_factory=retry.ping, send_timeout=30, shutdown_event=stop,
                                         shutdown_grace_period=1.0,
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                                  **(extra_headers or {})})
    response.slot = slot  # given back when the response ends
    return response


async def hub_ready(hub: LiveHub) -> LiveHub:
    """The live hub once its pub/sub is connected (waits up to 5 s), else 503."""
    if not hub.ready.is_set():
        try:
            await asyncio.wait_for(hub.ready.wait(), timeout=5)
        except TimeoutError:
            raise HTTPException(503, "live feed unavailable (Redis pub/sub not connected)") from None
    return hub


@router.get("/v1/campaigns/{campaign_id}/live", tags=["live"], response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_campaign_live(request: Request, r: RedisDep, settings: SettingsDep, campaign_id: CampaignId,
                               p: StreamPrincipal, live: HubDep, metrics: MetricsDep,
                               last_event_id: str | None = Header(None, max_length=200)):
    """SSE: `event: frame` (data: LiveFrame, the /stats body + `seq`) and `event: alert` (data: an alert record);
    resume with `Last-Event-ID`: no alert is lost or repeated, frames resume after the cursor's seq. Frames are
    whole snapshots, so a client resuming far behind may skip frames at the switch from history to live: those
    published while its history was being sent, but the newest (alerts are never skipped). A browser
    `EventSource` authenticates with `?token=` (a stream token from POST /v1/stream-tokens; never together with
    `Authorization`: 400)."""
    await ensure_campaign(r, p.org_id, campaign_id)
    hub = await hub_ready(live)
    # the flow's alert min_sample: the dashboard shows "too few answers to judge" below it
    min_sample = {"X-Min-Sample": str(await hub.min_sample.get(r))}
    return sse_response(request, lambda stop: campaign_events(
        hub, r, p.org_id, campaign_id, last_event_id, heartbeat_s=settings.heartbeat_s,
        min_interval_s=settings.min_frame_interval_s, max_replay=settings.max_replay,
        metrics=metrics, stop=stop), min_sample)


@router.get("/v1/live", tags=["live"], response_class=EventSourceResponse,
            responses={200: {"description": "`event: snapshot` (data: OrgLiveSnapshot), then `event: campaign` "
                                            "(data: OrgLiveSummary) per changed campaign",
                             "content": {"text/event-stream": {"schema": {
                                 "$ref": "#/components/schemas/OrgLiveSnapshot"}}}}})
async def stream_org_live(request: Request, r: RedisDep, settings: SettingsDep, p: ReadPrincipal, live: HubDep,
                          metrics: MetricsDep, last_event_id: str | None = Header(None, max_length=200)):
    """SSE: every campaign of the org — a snapshot on (re)connect, then one summary per change (coalesced)."""
    hub = await hub_ready(live)
    return sse_response(request, lambda stop: org_summary_events(
        hub, r, p.org_id, min_interval_s=settings.min_frame_interval_s, metrics=metrics, stop=stop))


@router.get("/v1/alerts", tags=["alerts"], response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_alerts(request: Request, r: RedisDep, settings: SettingsDep, p: StreamPrincipal, live: HubDep,
                        metrics: MetricsDep, last_event_id: str | None = Header(None, max_length=200)):
    """SSE of every alert of the org (`event: alert`, data: an alert record, id = org alert stream id); resume
    with `Last-Event-ID`. Also opens with `?token=` (an org-wide stream token; never together with
    `Authorization`: 400)."""
    hub = await hub_ready(live)
    return sse_response(request, lambda stop: org_alert_events(hub, r, p.org_id, last_event_id,
                                                               max_replay=settings.max_replay,
                                                               metrics=metrics, stop=stop))
