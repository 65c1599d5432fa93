"""Per-contact and per-attempt detail records (for the contacts, calls and report endpoints).

The flow writes these to Redis whenever an entity changed; they are plain
JSON-able dicts built from the entity's current facts.
"""

from __future__ import annotations

from engine.state.entities import Attempt, Batch, Message
from engine.storage.contact_table import NO_TS, ContactTable
from engine.timefmt import format_time
from engine.views.activity import callback_summary
from engine.vocab import CONTACT_STATUSES

SIP_TEXT = {
    200: "Answered",
    404: "Number not found",
    408: "No answer (rang out)",
    480: "Temporarily unavailable",
    486: "Line busy",
    487: "Cancelled before answer",
    503: "Service unavailable",
    600: "Busy everywhere",
    603: "Declined",
}


def sip_text(code: int | None) -> str | None:
    if code is None:
        return None
    return SIP_TEXT.get(code, f"SIP {code}")


def _t(key):
    return None if key is None else format_time(key[0])


def attempt_record(attempt_id: str, a: Attempt) -> dict:
    """``to`` is the number the dial names; when it names none, the API fills in the contact's."""
    dialed = a.dial[0] if a.dial else None
    answered = a.ans[0] if a.ans else None
    bridged = a.bridge[0] if a.bridge else None
    ended = a.end[0] if a.end else None
    to = a.phone_number
    return {
        "attempt_id": attempt_id,
        "contact_id": a.contact,
        "direction": "outbound",
        "from": None,  # the caller id is not part of the event schema
        "to": to,
        "pass": a.pass_no if a.dial else None,
        "follow_up": a.follow_up,
        "started_at": _t(a.dial),
        "answered_at": _t(a.ans),
        "bridged_at": _t(a.bridge),
        "agent_id": a.agent,
        "ended_at": _t(a.end),
        "started_ms": dialed,
        "amd_result": a.amd_result,
        "outcome": a.outcome,
        "result": a.outcome if a.end else ("in_progress" if a.ans else "ringing" if a.dial else None),
        "sip_code": a.sip,
        "sip_text": sip_text(a.sip),
        "ring_ms": answered - dialed if answered is not None and dialed is not None else None,
        "call_length_ms": ended - (answered if answered is not None else dialed)
        if ended is not None and (answered is not None or dialed is not None) else None,
        "handle_ms": ended - bridged + a.wrap if a.outcome == "connected" and ended is not None and bridged is not None else None,
        "wrap_ms": a.wrap if a.end else None,
        "conversation_id": a.conversation_id,
        "recording_url": a.recording_url,
        "evaluation": a.eval_results,
    }


# Detail-only fields of an attempt: an unsealed attempt (engine.storage.sealed) no longer knows them.
DETAIL_ONLY = ("to", "conversation_id", "recording_url", "evaluation")


def attempt_patch(attempt_id: str, a: Attempt) -> dict:
    """The record of an unsealed attempt without the detail-only fields it does not know: the
    sink merges it into the stored record (fields given here win, the others stay)."""
    rec = attempt_record(attempt_id, a)
    for f in DETAIL_ONLY:
        if rec[f] is None:
            del rec[f]
    return rec


def contact_record(contact_id: str, t: ContactTable, row: int) -> dict:
    """The contact's state; its profile (`profile_record`) and attempt trail are kept beside it."""
    status_ts = t.status_ts[row]
    return {
        "contact_id": contact_id,
        "status": CONTACT_STATUSES[t.status[row]],
        "retry_number": t.retry[row] or None,
        "status_at": format_time(status_ts) if status_ts != NO_TS else None,
        "attempts_dialed": t.dialed[row],
        "callbacks": callback_summary(t.callback_fold(row)),
    }


def profile_record(ev: dict) -> dict:
    """What the contact's winning (earliest) contact.added says about it, written once to the detail
    store: it never has to stay in the flow's memory."""
    return {
        "contact_id": ev["contact_id"],
        "batch_id": ev.get("batch_id"),
        "phone_number": ev.get("phone_number"),
        "email": ev.get("email"),
        "variables": ev.get("variables"),
        "added_at": format_time(ev["ts"]),
    }


def batch_record(batch_id: str, b: Batch) -> dict:
    """Per-batch counters (SPEC §3: contacts by status and retry breakdown per batch)."""
    by_status = {st: b.by_status[st] for st in CONTACT_STATUSES}
    return {
        "batch_id": batch_id,
        "status": b.status,
        "contacts": {"total": sum(by_status.values()), "by_status": by_status},
        "retry_breakdown": {f"retry_{n}": k for n, k in sorted(b.retry.items()) if k},
    }


def reply_record(message_id: str, m: Message) -> dict:
    """An email reply (`GET /replies`): the earliest `email.replied` of the message."""
    r = m.reply
    return {
        "message_id": message_id,
        "contact_id": m.contact,
        "sentiment": r["sentiment"],
        "preview": r["preview"],
        "name": r["name"],
        "company": r["company"],
        "from_email": r["from_email"],
        "replied_at": format_time(r["ts"]),
        "replied_ms": r["ts"],
    }
