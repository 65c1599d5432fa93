"""Org-wide: benchmarks across campaigns, usage (with the plan), the latest alerts."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api import models
from api.deps import ID_PATTERN, ReadPrincipal, RedisDep
from api.read_model import org as reads
from api.responses import OrjsonResponse

router = APIRouter()


@router.get("/v1/benchmarks", tags=["org"], response_model=models.Benchmarks)
async def get_benchmarks(r: RedisDep, p: ReadPrincipal, kind: str = Query(..., min_length=1, max_length=200)):
    """Per rate: mean and p25/p50/p75 over the org's campaigns of this `kind`."""
    return OrjsonResponse({"org_id": p.org_id, "kind": kind, "rates": await reads.org_benchmarks(r, p.org_id, kind)})


@router.get("/v1/usage", tags=["org"], response_model=models.Usage)
async def get_usage(r: RedisDep, p: ReadPrincipal,
                    period: str = Query("all", pattern=r"^(all|\d{4}-\d{2}|\d{4}-\d{2}-\d{2})$",
                    description="all, YYYY-MM or YYYY-MM-DD (UTC)")):
    """Usage of the org: lifetime totals from the stats bodies; for a month/day, dials (from the attempt index)."""
    return OrjsonResponse(await reads.usage(r, p.org_id, period))


@router.get("/v1/alerts/recent", tags=["alerts"], response_model=models.AlertsRecent)
async def list_recent_alerts(r: RedisDep, p: ReadPrincipal, limit: int = Query(50, ge=1, le=1000),
                             campaign_id: str | None = Query(None, pattern=ID_PATTERN)):
    """The org's latest alerts, newest first."""
    return OrjsonResponse({"alerts": await reads.recent_alerts(r, p.org_id, limit=limit, campaign_id=campaign_id)})
