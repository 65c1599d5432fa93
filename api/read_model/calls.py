"""The call table (`GET /calls`): attempt pages with transcripts, and its drill-down filters
(`?callback=`, `?outcome=`, `?run=`; issue #14; `?violation=`, issue 23; docs/api.md).

Both filters read indexes the flow's sink keeps (engine/storage/keys.py):
- ``outcome``: one sorted set of attempt ids per outcome class, scored by dial time like the
  attempt index, so a filtered page is one ZRANGE and its total one ZCARD;
- ``callback``: one set of contact ids per callback state; the attempts are those contacts'
  dialed attempts (their trails), ordered here by dial time (then id, as ZRANGE orders ties);
- ``violation``: one sorted set of attempt ids per compliance guard, scored by dial time: alone, a
  page is one ZRANGE; with another filter, its (few) members are kept by the other indexes here.
"""

from __future__ import annotations

import contextlib
from urllib.parse import unquote

import orjson

from api.read_model import dec as _dec
from api.read_model.contacts import fill_numbers
from api.read_model.runs import RunRanges
from engine.storage.keys import (
    attempt_details_key,
    attempt_index_key,
    attempt_outcome_index_key,
    attempt_violation_index_key,
    callback_index_key,
    contact_attempts_key,
    key_part,
    transcript_key,
)
from engine.validation.events import format_time, parse_time

CHUNK = 500


def attempt_index(org: str, camp: str, outcome: str | None) -> str:
    """The sorted set (scored by dial time) of the campaign's attempts, or of one outcome class."""
    return attempt_outcome_index_key(org, camp, outcome) if outcome else attempt_index_key(org, camp)


def violation_index(org: str, camp: str, violation: str) -> str:
    """The sorted set (scored by dial time) of the attempts that violate one compliance guard now."""
    return attempt_violation_index_key(org, camp, violation)


async def violation_attempt_ids(r, org: str, camp: str, violation: str, *, callback: str, outcome: str | None,
                                score_range: tuple[str, str] | None = None) -> list[str]:
    """Attempt ids violating ``violation`` that the other filters keep, by dial time (ties by id)."""
    lo, hi = score_range or ("-inf", "+inf")
    ids = [_dec(m) for m in await r.zrangebyscore(violation_index(org, camp, violation), lo, hi)]
    if outcome:
        kept = []
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            kept += [aid for aid, sc in zip(part, await r.zmscore(attempt_index(org, camp, outcome), part))
                     if sc is not None]
        ids = kept
    if callback != "all" and ids:
        allowed = set(await callback_attempt_ids(r, org, camp, callback, outcome, score_range))
        ids = [aid for aid in ids if aid in allowed]
    return ids


async def contact_attempt_ids(r, org: str, camp: str, contact_ids: list[str]) -> list[str]:
    """The dialed attempts of these contacts (their trails), in no particular order."""
    trail_key = contact_attempts_key(org, camp)
    out = []
    for i in range(0, len(contact_ids), CHUNK):
        pipe = r.pipeline(transaction=False)
        for cid in contact_ids[i:i + CHUNK]:
            prefix = key_part(cid).encode()
            pipe.zrangebylex(trail_key, b"[" + prefix + b":", b"(" + prefix + b";")  # ';' follows ':'
        for members in await pipe.execute():
            out += [unquote(_dec(m).partition(":")[2]) for m in members]
    return out


def _score_bound(text: str) -> tuple[float, bool]:
    """A ZRANGEBYSCORE bound (``"12"``, ``"(12"``, ``"-inf"``, ``"+inf"``) as (value, exclusive)."""
    if text.startswith("("):
        return float(text[1:]), True
    return float(text), False


def in_score_range(score: float, score_range: tuple[str, str] | None) -> bool:
    if score_range is None:
        return True
    (lo, lo_open), (hi, hi_open) = _score_bound(score_range[0]), _score_bound(score_range[1])
    return (score > lo if lo_open else score >= lo) and (score < hi if hi_open else score <= hi)


