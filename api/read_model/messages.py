"""The email message list (`GET /messages`) and its CSV (`/messages.csv`): the message records the flow writes
(engine/views/message_detail.py, keys in engine/storage/keys.py), ordered by sent time, shown as `message_view` shows them.

The flow keeps one sorted set of message ids scored by sent time (ms; 0 before the message's `email.sent`)
and one per status, so a page is one ZRANGE and its total one ZCARD, filtered or not; the CSV walks the
index CHUNK ids at a time with a score cursor (constant memory whatever the campaign's size). A message's
``email`` is its contact's address, read from the contact's profile here: no email event carries it.
"""

from __future__ import annotations

import orjson

from api.read_model import dec
from api.read_model.exports import csv_line
from engine.storage.keys import contact_profiles_key, message_details_key, message_index_key
from engine.views.message_detail import VIEW_FIELDS, message_view

CHUNK = 500
COLUMNS = list(VIEW_FIELDS)


async def views(r, org: str, camp: str, raws: list) -> list[dict]:
    """The stored records (None: gone) as the API shows them, each with its contact's address from the
    contact's profile (null when unknown)."""
    recs = [orjson.loads(raw) for raw in raws if raw is not None]
    need = sorted({rec["contact_id"] for rec in recs if rec.get("contact_id")})
    emails = {}
    if need:
        for cid, raw in zip(need, await r.hmget(contact_profiles_key(org, camp), need)):
            if raw is not None:
                emails[cid] = orjson.loads(raw).get("email")
    return [message_view(rec, emails.get(rec.get("contact_id"))) for rec in recs]


async def messages_page(r, org: str, camp: str, *, status: str | None, page: int, limit: int, order: str) -> dict:
    """One page of messages (of one status when given) by sent time, newest first unless ``order`` is asc."""
    idx = message_index_key(org, camp, status)
    start = (page - 1) * limit
    pipe = r.pipeline(transaction=False)
    pipe.zcard(idx)
    (pipe.zrevrange if order == "desc" else pipe.zrange)(idx, start, start + limit - 1)
    total, found = await pipe.execute()
    ids = [dec(x) for x in found]
    messages = await views(r, org, camp, await r.hmget(message_details_key(org, camp), ids)) if ids else []
    return {"campaign_id": camp, "page": page, "limit": limit, "total": total, "messages": messages}


async def iter_messages(r, org: str, camp: str, status: str | None = None):
    """Message records (of one status when given) by sent time, oldest first (ties by id), CHUNK at a time:
    a score cursor, with an offset among the ids of the score it stopped at."""
    idx, details = message_index_key(org, camp, status), message_details_key(org, camp)
    last_score, at_score, current = "-inf", 0, None
    while True:
        rows = await r.zrangebyscore(idx, last_score, "+inf", start=at_score, num=CHUNK, withscores=True)
        if not rows:
            return
        for _m, score in rows:
            if score == current:
                at_score += 1
            else:
                current, last_score, at_score = score, repr(score), 1
        for rec in await views(r, org, camp, await r.hmget(details, [dec(m) for m, _s in rows])):
            yield rec
        if len(rows) < CHUNK:
            return


async def messages_csv(r, org: str, camp: str, status: str | None = None):
    """The CSV lines of the message list: a header, then one row per message by sent time."""
    yield csv_line(COLUMNS)
    async for rec in iter_messages(r, org, camp, status):
        yield csv_line([rec.get(c) for c in COLUMNS])
