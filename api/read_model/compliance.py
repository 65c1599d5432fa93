"""The compliance record (`GET /v1/campaigns/{id}/compliance`, issue 23; docs/api.md *Compliance record*).

The figures (30-day periods, each guard's count and last time, the settings) are the stats body's, as the
flow stored them with its last frame; the violating attempts are the members of the guards' indexes
(engine/storage/keys.py ``attempt_violation_index_key``) with their detail records. A redial's abandoned call is
found from its record's ``redial_after_abandon_at`` in its contact's trail: the contact's other attempt
that ended ``abandoned`` at that time (the smallest id when two did).
"""

from __future__ import annotations

import orjson

from api.read_model import dec
from api.read_model.calls import CHUNK, contact_attempt_ids, violation_index
from api.read_model.campaigns import stats_body
from api.read_model.exports import csv_line
from engine.storage.keys import attempt_details_key
from engine.vocab import VIOLATION_KINDS

CSV_COLUMNS = ["record", "period", "start", "end", "abandoned", "human_answered", "rate", "within_ceiling",
               "attempt_id", "contact_id", "dialed_at", "tz", "local_time", "outcome",
               "followed_attempt_id", "followed_ended_at"]


async def _violating(r, org: str, camp: str, kind: str) -> list[dict]:
    """The attempt records violating ``kind`` now, by dial time (ties by id)."""
    ids = [dec(m) for m in await r.zrange(violation_index(org, camp, kind), 0, -1)]
    out = []
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        for aid, raw in zip(part, await r.hmget(attempt_details_key(org, camp), part)):
            out.append(orjson.loads(raw) if raw is not None else {"attempt_id": aid})
    return out


async def _followed(r, org: str, camp: str, redials: list[dict]) -> dict[str, str | None]:
    """attempt_id of the abandoned call each redial followed (by its end time, in its contact's trail)."""
    wanted = [a for a in redials if a.get("redial_after_abandon_at") and a.get("contact_id")]
    contacts = sorted({a["contact_id"] for a in wanted})
    by_contact: dict[str, list[dict]] = {}
    for cid in contacts:
        aids = await contact_attempt_ids(r, org, camp, [cid])
        recs = []
        for i in range(0, len(aids), CHUNK):
            part = aids[i:i + CHUNK]
            recs += [orjson.loads(x) for x in await r.hmget(attempt_details_key(org, camp), part) if x is not None]
        by_contact[cid] = recs
    out: dict[str, str | None] = {}
    for a in wanted:
        ids = sorted(b["attempt_id"] for b in by_contact.get(a["contact_id"], ())
                     if b["attempt_id"] != a["attempt_id"] and b.get("outcome") == "abandoned"
                     and b.get("ended_at") == a["redial_after_abandon_at"])
        out[a["attempt_id"]] = ids[0] if ids else None
    return out


def _entry(a: dict, kind: str, followed: dict[str, str | None]) -> dict:
    after = a.get("redial_after_abandon_at") if kind == "abandon_redial" else None
    return {"attempt_id": a["attempt_id"], "contact_id": a.get("contact_id"), "dialed_at": a.get("started_at"),
            "tz": a.get("dial_tz"), "local_time": a.get("dial_local_time"), "outcome": a.get("outcome"),
            "followed": None if after is None else {"attempt_id": followed.get(a["attempt_id"]), "ended_at": after}}


async def compliance_record(r, org: str, camp: str) -> dict:
    body = await stats_body(r, org, camp)  # 404 when the campaign is unknown
    cfg = body.get("config") or {}
    guards = body.get("compliance") or {}
    abandon = body.get("abandon") or {}
    lists = {kind: await _violating(r, org, camp, kind) for kind in VIOLATION_KINDS}
    followed = await _followed(r, org, camp, lists["abandon_redial"])
    ch, ar = guards.get("calling_hours") or {}, guards.get("abandon_redial") or {}
    hours = cfg.get("calling_hours") or {}
    return {
        "campaign_id": camp,
        "as_of": body.get("as_of"),
        "abandon_ceiling": abandon.get("ceiling"),
        "periods": abandon.get("periods") or [],
        "calling_hours": {"start": hours.get("start"), "end": hours.get("end"),
                          "tz": (cfg.get("time_window") or {}).get("tz") or "UTC",
                          "violations": ch.get("violations", 0), "last_violation_at": ch.get("last_violation_at"),
                          "attempts": [_entry(a, "calling_hours", followed) for a in lists["calling_hours"]]},
        "abandon_redial": {"hours": ar.get("hours", cfg.get("abandon_redial_hours")),
                           "violations": ar.get("violations", 0), "last_violation_at": ar.get("last_violation_at"),
                           "attempts": [_entry(a, "abandon_redial", followed) for a in lists["abandon_redial"]]},
    }


def compliance_csv(rec: dict):
    """The auditor's record as CSV lines: a header, one ``period`` row per 30-day period, then one row per
    violating attempt and guard (``calling_hours`` rows, then ``abandon_redial`` rows, each by dial time)."""
    yield csv_line(CSV_COLUMNS)
    for p in rec["periods"]:
        yield csv_line(["period", p["period"], p["start"], p["end"], p["abandoned"], p["human_answered"],
                        p["rate"], p["within_ceiling"]] + [None] * 8)
    for kind in VIOLATION_KINDS:
        for a in rec[kind]["attempts"]:
            f = a["followed"] or {}
            yield csv_line([kind] + [None] * 7 + [a["attempt_id"], a["contact_id"], a["dialed_at"], a["tz"],
                                                  a["local_time"], a["outcome"], f.get("attempt_id"),
                                                  f.get("ended_at")])
