"""Drill-down pages: contacts, calls, activity, batches (api/routes/detail.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.models.stats import OUTCOMES, _Open


class AttemptTrail(BaseModel):
    attempt_id: str
    started_at: str | None
    ended_at: str | None
    outcome: str | None
    sip_code: int | None
    sip_text: str | None
    conversation_id: str | None
    result: dict[str, Any] | None = Field(description="conversation evaluation results, null when none")


class CallbackCounts(BaseModel):
    requested: int
    pending: int = Field(description="open now: requested - completed - cancelled")
    completed: int
    cancelled: int


class Contact(_Open):
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


class Call(_Open):
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
    transcript: list[TranscriptLine]


class CallsPage(BaseModel):
    total: int = Field(description="attempts the filters keep")
    page: int
    limit: int
    callback: Literal["all", "requested", "pending", "completed", "cancelled"]
    outcome: Literal["connected", "abandoned", "machine", "busy", "no_answer", "failed", "active"] | None
    run: int | None = Field(None, description="the run filter (null: every run)")
    calls: list[Call]


class ConfigChange(BaseModel):
    field: str
    from_: Any = Field(alias="from")
    to: Any


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
