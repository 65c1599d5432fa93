"""Org-wide reads: usage (lifetime or one UTC month/day), the latest alerts, benchmarks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
from fastapi.exceptions import RequestValidationError

from api.plans import plan_block, read_plan
from api.read_model import dec
from api.read_model.campaigns import daily_cells, org_stats
from engine.state.grid import D_CONNECTED, D_COST, D_DIALS, D_SENT, QUARTER_HOUR
from engine.storage.keys import ALERT_FIELD, org_alerts_stream

CHUNK = 500
USAGE_FIGURES = ("dials", "connected", "emails_sent", "cost_usd", "contacts")


def period_bounds(period: str) -> tuple[int | None, int | None]:
    """[lo, hi) in UTC ms of ``all`` (None, None), a month ``YYYY-MM`` or a day ``YYYY-MM-DD``."""
    if period == "all":
        return None, None
    try:
        if len(period) == 7:
            d0 = date(int(period[:4]), int(period[5:7]), 1)
            d1 = (d0.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            d0 = date.fromisoformat(period)
            d1 = d0 + timedelta(days=1)
    except OverflowError:  # the last month/day of year 9999: up to the end of the calendar
        d1 = date.max
    except ValueError:
        raise RequestValidationError([{"loc": ("query", "period"), "msg": "not a valid month or date",
                                       "type": "value_error"}]) from None
    lo = int(datetime(d0.year, d0.month, d0.day, tzinfo=UTC).timestamp() * 1000)
    hi = int(datetime(d1.year, d1.month, d1.day, tzinfo=UTC).timestamp() * 1000)
    return lo, hi


async def _usage_row(r, org: str, camp: str, body: dict, lo: int | None, hi: int | None) -> dict:
    """Lifetime figures from the stats body; a period's from the daily quarter-hour cells (their
    layout: engine.state.campaign.DAILY_FIELDS)."""
    row = {"campaign_id": camp, "channel": body.get("channel")}
    if lo is None:
        row.update(dials=body["attempts"]["total"], connected=body["outcomes"]["connected"],
                   emails_sent=body["email"]["emails_sent"], cost_usd=body["costs"]["total_usd"],
                   contacts=body["contacts"]["total"])
        return row
    cells = [c for q, c in (await daily_cells(r, org, camp)).items()
             if lo // QUARTER_HOUR <= q < hi // QUARTER_HOUR]
    row.update(dials=sum(c[D_DIALS] for c in cells), connected=sum(c[D_CONNECTED] for c in cells),
               emails_sent=sum(c[D_SENT] for c in cells),
               cost_usd=sum(c[D_COST] for c in cells) / 1_000_000, contacts=None)
    return row


def _total(rows: list[dict], figure: str):
    vals = [x[figure] for x in rows]
    if any(v is None for v in vals):
        return None
    return round(sum(vals), 6) if figure == "cost_usd" else sum(vals)


async def usage(r, org: str, period: str) -> dict:
    """GET /v1/usage: per campaign and in total, with the org's plan block."""
    rows = await org_stats(r, org)
    lo, hi = period_bounds(period)
    per = [await _usage_row(r, org, camp, b, lo, hi) for camp, b in rows]
    out = {"org_id": org, "period": period,
           "from": None if lo is None else datetime.fromtimestamp(lo / 1000, UTC).isoformat(),
           "to": None if hi is None else datetime.fromtimestamp(hi / 1000, UTC).isoformat(),
           "campaigns": len(per),
           "totals": {k: _total(per, k) for k in USAGE_FIGURES},
           "by_campaign": per}
    if lo is not None:
        out["note"] = "per-period figures count facts by their event time in UTC; contacts are lifetime-only"
    out["plan"] = plan_block(await read_plan(r, org), out["totals"]["emails_sent"])
    return out


async def recent_alerts(r, org: str, *, limit: int, campaign_id: str | None) -> list[dict]:
    """The org's latest alerts (of one campaign when given), newest first, each with its stream id."""
    out = []
    last = "+"
    while len(out) < limit:
        entries = await r.xrevrange(org_alerts_stream(org), last, "-", count=CHUNK)
        for sid, fields in entries:
            raw = fields.get(ALERT_FIELD)
            if raw is None:
                continue
            rec = orjson.loads(raw)
            if campaign_id is None or rec.get("campaign_id") == campaign_id:
                rec["stream_id"] = dec(sid)
                out.append(rec)
                if len(out) >= limit:
                    break
        if len(entries) < CHUNK:
            break
        last = "(" + dec(entries[-1][0])
    return out


async def org_benchmarks(r, org: str, kind: str) -> dict:
    """Per rate: mean and quartiles over the org's campaigns of ``kind`` (engine/views/peer_percentiles.py)."""
    from engine.views.peer_percentiles import benchmarks  # numpy: loaded on first use, not at API start

    bodies = [b for _c, b in await org_stats(r, org)]
    return benchmarks(bodies, org, kind)
