"""Route raw ingest entries to their campaign's worker without parsing them (docs/flow.md, *Exchange*).

The flow's one stateful step is keyed by campaign (`engine.storage.keys.route_key`).
The ingest path writes that key beside each event (stream field ``k``), so a
source routes an entry by reading one field; an entry without it (appended by
a raw writer) is decoded just far enough to name its campaign. An entry that
names none goes to `UNROUTABLE`, whose step turns it into a dead letter with
the parser's reason. Each read is grouped by campaign, so one item per
campaign per read crosses workers, carrying its entries as raw bytes.
"""

from __future__ import annotations

import orjson

from engine.storage.keys import route_key
from flows.messages import CampaignBatch, Entry, RawEvent, Routed

UNROUTABLE = "!unroutable"  # never a campaign key ('!' is no id character)


def route_of_raw(raw: RawEvent) -> str:
    """The route of an entry without a routing field: decode just enough to name the campaign."""
    if not isinstance(raw, bytes):  # None, a duplicate marker: a marker always has its route field
        return UNROUTABLE
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNROUTABLE
    if isinstance(obj, dict):
        org, camp = obj.get("org_id"), obj.get("campaign_id")
        if type(org) is str and type(camp) is str:
            return route_key(org, camp)
    return UNROUTABLE


def grouped(entries: list[tuple[str, Entry]]) -> list[Routed]:
    """``[(route, (ref, raw)), ...]`` -> ``[(route, CampaignBatch(route, [(ref, raw), ...])), ...]``, one
    item per route, entries in their read order (a campaign's order is its stream's order)."""
    by_route: dict[str, list] = {}
    for route, entry in entries:
        group = by_route.get(route)
        if group is None:
            by_route[route] = [entry]
        else:
            group.append(entry)
    return [(route, CampaignBatch(route, group)) for route, group in by_route.items()]
