"""Reads of the stats bodies the flow stores (one serialised SPEC §3 body per campaign) and of the
per-campaign records next to them: batches, daily quarter-hour cells, email replies."""

from __future__ import annotations

from datetime import date, timedelta

import orjson
from fastapi.exceptions import HTTPException

from api.read_model import dec, hscan
from api.read_model.multi_key import mget
from engine.storage.keys import (
    batch_details_key,
    daily_key,
    org_campaigns_key,
    replies_index_key,
    replies_key,
    stats_key,
)
from engine.views.daily import MAX_DAYS, rows_from_quarters
from engine.vocab import EXHAUSTED_CONTACT_STATUSES as EXHAUSTED

CHUNK = 500


def not_found(camp: str) -> HTTPException:
    return HTTPException(404, f"campaign {camp!r} not found")


async def stats_bytes(r, org: str, camp: str) -> bytes:
    """The stored /stats body as is (served without a parse); 404 when the campaign is unknown."""
    body = await r.get(stats_key(org, camp))
    if body is None:
        raise not_found(camp)
    return body


async def stats_body(r, org: str, camp: str) -> dict:
    return orjson.loads(await stats_bytes(r, org, camp))


async def ensure_campaign(r, org: str, camp: str) -> None:
    """404 unless the campaign has a stats body (cheaper than reading it)."""
    if not await r.exists(stats_key(org, camp)):
        raise not_found(camp)


async def org_stats(r, org: str) -> list[tuple[str, dict]]:
    """(campaign id, stats body) of every campaign of the org, by id."""
    ids = sorted(dec(x) for x in await r.smembers(org_campaigns_key(org)))
    out = []
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        bodies = await mget(r, [stats_key(org, c) for c in part])
        for c, b in zip(part, bodies):
            if b is not None:
                out.append((c, orjson.loads(b)))
    return out


def summary(body: dict) -> dict:
    """One row of GET /v1/campaigns."""
    return {"campaign_id": body["campaign_id"], "name": body.get("name"), "channel": body.get("channel"),
            "kind": body.get("kind"), "status": body.get("status"), "as_of": body.get("as_of"),
            "live": body.get("live")}


def detail(body: dict) -> dict:
    """GET /v1/campaigns/{id}: the summary with the org and the config."""
    out = summary(body)
    out["org_id"] = body["org_id"]
    out["config"] = body.get("config")
    return out


# ---------------------------------------------------------------- batches

def contact_buckets(by_status: dict) -> dict:
    """The four contact buckets of a status count (as the engine's stats body has them, engine/views/snapshot.py)."""
    return {"pending": by_status["pending"] + by_status["retrying"] + by_status["followup_scheduled"],
            "in_progress": by_status["dispatched"] + by_status["in_progress"], "completed": by_status["completed"],
            "exhausted": sum(by_status[s] for s in EXHAUSTED)}


async def batches_page(r, org: str, camp: str, *, status: str | None, skip: int, limit: int) -> dict:
    body = await stats_body(r, org, camp)
    batches = [orjson.loads(raw) async for _k, raw in hscan(r, batch_details_key(org, camp), CHUNK)]
    if status is not None:
        batches = [b for b in batches if b["status"] == status]
    batches.sort(key=lambda b: b["batch_id"])
    for b in batches:
        b["contacts"]["buckets"] = contact_buckets(b["contacts"]["by_status"])
    return {"total": len(batches), "skip": skip, "limit": limit, "batch_counts": body.get("batch_counts"),
            "batches": batches[skip:skip + limit]}


# ---------------------------------------------------------------- daily

async def daily_cells(r, org: str, camp: str) -> dict[int, list[int]]:
    """The flow's daily counters: {UTC quarter-hour: [counters in engine.state.campaign.DAILY_FIELDS order]}."""
    return {int(q): orjson.loads(v) async for q, v in hscan(r, daily_key(org, camp), CHUNK)}


async def daily_stats(r, org: str, camp: str, start: date, end: date) -> dict:
    """Every local day of [start, end] in the campaign's zone (engine.views.daily); cut to MAX_DAYS days."""
    body = await stats_body(r, org, camp)
    tw = body["config"]["time_window"]
    tz = tw["tz"] if tw else "UTC"
    # an empty range (end < start) has no days; a longer one than MAX_DAYS is cut (and says so)
    truncated = end >= start and (end - start).days >= MAX_DAYS
    last = start + timedelta(days=MAX_DAYS - 1) if truncated else end
    try:
        rows = rows_from_quarters(await daily_cells(r, org, camp), tz, start, last) if end >= start else []
    except (OverflowError, ValueError):  # days at the ends of the calendar (year 1 / 9999) in the zone
        rows = []
    out = {"campaign_id": camp, "tz": tz, "days": rows}
    if truncated:
        out["truncated_to_days"] = MAX_DAYS
    return out


# ---------------------------------------------------------------- replies

async def replies_page(r, org: str, camp: str, *, sentiment: str | None, page: int, per_page: int) -> dict:
    """Email replies newest first (the earliest reply of each message), optionally of one sentiment."""
    ids = [dec(x) for x in await r.zrevrange(replies_index_key(org, camp), 0, -1)]
    records = []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        records += [orjson.loads(v) for v in await r.hmget(replies_key(org, camp), chunk) if v]
    if sentiment is not None:
        records = [x for x in records if x["sentiment"] == sentiment]
    first = (page - 1) * per_page
    return {"total": len(records), "page": page, "per_page": per_page, "replies": records[first:first + per_page]}


def agents_page(body: dict, *, state: str | None, limit: int, offset: int) -> dict:
    """A page of the body's `agents.list` (optionally of one state), with the counts by state."""
    agents = body["agents"]
    rows = [a for a in agents["list"] if state is None or a["state"] == state]
    return {"campaign_id": body["campaign_id"], "as_of": body["as_of"], "by_state": agents["by_state"],
            "state": state, "total": len(rows), "limit": limit, "offset": offset,
            "agents": rows[offset:offset + limit]}
