"""/v1/webhooks bodies (api/routes/webhooks.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.webhook_policy import URL_PATTERN
from api.webhook_store import SECRET_PATTERN


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=URL_PATTERN, max_length=2200,
                     description="http(s) URL the alerts are POSTed to (no credentials, no fragment)")
    secret: str | None = Field(None, pattern=SECRET_PATTERN,
                                  description="signing secret `whsec_<base64>`; omit to have one generated")
    kinds: list[Literal["level", "forecast", "calling_hours", "abandon_redial", "complaint_level"]] | None = Field(
        None, max_length=5, description="alert kinds to send; omitted or empty: every kind")


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
    status_code: int | None = Field(description="the endpoint's HTTP status; null when no response")
    error: str | None = Field(description="why there was no response (timeout, connection, policy)")
    latency_ms: int
    state: Literal["delivered", "retrying", "gave_up"]
    next_retry_at: str | None


class PendingDelivery(BaseModel):
    alert_id: str
    attempts: int = Field(description="attempts made so far")
    due_at: str = Field(description="when the next attempt is due (or running)")


class DeliveryLog(BaseModel):
    webhook_id: str
    pending: list[PendingDelivery]
    attempts: list[DeliveryAttempt] = Field(description="logged attempts, newest first")
