"""Server-sent event data, recent alerts and stream tokens (api/routes/live.py).

SSE routes return no JSON, so api/openapi_doc.py adds these models to the document itself."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api import stream_tokens
from api.models.stats import Level, OpenModel, StatsBody


class LiveFrame(StatsBody):
    """`event: frame` of /v1/campaigns/{id}/live: the /stats body plus its frame number."""

    seq: int = Field(description="the campaign's frame number (grows with every frame)")


class LevelAlert(OpenModel):
    """An abandon-level change of one window (SPEC §3)."""

    alert_id: str
    kind: Literal["level"] | None = Field(None, description="absent on records written before forecasts")
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
    stream_id: str | None = Field(None, description="/v1/alerts/recent only: the org alert stream entry id")


class ForecastAlert(OpenModel):
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
    stream_id: str | None = Field(None, description="/v1/alerts/recent only: the org alert stream entry id")


class GuardAlert(OpenModel):
    """A dial a compliance guard counts against the campaign (SPEC §3 *Compliance guards*): once per attempt."""

    alert_id: str
    kind: Literal["calling_hours", "abandon_redial"]
    campaign_id: str
    org_id: str
    attempt_id: str | None = Field(description="null only when a late fact re-decided an attempt whose id the "
                                               "flow no longer keeps (docs/semantics.md)")
    contact_id: str
    dialed_at: str
    tz: str | None = Field(None, description="calling_hours: the zone the dial was judged in")
    local_time: str | None = Field(None, description="calling_hours: HH:MM:SS in that zone")
    at: str
    stream_id: str | None = Field(None, description="/v1/alerts/recent only: the org alert stream entry id")


class ComplaintAlert(OpenModel):
    """A spam-complaint level change of one window (SPEC §3 *Spam complaints*)."""

    alert_id: str
    kind: Literal["complaint_level"]
    campaign_id: str
    org_id: str
    window: Literal["lifetime", "30d"]
    from_: Level = Field(alias="from")
    to: Level
    rate: float
    complained: int
    delivered: int
    ceiling: float
    at: str
    stream_id: str | None = Field(None, description="/v1/alerts/recent only: the org alert stream entry id")


AlertPayload = Annotated[LevelAlert | ForecastAlert | GuardAlert | ComplaintAlert,
                         Field(description="an alert record: a level change, a forecast, a guard violation or a "
                                           "spam-complaint level change")]


class AlertsRecent(BaseModel):
    alerts: list[AlertPayload]


# ---------------------------------------------------------------- stream tokens


class StreamTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
                                       description="limit the token to this campaign's live stream; "
                                                   "omit for an org-wide token")
    ttl_s: int = Field(stream_tokens.DEFAULT_TTL_S, ge=stream_tokens.MIN_TTL_S, le=stream_tokens.MAX_TTL_S,
                       description=f"lifetime in seconds ({stream_tokens.MIN_TTL_S}..{stream_tokens.MAX_TTL_S}, "
                                   f"default {stream_tokens.DEFAULT_TTL_S})")


class StreamToken(BaseModel):
    token: str = Field(description="pass as `?token=` to GET /v1/campaigns/{id}/live or GET /v1/alerts")
    org_id: str
    campaign_id: str | None
    expires_at: str
    ttl_s: int


# ---- GET /v1/live (SSE; api/org_live.py): one compact summary per campaign of the org

class WindowSummary(BaseModel):
    abandoned: int | None
    human_answered: int | None
    rate: float | None
    level: str | None = Field(description="ok, warning or breach")


class ForecastWindow(OpenModel):
    breach_in_s: float | None
    breach_at: str | None


class AbandonSummary(BaseModel):
    ceiling: float | None
    budget: int | None = Field(description="abandons still affordable in the 30-day window")
    min_sample: int = Field(description="the flow's alert min_sample: below it a window's level stays ok "
                                        "(too few human answers to judge)")
    windows: dict[str, WindowSummary | None] = Field(description="the regulatory windows: today, 30d")
    forecast: dict[str, ForecastWindow | None] | None = Field(
        None, description="present when the flow computes abandon.forecast: today and 30d")


class OpenAlert(OpenModel):
    kind: str = Field(description="level (a window at warning/breach) or forecast (breach expected within 15 min)")
    window: str
    level: str | None = None
    rate: float | None = None
    abandoned: int | None = None
    human_answered: int | None = None
    breach_in_s: float | None = None
    breach_at: str | None = None


class ContactParts(OpenModel):
    """The parts of `live.pending` and `contacts.in_flight` an operator reads apart (counts of contacts)."""

    total: int | None = Field(None, description="contacts.total")
    new: int | None = Field(None, description="status pending: not dialed (sent) yet")
    on_call: int | None = Field(None, description="buckets.in_progress: dispatched or on a call now")
    retrying: int | None = Field(None, description="status retrying: the retry queue")
    followup_scheduled: int | None = Field(None, description="status followup_scheduled: waiting for a later step")


class ComplaintWindowSummary(OpenModel):
    complained: int | None
    delivered: int | None
    rate: float | None
    level: str | None = Field(description="ok, warning or breach")


class ComplaintSummary(OpenModel):
    """Email campaigns: `email.complaints` (the spam-complaint windows lifetime and 30d)."""

    ceiling: float | None
    warning: float | None
    windows: dict[str, ComplaintWindowSummary]


class OrgLiveSummary(BaseModel):
    """`event: campaign` of `GET /v1/live`: one campaign, sent when anything but as_of changed."""

    campaign_id: str
    name: str | None
    channel: str | None
    kind: str | None
    status: str | None
    as_of: str | None
    first_dial_at: str | None = Field(description="earliest dial known (passes/runs): what live rates rest on")
    tz: str | None = Field(None, description="the campaign's time zone (its calling window's; UTC without one): "
                                             "the zone of `today`")
    live: dict[str, Any] = Field(description="banner, dials_per_sec, connected_per_hour, calls_per_min, pending, "
                                             "retries_queued, waiting_for_agent, eta_seconds, eta_at, last_dial_at "
                                             "(as in the live block) and active_calls (the body's)")
    contacts: ContactParts | None = Field(None, description="pending and in flight split by contact status")
    complaints: ComplaintSummary | None = Field(None, description="email campaigns only (null for voice)")
    abandon: AbandonSummary
    open_alerts: list[OpenAlert]


class OrgLiveSnapshot(BaseModel):
    """`event: snapshot` of `GET /v1/live`: first event of every (re)connect."""

    org_id: str
    min_sample: int
    campaigns: list[OrgLiveSummary]