async def callback_attempt_ids(r, org: str, camp: str, callback: str, outcome: str | None,
                               score_range: tuple[str, str] | None = None) -> list[str]:
    """Attempt ids of the contacts in callback state ``callback`` (of one outcome class when given,
    with a dial-time score in ``score_range`` when given), ordered by dial time ascending, ties by id."""
    contacts = [_dec(x) for x in await r.zrange(callback_index_key(org, camp, callback), 0, -1)]
    aids = await contact_attempt_ids(r, org, camp, contacts)
    index = attempt_index(org, camp, outcome)
    scored = []
    for i in range(0, len(aids), CHUNK):
        part = aids[i:i + CHUNK]
        for aid, score in zip(part, await r.zmscore(index, part)):
            if score is not None and in_score_range(score, score_range):  # None: not in that outcome class
                scored.append((score, aid.encode(), aid))
    scored.sort()
    return [aid for _s, _b, aid in scored]


async def call_page(r, org: str, camp: str, *, callback: str, outcome: str | None, desc: bool,
                    start: int, count: int, score_range: tuple[str, str] | None = None,
                    violation: str | None = None) -> tuple[int, list[str]]:
    """(total after the filters, the ids of one page) in dial-time order; ``score_range``: the
    dial-time scores of one run (api/read_model/runs.py)."""
    if violation and (callback != "all" or outcome):
        ids = await violation_attempt_ids(r, org, camp, violation, callback=callback, outcome=outcome,
                                          score_range=score_range)
        if desc:
            ids.reverse()
        return len(ids), ids[start:start + count]
    if callback == "all":
        index = violation_index(org, camp, violation) if violation else attempt_index(org, camp, outcome)
        if score_range is None:
            rng = r.zrevrange if desc else r.zrange
            return await r.zcard(index), [_dec(x) for x in await rng(index, start, start + count - 1)]
        lo, hi = score_range
        if desc:
            found = await r.zrevrangebyscore(index, hi, lo, start=start, num=count)
        else:
            found = await r.zrangebyscore(index, lo, hi, start=start, num=count)
        return await r.zcount(index, lo, hi), [_dec(x) for x in found]
    ids = await callback_attempt_ids(r, org, camp, callback, outcome, score_range)
    if desc:
        ids.reverse()
    return len(ids), ids[start:start + count]


def _ts_ms(ts) -> int:
    try:
        return parse_time(ts, "ts")
    except Exception:
        return -1


async def transcripts(r, org: str, camp: str, aids: list[str]) -> list[list[dict]]:
    """Each attempt's transcript lines, in time order (then event id)."""
    if not aids:
        return []
    pipe = r.pipeline(transaction=False)
    for a in aids:
        pipe.hgetall(transcript_key(org, camp, a))
    out = []
    for h in await pipe.execute():
        lines = []
        for eid, raw in h.items():
            line = orjson.loads(raw)
            ts = line.get("ts")
            if type(ts) is int:
                ts_ms = ts
                with contextlib.suppress(TypeError, ValueError):
                    line["ts"] = format_time(ts)
            else:
                ts_ms = _ts_ms(ts)
            lines.append((ts_ms, _dec(eid), line))
        lines.sort(key=lambda x: (x[0], x[1]))
        out.append([x[2] for x in lines])
    return out


def call_row(att: dict, runs: RunRanges) -> dict:
    att = dict(att)
    att["run"] = runs.run_of(att.pop("started_ms", None))  # resolved at read time (api/read_model/runs.py)
    return att


async def calls_page(r, org: str, camp: str, runs: RunRanges, *, page: int, limit: int, order: str,
                     callback: str, outcome: str | None, run: int | None, violation: str | None = None) -> dict:
    """One page of attempts with transcripts; an attempt must match every filter given."""
    bounds = None if run is None else runs.score_range(run)
    if run is not None and bounds is None:
        total, aids = 0, []  # no such run (never started, or withdrawn)
    else:
        total, aids = await call_page(r, org, camp, callback=callback, outcome=outcome, desc=order == "desc",
                                      start=(page - 1) * limit, count=limit, score_range=bounds,
                                      violation=violation)
    recs = await r.hmget(attempt_details_key(org, camp), aids) if aids else []
    trs = await transcripts(r, org, camp, aids)
    calls = []
    for aid, raw, tr in zip(aids, recs, trs):
        att = call_row(orjson.loads(raw), runs) if raw is not None else {"attempt_id": aid, "run": None}
        att["transcript"] = tr
        calls.append(att)
    await fill_numbers(r, org, camp, calls)
    return {"total": total, "page": page, "limit": limit, "callback": callback, "outcome": outcome, "run": run,
            "violation": violation, "calls": calls}
