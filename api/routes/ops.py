"""Operations: liveness, readiness (Redis, dataset, flow running, flow lag, live hub) and Prometheus metrics.

Whether the flow runs (flows/liveness.py): a flow that recorded its stop (an error, a stop signal) is not
ready at once; one that stopped beating (``alive_ms``, every ``alive_every_ms``) for ``FLOW_BEATS_MISSED``
beats was killed (SIGKILL, OOM killer). A flow that beats but writes nothing is judged by the lag bound.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import HubDep, MetricsDep, RedisDep, SettingsDep
from api.read_model import dec
from api.responses import OrjsonResponse
from engine.storage.keys import flow_status_key

router = APIRouter(tags=["ops"])

FLOW_BEATS_MISSED = 5  # beats of the flow's liveness thread missed before it counts as not running


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def flow_not_running(st: dict, now_ms: int) -> str | None:
    """Why the flow is not running, from its status hash (None: running, or it cannot tell)."""
    if st.get("stop_reason") and st.get("stop_kind") != "finished":
        at = st.get("stopped_ms", "")
        when = f" at {_utc(int(at))}" if at.isdigit() else ""
        return f"flow stopped{when}: {st['stop_reason']}"
    alive, every = st.get("alive_ms", ""), st.get("alive_every_ms", "")
    if st.get("stop_kind") == "finished" or not alive.isdigit():
        return None  # its input ended (judged by the lag bound, as before), or a flow that does not beat
    bound = FLOW_BEATS_MISSED * max(int(every) if every.isdigit() else 1000, 100)
    silent = now_ms - int(alive)
    if silent > bound:
        return (f"flow not running: no liveness beat for {silent} ms (over {bound} ms): it was killed, or "
                f"cannot reach Redis; see its supervisor and log")
    return None


@router.get("/healthz")
async def get_health():
    return {"status": "ok"}


@router.get("/readyz")
async def get_readiness(request: Request, r: RedisDep, settings: SettingsDep, hub: HubDep):
    bound = settings.flow_lag_bound_ms
    out = {"status": "ready", "redis": False, "flow_lag_ms": None, "lag_bound_ms": bound}
    try:
        await asyncio.wait_for(r.ping(), timeout=2)
        out["redis"] = True
        st = {dec(k): dec(v) for k, v in (await r.hgetall(flow_status_key())).items()}
        problem = await request.app.state.guard.problem(r)
    except Exception as exc:
        out.update(status="not_ready", reason=f"Redis unreachable: {type(exc).__name__}")
        return OrjsonResponse(out, status_code=503)
    if problem:
        out.update(status="not_ready", reason=problem)
        return OrjsonResponse(out, status_code=503)
    now_ms = int(time.time() * 1000)
    marks = [int(st[k]) for k in ("tick_ms", "write_ms") if st.get(k, "").isdigit()]
    lag = max(0, now_ms - max(marks)) if marks else None
    out["flow_lag_ms"] = lag
    down = flow_not_running(st, now_ms)
    if down:
        out.update(status="not_ready", reason=down, flow_mode=st.get("mode"))
        return OrjsonResponse(out, status_code=503)
    if lag is None:
        out.update(status="not_ready", reason="the flow has not reported yet")
        return OrjsonResponse(out, status_code=503)
    out["flow_mode"] = st.get("mode")
    if lag > bound:
        out.update(status="not_ready", reason=f"flow lag {lag} ms over {bound} ms")
        return OrjsonResponse(out, status_code=503)
    out["hub"] = hub.ready.is_set()
    return out


@router.get("/metrics", response_class=Response)
async def get_metrics(r: RedisDep, hub: HubDep, metrics: MetricsDep):
    metrics.subscribers.set(hub.count())
    await metrics.campaigns.refresh(r)  # per-campaign gauges, cached a few seconds (api/campaign_metrics.py)
    body, ctype = metrics.render()
    return Response(body, media_type=ctype)
