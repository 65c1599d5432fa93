"""Drill-down pages: contacts, calls, activity, batches (api/routes/detail.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from api.models.stats import OUTCOMES, AbandonPeriod, OpenModel, StatsConfig
from engine.vocab import CHANNELS

ABANDON_REASON_HELP = ("why the attempt is `abandoned` (null otherwise): \"never bridged\", or \"bridged N ms "
                       "after the connection start (threshold T ms)\"")
VIOLATIONS_HELP = "the compliance guards the attempt violates now (SPEC §3 Compliance guards)"


class AttemptTrail(BaseModel):
    attempt_id: str
    started_at: str | None
    ended_at: str | None
    outcome: str | None
    agent_id: str | None = Field(None, description="the agent or bot that took the call; null when none")
    handle_ms: int | None = Field(None, description="end − bridge + wrap of a connected call; null otherwise")
    sip_code: int | None
    sip_text: str | None
    conversation_id: str | None
    result: dict[str, Any] | None = Field(description="conversation evaluation results, null when none")
    abandon_reason: str | None = Field(None, description=ABANDON_REASON_HELP)
    violations: list[Literal["calling_hours", "abandon_redial"]] = Field([], description=VIOLATIONS_HELP)


class CallbackCounts(BaseModel):
    requested: int
    pending: int = Field(description="open now: requested - completed - cancelled")
    completed: int
    cancelled: int


class Contact(OpenModel):
    contact_id: str
    status: str
    retry_number: int | None
    status_at: str | None = Field(description="time of the contact's latest status event")
    attempts_dialed: int
    batch_id: str | None
    callbacks: CallbackCounts
    phone_number: str | None
    email: str | None
    variables: dict[str, Any] | None = Field(description="CRM fields from contact.added")
    added_at: str | None
    attempts: list[AttemptTrail]


class ContactsPage(BaseModel):
    total: int
    limit: int
    offset: int
    status: str | None
    contact_id: str | None = Field(description="the contact_id filter; with it the page holds 0 or 1 contact")
    contacts: list[Contact]


class TranscriptLine(BaseModel):
    ts: str
    role: str
    content: str


class Call(OpenModel):
    attempt_id: str
    contact_id: str | None
    direction: str
    from_: str | None = Field(alias="from", description="caller id: not part of the events, always null")
    to: str | None
    run: int | None = Field(None, description="the run the attempt belongs to (by its dial time); null "
                                                 "when never dialed")
    pass_: int | None = Field(alias="pass")
    follow_up: bool | None
    started_at: str | None
    answered_at: str | None
    bridged_at: str | None
    agent_id: str | None = Field(None, description="the agent or bot that took the call (its counted "
                                                   "call.bridged's agent_id); null when none")
    ended_at: str | None
    amd_result: Literal["human", "machine", "unknown"] | None
    outcome: Literal[OUTCOMES] | None  # type: ignore[valid-type]
    result: str | None = Field(description="the outcome once ended, else in_progress or ringing")
    sip_code: int | None
    sip_text: str | None
    ring_ms: int | None
    call_length_ms: int | None
    handle_ms: int | None
    wrap_ms: int | None
    conversation_id: str | None
    recording_url: str | None
    evaluation: dict[str, Any] | None = Field(description="conversation evaluation results, null when none")
    violations: list[Literal["calling_hours", "abandon_redial"]] = Field([], description=VIOLATIONS_HELP)
    dial_tz: str | None = Field(None, description="the zone its dial is judged in (the contact's, else the "
                                                  "campaign's); null when never dialed")
    dial_local_time: str | None = Field(None, description="the dial's local time of day in dial_tz, HH:MM:SS")
    redial_after_abandon_at: str | None = Field(None, description="an abandon_redial violation: the end of the "
                                                                  "latest abandoned call of the contact it followed")
    abandon_reason: str | None = Field(None, description=ABANDON_REASON_HELP)
    transcript: list[TranscriptLine]


class CallsPage(BaseModel):
    total: int = Field(description="attempts the filters keep")
    page: int
    limit: int
    callback: Literal["all", "requested", "pending", "completed", "cancelled"]
    outcome: Literal["connected", "abandoned", "machine", "busy", "no_answer", "failed", "active"] | None
    run: int | None = Field(None, description="the run filter (null: every run)")
    violation: Literal["calling_hours", "abandon_redial"] | None = Field(None, description="the violation filter")
    calls: list[Call]


# the type of each campaign config field, as the /stats body shows it (engine.state.config.DEFAULTS lists the fields;
# tests/test_openapi_surface.py checks that every one is here)
CONFIG_FIELD_TYPES: dict[str, Any] = {"name": str | None, "channel": Literal[CHANNELS], "kind": str | None,
                                      **{f: info.annotation for f, info in StatsConfig.model_fields.items()}}


def _config_change(field: str, value: Any) -> type[BaseModel]:
    """The change of one config field: ``from`` and ``to`` typed as the field is (``from`` null when unset)."""
    return create_model(
        "ConfigChange" + "".join(w.title() for w in field.split("_")), __base__=BaseModel,
        __doc__=f"a change of `{field}` (activity log, kinds created and config)",
        field=(Literal[field], ...),
        from_=(value | None, Field(alias="from", description="the value before (on `created`: the default)")),
        to=(value, Field(description="the value after")))


ConfigChange = Annotated[Union[tuple(_config_change(f, t) for f, t in CONFIG_FIELD_TYPES.items())],  # noqa: UP007
                         Field(discriminator="field")]


class ActivityEntry(BaseModel):
    at: str = Field(description="event time of the entry (an alert: the time of the event that raised it)")
    kind: Literal["created", "config", "status", "paused", "resumed", "batch_status", "alert"]
    summary: str
    event_id: str | None = Field(description="the event behind the entry (null for an alert)")
    alert_id: str | None
    batch_id: str | None
    from_: str | None = Field(alias="from", description="status or alert level before")
    to: str | None = Field(description="status or alert level after")
    changes: list[ConfigChange] | None = Field(description="created / config: the fields that changed")
    alert: dict[str, Any] | None = Field(description="the alert record (kind alert)")


class ActivityPage(BaseModel):
    total: int
    page: int
    limit: int
    kind: str | None
    entries: list[ActivityEntry]


class Batch(BaseModel):
    batch_id: str | None
    status: str | None
    contacts: dict[str, Any]
    retry_breakdown: dict[str, int]


class BatchesPage(BaseModel):
    total: int
    skip: int
    limit: int
    batch_counts: dict[str, int]
    batches: list[Batch]


class FollowedCall(BaseModel):
    attempt_id: str | None = Field(description="the abandoned call (null when its record is not found)")
    ended_at: str


class ViolatingAttempt(BaseModel):
    attempt_id: str
    contact_id: str | None
    dialed_at: str | None
    tz: str | None = Field(description="the zone the dial is judged in")
    local_time: str | None = Field(description="the dial's local time of day there, HH:MM:SS")
    outcome: str | None
    followed: FollowedCall | None = Field(description="abandon_redial: the abandoned call it followed (the "
                                                      "latest in the redial hours); null for calling_hours")


class CallingHoursRecord(BaseModel):
    start: str | None
    end: str | None
    tz: str = Field(description="the campaign's zone, used for contacts without one")
    violations: int
    last_violation_at: str | None
    attempts: list[ViolatingAttempt]


class AbandonRedialRecord(BaseModel):
    hours: int | None
    violations: int
    last_violation_at: str | None
    attempts: list[ViolatingAttempt]


class ComplianceRecord(BaseModel):
    campaign_id: str
    as_of: str | None
    abandon_ceiling: float | None
    periods: list[AbandonPeriod] = Field(description="as /stats abandon.periods")
    calling_hours: CallingHoursRecord
    abandon_redial: AbandonRedialRecord
