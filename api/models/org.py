"""Org-wide bodies: benchmarks and usage (api/routes/org.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RateBenchmark(BaseModel):
    average: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    sample_size: int


class Benchmarks(BaseModel):
    org_id: str
    kind: str
    rates: dict[str, RateBenchmark]


class UsageFigures(BaseModel):
    dials: int | None
    connected: int | None
    emails_sent: int | None
    cost_usd: float | None
    contacts: int | None = Field(description="lifetime only: null for a month or a day")


class UsageRow(UsageFigures):
    campaign_id: str
    channel: str | None


class Plan(BaseModel):
    name: str
    email_limit: int
    price_usd: float
    emails_remaining: int = Field(description="email_limit - emails sent in the period, never below 0")


class Usage(BaseModel):
    org_id: str
    period: str
    from_: str | None = Field(alias="from", description="start of the period (UTC), null for all")
    to: str | None = Field(description="end of the period (UTC, exclusive), null for all")
    campaigns: int
    totals: UsageFigures
    by_campaign: list[UsageRow]
    note: str | None = None
    plan: Plan | None = Field(description="the org's plan (callpulse orgs set-plan), null without one")
