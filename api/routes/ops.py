"""Operations: liveness, readiness (Redis, dataset, flow lag, live hub) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import RedisDep, SettingsDep
from api.read_model import dec
from api.responses import OrjsonResponse
from engine.keys import flow_status_key

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, r: RedisDep, settings: SettingsDep):
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
    marks = [int(st[k]) for k in ("tick_ms", "write_ms") if st.get(k, "").isdigit()]
    if not marks:
        out.update(status="not_ready", reason="the flow has not reported yet")
        return OrjsonResponse(out, status_code=503)
    lag = max(0, int(time.time() * 1000) - max(marks))
    out["flow_lag_ms"] = lag
    out["flow_mode"] = st.get("mode")
    if lag > bound:
        out.update(status="not_ready", reason=f"flow lag {lag} ms over {bound} ms")
        return OrjsonResponse(out, status_code=503)
    out["hub"] = request.app.state.hub.ready.is_set()
    return out


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(request: Request, r: RedisDep):
    metrics = request.app.state.metrics
    metrics.subscribers.set(request.app.state.hub.count())
    await metrics.campaigns.refresh(r)  # per-campaign gauges, cached a few seconds (api/campaign_metrics.py)
    body, ctype = metrics.render()
    return Response(body, media_type=ctype)
