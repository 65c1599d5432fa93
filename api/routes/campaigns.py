"""Campaigns: list, detail, the full stats body, daily rows, email replies and the agents."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Query

from api import models
from api.deps import CampaignId, ReadPrincipal, RedisDep
from api.read_model import campaigns as reads
from api.responses import OrjsonResponse, raw_json

router = APIRouter(tags=["campaigns"])


@router.get("/v1/campaigns", response_model=models.CampaignList)
async def list_campaigns(r: RedisDep, p: ReadPrincipal):
    """The org's campaigns (by id) with status and live block."""
    rows = await reads.org_stats(r, p.org_id)
    return OrjsonResponse({"org_id": p.org_id, "campaigns": [reads.summary(b) for _c, b in rows]})


@router.get("/v1/campaigns/{campaign_id}", response_model=models.CampaignDetail)
async def get_campaign(r: RedisDep, campaign_id: CampaignId, p: ReadPrincipal):
    """Config, status and live block of one campaign."""
    return OrjsonResponse(reads.detail(await reads.stats_body(r, p.org_id, campaign_id)))


@router.get("/v1/campaigns/{campaign_id}/stats", response_model=models.StatsBody)
async def get_campaign_stats(r: RedisDep, campaign_id: CampaignId, p: ReadPrincipal):
    """Everything of SPEC §3 for the campaign: the body the flow stored with its last frame."""
    return raw_json(await reads.stats_bytes(r, p.org_id, campaign_id))  # served as stored: no parse


@router.get("/v1/campaigns/{campaign_id}/stats/daily", response_model=models.DailyStats)
async def get_daily_stats(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                          start: date = Query(..., description="first local date, YYYY-MM-DD"),
                          end: date = Query(..., description="last local date, YYYY-MM-DD")):
    """Daily rows (SPEC §3 Daily): every local day of [start, end] in the campaign's time zone, zeros
    included; each fact on the local date of its own event."""
    return OrjsonResponse(await reads.daily_stats(r, p.org_id, campaign_id, start, end))


@router.get("/v1/campaigns/{campaign_id}/replies", response_model=models.RepliesPage)
async def list_replies(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                       sentiment: Literal["positive", "neutral", "negative"] | None = Query(None),
                       page: int = Query(1, ge=1, le=10**7), per_page: int = Query(50, ge=1, le=200)):
    """Email replies, newest first, optionally of one sentiment (the earliest reply of each message)."""
    await reads.ensure_campaign(r, p.org_id, campaign_id)
    return OrjsonResponse(await reads.replies_page(r, p.org_id, campaign_id, sentiment=sentiment, page=page,
                                                   per_page=per_page))


@router.get("/v1/campaigns/{campaign_id}/agents", response_model=models.AgentsPage)
async def list_agents(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                      state: Literal["ready", "on_call", "wrap", "paused", "offline"] | None = Query(None),
                      limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=10**7)):
    """The campaign's agents (SPEC §3 *Agents*) as of its last frame, by agent_id, optionally in one state:
    the `/stats` body's `agents.list`, paged, with the counts by state."""
    body = await reads.stats_body(r, p.org_id, campaign_id)
    return OrjsonResponse(reads.agents_page(body, state=state, limit=limit, offset=offset))
