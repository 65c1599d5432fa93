"""The streamed exports: the attempt report (CSV) and the contact export (JSON array or CSV).

Both walk their index CHUNK records at a time, so memory stays constant whatever the campaign size.
"""

from __future__ import annotations

import csv
import io
import re

import orjson

from api.read_model import dec
from api.read_model.calls import attempt_index, callback_attempt_ids, violation_attempt_ids, violation_index
from api.read_model.contacts import contacts_with_trails, fill_numbers
from api.read_model.runs import RunRanges
from engine.storage.keys import attempt_details_key, contact_index_key

CHUNK = 500
REPORT_COLUMNS = ["attempt_id", "contact_id", "direction", "from", "to", "pass", "run", "follow_up", "started_at",
                  "answered_at", "bridged_at", "agent_id", "ended_at", "amd_result", "outcome", "result", "sip_code",
                  "sip_text", "ring_ms", "call_length_ms", "handle_ms", "wrap_ms", "conversation_id",
                  "recording_url", "evaluation", "violations", "dial_tz", "dial_local_time",
                  "redial_after_abandon_at", "abandon_reason"]
EXPORT_COLUMNS = ["contact_id", "status", "retry_number", "status_at", "batch_id", "phone_number", "email",
                  "added_at", "attempts_dialed", "last_outcome", "last_attempt_at", "variables"]


# ---------------------------------------------------------------- attempt report

async def iter_attempts(r, org: str, camp: str, outcome: str | None = None, lo: str = "-inf", hi: str = "+inf",
                        index: str | None = None):
    """Attempt records (of one outcome class when given; of ``index`` when given) in dial-time order,
    CHUNK at a time (score cursor: constant memory); ``lo``/``hi``: a range of dial-time scores (one run's)."""
    idx, details = index or attempt_index(org, camp, outcome), attempt_details_key(org, camp)
    last_score, at_score, current = lo, 0, None
    while True:
        rows = await r.zrangebyscore(idx, last_score, hi, start=at_score, num=CHUNK, withscores=True)
        if not rows:
            return
        ids = [dec(m) for m, _s in rows]
        recs = await r.hmget(details, ids)
        out = []
        for (_m, score), raw in zip(rows, recs):
            if score == current:
                at_score += 1
            else:
                current, last_score, at_score = score, repr(score), 1
            if raw is not None:
                out.append(orjson.loads(raw))
        for att in await fill_numbers(r, org, camp, out):
            yield att
        if len(rows) < CHUNK:
            return


async def _filtered_attempts(r, org: str, camp: str, callback: str, outcome: str | None, bounds: tuple[str, str],
                             violation: str | None = None):
    if callback == "all" and not (violation and outcome):
        index = violation_index(org, camp, violation) if violation else None
        async for att in iter_attempts(r, org, camp, outcome, *bounds, index=index):
            yield att
        return
    if violation:
        ids = await violation_attempt_ids(r, org, camp, violation, callback=callback, outcome=outcome,
                                          score_range=bounds)
    else:
        ids = await callback_attempt_ids(r, org, camp, callback, outcome, bounds)
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        recs = [orjson.loads(x) for x in await r.hmget(attempt_details_key(org, camp), part) if x]
        for att in await fill_numbers(r, org, camp, recs):
            yield att


async def attempt_report_lines(r, org: str, camp: str, runs: RunRanges, *, callback: str, outcome: str | None,
                               run: int | None, violation: str | None = None):
    """The CSV lines of the attempt report: a header, then one row per attempt with its run."""
    bounds = ("-inf", "+inf") if run is None else runs.score_range(run)
    yield csv_line(REPORT_COLUMNS)
    if bounds is None:
        return  # no such run
    async for att in _filtered_attempts(r, org, camp, callback, outcome, bounds, violation):
        att["run"] = runs.run_of(att.get("started_ms"))
        yield csv_line([att.get(c) for c in REPORT_COLUMNS])


# ---------------------------------------------------------------- contact export

async def iter_contacts(r, org: str, camp: str):
    """Every contact record with its trail, by id, CHUNK at a time (lex cursor)."""
    idx = contact_index_key(org, camp)
    cursor = "-"
    while True:
        ids = [dec(x) for x in await r.zrangebylex(idx, cursor, "+", start=0, num=CHUNK)]
        if not ids:
            return
        for rec in await contacts_with_trails(r, org, camp, ids):
            yield rec
        if len(ids) < CHUNK:
            return
        cursor = "(" + ids[-1]


async def contacts_json(r, org: str, camp: str):
    """The contacts as one JSON array, streamed."""
    yield b"["
    first = True
    async for rec in iter_contacts(r, org, camp):
        yield (b"" if first else b",") + orjson.dumps(rec)
        first = False
    yield b"]"


async def contacts_csv(r, org: str, camp: str):
    """One CSV row per contact (its last attempt's outcome and time), after a header."""
    yield csv_line(EXPORT_COLUMNS)
    async for rec in iter_contacts(r, org, camp):
        last = rec["attempts"][-1] if rec.get("attempts") else {}
        row = dict(rec, last_outcome=last.get("outcome"), last_attempt_at=last.get("started_at"))
        yield csv_line([row.get(c) for c in EXPORT_COLUMNS])


# ---------------------------------------------------------------- CSV cells

_FORMULA_START = ("=", "@", "\t", "\r")
_NUMBERISH = re.compile(r"^[+-][0-9 ().-]*$")


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return orjson.dumps(v).decode()
    s = str(v)
    # spreadsheet formula injection: neutralise cells a spreadsheet would evaluate
    if s and (s[0] in _FORMULA_START or (s[0] in "+-" and not _NUMBERISH.match(s))):
        return "'" + s
    return s


def csv_line(values) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buf.getvalue().encode()
