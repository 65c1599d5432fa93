"""POST /v1/events (api/routes/ingest.py)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, Field


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
