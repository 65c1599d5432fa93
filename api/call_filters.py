"""The call table's drill-down filters (`?callback=`, `?outcome=`; issue #14, docs/api.md).

Both filters read indexes the flow's sink keeps (engine/keys.py):
- ``outcome``: one sorted set of attempt ids per outcome class, scored by dial time like the
  attempt index, so a filtered page is one ZRANGE and its total one ZCARD;
- ``callback``: one set of contact ids per callback state; the attempts are those contacts'
  dialed attempts (their trails), ordered here by dial time (then id, as ZRANGE orders ties).
"""

from __future__ import annotations

from urllib.parse import unquote

from engine.keys import (attempt_index_key, attempt_outcome_index_key, callback_index_key, contact_attempts_key,
                         key_part)

CHUNK = 500


def _dec(b) -> str:
    return b.decode() if isinstance(b, bytes) else b


def attempt_index(org: str, camp: str, outcome: str | None) -> str:
    """The sorted set (scored by dial time) of the campaign's attempts, or of one outcome class."""
    return attempt_outcome_index_key(org, camp, outcome) if outcome else attempt_index_key(org, camp)


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
                    start: int, count: int, score_range: tuple[str, str] | None = None) -> tuple[int, list[str]]:
    """(total after the filters, the ids of one page) in dial-time order; ``score_range``: the
    dial-time scores of one run (api/run_ranges.py)."""
    if callback == "all":
        index = attempt_index(org, camp, outcome)
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
