"""Drill-down pages: contacts, calls, activity, batches (api/routes/detail.py)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from api.models.stats import OUTCOMES, _Open


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
