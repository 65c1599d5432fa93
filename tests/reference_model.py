"""Brute-force reference model of SPEC §2–§3.1 (and docs/semantics.md).

This is the second, independent implementation that the incremental engine
(`engine/`) is tested against.  It recomputes every metric from the full event
list, straight from the definitions, one small function per metric group.
It is deliberately simple: clarity over speed.  It does not import anything
from `engine/`.

Input events are VALID and NORMALISED (ts / due_at int epoch ms, optional
nulls and unknown fields removed, `cost.incurred` carries `usd_micros`),
given in ARRIVAL order.  Processing (docs/semantics.md):

1. event_id repeats per org are dropped (first seen wins) and counted in
   `diagnostics.duplicates` of the campaign the repeat names;
2. each campaign's accepted events are sorted by key (ts, event_id);
3. superseded facts ("earliest counts" types) are dropped and counted too;
4. every metric is computed from what is left, as of now = max ts of the
   campaign's accepted events (replay mode; nothing is late).

Readings taken where SPEC / docs/semantics.md are silent or ambiguous
(listed here so the engine can be aligned; a difference is a bug in one of
the two implementations):

R1. An event_id repeat is counted in `diagnostics.duplicates` of the campaign
    named by the *repeat* (it may differ from the first copy's campaign).  A
    campaign appears in the output only if it has at least one accepted event
    (there is no `now` otherwise).  The model remembers event_ids forever (the
    engine must keep them >= 1 h; test streams stay inside that).
R2. Superseded facts are "a no-op for the metrics", with one exception
    taken literally from SPEC §1: "a contact exists once ANY event names its
    contact_id" and "a batch exists once batch.created or a contact names
    it", so every accepted event naming a contact (or a contact.added naming
    a batch) creates it, superseded or not.  Passes are listed only for a
    `pass.started` or a counted (earliest) `call.dialed`.
R3. `human_answered` is taken literally: ended attempts answered before the
    end whose AMD before the end is not `machine`.  The parenthetical
    "(= abandoned + connected)" is then true except for an attempt that was
    bridged without ever being answered: it is `connected` (rule 3) but not
    human-answered.
R4. A `batch.status` alone does not create a batch (SPEC: a batch exists once
    `batch.created` or a contact names it).
R5. The campaign's time zone (for `today`, daily buckets and the window) is
    `time_window.tz`, `UTC` when there is no time window.
R6. Alert records carry `at` (and nothing else time-valued) as an RFC 3339
    string like the /stats body, `rate` as a float and `ceiling` as written.
R7. ETA with a time window: `eta_seconds` = (exact, unrounded finish instant
    - now) / 1000; `eta_at` = the finish rounded to the nearest ms.  The
    "window is open" predicate is applied literally to the local time-of-day
    of each instant (so in a DST fall-back hour the window may close and
    re-open; in a spring-forward gap the window opens at the transition).
R8. In the alert fold, the ceiling and the time zone used after each event
    are those of the prefix of events applied so far (configuration "as of
    now" at that point).  A superseded fact still moves `now` and triggers a
    re-evaluation (it is an accepted event).
R9. Per-day `cost_usd` in `reference_daily` is the day's micro-dollar sum / 1e6.
R10. `performance.dials_per_sec` uses `attempts.total` (call.dialed only, even
    for an email campaign); the span starts at `first_dial_ts` as defined for
    the live block (email.sent included for an email campaign).
R13. Issue #23 (levels, forecast, pacing, guards, periods, complaints):
    - levels judge A / max(H, m) while the campaign's status (as of the prefix) is not final, A / H
      once it is completed, stopped or cancelled (0 when the divisor is 0); complaint levels the same
      with m = 1000 delivered and the warning threshold;
    - pacing's F_h counts the final contacts' ended attempts that are human-answered in the literal
      sense of R3 (answered before the end, AMD before the end not machine);
    - the compliance guards read the configuration as of now (the prefix, in the alert fold), like
      every other metric; the contact's zone is the `tz` of its counted (earliest) contact.added;
    - per event, alerts come in this order: the four abandon levels, the two complaint levels, the
      two forecasts, then guard alerts (calling_hours before abandon_redial, each by dial ts, then
      attempt_id);
    - `live.oldest_wait_ms` measures from the connection start with the abandon_from of now.
R11. In the alert fold (only there, for speed) `today` is counted from the
    first instant of now's local date (local midnight, fold 0) to now.  That
    equals the literal "same local date" test used in the /stats body for
    every zone whose local date never runs backwards (no fall-back across
    midnight), i.e. every zone the tests use.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from urllib.parse import quote
from zoneinfo import ZoneInfo

import numpy as np

__all__ = [
    "reference_stats",
    "reference_alerts",
    "reference_daily",
    "reference_benchmarks",
    "fmt",
    "next_level",
    "abandon_budget",
    "in_grid_window",
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

CONTACT_STATUSES = [
    "pending", "dispatched", "in_progress", "retrying", "followup_scheduled",
    "completed", "failed", "busy", "no_answer", "skipped",
    "max_retries_reached", "window_closed", "manual_stopped",
]
NON_FINAL = {"pending", "dispatched", "in_progress", "retrying", "followup_scheduled"}
BATCH_STATUSES = ["pending", "in_progress", "paused", "completed", "cancelled"]
WINDOWS = ("lifetime", "today", "24h", "30d")

CONFIG_DEFAULTS = {
    "name": None,
    "channel": "voice",
    "concurrency_limit": 10,
    "max_attempts": 3,
    "abandon_ceiling": 0.03,
    "abandon_threshold_ms": 2000,
    "abandon_from": "answer",
    "time_window": None,
    "kind": None,
    "config": None,
    "calling_hours": {"start": "08:00", "end": "21:00"},
    "abandon_redial_hours": 72,
    "complaint_ceiling": 0.003,
    "complaint_warning": 0.001,
}
FINAL_CAMPAIGN = ("completed", "stopped", "cancelled")
COMPLAINT_SAMPLE = 1000
PERIOD = 30 * 86_400_000

CALL_FACT_SLOTS = {
    "call.dialed": "dialed",
    "call.answered": "answered",
    "call.amd": "amd",
    "call.bridged": "bridged",
    "call.ended": "ended",
}
EMAIL_TYPES = [
    "email.sent", "email.delivered", "email.bounced", "email.opened",
    "email.clicked", "email.replied", "email.unsubscribed", "email.complained",
]
# events that name a contact (docs/semantics.md "Contacts and batches")
CONTACT_NAMING_TYPES = {
    "contact.added", "contact.status", "call.dialed", "callback.requested",
    "callback.completed", "callback.cancelled", "email.sent", "meeting.booked",
}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


# --------------------------------------------------------------------------
# Small helpers: keys, time
# --------------------------------------------------------------------------

def event_key(e: dict) -> tuple:
    return (e["ts"], e["event_id"])


def campaign_of(e: dict) -> tuple[str, str]:
    return (e["org_id"], e["campaign_id"])


def utc_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def fmt(ms) -> str | None:
    """RFC 3339 UTC with milliseconds: 2026-05-08T09:00:00.000Z."""
    if ms is None:
        return None
    ms = int(ms)
    return utc_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def local_datetime(ms: int, tz: ZoneInfo) -> datetime:
    return utc_datetime(ms).astimezone(tz)


def local_date(ms: int, tz: ZoneInfo) -> date:
    return local_datetime(ms, tz).date()


def local_to_ms(day: date, minutes: int, tz: ZoneInfo, fold: int = 0) -> int:
    """Epoch ms of local wall time `day` + `minutes` in tz (PEP 495 fold)."""
    dt = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                  tzinfo=tz, fold=fold)
    return (dt - EPOCH) // ONE_MS


def in_grid_window(ts: int, now: int, length_ms: int, res_ms: int) -> bool:
    """SPEC §2 literally: floor(now/r) − W/r < floor(ts/r) ≤ floor(now/r)."""
    return now // res_ms - length_ms // res_ms < ts // res_ms <= now // res_ms


def mean(values):
    values = list(values)
    return sum(values) / len(values) if values else None


def ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def as_fraction(number) -> Fraction:
    """The ceiling as the decimal number written (0.03 is 3/100)."""
    if isinstance(number, float):
        return Fraction(repr(number))
    return Fraction(number)


def usd_micros(e: dict) -> int:
    if "usd_micros" in e:
        return int(e["usd_micros"])
    amount = Decimal(repr(e["usd"])) if isinstance(e["usd"], float) else Decimal(e["usd"])
    return int((amount * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


# --------------------------------------------------------------------------
# Step 1–3: accept, sort, drop superseded facts
# --------------------------------------------------------------------------

def accept_events(events: list[dict]):
    """event_id de-duplication per org, first seen wins.

    Returns ({campaign: accepted events sorted by key}, Counter of repeats per
    campaign named by the repeat)."""
    seen: set[tuple[str, str]] = set()
    accepted: dict[tuple[str, str], list[dict]] = defaultdict(list)
    repeats: Counter = Counter()
    for e in events:
        ident = (e["org_id"], e["event_id"])
        if ident in seen:
            repeats[campaign_of(e)] += 1
            continue
        seen.add(ident)
        accepted[campaign_of(e)].append(e)
    return {c: sorted(evs, key=event_key) for c, evs in accepted.items()}, repeats


def fact_identity(e: dict):
    """The fact an "earliest counts" event is about; None for other types."""
    t = e["type"]
    if t in CALL_FACT_SLOTS:
        return (t, e["attempt_id"])
    if t in EMAIL_TYPES:
        return (t, e["message_id"])
    if t in ("contact.added", "meeting.booked"):
        return (t, e["contact_id"])
    if t == "callback.requested":
        return (t, e["contact_id"], e["due_at"])
    return None


def drop_superseded_facts(sorted_events: list[dict]):
    """Keep the earliest event of each fact; return (kept, number dropped)."""
    seen = set()
    kept = []
    dropped = 0
    for e in sorted_events:
        fid = fact_identity(e)
        if fid is not None:
            if fid in seen:
                dropped += 1
                continue
            seen.add(fid)
        kept.append(e)
    return kept, dropped


def of_type(facts: list[dict], *types: str) -> list[dict]:
    return [e for e in facts if e["type"] in types]


# --------------------------------------------------------------------------
# Campaign configuration and status
# --------------------------------------------------------------------------

def campaign_config(facts: list[dict]) -> dict:
    """Each field from the latest campaign.created carrying it, else default."""
    cfg = dict(CONFIG_DEFAULTS)
    for e in of_type(facts, "campaign.created"):  # ascending key: later wins
        for field in CONFIG_DEFAULTS:
            if field in e:
                cfg[field] = e[field]
    tw = cfg["time_window"]
    if tw is not None:
        cfg["time_window"] = {"start": tw["start"], "end": tw["end"],
                              "tz": tw.get("tz") or "UTC"}
    return cfg


def campaign_tz(cfg: dict) -> ZoneInfo:
    tw = cfg["time_window"]
    return ZoneInfo(tw["tz"] if tw else "UTC")


def campaign_status(facts: list[dict]) -> str:
    status = "draft"
    for e in of_type(facts, "campaign.status"):
        status = e["status"]
    return status


def config_at(created: list[dict], end_event: dict, field: str):
    """`field` in effect at the call.ended key: the latest campaign.created
    (of `created`, sorted) carrying it with a smaller key, else the default."""
    value = CONFIG_DEFAULTS[field]
    for e in created:
        if event_key(e) < event_key(end_event) and field in e:
            value = e[field]
    return value


# --------------------------------------------------------------------------
# Attempts and outcomes
# --------------------------------------------------------------------------

def attempts_of(facts: list[dict]) -> dict[str, dict]:
    """attempt_id -> {dialed, answered, amd, bridged, ended: first fact or None}."""
    attempts: dict[str, dict] = {}
    for e in facts:
        if e["type"].startswith("call.") or e["type"] == "conversation.evaluated":
            slots = attempts.setdefault(e["attempt_id"], {s: None for s in CALL_FACT_SLOTS.values()})
            slot = CALL_FACT_SLOTS.get(e["type"])
            if slot is not None:
                slots[slot] = e
    return attempts


def before_end(attempt: dict, slot: str):
    """The fact of `slot` if its key is smaller than the call.ended key."""
    fact, end = attempt[slot], attempt["ended"]
    if fact is not None and end is not None and event_key(fact) < event_key(end):
        return fact
    return None


def answered_before_end(attempt: dict) -> bool:
    return before_end(attempt, "answered") is not None


def machine_before_end(attempt: dict) -> bool:
    amd = before_end(attempt, "amd")
    return amd is not None and amd["result"] == "machine"


def is_human_answered(attempt: dict) -> bool:
    return attempt["ended"] is not None and answered_before_end(attempt) and not machine_before_end(attempt)


def connection_start(attempt: dict, abandon_from: str) -> int:
    """SPEC §1: the call.answered ts; with abandon_from = greeting_end the ts
    of the attempt's call.amd when its result is human or unknown (an AMD
    fact keyed after the end is not a fact of the decision), else the answer."""
    amd = before_end(attempt, "amd")
    if abandon_from == "greeting_end" and amd is not None and amd["result"] in ("human", "unknown"):
        return amd["ts"]
    return attempt["answered"]["ts"]


def outcome_of(attempt: dict, threshold_ms: int, abandon_from: str = "answer"):
    """SPEC §1 rules 1–6, first that matches; None when not ended."""
    end = attempt["ended"]
    if end is None:
        return None
    answered = before_end(attempt, "answered")
    bridged = before_end(attempt, "bridged")
    if answered is not None and machine_before_end(attempt):
        return "machine"
    if answered is not None and (bridged is None
                                 or bridged["ts"] - connection_start(attempt, abandon_from) > threshold_ms):
        return "abandoned"
    if bridged is not None:
        return "connected"
    sip = end.get("sip_code")
    if sip in (486, 600):
        return "busy"
    if sip is None or sip in (408, 480, 487):
        return "no_answer"
    return "failed"


def outcomes_of(facts: list[dict], attempts: dict[str, dict]) -> dict[str, str]:
    """attempt_id -> outcome, for ended attempts."""
    created = of_type(facts, "campaign.created")
    return {aid: outcome_of(a, config_at(created, a["ended"], "abandon_threshold_ms"),
                            config_at(created, a["ended"], "abandon_from"))
            for aid, a in attempts.items() if a["ended"] is not None}


# --------------------------------------------------------------------------
# The campaign "world": everything derived once from the sorted events
# --------------------------------------------------------------------------

class World:
    """Plain container of the facts of one campaign (no incremental logic)."""

    def __init__(self, org_id: str, campaign_id: str, sorted_events: list[dict], id_repeats: int):
        self.org_id = org_id
        self.campaign_id = campaign_id
        self.events = sorted_events                      # all accepted, sorted
        self.facts, self.superseded = drop_superseded_facts(sorted_events)
        self.id_repeats = id_repeats
        self.now = max(e["ts"] for e in sorted_events)
        self.cfg = campaign_config(self.facts)
        self.tz = campaign_tz(self.cfg)
        self.status = campaign_status(self.facts)
        self.attempts = attempts_of(self.facts)
        self.outcomes = outcomes_of(self.facts, self.attempts)

    def dialed_attempts(self) -> list[dict]:
        return [a for a in self.attempts.values() if a["dialed"] is not None]

    def ended_attempts(self) -> list[dict]:
        return [a for a in self.attempts.values() if a["ended"] is not None]

    def outcome(self, attempt: dict):
        return self.outcomes.get(attempt["ended"]["attempt_id"]) if attempt["ended"] else None

    def dial_times(self) -> list[int]:
        """The live "dials" series: call.dialed; plus email.sent for email campaigns."""
        times = [e["ts"] for e in of_type(self.facts, "call.dialed")]
        if self.cfg["channel"] == "email":
            times += [e["ts"] for e in of_type(self.facts, "email.sent")]
        return times

    def first_dial_ts(self):
        times = self.dial_times()
        return min(times) if times else None


def build_worlds(events: list[dict]) -> dict[tuple[str, str], World]:
    accepted, repeats = accept_events(events)
    return {c: World(c[0], c[1], evs, repeats.get(c, 0)) for c, evs in accepted.items()}


# --------------------------------------------------------------------------
# Contacts, batches, retries
# --------------------------------------------------------------------------

def contact_ids(w: World) -> set[str]:
    # all accepted events, superseded facts included (R2)
    return {e["contact_id"] for e in w.events if e["type"] in CONTACT_NAMING_TYPES}


def contact_latest_status(w: World) -> dict[str, dict | None]:
    """contact_id -> its latest contact.status event (None when it has none)."""
    latest = {c: None for c in contact_ids(w)}
    for e in of_type(w.facts, "contact.status"):
        latest[e["contact_id"]] = e
    return latest


def contact_status_map(w: World) -> dict[str, str]:
    return {c: (e["status"] if e else "pending") for c, e in contact_latest_status(w).items()}


def contacts_block(w: World) -> dict:
    statuses = contact_status_map(w)
    by_status = {s: 0 for s in CONTACT_STATUSES}
    for s in statuses.values():
        by_status[s] += 1
    buckets = {
        "pending": by_status["pending"] + by_status["retrying"] + by_status["followup_scheduled"],
        "in_progress": by_status["dispatched"] + by_status["in_progress"],
        "completed": by_status["completed"],
        "exhausted": sum(by_status[s] for s in CONTACT_STATUSES
                         if s not in NON_FINAL and s != "completed"),
    }
    in_flight = (by_status["dispatched"] + by_status["in_progress"]
                 + by_status["retrying"] + by_status["followup_scheduled"])
    return {"total": len(statuses), "by_status": by_status, "buckets": buckets, "in_flight": in_flight}


def retry_breakdown(w: World) -> dict[str, int]:
    counts: Counter = Counter()
    for e in contact_latest_status(w).values():
        if e is not None and e["status"] == "retrying":
            counts[e["retry_number"]] += 1
    return {f"retry_{n}": counts[n] for n in sorted(counts)}


def retries_left(w: World) -> int:
    dialed_per_contact = Counter(a["dialed"]["contact_id"] for a in w.dialed_attempts())
    return sum(max(0, w.cfg["max_attempts"] - dialed_per_contact[c])
               for c, s in contact_status_map(w).items() if s in NON_FINAL)


def batch_counts(w: World) -> dict[str, int]:
    batch_ids = {e["batch_id"] for e in of_type(w.facts, "batch.created")}
    # any accepted contact.added names its batch, superseded or not (R2)
    batch_ids |= {e["batch_id"] for e in of_type(w.events, "contact.added") if "batch_id" in e}
    status = {b: "pending" for b in batch_ids}
    for e in of_type(w.facts, "batch.status"):
        if e["batch_id"] in status:
            status[e["batch_id"]] = e["status"]
    counts = {s: 0 for s in BATCH_STATUSES}
    for s in status.values():
        counts[s] += 1
    return counts


# --------------------------------------------------------------------------
# Attempts, outcomes, call state, rates
# --------------------------------------------------------------------------

def attempts_block(w: World, contacts_total: int) -> dict:
    dialed = w.dialed_attempts()
    total = len(dialed)
    average = round(total / contacts_total, 2) if total and contacts_total else 0.0
    follow_up = sum(1 for a in dialed if a["dialed"].get("follow_up") is True)
    return {"total": total, "average_per_contact": float(average), "follow_up": follow_up}


def outcomes_block(w: World) -> dict:
    counts = Counter(w.outcomes.values())
    return {k: counts[k] for k in ("connected", "abandoned", "machine", "busy", "no_answer", "failed")}


def answered_count(w: World) -> int:
    return sum(1 for a in w.ended_attempts() if answered_before_end(a))


def human_answered_count(w: World) -> int:
    return sum(1 for a in w.ended_attempts() if is_human_answered(a))


def active_calls(w: World) -> int:
    return sum(1 for a in w.attempts.values() if a["dialed"] and not a["ended"])


def ringing(w: World) -> int:
    return sum(1 for a in w.attempts.values() if a["dialed"] and not a["answered"] and not a["ended"])


def in_progress_calls(w: World) -> int:
    return sum(1 for a in w.attempts.values() if a["answered"] and not a["ended"])


def rates_block(w: World, contacts: dict) -> dict:
    ended = len(w.ended_attempts())
    return {
        "answer_rate": ratio(answered_count(w), ended),
        "connect_rate": ratio(outcomes_block(w)["connected"], ended),
        "completion_rate": ratio(contacts["by_status"]["completed"], contacts["total"]),
    }


def handle_time(a: dict) -> int:
    return a["ended"]["ts"] - a["bridged"]["ts"] + a["ended"].get("wrap_ms", 0)


def ring_time(a: dict) -> int:
    return a["answered"]["ts"] - a["dialed"]["ts"]


def aht_ms(w: World):
    return mean(handle_time(a) for a in w.ended_attempts() if w.outcome(a) == "connected")


def avg_ring_ms(w: World):
    return mean(ring_time(a) for a in w.attempts.values() if a["dialed"] and a["answered"])


# --------------------------------------------------------------------------
# Abandon rate, budget, alert levels
# --------------------------------------------------------------------------

def in_abandon_window(window: str, ts: int, now: int, tz: ZoneInfo) -> bool:
    if window == "lifetime":
        return True
    if window == "today":
        return local_date(ts, tz) == local_date(now, tz)
    if window == "24h":
        return in_grid_window(ts, now, DAY, MINUTE)
    if window == "30d":
        return in_grid_window(ts, now, 30 * DAY, HOUR)
    raise ValueError(window)


def abandon_counts(w: World, window: str) -> tuple[int, int]:
    """(abandoned, human_answered) over attempts whose call.ended ts is in the window."""
    abandoned = human = 0
    for a in w.ended_attempts():
        if in_abandon_window(window, a["ended"]["ts"], w.now, w.tz):
            abandoned += w.outcome(a) == "abandoned"
            human += is_human_answered(a)
    return abandoned, human


def abandon_budget(ceiling, human_answered: int, abandoned: int) -> int:
    """Largest k >= 0 with (A+k)/(H+k) <= c: max(0, floor((c·H − A)/(1 − c)))."""
    c = as_fraction(ceiling)
    return max(0, math.floor((c * human_answered - abandoned) / (1 - c)))


def next_level(level: str, abandoned: int, human_answered: int, ceiling, min_sample: int,
               final: bool = False, warning=None) -> str:
    """SPEC §3 hysteresis, exact fractions: r = A / max(H, m), or A / H once the campaign is final
    (0 when the divisor is 0). ``warning``: the warning threshold (complaints); default 0.8c."""
    divisor = human_answered if final else max(human_answered, min_sample)
    c = as_fraction(ceiling)
    warn = Fraction(4, 5) * c if warning is None else as_fraction(warning)
    h = c / 10 if warning is None else warn / 10
    rate = Fraction(abandoned, divisor) if divisor else Fraction(0)
    if level in ("ok", "warning"):
        if rate > c:
            return "breach"
        if rate >= warn:
            return "warning"
        if level == "warning" and rate < warn - h:
            return "ok"
        return level
    # from breach
    if rate <= c - h:
        return "ok" if rate < warn - h else "warning"
    return "breach"


def window_lower_bound(window: str, now: int, tz: ZoneInfo):
    """Smallest ts inside the window (for ts <= now); None = unbounded.

    Equivalent to `in_abandon_window` for ts <= now (for `today`: see R11):
    floor(now/r) − W/r < floor(ts/r)  <=>  ts >= (floor(now/r) − W/r + 1)·r,
    and `today` = from the first instant of now's local date."""
    if window == "lifetime":
        return None
    if window == "today":
        return local_to_ms(local_date(now, tz), 0, tz, fold=0)
    if window == "24h":
        return (now // MINUTE - DAY // MINUTE + 1) * MINUTE
    if window == "30d":
        return (now // HOUR - 30 * DAY // HOUR + 1) * HOUR
    raise ValueError(window)


class Prefix:
    """What the accepted events up to key ``k`` (inclusive) say, from the campaign's final facts: an
    "earliest counts" fact in the prefix is the final one (the events are sorted), and an attempt's
    outcome depends only on facts keyed before its end."""

    def __init__(self, w: World, k):
        self.w, self.k = w, k
        self.now = max(e["ts"] for e in w.events if event_key(e) <= k) if k is not None else w.now
        inside = (lambda e: True) if k is None else (lambda e: event_key(e) <= k)
        self.facts = [e for e in w.facts if inside(e)]
        self.events = [e for e in w.events if inside(e)]
        self.cfg = campaign_config(self.facts)
        self.tz = campaign_tz(self.cfg)
        self.status = campaign_status(self.facts)
        self.dialed = [a for a in w.attempts.values() if a["dialed"] is not None and inside(a["dialed"])]
        self.ended = {id(a) for a in w.attempts.values() if a["ended"] is not None and inside(a["ended"])}

    def has_ended(self, a) -> bool:
        return id(a) in self.ended

    def contact_statuses(self) -> dict[str, str]:
        status = {e["contact_id"]: "pending" for e in self.events if e["type"] in CONTACT_NAMING_TYPES}
        for e in of_type(self.facts, "contact.status"):
            status[e["contact_id"]] = e["status"]
        return status

    def contact_zone(self, contact_id: str) -> str:
        for e in of_type(self.facts, "contact.added"):  # the counted (earliest) one only
            if e["contact_id"] == contact_id:
                return e.get("tz") or self.cfg_tz()
        return self.cfg_tz()

    def cfg_tz(self) -> str:
        tw = self.cfg["time_window"]
        return tw["tz"] if tw else "UTC"


def expected_human_answers(p: Prefix) -> int:
    """E = ⌊O × F_h ÷ F⌋ (0 when no contact is final)."""
    human = Counter(a["dialed"]["contact_id"] for a in p.dialed if p.has_ended(a) and is_human_answered(a))
    return expected_from(p.contact_statuses(), human)


def expected_from(status: dict[str, str], human: Counter) -> int:
    """E from the contacts' statuses and their human-answered ended attempts."""
    final = [c for c, st in status.items() if st not in NON_FINAL]
    open_ = len(status) - len(final)
    f_h = sum(human[c] for c in final)
    return open_ * f_h // len(final) if final else 0


class PrefixSoFar:
    """The facts of the prefix the alert fold has applied, kept as it goes (the same answers as
    `Prefix(w, k)`, without rescanning every event at every step)."""

    def __init__(self, w: World):
        self.w = w
        self.cfg = campaign_config([])
        self.status = "draft"
        self.dialed: list[dict] = []
        self.dialed_ids: set[int] = set()
        self.ended: set[int] = set()
        self.zones: dict[str, str | None] = {}
        self.statuses: dict[str, str] = {}
        self.human: Counter = Counter()
        self.kept = {id(e) for e in w.facts}

    def has_ended(self, a) -> bool:
        return id(a) in self.ended

    def cfg_tz(self) -> str:
        tw = self.cfg["time_window"]
        return tw["tz"] if tw else "UTC"

    def contact_zone(self, contact_id: str) -> str:
        return self.zones.get(contact_id) or self.cfg_tz()

    def apply(self, e: dict, cfg: dict) -> bool:
        """Take one more accepted event; True when it may change a guard decision."""
        self.cfg = cfg
        t = e["type"]
        if t in CONTACT_NAMING_TYPES:
            self.statuses.setdefault(e["contact_id"], "pending")
        if id(e) not in self.kept:
            return False
        if t == "campaign.status":
            self.status = e["status"]
        elif t == "contact.status":
            self.statuses[e["contact_id"]] = e["status"]
        elif t == "contact.added":
            self.zones[e["contact_id"]] = e.get("tz")
        elif t in ("call.dialed", "call.ended"):
            a = self.w.attempts[e["attempt_id"]]
            if t == "call.dialed":
                self.dialed.append(a)
                self.dialed_ids.add(id(a))
            else:
                self.ended.add(id(a))
            if id(a) in self.dialed_ids and self.has_ended(a) and is_human_answered(a):
                self.human[a["dialed"]["contact_id"]] += 1
        return t in ("call.dialed", "call.ended", "contact.added", "campaign.created")


def local_time_of_day_ms(ms: int, zone: str) -> int:
    t = local_datetime(ms, ZoneInfo(zone))
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def guard_violations(p: Prefix) -> dict[str, set[str]]:
    """attempt ids violating each guard, as the facts of the prefix decide them."""
    ch = p.cfg["calling_hours"]
    start, end = hhmm_minutes(ch["start"]) * MINUTE, hhmm_minutes(ch["end"]) * MINUTE
    span = p.cfg["abandon_redial_hours"] * HOUR
    out = {"calling_hours": set(), "abandon_redial": set()}
    by_contact = defaultdict(list)
    for b in p.dialed:
        by_contact[b["dialed"]["contact_id"]].append(b)
    for a in p.dialed:
        aid, d, contact = a["dialed"]["attempt_id"], a["dialed"]["ts"], a["dialed"]["contact_id"]
        tod = local_time_of_day_ms(d, p.contact_zone(contact))
        if tod < start or tod >= end:
            out["calling_hours"].add(aid)
        if span and any(b is not a and p.has_ended(b) and p.w.outcome(b) == "abandoned"
                        and b["ended"]["ts"] < d <= b["ended"]["ts"] + span
                        for b in by_contact[contact]):
            out["abandon_redial"].add(aid)
    return out


def complaint_counts_upto(times: dict[str, list[int]], n: dict[str, int], now: int) -> dict[str, tuple[int, int]]:
    """complaint_counts of a prefix holding the first n[type] facts of each type (in key order, hence
    in ts order) whose ts are ``times[type]``."""
    lo = (now // HOUR - 30 * DAY // HOUR + 1) * HOUR  # the 30d grid window's first ms (ts <= now)

    def count(etype, window):
        return n[etype] if window == "lifetime" else n[etype] - bisect_left(times[etype], lo, 0, n[etype])
    return {win: (count("email.complained", win), count("email.delivered", win)) for win in ("lifetime", "30d")}


def complaint_counts(facts: list[dict], now: int) -> dict[str, tuple[int, int]]:
    def count(etype, window):
        return sum(1 for e in of_type(facts, etype)
                   if window == "lifetime" or in_grid_window(e["ts"], now, 30 * DAY, HOUR))
    return {win: (count("email.complained", win), count("email.delivered", win)) for win in ("lifetime", "30d")}


def abandon_fold(w: World, min_sample: int):
    """Apply the accepted events one by one in key order; after each, re-evaluate
    the four windows.  Returns (alert records, final levels, final complaint levels).

    An attempt's outcome depends only on facts keyed before its call.ended,
    so it is the same in every prefix that contains the end: the per-prefix
    window counts are sums over the ended attempts whose end key <= the
    current key and whose end ts >= the window's lower bound (prefix sums +
    bisect, to stay fast on a few thousand events; tests cross-check this
    against a literal per-prefix recount)."""
    ended = sorted(w.ended_attempts(), key=lambda a: event_key(a["ended"]))
    end_keys = [event_key(a["ended"]) for a in ended]
    end_ts = [a["ended"]["ts"] for a in ended]
    cum_abandoned, cum_human = [0], [0]
    for a in ended:
        cum_abandoned.append(cum_abandoned[-1] + (w.outcome(a) == "abandoned"))
        cum_human.append(cum_human[-1] + is_human_answered(a))

    created = of_type(w.events, "campaign.created")
    levels = {win: "ok" for win in WINDOWS}
    clevels = {win: "ok" for win in ("lifetime", "30d")}
    seq = Counter()
    alerts = []
    j = 0  # ended[:j] = attempts ended in the prefix
    counts = {}
    armed = {win: True for win in FORECAST_WINDOWS}
    fseq = Counter()
    alerted = {"calling_hours": set(), "abandon_redial": set()}
    # dials and sends in key order, for first_dial_ts of each prefix
    dials = sorted(of_type(w.events, "call.dialed", "email.sent"), key=event_key)
    dial_keys = [event_key(e) for e in dials]
    d, first_any, first_call = 0, None, None
    org, camp = quote(w.org_id, safe=''), quote(w.campaign_id, safe='')
    prefix = PrefixSoFar(w)
    violations = {"calling_hours": set(), "abandon_redial": set()}
    c_times = {t: [e["ts"] for e in of_type(w.facts, t)] for t in ("email.complained", "email.delivered")}
    c_n = {t: 0 for t in c_times}
    for e in w.events:
        k = event_key(e)
        now = e["ts"]
        while j < len(ended) and end_keys[j] <= k:
            j += 1
        cfg = campaign_config([c for c in created if event_key(c) <= k])
        tz = campaign_tz(cfg)
        ceiling = cfg["abandon_ceiling"]
        guards_move = prefix.apply(e, cfg)
        if e["type"] in c_n and id(e) in prefix.kept:
            c_n[e["type"]] += 1
        final = prefix.status in FINAL_CAMPAIGN
        for win in WINDOWS:
            lo = window_lower_bound(win, now, tz)
            i = 0 if lo is None else bisect_left(end_ts, lo, 0, j)
            abandoned = cum_abandoned[j] - cum_abandoned[i]
            human = cum_human[j] - cum_human[i]
            new = next_level(levels[win], abandoned, human, ceiling, min_sample, final)
            if new != levels[win]:
                seq[win] += 1
                alerts.append({
                    "alert_id": f"{org}:{camp}:{win}:{seq[win]}",
                    "kind": "level",
                    "campaign_id": w.campaign_id,
                    "org_id": w.org_id,
                    "window": win,
                    "from": levels[win],
                    "to": new,
                    "rate": ratio(abandoned, human),
                    "abandoned": abandoned,
                    "human_answered": human,
                    "ceiling": ceiling,
                    "at": fmt(now),
                })
                levels[win] = new
            counts[win] = (abandoned, human)
        for win, (c, dl) in complaint_counts_upto(c_times, c_n, now).items():
            new = next_level(clevels[win], c, dl, cfg["complaint_ceiling"], COMPLAINT_SAMPLE, final,
                             warning=cfg["complaint_warning"])
            if new != clevels[win]:
                seq["complaint-" + win] += 1
                alerts.append({
                    "alert_id": f"{org}:{camp}:complaint-{win}:{seq['complaint-' + win]}",
                    "kind": "complaint_level",
                    "campaign_id": w.campaign_id,
                    "org_id": w.org_id,
                    "window": win,
                    "from": clevels[win],
                    "to": new,
                    "rate": ratio(c, dl),
                    "complained": c,
                    "delivered": dl,
                    "ceiling": cfg["complaint_ceiling"],
                    "at": fmt(now),
                })
                clevels[win] = new
        # forecast alerts, after the levels of this prefix (R12)
        ti = bisect_left(end_ts, (now // SECOND - TREND_S + 1) * SECOND, 0, j)
        trend = (cum_abandoned[j] - cum_abandoned[ti], cum_human[j] - cum_human[ti])
        while d < len(dials) and dial_keys[d] <= k:
            ts = dials[d]["ts"]
            first_any = ts if first_any is None else min(first_any, ts)
            if dials[d]["type"] == "call.dialed":
                first_call = ts if first_call is None else min(first_call, ts)
            d += 1
        span = trend_span_s(now, first_any if cfg["channel"] == "email" else first_call)
        active = prefix.status == "active"
        E = expected_from(prefix.statuses, prefix.human) if active and trend[1] >= 10 else 0
        for win in FORECAST_WINDOWS:
            t_star = breach_time_s(levels[win], *counts[win], *trend, span, ceiling, min_sample, active, E)
            t_star = forecast_horizon(win, t_star, now, tz)
            if t_star is None or t_star > REARM_S:
                armed[win] = True
            elif armed[win] and t_star <= ARM_S and levels[win] != "breach":
                armed[win] = False
                fseq[win] += 1
                abandoned, human = counts[win]
                alerts.append({
                    "alert_id": f"{org}:{camp}:forecast-{win}:{fseq[win]}",
                    "kind": "forecast",
                    "campaign_id": w.campaign_id,
                    "org_id": w.org_id,
                    "window": win,
                    "breach_in_s": float(t_star),
                    "breach_at": fmt(now + math.ceil(1000 * t_star)),
                    "rate": ratio(abandoned, human),
                    "abandoned": abandoned,
                    "human_answered": human,
                    "ceiling": ceiling,
                    "at": fmt(now),
                })
        # compliance guards: each violating attempt the first time a prefix shows it as one (the
        # decisions change only with a dial, an end, a contact's zone or the configuration)
        if guards_move:
            violations = guard_violations(prefix)
        for kind in ("calling_hours", "abandon_redial"):
            new = [a for a in prefix.dialed
                   if a["dialed"]["attempt_id"] in violations[kind] and a["dialed"]["attempt_id"] not in alerted[kind]]
            for a in sorted(new, key=lambda a: (a["dialed"]["ts"], a["dialed"]["attempt_id"])):
                aid, contact, dts = a["dialed"]["attempt_id"], a["dialed"]["contact_id"], a["dialed"]["ts"]
                alerted[kind].add(aid)
                seq[kind] += 1
                rec = {"alert_id": f"{org}:{camp}:{kind}:{seq[kind]}", "kind": kind, "campaign_id": w.campaign_id,
                       "org_id": w.org_id, "attempt_id": aid, "contact_id": contact, "dialed_at": fmt(dts)}
                if kind == "calling_hours":
                    zone = prefix.contact_zone(contact)
                    tod = local_time_of_day_ms(dts, zone) // 1000
                    rec["tz"] = zone
                    rec["local_time"] = f"{tod // 3600:02d}:{tod // 60 % 60:02d}:{tod % 60:02d}"
                rec["at"] = fmt(now)
                alerts.append(rec)
    return alerts, levels, clevels


def abandon_block(w: World, final_levels: dict, min_sample: int) -> dict:
    windows = {}
    for win in WINDOWS:
        abandoned, human = abandon_counts(w, win)
        windows[win] = {"abandoned": abandoned, "human_answered": human,
                        "rate": ratio(abandoned, human), "level": final_levels[win]}
    ceiling = w.cfg["abandon_ceiling"]
    budget = abandon_budget(ceiling, windows["30d"]["human_answered"], windows["30d"]["abandoned"])
    return {"ceiling": ceiling, "budget": budget, "windows": windows,
            "forecast": forecast_block(w, windows, final_levels, min_sample),
            "pacing": pacing_block(w, windows["30d"]),
            "periods": periods_block(w)}


def periods_block(w: World) -> list[dict]:
    """Successive 30-day periods from first_dial_ts; an ended attempt in the period of its end (period 1
    when it ended before the first dial)."""
    first = w.first_dial_ts()
    if first is None:
        return []
    last = (w.now - first) // PERIOD + 1
    rows = []
    c = as_fraction(w.cfg["abandon_ceiling"])
    for k in range(1, last + 1):
        lo, hi = first + (k - 1) * PERIOD, first + k * PERIOD
        abandoned = human = 0
        for a in w.ended_attempts():
            e = a["ended"]["ts"]
            if (lo <= e < hi) or (k == 1 and e < first):
                abandoned += w.outcome(a) == "abandoned"
                human += is_human_answered(a)
        rows.append({"period": k, "start": fmt(lo), "end": fmt(hi), "abandoned": abandoned, "human_answered": human,
                     "rate": ratio(abandoned, human),
                     "within_ceiling": human == 0 or Fraction(abandoned, human) <= c})
    return rows


def compliance_block(w: World) -> dict:
    p = Prefix(w, None)
    violations = guard_violations(p)
    dial_ts = {a["dialed"]["attempt_id"]: a["dialed"]["ts"] for a in p.dialed}

    def last(kind):
        times = [dial_ts[aid] for aid in violations[kind]]
        return fmt(max(times)) if times else None

    return {"calling_hours": {"violations": len(violations["calling_hours"]), "last_violation_at": last("calling_hours")},
            "abandon_redial": {"hours": w.cfg["abandon_redial_hours"], "violations": len(violations["abandon_redial"]),
                               "last_violation_at": last("abandon_redial")}}


def waiting_for_agent(w: World) -> tuple[int, int | None]:
    """Attempts dialed and answered, not bridged, not ended, AMD not machine; ms since the earliest
    connection start among them (abandon_from of now)."""
    starts = []
    for a in w.attempts.values():
        if not (a["dialed"] and a["answered"] and not a["bridged"] and not a["ended"]):
            continue
        amd = a["amd"]
        if amd is not None and amd["result"] == "machine":
            continue
        if w.cfg["abandon_from"] == "greeting_end" and amd is not None:
            starts.append(amd["ts"])
        else:
            starts.append(a["answered"]["ts"])
    return len(starts), (w.now - min(starts) if starts else None)


# --------------------------------------------------------------------------
# Abandon forecast and pacing (SPEC §3), exact fractions throughout
# --------------------------------------------------------------------------

TREND_S = 900
FORECAST_WINDOWS = ("today", "30d")
ARM_S, REARM_S = 900, 1800


def trend_span_s(now: int, first_dial) -> Fraction:
    """T = min(900, max(1, (now − first_dial_ts)/1000)) s; 1 s before any dial (R12)."""
    if first_dial is None:
        return Fraction(1)
    return min(Fraction(TREND_S), max(Fraction(1), Fraction(now - first_dial, 1000)))


def trend_counts(w: World) -> tuple[int, int]:
    """(a, h) over attempts whose call.ended is in the trailing 900 s (1 s grid)."""
    a = h = 0
    for att in w.ended_attempts():
        if in_grid_window(att["ended"]["ts"], w.now, TREND_S * SECOND, SECOND):
            a += w.outcome(att) == "abandoned"
            h += is_human_answered(att)
    return a, h


def breach_time_s(level: str, A: int, H: int, a: int, h: int, T: Fraction, ceiling, m: int,
                  active: bool = True, E: int | None = None):
    """t* in seconds (Fraction) or None, literally as SPEC §3 writes it."""
    if level == "breach":
        return Fraction(0)
    if not active or h < 10:
        return None
    c = as_fraction(ceiling)
    alpha, eta = Fraction(a) / T, Fraction(h) / T
    t_star = None
    if m > H:
        t1 = (m - H) / eta if eta > 0 else None
        if alpha > 0 and max(Fraction(0), (c * m - A) / alpha) <= t1:
            t_star = max(Fraction(0), (c * m - A) / alpha)
        elif t1 is not None and alpha - c * eta > 0:
            t_star = (c * H - A) / (alpha - c * eta)
    elif alpha - c * eta > 0:
        t_star = (c * H - A) / (alpha - c * eta)
    if t_star is None or (E is not None and eta * t_star > E):
        return None
    return t_star


def forecast_horizon(window: str, t_star, now: int, tz: ZoneInfo):
    """None when breach_at is on a later local date (`today`) or more than 24 h ahead (`30d`)."""
    if t_star is None:
        return None
    at = now + math.ceil(1000 * t_star)
    if window == "today" and local_date(at, tz) > local_date(now, tz):
        return None
    if window == "30d" and at - now > DAY:
        return None
    return t_star


def forecast_block(w: World, windows: dict, levels: dict, min_sample: int) -> dict:
    a, h = trend_counts(w)
    T = trend_span_s(w.now, w.first_dial_ts())
    out = {"trend": {"abandoned": a, "human_answered": h, "span_s": float(T)}}
    E = expected_human_answers(Prefix(w, None))
    for win in FORECAST_WINDOWS:
        A, H = windows[win]["abandoned"], windows[win]["human_answered"]
        t_star = forecast_horizon(win, breach_time_s(levels[win], A, H, a, h, T, w.cfg["abandon_ceiling"],
                                                     min_sample, w.status == "active", E), w.now, w.tz)
        out[win] = ({"breach_in_s": None, "breach_at": None} if t_star is None else
                    {"breach_in_s": float(t_star), "breach_at": fmt(w.now + math.ceil(1000 * t_star))})
    return out


def pacing_block(w: World, window_30d: dict) -> dict:
    remaining = retries_left(w)
    E = expected_human_answers(Prefix(w, None))
    c = as_fraction(w.cfg["abandon_ceiling"])
    A, H = window_30d["abandoned"], window_30d["human_answered"]
    allowed = min(E, max(0, math.floor(c * (H + E) - A)))
    return {"remaining_dials": remaining, "expected_human_answers": E, "allowed_abandons": allowed,
            "max_abandon_rate": float(Fraction(allowed, E)) if E else None}


# --------------------------------------------------------------------------
# Time window, live block, ETA, banner, performance
# --------------------------------------------------------------------------

def hhmm_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def window_is_open(ms: int, tw: dict) -> bool:
    """Open at local time-of-day t when start <= t < end (or, spanning midnight,
    t >= start or t < end)."""
    local = local_datetime(ms, ZoneInfo(tw["tz"]))
    t = ((local.hour * 60 + local.minute) * 60 + local.second) * 1000 + local.microsecond // 1000
    start = hhmm_minutes(tw["start"]) * MINUTE
    end = hhmm_minutes(tw["end"]) * MINUTE
    if start < end:
        return start <= t < end
    return t >= start or t < end


def utc_offset(ms: int, tz: ZoneInfo):
    return local_datetime(ms, tz).utcoffset()


def first_ms_with_new_offset(lo: int, hi: int, tz: ZoneInfo) -> int:
    """Binary search the DST transition between lo and hi (offsets differ)."""
    before = utc_offset(lo, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if utc_offset(mid, tz) == before:
            lo = mid
        else:
            hi = mid
    return hi


def lay_on_window(tw: dict, now: int, need_ms: float) -> float:
    """Finish instant (float ms) when `need_ms` of dialing time is laid on the
    window's open time from `now` on.

    The open/closed state can only change where the local time-of-day crosses
    start or end (those instants, both PEP 495 folds, every local day) or at a
    UTC-offset change; between consecutive such candidate instants it is
    constant, so we walk the candidates day after day and test each piece.
    """
    tz = ZoneInfo(tw["tz"])
    first_day = local_date(now, tz)
    horizon = 8
    while True:
        cands = {now}
        for k in range(-2, horizon + 1):
            day = first_day + timedelta(days=k)
            for minutes in (hhmm_minutes(tw["start"]), hhmm_minutes(tw["end"])):
                for fold in (0, 1):
                    cands.add(local_to_ms(day, minutes, tz, fold))
        cands = sorted(c for c in cands if c >= now)
        transitions = [first_ms_with_new_offset(a, b, tz) for a, b in zip(cands, cands[1:])
                       if utc_offset(a, tz) != utc_offset(b, tz)]
        cands = sorted(set(cands) | set(transitions))
        safe_end = local_to_ms(first_day + timedelta(days=horizon - 1), 0, tz)
        left = need_ms
        for a, b in zip(cands, cands[1:]):
            if b > safe_end:
                break
            if window_is_open(a, tw):
                if left <= b - a:
                    return a + left
                left -= b - a
        horizon *= 2


def count_in_window(times, now: int, length_ms: int) -> int:
    """Grid window at 1 s resolution (W <= 1 h)."""
    return sum(1 for ts in times if in_grid_window(ts, now, length_ms, SECOND))


def rate_divisor_s(w: World, length_s: int) -> float:
    """min(W, max(1 s, now − first_dial_ts)) in seconds; 1 with no dial."""
    first = w.first_dial_ts()
    if first is None:
        return 1.0
    return float(min(length_s, max(1, (w.now - first) / 1000)))


def per_second(w: World, times, length_s: int) -> float:
    return count_in_window(times, w.now, length_s * SECOND) / rate_divisor_s(w, length_s)


def eta(w: World, remaining: int):
    """(eta_seconds, eta_at)."""
    if remaining == 0:
        return 0.0, fmt(w.now)
    rate = per_second(w, w.dial_times(), 300)
    if rate == 0:
        return None, None
    need_s = remaining / rate
    tw = w.cfg["time_window"]
    if tw is None:
        return need_s, fmt(round(w.now + need_s * 1000))
    finish = lay_on_window(tw, w.now, need_s * 1000)
    return (finish - w.now) / 1000, fmt(round(finish))


def banner(w: World) -> str:
    tw = w.cfg["time_window"]
    outside = tw is not None and not window_is_open(w.now, tw)
    if w.status in ("active", "paused") and outside:
        return "paused_outside_window"
    if w.status == "paused":
        return "paused"
    if w.status == "active" and count_in_window(w.dial_times(), w.now, 30 * SECOND) == 0:
        return "idle"
    if w.status == "active":
        return "live"
    return w.status


def live_avg_ring_ms(w: World):
    return mean(ring_time(a) for a in w.attempts.values()
                if a["dialed"] and a["answered"]
                and in_grid_window(a["answered"]["ts"], w.now, 900 * SECOND, SECOND))


def live_block(w: World, contacts: dict) -> dict:
    bridged_times = [e["ts"] for e in of_type(w.facts, "call.bridged")]
    ended_times = [e["ts"] for e in of_type(w.facts, "call.ended")]
    dials = w.dial_times()
    pending = contacts["buckets"]["pending"]
    eta_seconds, eta_at = eta(w, pending)
    by_status = contacts["by_status"]
    waiting, oldest = waiting_for_agent(w)
    return {
        "banner": banner(w),
        "dials_per_sec": per_second(w, dials, 60),
        "connected_per_hour": per_second(w, bridged_times, 3600) * 3600,
        "calls_per_min": per_second(w, ended_times, 60) * 60,
        "avg_ring_ms": live_avg_ring_ms(w),
        "ringing": ringing(w),
        "in_progress": in_progress_calls(w),
        "waiting_for_agent": waiting,
        "oldest_wait_ms": oldest,
        "last_dial_at": fmt(max(dials)) if dials else None,
        "pending": pending,
        "retries_queued": by_status["retrying"] + by_status["followup_scheduled"],
        "eta_seconds": eta_seconds,
        "eta_at": eta_at,
    }


def performance_block(w: World):
    if w.status not in ("completed", "stopped"):
        return None
    first = w.first_dial_ts()
    ended_times = [a["ended"]["ts"] for a in w.ended_attempts()]
    if first is None or not ended_times:
        span = 1.0
    else:
        span = float(max(1, (max(ended_times) - first) / 1000))
    connected = outcomes_block(w)["connected"]
    return {
        "dials_per_sec": len(w.dialed_attempts()) / span,
        "connected_per_hour": connected / span * 3600,
        "calls_per_min": len(ended_times) / span * 60,
        "total_connected": connected,
    }


# --------------------------------------------------------------------------
# Passes, callbacks, email, costs, diagnostics
# --------------------------------------------------------------------------

def passes_block(w: World) -> list[dict]:
    eligible: dict[int, int] = {}
    for e in of_type(w.facts, "pass.started"):  # ascending: latest wins
        eligible[e["pass"]] = e["eligible"]
    dialed = w.dialed_attempts()
    numbers = set(eligible) | {a["dialed"].get("pass", 1) for a in dialed}
    rows = []
    for n in sorted(numbers):
        in_pass = [a for a in dialed if a["dialed"].get("pass", 1) == n]
        attempted = {a["dialed"]["contact_id"] for a in in_pass}
        connected = {a["dialed"]["contact_id"] for a in in_pass if w.outcome(a) == "connected"}
        starts = [a["dialed"]["ts"] for a in in_pass]
        ends = [a["ended"]["ts"] for a in in_pass if a["ended"]]
        started = min(starts) if starts else None
        ended = max(ends) if ends else None
        rows.append({
            "pass": n,
            "eligible": eligible.get(n),
            "attempted": len(attempted),
            "connected": len(connected),
            "connect_rate": ratio(len(connected), len(attempted)),
            "started_at": fmt(started),
            "ended_at": fmt(ended),
            "duration_s": (ended - started) / 1000 if started is not None and ended is not None else None,
        })
    return rows


# --------------------------------------------------------------------------
# Runs (restarts)
# --------------------------------------------------------------------------

RUN_TYPES = ("campaign.run_started", "campaign.run_cancelled")


def run_order(w: World) -> list[tuple]:
    """[(start or None, run)] in run order: run 1 first, then every run whose latest run event
    (by key) is a start, by (start, run)."""
    deciding: dict[int, dict] = {}
    for e in of_type(w.facts, *RUN_TYPES):  # ascending key: the latest decides
        deciding[e["run"]] = e
    started = sorted((e["ts"], n) for n, e in deciding.items() if e["type"] == "campaign.run_started")
    return [(None, 1)] + started


def run_of_dial(order: list[tuple], dial_ts: int) -> int:
    """The last run in order whose start <= the dial ts (run 1 when none)."""
    run = 1
    for start, n in order[1:]:
        if start <= dial_ts:
            run = n
    return run


def run_row(w: World, run: int, start, attempts: list[dict]) -> dict:
    """One run's figures over its attempts, as the lifetime ones over all (attempts_block ... avg_ring_ms)."""
    ended = [a for a in attempts if a["ended"] is not None]
    counts = Counter(w.outcome(a) for a in ended)
    outcomes = {k: counts[k] for k in ("connected", "abandoned", "machine", "busy", "no_answer", "failed")}
    answered = sum(1 for a in ended if answered_before_end(a))
    human = sum(1 for a in ended if is_human_answered(a))
    return {
        "run": run,
        "started_at": fmt(start),
        "attempts": len(attempts),
        "outcomes": outcomes,
        "answered": answered,
        "human_answered": human,
        "answer_rate": ratio(answered, len(ended)),
        "connect_rate": ratio(outcomes["connected"], len(ended)),
        "abandon_rate": ratio(outcomes["abandoned"], human),
        "aht_ms": mean(handle_time(a) for a in ended if w.outcome(a) == "connected"),
        "avg_ring_ms": mean(ring_time(a) for a in attempts if a["answered"]),
        "first_dial_at": fmt(min(a["dialed"]["ts"] for a in attempts)) if attempts else None,
        "last_end_at": fmt(max(a["ended"]["ts"] for a in ended)) if ended else None,
    }


def runs_keys(w: World) -> dict:
    """`run`, `runs` and `previous_run_stats` of the /stats body."""
    order = run_order(w)
    mine: dict[int, list] = {n: [] for _s, n in order}
    for a in w.dialed_attempts():
        mine[run_of_dial(order, a["dialed"]["ts"])].append(a)
    rows = [run_row(w, n, start, mine[n]) for start, n in order]
    return {"run": rows[-1]["run"], "runs": rows, "previous_run_stats": rows[-2] if len(rows) > 1 else None}


def callback_fold(w: World):
    """Returns (requested, completed, cancelled, delays, orphan closes)."""
    open_callbacks: dict[str, list[tuple]] = defaultdict(list)  # contact -> [(due_at, request key)]
    requested = completed = cancelled = orphans = 0
    delays = []
    for e in w.facts:  # key order
        t = e["type"]
        if t == "callback.requested":
            requested += 1
            open_callbacks[e["contact_id"]].append((e["due_at"], event_key(e)))
        elif t in ("callback.completed", "callback.cancelled"):
            pending = open_callbacks[e["contact_id"]]
            if not pending:
                orphans += 1
                continue
            closed = min(pending)  # earliest due_at, ties: earliest request key
            pending.remove(closed)
            if t == "callback.completed":
                completed += 1
                delays.append(e["ts"] - closed[0])
            else:
                cancelled += 1
    return requested, completed, cancelled, delays, orphans


def callbacks_block(w: World) -> dict:
    requested, completed, cancelled, delays, _ = callback_fold(w)
    return {"requested": requested, "pending": requested - completed - cancelled,
            "completed": completed, "avg_delay_ms": mean(delays)}


def messages_with(w: World, etype: str) -> set[str]:
    return {e["message_id"] for e in of_type(w.facts, etype)}


def email_block(w: World, complaint_levels: dict) -> dict:
    sent = len(messages_with(w, "email.sent"))
    delivered = len(messages_with(w, "email.delivered"))
    opened = len(messages_with(w, "email.opened"))
    clicked = len(messages_with(w, "email.clicked"))
    replied = len(messages_with(w, "email.replied"))
    meetings = len({e["contact_id"] for e in of_type(w.facts, "meeting.booked")})
    return {
        "emails_sent": sent,
        "delivered": delivered,
        "bounced": len(messages_with(w, "email.bounced")),
        "opened": opened,
        "clicked": clicked,
        "replied": replied,
        "unsubscribed": len(messages_with(w, "email.unsubscribed")),
        "complained": len(messages_with(w, "email.complained")),
        "meetings_booked": meetings,
        "rates": {
            "delivery_rate": ratio(delivered, sent),
            "open_rate": ratio(opened, delivered),
            "click_rate": ratio(clicked, delivered),
            "reply_rate": ratio(replied, delivered),
            "conversion_rate": ratio(meetings, delivered),
            "complaint_rate": ratio(len(messages_with(w, "email.complained")), delivered),
        },
        "complaints": {
            "ceiling": w.cfg["complaint_ceiling"],
            "warning": w.cfg["complaint_warning"],
            "windows": {win: {"complained": c, "delivered": d, "rate": ratio(c, d), "level": complaint_levels[win]}
                        for win, (c, d) in complaint_counts(w.facts, w.now).items()},
        },
    }


def costs_block(w: World) -> dict:
    per_category: Counter = Counter()
    for e in of_type(w.facts, "cost.incurred"):
        per_category[e["category"]] += usd_micros(e)
    total = sum(per_category.values())
    return {"total_usd": total / 10**6,
            "breakdown": {cat: per_category[cat] / 10**6 for cat in sorted(per_category)}}


def agents_block(w: World) -> dict:
    """SPEC §3 *Agents*, straight from the definition: every agent named by an agent.state or by a counted
    call.bridged; its state events in (ts, event_id) order, each held until the next one's ts, the last
    until now."""
    states = ("ready", "on_call", "wrap", "paused", "offline")
    events: dict[str, list[dict]] = defaultdict(list)
    for e in of_type(w.facts, "agent.state"):  # (sorted by key; none is dropped as superseded)
        events[e["agent_id"]].append(e)
    handles: dict[str, list[int]] = defaultdict(list)
    named = set(events)
    for a in w.attempts.values():
        bridged = a["bridged"]
        if bridged is None or bridged.get("agent_id") is None:
            continue
        named.add(bridged["agent_id"])
        if a["ended"] is not None and w.outcome(a) == "connected":
            handles[bridged["agent_id"]].append(handle_time(a))
    by_state = {s: 0 for s in states}
    entries = []
    for agent in sorted(named):
        evs = events.get(agent, [])
        state = evs[-1]["state"] if evs else "offline"
        by_state[state] += 1
        time_ms = {s: 0 for s in states}
        for i, e in enumerate(evs):
            until = evs[i + 1]["ts"] if i + 1 < len(evs) else w.now
            time_ms[e["state"]] += until - e["ts"]
        del time_ms["offline"]
        busy = time_ms["on_call"] + time_ms["wrap"]
        entries.append({
            "agent_id": agent, "state": state,
            "since": fmt(evs[-1]["ts"]) if evs else None, "reason": evs[-1].get("reason") if evs else None,
            "calls": len(handles[agent]), "aht_ms": mean(handles[agent]),
            "time_ms": time_ms,
            "occupancy": busy / (busy + time_ms["ready"]) if busy + time_ms["ready"] else None,
        })
    return {"by_state": by_state, "list": entries}


def diagnostics_block(w: World) -> dict:
    orphan_attempts = sum(1 for a in w.attempts.values() if a["dialed"] is None)
    email_messages = set().union(*(messages_with(w, t) for t in EMAIL_TYPES))
    orphan_messages = len(email_messages - messages_with(w, "email.sent"))
    orphan_closes = callback_fold(w)[4]
    return {"late": 0, "duplicates": w.id_repeats + w.superseded,
            "orphaned": orphan_attempts + orphan_messages + orphan_closes}


# --------------------------------------------------------------------------
# The /stats body
# --------------------------------------------------------------------------

def config_block(w: World) -> dict:
    c = w.cfg
    return {
        "concurrency_limit": c["concurrency_limit"],
        "max_attempts": c["max_attempts"],
        "abandon_ceiling": c["abandon_ceiling"],
        "abandon_threshold_ms": c["abandon_threshold_ms"],
        "abandon_from": c["abandon_from"],
        "time_window": c["time_window"],
        "config": c["config"],
        "calling_hours": c["calling_hours"],
        "abandon_redial_hours": c["abandon_redial_hours"],
        "complaint_ceiling": c["complaint_ceiling"],
        "complaint_warning": c["complaint_warning"],
    }


def stats_body(w: World, min_sample: int) -> dict:
    contacts = contacts_block(w)
    _, final_levels, complaint_levels = abandon_fold(w, min_sample)
    return {
        "campaign_id": w.campaign_id,
        "org_id": w.org_id,
        "name": w.cfg["name"],
        "channel": w.cfg["channel"],
        "kind": w.cfg["kind"],
        "status": w.status,
        "as_of": fmt(w.now),
        "config": config_block(w),
        "contacts": contacts,
        "retry_breakdown": retry_breakdown(w),
        "retries_left": retries_left(w),
        "batch_counts": batch_counts(w),
        "attempts": attempts_block(w, contacts["total"]),
        "outcomes": outcomes_block(w),
        "answered": answered_count(w),
        "human_answered": human_answered_count(w),
        "active_calls": active_calls(w),
        "ringing": ringing(w),
        "in_progress": in_progress_calls(w),
        "concurrency_limit": w.cfg["concurrency_limit"],
        "rates": rates_block(w, contacts),
        "aht_ms": aht_ms(w),
        "avg_ring_ms": avg_ring_ms(w),
        "abandon": abandon_block(w, final_levels, min_sample),
        "compliance": compliance_block(w),
        "live": live_block(w, contacts),
        "performance": performance_block(w),
        "passes": passes_block(w),
        **runs_keys(w),
        "agents": agents_block(w),
        "callbacks": callbacks_block(w),
        "email": email_block(w, complaint_levels),
        "costs": costs_block(w),
        "diagnostics": diagnostics_block(w),
    }


def reference_stats(events: list[dict], *, min_sample: int = 50) -> dict[tuple[str, str], dict]:
    return {c: stats_body(w, min_sample) for c, w in build_worlds(events).items()}


def reference_alerts(events: list[dict], *, min_sample: int = 50) -> dict[tuple[str, str], list[dict]]:
    return {c: abandon_fold(w, min_sample)[0] for c, w in build_worlds(events).items()}


# --------------------------------------------------------------------------
# Daily
# --------------------------------------------------------------------------

DAILY_FIELDS = ["dials", "answered", "connected", "abandoned", "ended",
                "emails_sent", "opened", "replied"]


def reference_daily(events: list[dict], org_id: str, campaign_id: str, start: str, end: str) -> list[dict]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    counts = {}
    micros = {}
    day = first
    while day <= last:
        counts[day] = {f: 0 for f in DAILY_FIELDS}
        micros[day] = 0
        day += timedelta(days=1)

    world = build_worlds(events).get((org_id, campaign_id))
    if world is not None:
        tz = world.tz

        def add(ts: int, field: str, amount: int = 1):
            d = local_date(ts, tz)
            if d in counts:
                counts[d][field] += amount

        for e in world.facts:  # facts: the first event of each fact only
            t = e["type"]
            if t == "call.dialed":
                add(e["ts"], "dials")
            elif t == "call.answered":
                add(e["ts"], "answered")
            elif t == "call.ended":
                add(e["ts"], "ended")
                outcome = world.outcomes[e["attempt_id"]]
                if outcome in ("connected", "abandoned"):
                    add(e["ts"], outcome)
            elif t == "email.sent":
                add(e["ts"], "emails_sent")
            elif t == "email.opened":
                add(e["ts"], "opened")
            elif t == "email.replied":
                add(e["ts"], "replied")
            elif t == "cost.incurred":
                d = local_date(e["ts"], tz)
                if d in micros:
                    micros[d] += usd_micros(e)

    return [{"date": d.isoformat(), **counts[d], "cost_usd": micros[d] / 10**6} for d in sorted(counts)]


# --------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------

BENCHMARK_RATES = {
    "answer_rate": lambda b: b["rates"]["answer_rate"],
    "connect_rate": lambda b: b["rates"]["connect_rate"],
    "completion_rate": lambda b: b["rates"]["completion_rate"],
    "abandon_rate": lambda b: b["abandon"]["windows"]["lifetime"]["rate"],
    "delivery_rate": lambda b: b["email"]["rates"]["delivery_rate"],
    "open_rate": lambda b: b["email"]["rates"]["open_rate"],
    "click_rate": lambda b: b["email"]["rates"]["click_rate"],
    "reply_rate": lambda b: b["email"]["rates"]["reply_rate"],
    "conversion_rate": lambda b: b["email"]["rates"]["conversion_rate"],
}


def reference_benchmarks(stats_bodies: list[dict], org_id: str, kind: str) -> dict:
    chosen = [b for b in stats_bodies if b["org_id"] == org_id and b["kind"] == kind]
    result = {}
    for name, get in BENCHMARK_RATES.items():
        values = [float(get(b)) for b in chosen]
        if not values:
            result[name] = {"average": None, "p25": None, "p50": None, "p75": None, "sample_size": 0}
            continue
        result[name] = {
            "average": sum(values) / len(values),
            "p25": float(np.percentile(values, 25)),
            "p50": float(np.percentile(values, 50)),
            "p75": float(np.percentile(values, 75)),
            "sample_size": len(values),
        }
    return result
