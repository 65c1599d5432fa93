"""The `/stats` body (SPEC §3) as the flow stores it: `StatsBody` and its blocks."""

from __future__ import annotations

import builtins
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from engine.validation.events import BATCH_STATUSES, CONTACT_STATUSES
from engine.vocab import OUTCOMES


class OpenModel(BaseModel):
    # the base of every response model here: a body may carry fields the model does not list (added later)
    model_config = ConfigDict(extra="allow")


class LiveBlock(OpenModel):
    banner: str
    dials_per_sec: float
    connected_per_hour: float
    calls_per_min: float
    avg_ring_ms: float | None
    ringing: int
    in_progress: int
    waiting_for_agent: int = Field(description="callers answered, not machines, not yet taken by an agent or "
                                               "bot, not hung up")
    oldest_wait_ms: int | None = Field(description="now − the earliest connection start among them; null when none")
    last_dial_at: str | None
    pending: int
    retries_queued: int
    eta_seconds: float | None
    eta_at: str | None


def _counts(name: str, keys, doc: str) -> type[BaseModel]:
    """A model with one integer field per key (keys from the engine's vocabularies: one source)."""
    return create_model(name, __base__=OpenModel, __doc__=doc, **{k: (int, ...) for k in keys})


ContactsByStatus = _counts("ContactsByStatus", CONTACT_STATUSES, "contacts per status (every status, zeros included)")
BatchCounts = _counts("BatchCounts", BATCH_STATUSES, "batches per status")
Outcomes = _counts("Outcomes", OUTCOMES, "ended attempts per outcome")
RetryBreakdown = dict[Annotated[str, StringConstraints(pattern=r"^retry_[0-9]+$")], int]
Level = Literal["ok", "warning", "breach"]


class TimeWindow(OpenModel):
    start: str = Field(description="HH:MM")
    end: str = Field(description="HH:MM")
    tz: str = Field(description="IANA time zone name (UTC when the event named none)")


class CallingHours(OpenModel):
    start: str = Field(description="HH:MM")
    end: str = Field(description="HH:MM, or 24:00")


class StatsConfig(OpenModel):
    concurrency_limit: int
    max_attempts: int
    abandon_ceiling: float
    abandon_threshold_ms: int
    abandon_from: Literal["answer", "greeting_end"]
    time_window: TimeWindow | None
    config: dict[str, Any] | None = Field(description="the campaign's opaque config, as sent")
    calling_hours: CallingHours = Field(description="the called person's local hours in which a dial is allowed")
    abandon_redial_hours: int = Field(description="no redial of a contact this long after an abandoned call "
                                                  "(0: no guard)")
    complaint_ceiling: float
    complaint_warning: float


class ContactBuckets(OpenModel):
    pending: int
    in_progress: int
    completed: int
    exhausted: int


class Contacts(OpenModel):
    total: int
    by_status: ContactsByStatus
    buckets: ContactBuckets
    in_flight: int


class Attempts(OpenModel):
    total: int
    average_per_contact: float
    follow_up: int


class Rates(OpenModel):
    answer_rate: float
    connect_rate: float
    completion_rate: float


class AbandonWindow(OpenModel):
    abandoned: int
    human_answered: int
    rate: float
    level: Level


class AbandonWindows(OpenModel):
    lifetime: AbandonWindow
    today: AbandonWindow
    h24: AbandonWindow = Field(alias="24h")
    d30: AbandonWindow = Field(alias="30d")


class ForecastTrend(OpenModel):
    abandoned: int
    human_answered: int
    span_s: float


class BreachForecast(OpenModel):
    breach_in_s: float | None
    breach_at: str | None


class Forecast(OpenModel):
    trend: ForecastTrend
    today: BreachForecast
    d30: BreachForecast = Field(alias="30d")


class Pacing(OpenModel):
    remaining_dials: int
    expected_human_answers: int
    allowed_abandons: int
    max_abandon_rate: float | None


class AbandonPeriod(OpenModel):
    period: int = Field(description="1, 2, …: successive 30-day periods from the first dial")
    start: str
    end: str = Field(description="exclusive")
    abandoned: int
    human_answered: int
    rate: float
    within_ceiling: bool


class Abandon(OpenModel):
    ceiling: float
    budget: int
    windows: AbandonWindows
    forecast: Forecast
    pacing: Pacing
    periods: list[AbandonPeriod] = Field(description="empty until the first dial")


