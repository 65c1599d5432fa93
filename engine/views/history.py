"""A campaign's recent history at one point a minute, so a chart opened now starts with the last hour (issue 24).

The flow builds the `/stats` body for every frame; `history_entry` turns that body into a compact point
(a dozen figures, ~300 bytes of JSON) keyed by the minute of the body's ``as_of``. The sink keeps one point
per minute in a bounded sorted set (`engine.storage.keys.history_key`): a later frame of the same minute replaces the
point, so the point of a minute is its last frame's, and a replayed frame writes the same point again.
Pure functions of the body: the step computes the point from the dict it has just built, the sink writes
bytes without decoding anything.
"""

from __future__ import annotations

import orjson

from engine.state.grid import MINUTE
from engine.timefmt import format_time, parse_time

RESOLUTION_S = 60
HISTORY_MINUTES = 1440  # kept per campaign: the newest 24 h of minutes (the API serves up to this many)
DEFAULT_MINUTES = 60


def _abandon(window: dict) -> dict:
    return {"abandoned": window["abandoned"], "human_answered": window["human_answered"], "rate": window["rate"]}


def history_point(body: dict) -> dict:
    """The point of a `/stats` body: ``t`` is the start of the minute of its ``as_of``; the figures are the
    body's own (``live.*``, ``active_calls``, ``abandon.windows.today``/``30d``, ``abandon.ceiling``)."""
    return _point(body, parse_time(body["as_of"], "as_of") // MINUTE)


def _point(body: dict, minute: int) -> dict:
    live, abandon = body["live"], body["abandon"]
    return {
        "t": format_time(minute * MINUTE),
        "dials_per_sec": live["dials_per_sec"],
        "connected_per_hour": live["connected_per_hour"],
        "calls_per_min": live["calls_per_min"],
        "active_calls": body["active_calls"],
        "waiting_for_agent": live["waiting_for_agent"],
        "pending": live["pending"],
        "abandon_today": _abandon(abandon["windows"]["today"]),
        "abandon_30d": _abandon(abandon["windows"]["30d"]),
        "ceiling": abandon["ceiling"],
    }


def history_entry(body: dict) -> tuple[int, bytes] | None:
    """``(epoch minute, the point as JSON)`` of a body, the score and member the sink stores; None for a
    body without ``as_of`` (a campaign with no event time yet)."""
    as_of = body.get("as_of")
    if as_of is None:
        return None
    minute = parse_time(as_of, "as_of") // MINUTE
    return minute, orjson.dumps(_point(body, minute))


def recent(entries: list[tuple[int, bytes]], minutes: int) -> list[bytes]:
    """The points (ascending ``(minute, point)`` pairs) within ``minutes`` of the newest one: the minutes
    ``newest - minutes + 1 .. newest`` (a minute without a frame has no point: gaps stay gaps)."""
    if not entries:
        return []
    newest = entries[-1][0]
    return [p for m, p in entries if m > newest - minutes]
