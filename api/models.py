"""Response models: they document the main bodies in the OpenAPI schema (/docs).

Handlers return pre-serialised orjson responses, so these models describe the
shape without costing a validation pass per request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from api import stream_tokens
from engine.events import BATCH_STATUSES, CONTACT_STATUSES

OUTCOMES = ("connected", "abandoned", "machine", "busy", "no_answer", "failed")


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


def _counts(name: str, keys, doc: str) -> type[BaseModel]:
    """A model with one integer field per key (keys from the engine's vocabularies: one source)."""
    return create_model(name, __base__=_Open, __doc__=doc, **{k: (int, ...) for k in keys})


ContactsByStatus = _counts("ContactsByStatus", CONTACT_STATUSES, "contacts per status (every status, zeros included)")
BatchCounts = _counts("BatchCounts", BATCH_STATUSES, "batches per status")
Outcomes = _counts("Outcomes", OUTCOMES, "ended attempts per outcome")
RetryBreakdown = dict[Annotated[str, StringConstraints(pattern=r"^retry_[0-9]+$")], int]
Level = Literal["ok", "warning", "breach"]


class TimeWindow(_Open):
    start: str = Field(description="HH:MM")
    end: str = Field(description="HH:MM")
    tz: str = Field(description="IANA time zone name (UTC when the event named none)")


class StatsConfig(_Open):
    concurrency_limit: int
    max_attempts: int
    abandon_ceiling: float
    abandon_threshold_ms: int
    abandon_from: Literal["answer", "greeting_end"]
    time_window: Optional[TimeWindow]
    config: Optional[dict[str, Any]] = Field(description="the campaign's opaque config, as sent")


class ContactBuckets(_Open):
    pending: int
    in_progress: int
    completed: int
    exhausted: int


class Contacts(_Open):
    total: int
    by_status: ContactsByStatus
    buckets: ContactBuckets
    in_flight: int


class Attempts(_Open):
    total: int
    average_per_contact: float
    follow_up: int


class Rates(_Open):
    answer_rate: float
    connect_rate: float
    completion_rate: float


class AbandonWindow(_Open):
    abandoned: int
    human_answered: int
    rate: float
    level: Level


class AbandonWindows(_Open):
    lifetime: AbandonWindow
    today: AbandonWindow
    h24: AbandonWindow = Field(alias="24h")
    d30: AbandonWindow = Field(alias="30d")


class ForecastTrend(_Open):
    abandoned: int
    human_answered: int
    span_s: float


class BreachForecast(_Open):
    breach_in_s: Optional[float]
    breach_at: Optional[str]


class Forecast(_Open):
    trend: ForecastTrend
    today: BreachForecast
    d30: BreachForecast = Field(alias="30d")


class Pacing(_Open):
    remaining_dials: int
    expected_human_answers: int
    allowed_abandons: int
    max_abandon_rate: Optional[float]


class Abandon(_Open):
    ceiling: float
    budget: int
    windows: AbandonWindows
    forecast: Forecast
    pacing: Pacing


class Performance(_Open):
    dials_per_sec: float
    connected_per_hour: float
    calls_per_min: float
    total_connected: int


class PassStats(_Open):
    pass_: int = Field(alias="pass")
    eligible: Optional[int]
    attempted: int
    connected: int
    connect_rate: float
    started_at: Optional[str]
    ended_at: Optional[str]
    duration_s: Optional[float]


class RunStats(_Open):
    run: int
    started_at: Optional[str]
    attempts: int
    outcomes: Outcomes
    answered: int
    human_answered: int
    answer_rate: float
    connect_rate: float
    abandon_rate: float
    aht_ms: Optional[float]
    avg_ring_ms: Optional[float]
    first_dial_at: Optional[str]
    last_end_at: Optional[str]


class Callbacks(_Open):
    requested: int
    pending: int
    completed: int
    avg_delay_ms: Optional[float]


class EmailRates(_Open):
    delivery_rate: float
    open_rate: float
    click_rate: float
    reply_rate: float
    conversion_rate: float


class EmailStats(_Open):
    emails_sent: int
    delivered: int
    bounced: int
    opened: int
    clicked: int
    replied: int
    unsubscribed: int
    meetings_booked: int
    rates: EmailRates


class Costs(_Open):
    total_usd: float
    breakdown: dict[str, float] = Field(description="USD per cost category")


class Diagnostics(_Open):
    late: int
    duplicates: int
    orphaned: int


class StatsBody(_Open):
    """SPEC §3.1: every key always present (null where unknown)."""

    campaign_id: str
    org_id: str
    name: Optional[str]
    channel: str
    kind: Optional[str]
    status: str
    as_of: Optional[str]
    config: StatsConfig
    contacts: Contacts
    retry_breakdown: RetryBreakdown
    retries_left: int
    batch_counts: BatchCounts
    attempts: Attempts
    outcomes: Outcomes
    answered: int
    human_answered: int
    active_calls: int
    ringing: int
    in_progress: int
    concurrency_limit: int
    rates: Rates
    aht_ms: Optional[float]
    avg_ring_ms: Optional[float]
    abandon: Abandon
    live: LiveBlock
    performance: Optional[Performance]
    passes: list[PassStats]
    run: int = Field(description="the current run: the last in run order")
    runs: list[RunStats] = Field(description="run 1 and every started (not withdrawn) restart, in run order")
    previous_run_stats: Optional[RunStats] = Field(description="the run before the current one; null with one run")
    callbacks: Callbacks
    email: EmailStats
    costs: Costs
    diagnostics: Diagnostics


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
    status_at: Optional[str] = Field(description="time of the contact's latest status event")
    attempts_dialed: int
    batch_id: Optional[str]
    callbacks: CallbackCounts
    phone_number: Optional[str]
    email: Optional[str]
    variables: Optional[dict[str, Any]] = Field(description="CRM fields from contact.added")
    added_at: Optional[str]
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
    from_: Optional[str] = Field(alias="from", description="caller id: not part of the events, always null")
    to: Optional[str]
    run: Optional[int] = Field(None, description="the run the attempt belongs to (by its dial time); null "
                                                 "when never dialed")
    pass_: Optional[int] = Field(alias="pass")
    follow_up: Optional[bool]
    started_at: Optional[str]
    answered_at: Optional[str]
    bridged_at: Optional[str]
    ended_at: Optional[str]
    amd_result: Optional[Literal["human", "machine", "unknown"]]
    outcome: Optional[Literal[OUTCOMES]]  # type: ignore[valid-type]
    result: Optional[str] = Field(description="the outcome once ended, else in_progress or ringing")
    sip_code: Optional[int]
    sip_text: Optional[str]
    ring_ms: Optional[int]
    call_length_ms: Optional[int]
    handle_ms: Optional[int]
    wrap_ms: Optional[int]
    conversation_id: Optional[str]
    recording_url: Optional[str]
    evaluation: Optional[dict[str, Any]] = Field(description="conversation evaluation results, null when none")
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


# ---------------------------------------------------------------- daily, replies, usage, export


class DailyRow(_Open):
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


class DailyStats(_Open):
    campaign_id: str
    tz: str
    days: list[DailyRow]
    truncated_to_days: Optional[int] = Field(None, description="present when the range was cut to this many days")


class Reply(_Open):
    message_id: str
    contact_id: Optional[str]
    sentiment: Literal["positive", "neutral", "negative"]
    preview: Optional[str]
    name: Optional[str]
    company: Optional[str]
    from_email: Optional[str]
    replied_at: str
    replied_ms: int


class RepliesPage(BaseModel):
    total: int
    page: int
    per_page: int
    replies: list[Reply]


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


# ---------------------------------------------------------------- server-sent events (SSE data)


class LiveFrame(StatsBody):
    """`event: frame` of /v1/campaigns/{id}/live: the /stats body plus its frame number."""

    seq: int = Field(description="the campaign's frame number (grows with every frame)")


class LevelAlert(_Open):
    """An abandon-level change of one window (SPEC §3)."""

    alert_id: str
    kind: Optional[Literal["level"]] = Field(None, description="absent on records written before forecasts")
    campaign_id: str
    org_id: str
    window: Literal["lifetime", "today", "24h", "30d"]
    from_: Level = Field(alias="from")
    to: Level
    rate: float
    abandoned: int
    human_answered: int
    ceiling: float
    at: str
    stream_id: Optional[str] = Field(None, description="/v1/alerts/recent only: the org alert stream entry id")


class ForecastAlert(_Open):
    """A window forecast to breach within 15 minutes (SPEC §3 abandon forecast)."""

    alert_id: str
    kind: Literal["forecast"]
    campaign_id: str
    org_id: str
    window: Literal["today", "30d"]
    breach_in_s: float
    breach_at: str
    rate: float
    abandoned: int
    human_answered: int
    ceiling: float
    at: str
    stream_id: Optional[str] = Field(None, description="/v1/alerts/recent only: the org alert stream entry id")


AlertPayload = Annotated[LevelAlert | ForecastAlert, Field(description="an alert record: a level change or a forecast")]


class AlertsRecent(BaseModel):
    alerts: list[AlertPayload]


# ---------------------------------------------------------------- stream tokens


class StreamTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
                                       description="limit the token to this campaign's live stream; "
                                                   "omit for an org-wide token")
    ttl_s: int = Field(stream_tokens.DEFAULT_TTL_S, ge=stream_tokens.MIN_TTL_S, le=stream_tokens.MAX_TTL_S,
                       description=f"lifetime in seconds ({stream_tokens.MIN_TTL_S}..{stream_tokens.MAX_TTL_S}, "
                                   f"default {stream_tokens.DEFAULT_TTL_S})")


class StreamToken(BaseModel):
    token: str = Field(description="pass as `?token=` to GET /v1/campaigns/{id}/live or GET /v1/alerts")
    org_id: str
    campaign_id: Optional[str]
    expires_at: str
    ttl_s: int


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
    abandoned: Optional[int] = None
    human_answered: Optional[int] = None
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
