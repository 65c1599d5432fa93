"""The email message record (`GET /messages`, the messages CSV): one per message, built from its counted facts.

A message's counted fact of each type is its earliest event of that type (by ``(ts, event_id)``, as the
counts in `/stats` take it: engine.state.email), so the record's times are those facts' times and the
record is the same whatever order or repeats the events came in. It is rebuilt whenever one of them
changes (the flow writes it through the details outbox, engine.state.details).

``status`` is the furthest stage the message reached, in `MESSAGE_STATUSES` order (later wins): a message
that was opened, clicked and then complained about is ``complained``. A fact never goes away (an earlier
repeat only moves its time), so a message's status never goes back. A message whose ``email.sent`` has not
arrived (yet) still has a status: the furthest of the facts it has.

The flow stores the record with its times in epoch ms (`message_record`), and the API shows it with RFC 3339
times (`message_view`): a message changes at almost every email event, and formatting its eight times there
cost several times what building the record does; a page or a CSV row formats them once, when read.
"""

from __future__ import annotations

from engine.state.entities import Message
from engine.timefmt import format_time

# Furthest last: the record's status is the last of these the message has a fact of.
MESSAGE_STATUSES = ("sent", "delivered", "bounced", "opened", "clicked", "replied", "unsubscribed", "complained")
_FURTHEST_FIRST = tuple((f"email.{s}", s) for s in reversed(MESSAGE_STATUSES))
# Each stored time field with the event type whose counted fact it is.
_STORED_TIMES = tuple((f"{s}_ms", f"email.{s}") for s in MESSAGE_STATUSES)
# The fields the API shows, in order: each ``<stage>_at`` is the stored ``<stage>_ms`` formatted.
VIEW_FIELDS = ("message_id", "contact_id", "email", "sent_at", "delivered_at", "bounced_at", "opened_at",
               "clicked_at", "replied_at", "sentiment", "unsubscribed_at", "complained_at", "status")


def message_status(keys: dict) -> str | None:
    """The furthest stage among a message's facts (None only for a message without facts, which no record has)."""
    for etype, status in _FURTHEST_FIRST:
        if etype in keys:
            return status
    return None


def message_record(message_id: str, m: Message) -> dict:
    """The stored record: its status, the contact its counted ``email.sent`` names (null before one),
    ``<stage>_ms`` = the time of its counted fact of each type it has (``sent_ms`` also orders the sink's
    index), and the sentiment of its counted reply when it has one. Absent facts are left out, not null:
    most messages have three or four of the eight, and Redis keeps every record."""
    keys = m.keys
    rec = {"message_id": message_id, "contact_id": m.contact, "status": message_status(keys)}
    for field, etype in _STORED_TIMES:
        k = keys.get(etype)
        if k is not None:
            rec[field] = k[0]
    if m.reply is not None:
        rec["sentiment"] = m.reply["sentiment"]
    return rec


def message_view(rec: dict, email: str | None = None) -> dict:
    """A stored record as the API shows it (`VIEW_FIELDS`): times in RFC 3339 (ms, UTC), and ``email``, the
    contact's address, which no email event carries (the caller reads it from the contact's profile)."""
    out = {"message_id": rec["message_id"], "contact_id": rec.get("contact_id"), "email": email}
    for field, _etype in _STORED_TIMES:
        ms = rec.get(field)
        out[field[:-3] + "_at"] = None if ms is None else format_time(ms)
    out["sentiment"] = rec.get("sentiment")
    out["status"] = rec.get("status")
    return {f: out[f] for f in VIEW_FIELDS}
