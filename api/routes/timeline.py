"""A campaign over time: its recent minute points (history on open) and its follow-ups with their due times."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api import models
from api.deps import CampaignId, ReadPrincipal, RedisDep
from api.read_model import timeline
from api.responses import raw_json
from engine.views.history import DEFAULT_MINUTES, HISTORY_MINUTES

router = APIRouter(tags=["campaigns"])


@router.get("/v1/campaigns/{campaign_id}/history", response_model=models.CampaignHistory)
async def get_campaign_history(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId,
                               minutes: int = Query(DEFAULT_MINUTES, ge=1, le=HISTORY_MINUTES,
                                                    description="the span back from the newest point, in minutes")):
    """The campaign's figures at one point a minute (the last frame of each minute), ascending, within
    `minutes` of the newest point: enough for a chart to open with the last hour drawn. The flow keeps 24 h."""
    return raw_json(await timeline.history(r, p.org_id, campaign_id, minutes))


@router.get("/v1/campaigns/{campaign_id}/followups", response_model=models.CampaignFollowups)
async def get_campaign_followups(r: RedisDep, p: ReadPrincipal, campaign_id: CampaignId):
    """Contacts in `followup_scheduled` and `retrying` with their due times (the `due_at` of their latest
    status): how many are due now, have no due time, are due in each of the next 48 hours, and later."""
    return raw_json(await timeline.followups(r, p.org_id, campaign_id))
