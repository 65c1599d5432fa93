"""Response models: they document the main bodies in the OpenAPI schema (/docs).

Handlers return pre-serialised orjson responses, so these models describe the
shape without costing a validation pass per request.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class LiveBlock(_Open):
    banner: str
    dials_per_sec: float
    connected_per_hour: float
    calls_per_min: float
    avg_ring_ms: Optional[float]
    ringing: int
    in_progress: int
    last_dial_at: Optional[str]
    pending: int
    retries_queued: int
    eta_seconds: Optional[float]
    eta_at: Optional[str]


class StatsBody(_Open):
    """SPEC §3.1: every key always present (null where unknown)."""

    campaign_id: str
    org_id: str
    name: Optional[str]
    channel: str
    kind: Optional[str]
    status: str
    as_of: Optional[str]
    config: dict[str, Any]
    contacts: dict[str, Any]
    retry_breakdown: dict[str, int]
    retries_left: int
    batch_counts: dict[str, int]
    attempts: dict[str, Any]
    outcomes: dict[str, int]
    answered: int
    human_answered: int
    active_calls: int
    ringing: int
    in_progress: int
    concurrency_limit: int
    rates: dict[str, float]
    aht_ms: Optional[float]
    avg_ring_ms: Optional[float]
    abandon: dict[str, Any]
    live: LiveBlock
    performance: Optional[dict[str, Any]]
    passes: list[dict[str, Any]]
    callbacks: dict[str, Any]
    email: dict[str, Any]
    costs: dict[str, Any]
    diagnostics: dict[str, int]


class CampaignSummary(BaseModel):
    campaign_id: str
    name: Optional[str]
    channel: str
    kind: Optional[str]
    status: str
    as_of: Optional[str]
    live: LiveBlock


class CampaignList(BaseModel):
    org_id: str
    campaigns: list[CampaignSummary]


class CampaignDetail(CampaignSummary):
    org_id: str
    config: dict[str, Any]


class Rejection(BaseModel):
    index: int = Field(description="0-based position of the event in the body")
    code: str = Field(description="malformed, missing_field, invalid_type, invalid_value, unknown_type, "
                                  "too_large, future, forbidden_org")
    field: Optional[str]
    reason: str


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class AttemptTrail(BaseModel):
    attempt_id: str
    started_at: Optional[str]
    ended_at: Optional[str]
    outcome: Optional[str]
    sip_code: Optional[int]
    sip_text: Optional[str]
    conversation_id: Optional[str]
    result: Optional[dict[str, Any]] = Field(description="conversation evaluation results, null when none")


class Contact(_Open):
    contact_id: str
    status: str
    retry_number: Optional[int]
    batch_id: Optional[str]
    attempts: list[AttemptTrail]


class ContactsPage(BaseModel):
    total: int
    limit: int
    offset: int
    status: Optional[str]
    contacts: list[Contact]


class TranscriptLine(BaseModel):
    ts: str
    role: str
    content: str


class Call(_Open):
    attempt_id: str
    contact_id: Optional[str]
    direction: str
    to: Optional[str]
    result: Optional[str]
    started_at: Optional[str]
    ended_at: Optional[str]
    call_length_ms: Optional[int]
    recording_url: Optional[str]
    transcript: list[TranscriptLine]


class CallsPage(BaseModel):
    total: int
    page: int
    limit: int
    calls: list[Call]


class Batch(BaseModel):
    batch_id: Optional[str]
    status: Optional[str]
    contacts: dict[str, Any]
    retry_breakdown: dict[str, int]


class BatchesPage(BaseModel):
    total: int
    skip: int
    limit: int
    batch_counts: dict[str, int]
    batches: list[Batch]


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


class Alert(_Open):
    alert_id: str
    campaign_id: str
    org_id: str
    window: str
    to: str
    rate: float
    abandoned: int
    human_answered: int
    ceiling: float
    at: Optional[str | int]


class AlertsRecent(BaseModel):
    alerts: list[Alert]


# ---- GET /v1/live (SSE; api/org_live.py): one compact summary per campaign of the org

class WindowSummary(BaseModel):
    abandoned: Optional[int]
    human_answered: Optional[int]
    rate: Optional[float]
    level: Optional[str] = Field(description="ok, warning or breach")


class ForecastWindow(_Open):
    breach_in_s: Optional[float]
    breach_at: Optional[str]


class AbandonSummary(BaseModel):
    ceiling: Optional[float]
    budget: Optional[int] = Field(description="abandons still affordable in the 30-day window")
    min_sample: int = Field(description="the flow's alert min_sample: below it a window's level stays ok "
                                        "(too few human answers to judge)")
    windows: dict[str, Optional[WindowSummary]] = Field(description="the regulatory windows: today, 30d")
    forecast: Optional[dict[str, Optional[ForecastWindow]]] = Field(
        None, description="present when the flow computes abandon.forecast: today and 30d")


class OpenAlert(_Open):
    kind: str = Field(description="level (a window at warning/breach) or forecast (breach expected within 15 min)")
    window: str
    level: Optional[str] = None
    rate: Optional[float] = None
    breach_in_s: Optional[float] = None
    breach_at: Optional[str] = None


class OrgLiveSummary(BaseModel):
    """`event: campaign` of `GET /v1/live`: one campaign, sent when anything but as_of changed."""

    campaign_id: str
    name: Optional[str]
    channel: Optional[str]
    kind: Optional[str]
    status: Optional[str]
    as_of: Optional[str]
    first_dial_at: Optional[str] = Field(description="earliest dial known (passes/runs): what live rates rest on")
    live: dict[str, Any] = Field(description="banner, dials_per_sec, pending, retries_queued, eta_seconds, eta_at, "
                                             "last_dial_at (as in the live block)")
    abandon: AbandonSummary
    open_alerts: list[OpenAlert]


class OrgLiveSnapshot(BaseModel):
    """`event: snapshot` of `GET /v1/live`: first event of every (re)connect."""

    org_id: str
    min_sample: int
    campaigns: list[OrgLiveSummary]
