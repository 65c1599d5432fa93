"""The email message list (`GET /messages`; its CSV has the same columns): api/routes/detail.py."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.models.stats import OpenModel
from engine.views.message_detail import MESSAGE_STATUSES

MessageStatus = Literal[MESSAGE_STATUSES]  # type: ignore[valid-type]
STATUS_HELP = ("the furthest stage the message reached, later wins: sent < delivered < bounced < opened < clicked "
               "< replied < unsubscribed < complained")


def _at(event: str) -> object:
    return Field(description=f"time of the message's earliest {event} (the one /stats counts); null when none")


class EmailMessage(OpenModel):
    message_id: str
    contact_id: str | None = Field(description="the contact its earliest email.sent names; null before any")
    email: str | None = Field(description="the contact's address (from its contact.added); null when unknown")
    sent_at: str | None = _at("email.sent")
    delivered_at: str | None = _at("email.delivered")
    bounced_at: str | None = _at("email.bounced")
    opened_at: str | None = _at("email.opened")
    clicked_at: str | None = _at("email.clicked")
    replied_at: str | None = _at("email.replied")
    sentiment: Literal["positive", "neutral", "negative"] | None = Field(
        description="the sentiment of that earliest reply; null without a reply")
    unsubscribed_at: str | None = _at("email.unsubscribed")
    complained_at: str | None = _at("email.complained")
    status: MessageStatus = Field(description=STATUS_HELP)


class MessagesPage(BaseModel):
    campaign_id: str
    page: int
    limit: int
    total: int = Field(description="messages the status filter keeps (all of them without one)")
    messages: list[EmailMessage]
