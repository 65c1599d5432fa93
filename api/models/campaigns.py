"""Campaign list and detail, daily rows and email replies (api/routes/campaigns.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.models.stats import LiveBlock, OpenModel


class CampaignSummary(BaseModel):
    campaign_id: str
    name: str | None
    channel: str
    kind: str | None
    status: str
    as_of: str | None
    live: LiveBlock


class CampaignList(BaseModel):
    org_id: str
    campaigns: list[CampaignSummary]


class CampaignDetail(CampaignSummary):
    org_id: str
    config: dict[str, Any]


class DailyRow(OpenModel):
    date: str = Field(description="local date in the campaign's time zone, YYYY-MM-DD")
    dials: int
    answered: int
    connected: int
    abandoned: int
    ended: int
    emails_sent: int
    opened: int
    replied: int
    cost_usd: float


class DailyStats(OpenModel):
    campaign_id: str
    tz: str
    days: list[DailyRow]
    truncated_to_days: int | None = Field(None, description="present when the range was cut to this many days")


class Reply(OpenModel):
    message_id: str
    contact_id: str | None
    sentiment: Literal["positive", "neutral", "negative"]
    preview: str | None
    name: str | None
    company: str | None
    from_email: str | None
    replied_at: str
    replied_ms: int


class RepliesPage(BaseModel):
    total: int
    page: int
    per_page: int
    replies: list[Reply]