class CallingHoursGuard(OpenModel):
    violations: int
    last_violation_at: str | None


class AbandonRedialGuard(OpenModel):
    hours: int
    violations: int
    last_violation_at: str | None


class Compliance(OpenModel):
    calling_hours: CallingHoursGuard
    abandon_redial: AbandonRedialGuard


class Performance(OpenModel):
    dials_per_sec: float
    connected_per_hour: float
    calls_per_min: float
    total_connected: int


class PassStats(OpenModel):
    pass_: int = Field(alias="pass")
    eligible: int | None
    attempted: int
    connected: int
    connect_rate: float
    started_at: str | None
    ended_at: str | None
    duration_s: float | None


class RunStats(OpenModel):
    run: int
    started_at: str | None
    attempts: int
    outcomes: Outcomes
    answered: int
    human_answered: int
    answer_rate: float
    connect_rate: float
    abandon_rate: float
    aht_ms: float | None
    avg_ring_ms: float | None
    first_dial_at: str | None
    last_end_at: str | None


class AgentsByState(OpenModel):
    ready: int
    on_call: int
    wrap: int
    paused: int
    offline: int


class AgentTime(OpenModel):
    """ms in each state, each `agent.state` held until the next one's ts and the last until now (offline time
    is not reported)."""
    ready: int
    on_call: int
    wrap: int
    paused: int


class AgentEntry(OpenModel):
    agent_id: str
    state: str = Field(description="ready | on_call | wrap | paused | offline (offline until it has a state)")
    since: str | None = Field(description="ts of its latest agent.state; null when it has none")
    reason: str | None = Field(description="that event's reason")
    calls: int = Field(description="its connected attempts (the agent_id of the counted call.bridged)")
    aht_ms: float | None = Field(description="mean handle time of those calls; null when none")
    time_ms: AgentTime
    occupancy: float | None = Field(description="(on_call + wrap) / (ready + on_call + wrap); null when 0")


class Agents(OpenModel):
    by_state: AgentsByState
    list: builtins.list[AgentEntry] = Field(description="one entry per agent, by agent_id in code point order")


class AgentsPage(OpenModel):
    campaign_id: str
    as_of: str | None
    by_state: AgentsByState = Field(description="every agent of the campaign by state (not only this page's)")
    state: str | None = Field(description="the state filter, null for all")
    total: int = Field(description="agents matching the filter")
    limit: int
    offset: int
    agents: builtins.list[AgentEntry]


class Callbacks(OpenModel):
    requested: int
    pending: int
    completed: int
    avg_delay_ms: float | None


class EmailRates(OpenModel):
    delivery_rate: float
    open_rate: float
    click_rate: float
    reply_rate: float
    conversion_rate: float
    complaint_rate: float


class ComplaintWindow(OpenModel):
    complained: int
    delivered: int
    rate: float
    level: Level


class ComplaintWindows(OpenModel):
    lifetime: ComplaintWindow
    d30: ComplaintWindow = Field(alias="30d")


class Complaints(OpenModel):
    ceiling: float
    warning: float
    windows: ComplaintWindows


class EmailStats(OpenModel):
    emails_sent: int
    delivered: int
    bounced: int
    opened: int
    clicked: int
    replied: int
    unsubscribed: int
    complained: int
    meetings_booked: int
    rates: EmailRates
    complaints: Complaints


class Costs(OpenModel):
    total_usd: float
    breakdown: dict[str, float] = Field(description="USD per cost category")


class Diagnostics(OpenModel):
    late: int
    duplicates: int
    orphaned: int


class StatsBody(OpenModel):
    """SPEC §3.1: every key always present (null where unknown)."""

    campaign_id: str
    org_id: str
    name: str | None
    channel: str
    kind: str | None
    status: str
    as_of: str | None
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
    aht_ms: float | None
    avg_ring_ms: float | None
    abandon: Abandon
    compliance: Compliance
    live: LiveBlock
    performance: Performance | None
    passes: list[PassStats]
    run: int = Field(description="the current run: the last in run order")
    runs: list[RunStats] = Field(description="run 1 and every started (not withdrawn) restart, in run order")
    previous_run_stats: RunStats | None = Field(description="the run before the current one; null with one run")
    agents: Agents = Field(description="the floor behind the dialer (agent.state events, call.bridged agent_id)")
    callbacks: Callbacks
    email: EmailStats
    costs: Costs
    diagnostics: Diagnostics
