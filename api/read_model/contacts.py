"""Reads of the contact and attempt detail the flow writes (engine/storage/keys.py, docs/flow.md): contact
pages, their attempts trails, and the campaign's activity log.

A contact is kept in three places, so the flow never holds a contact's profile
or attempt list in memory: its state record (status, retry, attempts dialed),
its profile (what its winning `contact.added` said) and its trail (a sorted
set of ``contact:attempt`` members). These helpers put them back together.
"""

from __future__ import annotations

from urllib.parse import unquote

import orjson

from api.read_model import dec
from engine.storage.keys import (
    ALERT_FIELD,
    activity_key,
    alerts_stream,
    attempt_details_key,
    contact_attempts_key,
    contact_details_key,
    contact_index_key,
    contact_profiles_key,
    key_part,
)
from engine.views.activity import activity_log, callback_summary

CHUNK = 500
PROFILE_FIELDS = ("batch_id", "phone_number", "email", "variables", "added_at")


def trail_entry(att: dict) -> dict:
    return {"attempt_id": att["attempt_id"], "started_at": att.get("started_at"),
            "ended_at": att.get("ended_at"), "outcome": att.get("outcome"), "agent_id": att.get("agent_id"),
            "handle_ms": att.get("handle_ms"), "sip_code": att.get("sip_code"),
            "sip_text": att.get("sip_text"), "conversation_id": att.get("conversation_id"),
            "result": att.get("evaluation"), "abandon_reason": att.get("abandon_reason"),
            "violations": att.get("violations") or []}


def _loads(raw):
    return orjson.loads(raw) if raw is not None else None


async def contacts_with_trails(r, org: str, camp: str, ids: list[str]) -> list[dict]:
    """Contact records (state + profile) with their attempts trail, ordered by dial time."""
    if not ids:
        return []
    pipe = r.pipeline(transaction=False)
    pipe.hmget(contact_details_key(org, camp), ids)
    pipe.hmget(contact_profiles_key(org, camp), ids)
    trail_key = contact_attempts_key(org, camp)
    for cid in ids:
        prefix = key_part(cid).encode()
        pipe.zrangebylex(trail_key, b"[" + prefix + b":", b"(" + prefix + b";")  # ';' follows ':'
    states, profiles, *trails = await pipe.execute()
    contacts, attempt_ids = [], []
    for cid, state, profile, members in zip(ids, states, profiles, trails):
        rec = {"contact_id": cid, "status": "pending", "retry_number": None, "status_at": None,
               "attempts_dialed": 0, "callbacks": callback_summary(None)}
        rec.update(_loads(state) or {})
        prof = _loads(profile) or {}
        for f in PROFILE_FIELDS:
            rec[f] = prof.get(f)
        aids = [unquote(m.decode().partition(":")[2]) for m in members]
        rec["attempts"] = aids
        attempt_ids += aids
        contacts.append(rec)
    attempts: dict[str, dict] = {}
    for i in range(0, len(attempt_ids), CHUNK):
        part = attempt_ids[i:i + CHUNK]
        for aid, raw in zip(part, await r.hmget(attempt_details_key(org, camp), part)):
            if raw is not None:
                attempts[aid] = orjson.loads(raw)
    for rec in contacts:
        atts = [attempts.get(a) or {"attempt_id": a} for a in rec["attempts"]]
        atts.sort(key=lambda a: (a.get("started_ms") is None, a.get("started_ms") or 0, a["attempt_id"]))
        rec["attempts"] = [trail_entry(a) for a in atts]
    return contacts


async def fill_numbers(r, org: str, camp: str, attempts: list[dict]) -> list[dict]:
    """An attempt whose dial named no number was placed to its contact's number (from the profile)."""
    need = sorted({a["contact_id"] for a in attempts if a.get("to") is None and a.get("contact_id")})
    if need:
        phones = {}
        for cid, raw in zip(need, await r.hmget(contact_profiles_key(org, camp), need)):
            if raw is not None:
                phones[cid] = orjson.loads(raw).get("phone_number")
        for a in attempts:
            if a.get("to") is None and a.get("contact_id") in phones:
                a["to"] = phones[a["contact_id"]]
    return attempts


async def activity_entries(r, org: str, camp: str) -> list[dict]:
    """The campaign's activity log, newest first: its stored campaign/batch events folded at read time,
    with the records of its alert stream (capped by the flow, so bounded)."""
    sources = []
    cursor = 0
    while True:
        cursor, items = await r.hscan(activity_key(org, camp), cursor, count=CHUNK)
        sources += [orjson.loads(v) for v in items.values()]
        if not cursor:
            break
    alerts, last = [], "-"
    while True:
        rows = await r.xrange(alerts_stream(org, camp), last, "+", count=CHUNK)
        alerts += [orjson.loads(f[ALERT_FIELD]) for _sid, f in rows if ALERT_FIELD in f]
        if len(rows) < CHUNK:
            break
        sid = rows[-1][0]
        last = "(" + (sid.decode() if isinstance(sid, bytes) else sid)
    return activity_log(sources, alerts)


async def contacts_page(r, org: str, camp: str, *, status: str | None, contact_id: str | None,
                        limit: int, offset: int) -> dict:
    """Contacts ordered by id (of one status when given), or the one ``contact_id``."""
    idx = contact_index_key(org, camp, status)
    if contact_id is not None:  # a filter like status: an unknown contact is an empty page, not a 404
        known = await r.zscore(idx, contact_id) is not None
        total, ids = int(known), [contact_id] if known and offset == 0 else []
    else:
        total = await r.zcard(idx)
        ids = [dec(x) for x in await r.zrange(idx, offset, offset + limit - 1)]
    contacts = await contacts_with_trails(r, org, camp, ids)
    return {"total": total, "limit": limit, "offset": offset, "status": status, "contact_id": contact_id,
            "contacts": contacts}


async def activity_page(r, org: str, camp: str, *, kind: str | None, page: int, limit: int) -> dict:
    entries = await activity_entries(r, org, camp)
    if kind is not None:
        entries = [e for e in entries if e["kind"] == kind]
    first = (page - 1) * limit
    return {"total": len(entries), "page": page, "limit": limit, "kind": kind,
            "entries": entries[first:first + limit]}
