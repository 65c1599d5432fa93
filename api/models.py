"""Response models: they document the main bodies in the OpenAPI schema (/docs).

Handlers return pre-serialised orjson responses, so these models describe the
shape without costing a validation pass per request.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

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


class RunStats(BaseModel):
    """One run (restart) of the campaign: its attempts' figures, as the lifetime ones over all."""

    run: int
    started_at: Optional[str] = Field(description="the run's campaign.run_started ts; null for run 1")
    attempts: int
    outcomes: dict[str, int]
    answered: int
    human_answered: int
    answer_rate: float
    connect_rate: float
    abandon_rate: float
    aht_ms: Optional[float]
    avg_ring_ms: Optional[float]
    first_dial_at: Optional[str]
    last_end_at: Optional[str]


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
    run: int = Field(description="the current run: the last in run order")
    runs: list[RunStats] = Field(description="run 1 and every started (not withdrawn) restart, in run order")
    previous_run_stats: Optional[RunStats] = Field(description="the run before the current one; null with one run")
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


class CallbackCounts(BaseModel):
    requested: int
    pending: int = Field(description="open now: requested - completed - cancelled")
    completed: int
    cancelled: int


class Contact(_Open):
    contact_id: str
    status: str
    retry_number: Optional[int]
    batch_id: Optional[str]
    callbacks: CallbackCounts
    attempts: list[AttemptTrail]


class ContactsPage(BaseModel):
    total: int
    limit: int
    offset: int
    status: Optional[str]
    contact_id: Optional[str] = Field(description="the contact_id filter; with it the page holds 0 or 1 contact")
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
    run: Optional[int] = Field(None, description="the run the attempt belongs to (by its dial time); null "
                                                 "when never dialed")
    result: Optional[str]
    started_at: Optional[str]
    ended_at: Optional[str]
    call_length_ms: Optional[int]
    recording_url: Optional[str]
    transcript: list[TranscriptLine]


class CallsPage(BaseModel):
    total: int = Field(description="attempts the filters keep")
    page: int
    limit: int
    callback: Literal["all", "requested", "pending", "completed", "cancelled"]
    outcome: Optional[Literal["connected", "abandoned", "machine", "busy", "no_answer", "failed", "active"]]
    run: Optional[int] = Field(None, description="the run filter (null: every run)")
    calls: list[Call]


class ConfigChange(BaseModel):
    field: str
    from_: Any = Field(alias="from")
    to: Any


class ActivityEntry(BaseModel):
    at: str = Field(description="event time of the entry (an alert: the time of the event that raised it)")
    kind: Literal["created", "config", "status", "paused", "resumed", "batch_status", "alert"]
    summary: str
    event_id: Optional[str] = Field(description="the event behind the entry (null for an alert)")
    alert_id: Optional[str]
    batch_id: Optional[str]
    from_: Optional[str] = Field(alias="from", description="status or alert level before")
    to: Optional[str] = Field(description="status or alert level after")
    changes: Optional[list[ConfigChange]] = Field(description="created / config: the fields that changed")
    alert: Optional[dict[str, Any]] = Field(description="the alert record (kind alert)")


class ActivityPage(BaseModel):
    total: int
    page: int
    limit: int
    kind: Optional[str]
    entries: list[ActivityEntry]


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
    """`kind` "level": a level change (`from`, `to`); "forecast": a breach forecast within 15 minutes
    (`breach_in_s`, `breach_at`)."""

    alert_id: str
    kind: str = "level"
    campaign_id: str
    org_id: str
    window: str
    to: Optional[str] = None
    breach_in_s: Optional[float] = None
    breach_at: Optional[str] = None
    rate: float
    abandoned: int
    human_answered: int
    ceiling: float
    at: Optional[str | int]


class AlertsRecent(BaseModel):
    alerts: list[Alert]


class UsageTotals(BaseModel):
    dials: int
    connected: int
    emails_sent: int
    cost_usd: float
    contacts: Optional[int] = Field(description="lifetime only: null for a month or day")


class UsageRow(BaseModel):
    campaign_id: str
    channel: Optional[str]
    dials: int
    connected: int
    emails_sent: int
    cost_usd: float
    contacts: Optional[int]


class Plan(BaseModel):
    name: str
    email_limit: int
    price_usd: float
    emails_remaining: int = Field(description="email_limit - emails sent in the period, never below 0")


class Usage(BaseModel):
    org_id: str
    period: str
    from_: Optional[str] = Field(alias="from")
    to: Optional[str]
    campaigns: int
    totals: UsageTotals
    by_campaign: list[UsageRow]
    note: Optional[str] = None
    plan: Optional[Plan] = Field(description="the org's plan (callpulse orgs set-plan), null without one")


# ---------------------------------------------------------------- webhooks (api/webhook_routes.py)
from typing import Literal  # noqa: E402 - kept with the models that use it

from api.webhook_policy import URL_PATTERN  # noqa: E402
from api.webhook_store import SECRET_PATTERN  # noqa: E402


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=URL_PATTERN, max_length=2200,
                     description="http(s) URL the alerts are POSTed to (no credentials, no fragment)")
    secret: Optional[str] = Field(None, pattern=SECRET_PATTERN,
                                  description="signing secret `whsec_<base64>`; omit to have one generated")
    kinds: Optional[list[Literal["level", "forecast"]]] = Field(
        None, max_length=2, description="alert kinds to send; omitted or empty: every kind")


class WebhookEndpoint(BaseModel):
    id: str
    org_id: str
    url: str
    kinds: list[str] = Field(description="alert kinds sent; empty: every kind")
    created_ms: int


class WebhookCreated(WebhookEndpoint):
    secret: str = Field(description="the signing secret: shown only in this response")


class WebhookList(BaseModel):
    webhooks: list[WebhookEndpoint]


class DeliveryAttempt(BaseModel):
    alert_id: str
    attempt: int = Field(description="1 for the first attempt of this alert to this endpoint")
    at: str
    at_ms: int
    status_code: Optional[int] = Field(description="the endpoint's HTTP status; null when no response")
    error: Optional[str] = Field(description="why there was no response (timeout, connection, policy)")
    latency_ms: int
    state: Literal["delivered", "retrying", "gave_up"]
    next_retry_at: Optional[str]


class PendingDelivery(BaseModel):
    alert_id: str
    attempts: int = Field(description="attempts made so far")
    due_at: str = Field(description="when the next attempt is due (or running)")


class DeliveryLog(BaseModel):
    webhook_id: str
    pending: list[PendingDelivery]
    attempts: list[DeliveryAttempt] = Field(description="logged attempts, newest first")


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
