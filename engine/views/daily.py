"""Daily rows (`GET /stats/daily`): per local calendar day of the campaign's zone, zeros included."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from engine.localtime import local_date
from engine.state.grid import D_COST, DAILY_FIELDS, QUARTER_HOUR

if TYPE_CHECKING:  # a type hint only: the API's read side (rows_from_quarters) must not load the write model
    from engine.state.campaign import CampaignState

MAX_DAYS = 3660


def daily_rows(state: CampaignState, start: date, end: date) -> list[dict]:
    """One row per local date in [start, end]; each fact counted on the local date of its own ts."""
    return rows_from_quarters(state.daily, state.config.current.tz, start, end)


def rows_from_quarters(quarters: dict[int, list[int]], tz: str, start: date, end: date) -> list[dict]:
    """Daily rows from UTC quarter-hour cells ``{q: [counters in DAILY_FIELDS order]}`` (what the
    flow stores for the API); a quarter-hour never straddles local midnight in any current zone."""
    if end < start:
        raise ValueError("end is before start")
    if (end - start).days >= MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days per request")
    totals: dict[date, list[int]] = {}
    for q, cell in quarters.items():
        d = local_date(q * QUARTER_HOUR, tz)
        if start <= d <= end:
            acc = totals.setdefault(d, [0] * len(DAILY_FIELDS))
            for i, v in enumerate(cell):
                acc[i] += v
    rows = []
    d = start
    while d <= end:
        acc = totals.get(d, [0] * len(DAILY_FIELDS))
        row: dict[str, Any] = {"date": d.isoformat()}
        for i, name in enumerate(DAILY_FIELDS):
            if i == D_COST:
                row["cost_usd"] = acc[i] / 1_000_000
            else:
                row[name] = acc[i]
        rows.append(row)
        d += timedelta(days=1)
    return rows
