"""POST /v1/events (api/routes/ingest.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Rejection(BaseModel):
    index: int = Field(description="0-based position of the event in the body")
    code: str = Field(description="malformed, missing_field, invalid_type, invalid_value, unknown_type, "
                                  "too_large, future, forbidden_org")
    field: str | None
    reason: str


class LateNotice(BaseModel):
    index: int = Field(description="0-based position of the event in the body")
    reason: str = Field(description="how far behind the campaign's watermark it is, and the lateness bound")


class IngestResult(BaseModel):
    accepted: int = Field(description="events appended (the late ones included)")
    duplicates: int
    rejected: list[Rejection]
    late: list[LateNotice] = Field(description="accepted events that the campaign's watermark (as the flow last "
                                               "stored it, moved by this body's own events) already puts past the "
                                               "lateness bound: the flow will not apply them but count them in "
                                               "diagnostics.late and dead-letter them with reason 'late'. Advice, "
                                               "not the verdict: see docs/api.md, Late events")
