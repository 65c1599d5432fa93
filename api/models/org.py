"""Org-wide bodies: benchmarks and usage (api/routes/org.py)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, Field


class RateBenchmark(BaseModel):
    average: Optional[float]
    p25: Optional[float]
    p50: Optional[float]
    p75: Optional[float]
    sample_size: int


class Benchmarks(BaseModel):
    org_id: str
    kind: str
    rates: dict[str, RateBenchmark]


class UsageFigures(BaseModel):
    dials: Optional[int]
    connected: Optional[int]
    emails_sent: Optional[int]
    cost_usd: Optional[float]
    contacts: Optional[int] = Field(description="lifetime only: null for a month or a day")


class UsageRow(UsageFigures):
    campaign_id: str
    channel: Optional[str]


class Plan(BaseModel):
    name: str
    email_limit: int
    price_usd: float
    emails_remaining: int = Field(description="email_limit - emails sent in the period, never below 0")


class Usage(BaseModel):
    org_id: str
    period: str
    from_: Optional[str] = Field(alias="from", description="start of the period (UTC), null for all")
    to: Optional[str] = Field(description="end of the period (UTC, exclusive), null for all")
    campaigns: int
    totals: UsageFigures
    by_campaign: list[UsageRow]
    note: Optional[str] = None
    plan: Optional[Plan] = Field(description="the org's plan (callpulse orgs set-plan), null without one")
