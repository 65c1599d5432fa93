"""Reads of a campaign over time: its minute points (engine.views.history) and its follow-ups view
(engine.state.followups), both stored by the flow as JSON and served without a parse."""

from __future__ import annotations

import orjson

from api.read_model.campaigns import ensure_campaign, stats_body
from engine.storage.keys import followups_key, history_key
from engine.views.due_statuses import view_without_due
from engine.views.history import RESOLUTION_S, recent


async def history(r, org: str, camp: str, minutes: int) -> bytes:
    """The history response: the newest ``minutes`` members by rank (one point a minute, so no more than that
    can lie within ``minutes`` of the newest), kept when within that span of it. 404 for an unknown campaign."""
    await ensure_campaign(r, org, camp)
    rows = await r.zrange(history_key(org, camp), -minutes, -1, withscores=True)
    points = recent([(int(score), member) for member, score in rows], minutes)
    return (b'{"campaign_id":' + orjson.dumps(camp) + b',"resolution_s":%d,"points":[' % RESOLUTION_S
            + b",".join(points) + b"]}")


async def followups(r, org: str, camp: str) -> bytes:
    """The follow-ups response: the view the flow stored with the campaign's id in front; when it stored none
    yet, the counts of the stats body, all without a due time (engine.views.due_statuses.view_without_due). 404 for an
    unknown campaign."""
    view = await r.get(followups_key(org, camp))
    if view is None:
        body = await stats_body(r, org, camp)
        view = orjson.dumps(view_without_due(body.get("as_of"), body["contacts"]["by_status"]))
    return b'{"campaign_id":' + orjson.dumps(camp) + b"," + view[1:]
