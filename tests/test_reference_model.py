"""Hand-worked examples pinning tests/reference_model.py to SPEC §1–§3.1 and
docs/semantics.md.

Every expected number below is worked out by hand in the comment next to it
(it was not copied from running the model).  Events are built directly as
normalised dicts (ts int epoch ms), independent of engine.validation.events.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

try:
    from tests.reference_model import (
        abandon_budget,
        fmt,
        in_grid_window,
        next_level,
        reference_alerts,
        reference_benchmarks,
        reference_daily,
        reference_stats,
    )
except ImportError:  # tests/ not importable as a package
    from reference_model import (  # type: ignore[no-redef]
        abandon_budget,
        fmt,
        in_grid_window,
        next_level,
        reference_alerts,
        reference_benchmarks,
        reference_daily,
        reference_stats,
    )

pytestmark = pytest.mark.unit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
S = 1000
MIN = 60 * S
H = 60 * MIN


def ms(text: str) -> int:
    """'2026-05-08T09:00:00.000Z' -> epoch ms (input builder only)."""
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(milliseconds=1)


_ids = itertools.count(1)


class Stream:
    """Builds normalised events of one campaign; event_ids grow with creation
    order (zero padded), so ties on ts sort in creation order."""

    def __init__(self, org="o1", camp="c1"):
        self.org, self.camp = org, camp
        self.events: list[dict] = []

    def __call__(self, type_, ts, eid=None, **fields):
        e = {"event_id": eid or f"e{next(_ids):07d}", "type": type_, "ts": ts,
             "org_id": self.org, "campaign_id": self.camp, **fields}
        self.events.append(e)
        return e

    def stats(self, **kw):
        return reference_stats(self.events, **kw)[(self.org, self.camp)]

    def alerts(self, kind="level", **kw):
        """Alert records of one kind (`level` or `forecast`; None: all, in order)."""
        every = reference_alerts(self.events, **kw)[(self.org, self.camp)]
        return [a for a in every if kind is None or a["kind"] == kind]


T0 = ms("2026-05-08T00:00:00.000Z")


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------

def test_fmt():
    assert fmt(ms("2026-05-08T09:00:00.000Z")) == "2026-05-08T09:00:00.000Z"
    assert fmt(ms("2026-05-08T09:00:00.000Z") + 7) == "2026-05-08T09:00:00.007Z"
    assert fmt(0) == "1970-01-01T00:00:00.000Z"
    assert fmt(None) is None


# ---------------------------------------------------------------------------
# Abandon rate, budget
# ---------------------------------------------------------------------------

def test_budget_formula():
    # c=0.03, H=1000, A=25: (30 − 25)/0.97 = 5.15… → 5.
    # check: (25+5)/(1000+5) = 30/1005 ≈ 0.02985 ≤ 0.03; 31/1006 ≈ 0.0308 > 0.03.
    assert abandon_budget(0.03, 1000, 25) == 5
    # A=30: (30 − 30)/0.97 = 0 → 0; A=31: negative → max(0, …) = 0.
    assert abandon_budget(0.03, 1000, 30) == 0
    assert abandon_budget(0.03, 1000, 31) == 0
    # c=0.1, H=100, A=1: (10 − 1)/0.9 = 10 exactly (11/110 = 0.1 ≤ 0.1; 12/111 > 0.1).
    assert abandon_budget(0.1, 100, 1) == 10
    # c=0.5, H=10, A=2: (5 − 2)/0.5 = 6 → (2+6)/(10+6) = 0.5.
    assert abandon_budget(0.5, 10, 2) == 6
    # nothing answered: (0 − 0)/0.97 = 0
    assert abandon_budget(0.03, 0, 0) == 0


def test_abandon_rate_budget_and_warning_end_to_end():
    # 975 connected + 25 abandoned attempts, attempt k answered at T0 + 10k s.
    # Connected: bridged +0.5 s, ended +60 s.  Abandoned (k ≥ 975): no bridge, ended +60 s.
    s = Stream()
    for k in range(1000):
        t = T0 + k * 10 * S
        s("call.answered", t, attempt_id=f"a{k}")
        if k < 975:
            s("call.bridged", t + 500, attempt_id=f"a{k}")
        s("call.ended", t + 60 * S, attempt_id=f"a{k}")
    st = s.stats()
    # every attempt ends on 2026-05-08 (last end at T0 + 9990 s + 60 s = 02:47:30Z),
    # so all four windows hold A=25, H=1000, rate 0.025.
    for win in ("lifetime", "today", "24h", "30d"):
        w = st["abandon"]["windows"][win]
        assert (w["abandoned"], w["human_answered"]) == (25, 1000)
        assert w["rate"] == 0.025
        # 0.8c = 0.024 ≤ 0.025 ≤ 0.03 → warning
        assert w["level"] == "warning"
    assert st["abandon"]["budget"] == 5       # floor((30 − 25)/0.97)
    assert st["abandon"]["ceiling"] == 0.03
    assert st["outcomes"]["connected"] == 975
    assert st["outcomes"]["abandoned"] == 25
    assert st["answered"] == 1000 and st["human_answered"] == 1000
    # no call.dialed at all: every attempt is orphaned, none counted as dialed
    assert st["diagnostics"]["orphaned"] == 1000
    assert st["attempts"]["total"] == 0
    assert st["as_of"] == "2026-05-08T02:47:30.000Z"

    # Alerts: after the j-th abandon end, A=j, H=975+j.  j/(975+j) ≥ 0.024
    # ⟺ 0.976 j ≥ 23.4 ⟺ j ≥ 23.975 → first at j=24 (24/999 ≈ 0.024024),
    # the end of attempt k=998 at T0 + 9980 s + 60 s = T0 + 10040 s = 02:47:20Z.
    alerts = s.alerts()
    assert [(a["window"], a["from"], a["to"]) for a in alerts] == [
        ("lifetime", "ok", "warning"), ("today", "ok", "warning"),
        ("24h", "ok", "warning"), ("30d", "ok", "warning")]
    for a in alerts:
        assert a["abandoned"] == 24 and a["human_answered"] == 999
        assert a["rate"] == 24 / 999
        assert a["at"] == "2026-05-08T02:47:20.000Z"
        assert a["alert_id"] == f"o1:c1:{a['window']}:1"
        assert a["ceiling"] == 0.03
        assert (a["org_id"], a["campaign_id"]) == ("o1", "c1")


# ---------------------------------------------------------------------------
# Hysteresis
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("level, abandoned, expected", [
    # c = 0.03: h = 0.003, 0.8c = 0.024, 0.8c − h = 0.021, c − h = 0.027; H = 1000
    ("ok", 31, "breach"),        # 0.031 > 0.03
    ("ok", 30, "warning"),       # 0.030 not > c, ≥ 0.024
    ("ok", 24, "warning"),       # 0.024 ≥ 0.024
    ("ok", 23, "ok"),            # 0.023 < 0.024, from ok stays ok
    ("warning", 31, "breach"),   # > c
    ("warning", 22, "warning"),  # 0.021 ≤ 0.022 < 0.024: stays
    ("warning", 21, "warning"),  # 0.021 is not < 0.021
    ("warning", 20, "ok"),       # 0.020 < 0.021
    ("breach", 30, "breach"),    # 0.030 > 0.027
    ("breach", 28, "breach"),    # 0.028 > 0.027
    ("breach", 27, "warning"),   # 0.027 ≤ 0.027 and not < 0.021
    ("breach", 21, "warning"),   # ≤ 0.027, 0.021 not < 0.021
    ("breach", 20, "ok"),        # ≤ 0.027 and < 0.021: straight to ok
])
def test_hysteresis_table(level, abandoned, expected):
    assert next_level(level, abandoned, 1000, 0.03, 50) == expected


def test_hysteresis_min_sample_and_exact_fractions():
    # H below min_sample → the rate judged is A / min_sample: a certain breach shows at once
    assert next_level("breach", 49, 49, 0.03, 50) == "breach"
    assert next_level("ok", 2, 4, 0.03, 50) == "breach"      # 2/50 = 0.04 > 0.03
    assert next_level("ok", 1, 6, 0.03, 50) == "ok"          # 1/50 = 0.02: one early abandon does not
    assert next_level("ok", 50, 50, 0.03, 50) == "breach"    # H = min_sample counts
    # a final campaign: A / H whatever the sample (0 when none answered)
    assert next_level("ok", 1, 6, 0.03, 50, final=True) == "breach"
    assert next_level("ok", 0, 0, 0.03, 50, final=True) == "ok"
    # c = 0.1: 0.8c = 2/25 exactly; rate 8/100 = 2/25 ≥ 0.8c → warning
    # (in floats 0.8*0.1 = 0.08000000000000002 > 0.08 would say ok)
    assert next_level("ok", 8, 100, 0.1, 50) == "warning"
    # c = 0.3: c − h = 27/100 exactly; rate 27/100 ≤ c − h leaves breach; 0.27 ≥ 0.8c − h = 0.21
    # → warning (floats: 0.3 − 0.03 = 0.26999999999999996 would stay breach)
    assert next_level("breach", 27, 100, 0.3, 50) == "warning"
    # c = 0.03 written: exactly 3/100 (3 of 100 is not > c)
    assert next_level("ok", 3, 100, 0.03, 50) == "warning"


def _connected(s, aid, t, end_after=30 * S):
    s("call.answered", t, attempt_id=aid)
    s("call.bridged", t + S, attempt_id=aid)
    s("call.ended", t + end_after, attempt_id=aid)


def _abandoned(s, aid, t, end_after=30 * S):
    s("call.answered", t, attempt_id=aid)
    s("call.ended", t + end_after, attempt_id=aid)


def test_alert_sequence_breach_warning_ok():
    # c = 0.5 → h = 0.05, 0.8c = 0.4, 0.8c − h = 0.35, c − h = 0.45; min_sample 4.
    # attempts i = 1..12 answered at T0 + i min, ended +30 s; 1–4 abandoned, 5–12 connected.
    s = Stream()
    s("campaign.created", T0, abandon_ceiling=0.5)
    for i in range(1, 13):
        (_abandoned if i <= 4 else _connected)(s, f"a{i}", T0 + i * MIN)
    alerts = s.alerts(min_sample=4)
    # r = A / max(H, 4): end 1: 1/4 < 0.4 → ok.  end 2: 2/4 = 0.5, not > 0.5, ≥ 0.4 → warning.
    # end 3: 3/4 > 0.5 → breach.  end 4..8: 4/4 … 4/8 = 0.5 > 0.45 → breach stays.
    # end 9: 4/9 ≈ 0.444 ≤ 0.45 (80 ≤ 81), not < 0.35 → warning.
    # end 10: 0.4 ≥ 0.4 → warning.  end 11: 4/11 ≈ 0.364 ∈ [0.35, 0.4) → stays warning.
    # end 12: 4/12 ≈ 0.333 < 0.35 → ok.
    per_window = [(a["from"], a["to"], a["abandoned"], a["human_answered"], a["at"])
                  for a in alerts if a["window"] == "lifetime"]
    assert per_window == [
        ("ok", "warning", 2, 2, fmt(T0 + 2 * MIN + 30 * S)),
        ("warning", "breach", 3, 3, fmt(T0 + 3 * MIN + 30 * S)),
        ("breach", "warning", 4, 9, fmt(T0 + 9 * MIN + 30 * S)),
        ("warning", "ok", 4, 12, fmt(T0 + 12 * MIN + 30 * S)),
    ]
    # the same in every window (all within today / 24h / 30d), emitted per event
    # in the order lifetime, today, 24h, 30d; ids numbered per window
    assert [a["window"] for a in alerts] == ["lifetime", "today", "24h", "30d"] * 4
    assert [a["alert_id"] for a in alerts if a["window"] == "24h"] == [
        "o1:c1:24h:1", "o1:c1:24h:2", "o1:c1:24h:3", "o1:c1:24h:4"]
    assert [a["rate"] for a in alerts if a["window"] == "30d"] == [1.0, 1.0, 4 / 9, 4 / 12]
    assert all(a["ceiling"] == 0.5 for a in alerts)
    st = s.stats(min_sample=4)
    assert {w: v["level"] for w, v in st["abandon"]["windows"].items()} == {
        "lifetime": "ok", "today": "ok", "24h": "ok", "30d": "ok"}
    # with the default min_sample 50, H = 12 never leaves ok: no alert at all
    assert s.alerts() == []


def test_breach_to_ok_directly_and_by_min_sample():
    # c = 0.5, min_sample 2.  4 abandons end at T0 + 30 min + 30 s (2026-05-08).
    # 4 connects end around T0 + 23 h (still 2026-05-08 UTC).
    s = Stream()
    s("campaign.created", T0, abandon_ceiling=0.5)
    for i in range(4):
        _abandoned(s, f"a{i}", T0 + 30 * MIN)
    for i in range(4):
        _connected(s, f"c{i}", T0 + 23 * H + i * MIN)
    # r = A / max(H, 2): after the 1st abandon 1/2 = 0.5 (not > 0.5, ≥ 0.4) → warning; after the 2nd
    # 2/2 → breach (4 windows each).  connects: 4/5 … 4/8 = 0.5 > 0.45 → breach stays.  Then a quiet
    # event at T0 + 24 h + 31 min (2026-05-09 00:31Z):
    #   24h (1-min grid): the abandons' minute m0 = now_min − 1441 ≤ now_min − 1440 → out;
    #       H = 4, A = 0, rate 0 ≤ 0.45 and < 0.35 → breach → ok directly.
    #   today (UTC): new day, H = 0: 0/2 = 0 → ok.
    #   lifetime, 30d: 4/8 = 0.5 → stay breach.
    s("cost.incurred", T0 + 24 * H + 31 * MIN, category="telephony", usd_micros=1)
    alerts = s.alerts(min_sample=2)
    assert [(a["window"], a["from"], a["to"]) for a in alerts] == [
        ("lifetime", "ok", "warning"), ("today", "ok", "warning"),
        ("24h", "ok", "warning"), ("30d", "ok", "warning"),
        ("lifetime", "warning", "breach"), ("today", "warning", "breach"),
        ("24h", "warning", "breach"), ("30d", "warning", "breach"),
        ("today", "breach", "ok"), ("24h", "breach", "ok")]
    today, h24 = alerts[8], alerts[9]
    assert (today["abandoned"], today["human_answered"], today["rate"]) == (0, 0, 0.0)
    assert (h24["abandoned"], h24["human_answered"], h24["rate"]) == (0, 4, 0.0)
    assert today["at"] == "2026-05-09T00:31:00.000Z"
    assert today["alert_id"] == "o1:c1:today:3"
    st = s.stats(min_sample=2)
    assert {w: v["level"] for w, v in st["abandon"]["windows"].items()} == {
        "lifetime": "breach", "today": "ok", "24h": "ok", "30d": "breach"}
    # budget over 30d: A = 4, H = 8, c = 1/2: (4 − 4)/(1/2) = 0
    assert st["abandon"]["budget"] == 0


# ---------------------------------------------------------------------------
# Outcome rules 1–6
# ---------------------------------------------------------------------------

def test_outcome_rules():
    s = Stream()
    s("campaign.created", T0 - H)  # defaults: threshold 2000 ms
    t = {i: T0 + i * 10 * MIN for i in range(1, 16)}
    for i in range(1, 16):  # attempt i dialed i seconds before its answer time
        s("call.dialed", t[i] - i * S, attempt_id=f"a{i}", contact_id=f"k{i}")
    # a1: answered + AMD machine → machine (rule 1)
    s("call.answered", t[1], attempt_id="a1"); s("call.amd", t[1] + S, attempt_id="a1", result="machine")
    s("call.ended", t[1] + 5 * S, attempt_id="a1")
    # a2: answered, never bridged → abandoned (rule 2)
    s("call.answered", t[2], attempt_id="a2"); s("call.ended", t[2] + 5 * S, attempt_id="a2")
    # a3: bridged 2001 ms after answer > 2000 → abandoned (rule 2)
    s("call.answered", t[3], attempt_id="a3"); s("call.bridged", t[3] + 2001, attempt_id="a3")
    s("call.ended", t[3] + 10 * S, attempt_id="a3")
    # a4: bridged exactly 2000 ms after answer (not >) → connected; handle = 60000 − 2000 + 1000 = 59000
    s("call.answered", t[4], attempt_id="a4"); s("call.bridged", t[4] + 2000, attempt_id="a4")
    s("call.ended", t[4] + 60 * S, attempt_id="a4", wrap_ms=1000)
    # a5..a11: not answered → by sip_code
    s("call.ended", t[5], attempt_id="a5", sip_code=486)   # busy
    s("call.ended", t[6], attempt_id="a6", sip_code=600)   # busy
    s("call.ended", t[7], attempt_id="a7", sip_code=408)   # no_answer
    s("call.ended", t[8], attempt_id="a8", sip_code=480)   # no_answer
    s("call.ended", t[9], attempt_id="a9", sip_code=487)   # no_answer
    s("call.ended", t[10], attempt_id="a10")               # no sip_code → no_answer
    s("call.ended", t[11], attempt_id="a11", sip_code=503)  # failed
    # a12: answered, machine AND bridged → machine (rule 1 comes first)
    s("call.answered", t[12], attempt_id="a12"); s("call.amd", t[12] + S, attempt_id="a12", result="machine")
    s("call.bridged", t[12] + 1500, attempt_id="a12"); s("call.ended", t[12] + 30 * S, attempt_id="a12")
    # a13: AMD human, bridged +100 ms → connected; handle = 20000 − 100 = 19900
    s("call.answered", t[13], attempt_id="a13"); s("call.amd", t[13] + S, attempt_id="a13", result="human")
    s("call.bridged", t[13] + 100, attempt_id="a13"); s("call.ended", t[13] + 20 * S, attempt_id="a13")
    # a14: bridge stamped AFTER the hang-up → still abandoned
    s("call.answered", t[14], attempt_id="a14"); s("call.ended", t[14] + 5 * S, attempt_id="a14")
    s("call.bridged", t[14] + 6 * S, attempt_id="a14")
    # a15: connected; AMD machine stamped after the end → stays connected; handle = 10000 − 500 + 0 = 9500
    s("call.answered", t[15], attempt_id="a15"); s("call.bridged", t[15] + 500, attempt_id="a15")
    s("call.ended", t[15] + 10 * S, attempt_id="a15", wrap_ms=0)
    s("call.amd", t[15] + 11 * S, attempt_id="a15", result="machine")

    st = s.stats()
    assert st["outcomes"] == {"connected": 3, "abandoned": 3, "machine": 2,
                              "busy": 2, "no_answer": 4, "failed": 1}
    # answered before end: a1 a2 a3 a4 a12 a13 a14 a15 = 8; minus machines a1, a12 → 6 = 3 + 3
    assert st["answered"] == 8
    assert st["human_answered"] == 6
    assert st["rates"]["answer_rate"] == 8 / 15
    assert st["rates"]["connect_rate"] == 3 / 15
    assert st["aht_ms"] == pytest.approx((59000 + 19900 + 9500) / 3)  # 29466.67
    # ring = i s for answered attempts i ∈ {1,2,3,4,12,13,14,15}: 64 s / 8 = 8000 ms
    assert st["avg_ring_ms"] == 8000.0
    assert st["attempts"]["total"] == 15
    assert (st["active_calls"], st["ringing"], st["in_progress"]) == (0, 0, 0)
    assert st["abandon"]["windows"]["lifetime"]["rate"] == 0.5  # 3 / 6


def test_fact_after_end_whatever_the_arrival_order():
    # arrival order ≠ key order: the model sorts by (ts, event_id) first
    s = Stream()
    t = T0 + H
    # x: bridged stamped after the end but arriving before it → abandoned
    s("call.answered", t, attempt_id="x")
    s("call.bridged", t + 6 * S, attempt_id="x")
    s("call.ended", t + 5 * S, attempt_id="x")
    # y: bridged stamped before the end but arriving after it → connected
    s("call.answered", t, attempt_id="y")
    s("call.ended", t + 5 * S, attempt_id="y")
    s("call.bridged", t + S, attempt_id="y")
    st = s.stats()
    assert st["outcomes"]["abandoned"] == 1 and st["outcomes"]["connected"] == 1
    # reversing the arrival order changes nothing
    assert reference_stats(list(reversed(s.events)))[("o1", "c1")] == st


def test_threshold_in_effect_at_the_end_event():
    s = Stream()
    t = T0 + H
    s("campaign.created", T0, name="n")
    # b1: bridged 3 s after answer, ended before the new threshold → 3000 > 2000 → abandoned
    s("call.answered", t, attempt_id="b1"); s("call.bridged", t + 3 * S, attempt_id="b1")
    s("call.ended", t + 10 * S, attempt_id="b1")
    # b3: answered/bridged before the change, ended after it → 3000 ≤ 5000 → connected
    s("call.answered", t + 15 * S, attempt_id="b3"); s("call.bridged", t + 18 * S, attempt_id="b3")
    s("campaign.created", t + 20 * S, abandon_threshold_ms=5000)
    s("call.ended", t + 30 * S, attempt_id="b3")
    # b2: all after the change → connected
    s("call.answered", t + 40 * S, attempt_id="b2"); s("call.bridged", t + 43 * S, attempt_id="b2")
    s("call.ended", t + 50 * S, attempt_id="b2")
    st = s.stats()
    assert st["outcomes"]["abandoned"] == 1 and st["outcomes"]["connected"] == 2
    assert st["config"]["abandon_threshold_ms"] == 5000
    assert st["name"] == "n"  # carried by the earlier created only


def test_call_state_counts():
    s = Stream()
    s("call.dialed", T0, attempt_id="d1", contact_id="k1")                                  # ringing
    s("call.dialed", T0, attempt_id="d2", contact_id="k2"); s("call.answered", T0 + S, attempt_id="d2")  # in progress
    s("call.answered", T0 + S, attempt_id="d3")          # answered, never dialed: in_progress, not active
    s("call.dialed", T0, attempt_id="d4", contact_id="k4"); s("call.ended", T0 + 2 * S, attempt_id="d4")
    st = s.stats()
    # active = dialed & not ended: d1, d2 = 2; ringing = d1; in_progress = d2, d3 = 2
    assert (st["active_calls"], st["ringing"], st["in_progress"]) == (2, 1, 2)
    assert st["live"]["ringing"] == 1 and st["live"]["in_progress"] == 2
    assert st["diagnostics"]["orphaned"] == 1  # d3 has no call.dialed
    assert st["attempts"]["total"] == 3
    # ring time d2 = 1000 ms (d3 has no dial)
    assert st["avg_ring_ms"] == 1000.0


# ---------------------------------------------------------------------------
# Duplicates and orphans
# ---------------------------------------------------------------------------

def test_duplicates():
    s = Stream()
    d = s("call.dialed", T0, eid="dial-1", attempt_id="a", contact_id="k")
    s.events.append(dict(d))                       # exact retry: +1
    # same event_id, other content and a later ts: still a no-op (+1), does not move now
    s("call.ended", T0 + H, eid="dial-1", attempt_id="a")
    # fact duplicate arriving later but stamped earlier: the earlier (ts 2 s) is the fact,
    # the one at 5 s is superseded (+1)
    s("call.answered", T0 + 5 * S, attempt_id="a")
    s("call.answered", T0 + 2 * S, attempt_id="a")
    # the same event_id in another org is not a duplicate
    other_org = Stream(org="o2", camp="c1")
    other_org("call.dialed", T0, eid="dial-1", attempt_id="a", contact_id="k")
    # a repeat of o1's id naming campaign c2 of o1 is counted in c2
    c2 = Stream(org="o1", camp="c2")
    c2("cost.incurred", T0, category="x", usd_micros=5)
    c2("call.dialed", T0, eid="dial-1", attempt_id="z", contact_id="k")
    out = reference_stats(s.events + other_org.events + c2.events)
    st = out[("o1", "c1")]
    assert st["diagnostics"] == {"late": 0, "duplicates": 3, "orphaned": 0}
    assert st["as_of"] == fmt(T0 + 5 * S)   # superseded facts move now; id repeats do not
    assert st["avg_ring_ms"] == 2000.0      # earliest answered counts
    assert st["active_calls"] == 1          # the repeated id's call.ended was ignored
    assert out[("o2", "c1")]["diagnostics"]["duplicates"] == 0
    assert out[("o2", "c1")]["attempts"]["total"] == 1
    assert out[("o1", "c2")]["diagnostics"]["duplicates"] == 1
    assert out[("o1", "c2")]["attempts"]["total"] == 0


def test_orphans():
    s = Stream()
    s("call.transcript", T0, attempt_id="t1", role="user", content="hi")   # attempt w/o dial: 1
    s("email.opened", T0, message_id="m9")                                  # message w/o sent: 1
    s("callback.completed", T0 + S, contact_id="k1")                        # closes nothing: 1
    s("call.dialed", T0, attempt_id="ok", contact_id="k2")
    s("email.sent", T0, message_id="m1", contact_id="k2")
    assert s.stats()["diagnostics"]["orphaned"] == 3


# ---------------------------------------------------------------------------
# Grid windows and rate divisors
# ---------------------------------------------------------------------------

def test_grid_window_predicate():
    now = ms("2026-05-08T09:00:00.500Z")
    # W = 60 s at 1 s: seconds s with now_s − 60 < s ≤ now_s, i.e. ts ∈ [08:59:01.000, 09:00:00.999]
    assert not in_grid_window(now - 60 * S, now, 60 * S, S)       # 08:59:00.500: exactly 60 s before
    assert not in_grid_window(now - 59_501, now, 60 * S, S)       # 08:59:00.999: < 60 s, still out
    assert in_grid_window(now - 59_500, now, 60 * S, S)           # 08:59:01.000: in
    assert in_grid_window(now, now, 60 * S, S)
    assert in_grid_window(now + 499, now, 60 * S, S)              # same second as now


def test_dials_per_sec_grid_boundary():
    now = ms("2026-05-08T09:00:00.500Z")
    s = Stream()
    s("call.dialed", now - 10 * MIN, attempt_id="first", contact_id="k")  # first dial 600 s ago → d = 60
    s("call.dialed", now - 60 * S, attempt_id="x", contact_id="k")      # out (exactly 60 s)
    s("call.dialed", now - 59_501, attempt_id="y", contact_id="k")      # out (second now_s − 60)
    s("call.dialed", now - 59_500, attempt_id="z", contact_id="k")      # in
    s("call.dialed", now, attempt_id="last", contact_id="k")            # in
    st = s.stats()
    assert st["live"]["dials_per_sec"] == 2 / 60
    assert st["live"]["last_dial_at"] == "2026-05-08T09:00:00.500Z"


def test_rate_divisor():
    # first dial T0, now T0 + 20.5 s: d = min(60, max(1, 20.5)) = 20.5; 3 dials in window
    s = Stream()
    s("call.dialed", T0, attempt_id="a", contact_id="k")
    s("call.dialed", T0 + 10 * S, attempt_id="b", contact_id="k")
    s("call.dialed", T0 + 20_500, attempt_id="c", contact_id="k")
    assert s.stats()["live"]["dials_per_sec"] == 3 / 20.5
    # a single dial: now − first = 0 → d = max(1, 0) = 1 → 1 dial/s
    one = Stream()
    one("call.dialed", T0, attempt_id="a", contact_id="k")
    assert one.stats()["live"]["dials_per_sec"] == 1.0
    # no dial at all: 0 / 1
    none = Stream()
    none("contact.added", T0, contact_id="k")
    assert none.stats()["live"]["dials_per_sec"] == 0.0
    assert none.stats()["live"]["last_dial_at"] is None


def test_connected_per_hour_and_calls_per_min():
    # first dial T0, one bridge at T0 + 100 s, now = T0 + 1800 s: d(3600) = 1800 → 1/1800·3600 = 2.0
    # ends: T0 + 1745 s (in 60 s window: seconds (1800−60, 1800] ∋ 1745) and T0 + 1740 s (out)
    # d(60) = min(60, 1800) = 60 → calls_per_min = 1/60·60 = 1.0
    s = Stream()
    s("call.dialed", T0, attempt_id="a", contact_id="k")
    s("call.answered", T0 + 99 * S, attempt_id="a")
    s("call.bridged", T0 + 100 * S, attempt_id="a")
    s("call.ended", T0 + 1745 * S, attempt_id="a")
    s("call.ended", T0 + 1740 * S, attempt_id="b")
    s("cost.incurred", T0 + 1800 * S, category="telephony", usd_micros=0)
    live = s.stats()["live"]
    assert live["connected_per_hour"] == pytest.approx(2.0)
    assert live["calls_per_min"] == pytest.approx(1.0)


def test_live_avg_ring_window():
    # now = T0 + 1000 s; 900 s window holds answered ts ≥ T0 + 101 s.
    s = Stream()
    s("call.dialed", T0 + 96 * S, attempt_id="p", contact_id="k"); s("call.answered", T0 + 100 * S, attempt_id="p")  # ring 4000, out
    s("call.dialed", T0 + 99 * S, attempt_id="q", contact_id="k"); s("call.answered", T0 + 101 * S, attempt_id="q")  # ring 2000, in
    s("call.dialed", T0 + 495 * S, attempt_id="r", contact_id="k"); s("call.answered", T0 + 500 * S, attempt_id="r")  # ring 5000, in
    s("call.answered", T0 + 600 * S, attempt_id="s")                  # no dial: excluded
    s("cost.incurred", T0 + 1000 * S, category="x", usd_micros=0)
    st = s.stats()
    assert st["live"]["avg_ring_ms"] == 3500.0              # (2000 + 5000) / 2
    assert st["avg_ring_ms"] == pytest.approx(11000 / 3)    # (4000 + 2000 + 5000) / 3, lifetime


def test_abandon_window_boundaries():
    s = Stream()
    s("campaign.created", T0, time_window={"start": "09:00", "end": "17:00", "tz": "America/New_York"})
    # today in New York (EDT, UTC−4): 2026-05-08T03:59:59.999Z is May 7 local, 04:00Z is May 8
    _abandoned(s, "y1", ms("2026-05-08T03:59:00.000Z"), end_after=59_999)   # ends 03:59:59.999Z
    _abandoned(s, "t1", ms("2026-05-08T03:59:30.000Z"), end_after=30 * S)   # ends 04:00:00.000Z
    s("cost.incurred", ms("2026-05-08T12:00:00.000Z"), category="x", usd_micros=0)  # now
    w = s.stats()["abandon"]["windows"]
    assert (w["today"]["abandoned"], w["today"]["human_answered"]) == (1, 1)
    assert (w["lifetime"]["abandoned"], w["24h"]["abandoned"], w["30d"]["abandoned"]) == (2, 2, 2)

    # 24h at 1-min resolution; 30d at 1-h resolution
    def windows_at(now, end_ts):
        s2 = Stream()
        _abandoned(s2, "a", end_ts - 10 * S, end_after=10 * S)
        s2("cost.incurred", now, category="x", usd_micros=0)
        return s2.stats()["abandon"]["windows"]
    end = ms("2026-05-08T10:00:30.000Z")           # minute m0 = 10:00, hour h0 = 10:00
    # now = end minute + 1440 min (2026-05-09T10:00:00Z): m0 not > now_min − 1440 → out
    assert windows_at(ms("2026-05-09T10:00:00.000Z"), end)["24h"]["human_answered"] == 0
    # now = 2026-05-09T09:59:59.999Z: now_min − 1440 = 09:59 of May 8 < 10:00 → in (≈ 23 h 59 m 29 s later)
    assert windows_at(ms("2026-05-09T09:59:59.999Z"), end)["24h"]["human_answered"] == 1
    # 30d: now = h0 + 720 h (2026-06-07T10:00Z) → out; one ms earlier → in
    assert windows_at(ms("2026-06-07T10:00:00.000Z"), end)["30d"]["human_answered"] == 0
    assert windows_at(ms("2026-06-07T09:59:59.999Z"), end)["30d"]["human_answered"] == 1


# ---------------------------------------------------------------------------
# ETA and banner
# ---------------------------------------------------------------------------

def _eta_stream(now, pending=10, time_window=None, status="active"):
    s = Stream()
    created = {"time_window": time_window} if time_window else {}
    s("campaign.created", now - H, **created)
    s("campaign.status", now - H, status=status)
    for i in range(pending):
        s("contact.added", now - H, contact_id=f"k{i}")
    # first dial 4 s before now, second at now: 2 dials in the 300 s window,
    # d = min(300, max(1, 4)) = 4 s → rate 0.5 dial/s
    s("call.dialed", now - 4 * S, attempt_id="d1", contact_id="k0")
    s("call.dialed", now, attempt_id="d2", contact_id="k0")
    return s


def test_eta_without_window():
    now = ms("2026-05-08T09:00:00.000Z")
    live = _eta_stream(now).stats()["live"]
    # 10 pending / 0.5 per s = 20 s
    assert live["pending"] == 10
    assert live["eta_seconds"] == 20.0
    assert live["eta_at"] == "2026-05-08T09:00:20.000Z"
    assert live["banner"] == "live"


def test_eta_with_window_resumes_next_day():
    ny = {"start": "09:00", "end": "17:00", "tz": "America/New_York"}
    # now = 2026-05-08 16:59:50 EDT = 20:59:50Z; 20 s needed: 10 s before the 17:00 close,
    # 10 s from 09:00 EDT next day → 2026-05-09 09:00:10 EDT = 13:00:10Z.
    # eta_seconds = 20:59:50Z → 24:00Z (3:00:10) + 13:00:10 = 16 h 0 m 20 s = 57620 s
    st = _eta_stream(ms("2026-05-08T20:59:50.000Z"), time_window=ny).stats()
    assert st["live"]["eta_at"] == "2026-05-09T13:00:10.000Z"
    assert st["live"]["eta_seconds"] == 57620.0
    assert st["live"]["banner"] == "live"
    assert st["config"]["time_window"] == ny


def test_eta_window_spanning_midnight():
    # 22:00–06:00 UTC, now 05:59:55Z: 5 s now, 15 s from 22:00 → 22:00:15Z;
    # 05:59:55 → 22:00:15 = 16 h 0 m 20 s = 57620 s.  tz omitted → filled in as UTC.
    st = _eta_stream(ms("2026-05-08T05:59:55.000Z"), time_window={"start": "22:00", "end": "06:00"}).stats()
    assert st["live"]["eta_at"] == "2026-05-08T22:00:15.000Z"
    assert st["live"]["eta_seconds"] == 57620.0
    assert st["config"]["time_window"] == {"start": "22:00", "end": "06:00", "tz": "UTC"}


def test_eta_window_across_dst():
    ny = {"start": "09:00", "end": "17:00", "tz": "America/New_York"}
    # now = 2026-03-07 16:59:50 EST = 21:59:50Z; 10 s left → 2026-03-08 09:00:10 EDT = 13:00:10Z
    # (clocks sprang forward at 02:00); 21:59:50Z → 24:00Z = 2:00:10, + 13:00:10 = 15:00:20 = 54020 s
    live = _eta_stream(ms("2026-03-07T21:59:50.000Z"), time_window=ny).stats()["live"]
    assert live["eta_at"] == "2026-03-08T13:00:10.000Z"
    assert live["eta_seconds"] == 54020.0


def test_eta_window_in_dst_fold_and_gap():
    # Reading R7: the open predicate is applied to each instant's local time-of-day.
    # Fall back, 2026-11-01, window 01:30–02:30 New York.  Local 01:30–02:00 happens twice:
    #   open [05:30Z, 06:00Z) (01:30–02:00 EDT); at 06:00Z clocks show 01:00 EST → closed;
    #   open again [06:30Z, 07:30Z) (01:30–02:30 EST).
    # now 05:29:50Z, 1000 pending at 0.5/s → 2000 s: 1800 s in the first piece, 200 s from
    # 06:30Z → 06:33:20Z; eta = 05:29:50 → 06:33:20 = 1 h 3 m 30 s = 3810 s.
    win = {"start": "01:30", "end": "02:30", "tz": "America/New_York"}
    live = _eta_stream(ms("2026-11-01T05:29:50.000Z"), pending=1000, time_window=win).stats()["live"]
    assert live["eta_at"] == "2026-11-01T06:33:20.000Z"
    assert live["eta_seconds"] == 3810.0
    # Spring forward, 2026-03-08, window 02:30–03:30: 02:30 never shows; at 07:00Z the clock
    # jumps 01:59:59 EST → 03:00 EDT, inside the window → opens at 07:00Z.
    # now 06:59:50Z (01:59:50 EST), 10 pending → 20 s → 07:00:20Z; eta 30 s.
    win = {"start": "02:30", "end": "03:30", "tz": "America/New_York"}
    live = _eta_stream(ms("2026-03-08T06:59:50.000Z"), time_window=win).stats()["live"]
    assert live["eta_at"] == "2026-03-08T07:00:20.000Z"
    assert live["eta_seconds"] == 30.0


def test_eta_before_window_opens():
    ny = {"start": "09:00", "end": "17:00", "tz": "America/New_York"}
    # now 08:00 EDT = 12:00Z, closed: dialing starts 09:00 EDT → finish 09:00:20 EDT = 13:00:20Z; 3620 s
    live = _eta_stream(ms("2026-05-08T12:00:00.000Z"), time_window=ny).stats()["live"]
    assert live["eta_at"] == "2026-05-08T13:00:20.000Z"
    assert live["eta_seconds"] == 3620.0
    assert live["banner"] == "paused_outside_window"


def test_eta_nothing_left_and_no_rate():
    now = ms("2026-05-08T09:00:00.000Z")
    # k0 is named by the dials, so it exists and is pending: complete it
    s = _eta_stream(now, pending=1)
    s("contact.status", now, contact_id="k0", status="completed")
    live = s.stats()["live"]
    assert live["pending"] == 0
    assert live["eta_seconds"] == 0.0 and live["eta_at"] == "2026-05-08T09:00:00.000Z"
    # pending but no dial in the 300 s window (last dial exactly 300 s before now) → null
    s = Stream()
    s("contact.added", now, contact_id="k")
    s("call.dialed", now - 300 * S, attempt_id="a", contact_id="k")
    live = s.stats()["live"]
    assert live["eta_seconds"] is None and live["eta_at"] is None


def _banner(status=None, window=None, dial_before=0, now=ms("2026-05-08T12:00:00.000Z")):
    s = Stream()
    s("campaign.created", now - H, **({"time_window": window} if window else {}))
    if status:
        s("campaign.status", now - H, status="active")
        s("campaign.status", now - H + 1, status=status)   # latest wins
    if dial_before is not None:
        s("call.dialed", now - dial_before, attempt_id="a", contact_id="k")
    s("cost.incurred", now, category="x", usd_micros=0)
    return s.stats()["live"]["banner"]


def test_banner():
    inside = {"start": "08:00", "end": "20:00", "tz": "UTC"}      # now = 12:00Z: open
    outside = {"start": "13:00", "end": "20:00", "tz": "UTC"}     # now = 12:00Z: closed
    assert _banner(None) == "draft"
    assert _banner("active") == "live"
    assert _banner("active", dial_before=29 * S) == "live"
    assert _banner("active", dial_before=30 * S) == "idle"     # second now_s − 30 is out
    assert _banner("active", dial_before=None) == "idle"       # never dialed
    assert _banner("active", window=inside) == "live"
    assert _banner("active", window=outside) == "paused_outside_window"
    assert _banner("paused") == "paused"
    assert _banner("paused", window=inside) == "paused"
    assert _banner("paused", window=outside) == "paused_outside_window"
    assert _banner("completed", window=outside) == "completed"
    assert _banner("stopped") == "stopped"
    # window end is exclusive: 08:00–12:00 is closed at 12:00:00.000
    assert _banner("active", window={"start": "08:00", "end": "12:00", "tz": "UTC"}) == "paused_outside_window"


# ---------------------------------------------------------------------------
# Performance
# ---------------------------------------------------------------------------

def test_performance():
    s = Stream()
    s("campaign.status", T0, status="active")
    s("call.dialed", T0, attempt_id="a", contact_id="k1")
    s("call.dialed", T0 + 10 * S, attempt_id="b", contact_id="k2")
    s("call.dialed", T0 + 20 * S, attempt_id="c", contact_id="k3")
    _connected(s, "a", T0 + 40 * S, end_after=60 * S)        # ends T0 + 100 s
    s("call.ended", T0 + 40 * S, attempt_id="b")               # no_answer
    assert s.stats()["performance"] is None                    # active
    s("campaign.status", T0 + 200 * S, status="completed")
    # span = last end (100 s) − first dial (0) = 100 s
    assert s.stats()["performance"] == {
        "dials_per_sec": pytest.approx(0.03),          # 3 / 100
        "connected_per_hour": pytest.approx(36.0),     # 1 / 100 · 3600
        "calls_per_min": pytest.approx(1.2),           # 2 / 100 · 60
        "total_connected": 1,
    }
    # stopped, dialed but nothing ended: span 1 s → 1 dial / 1 s
    s2 = Stream()
    s2("call.dialed", T0, attempt_id="a", contact_id="k")
    s2("campaign.status", T0 + 5 * S, status="stopped")
    assert s2.stats()["performance"] == {"dials_per_sec": 1.0, "connected_per_hour": 0.0,
                                         "calls_per_min": 0.0, "total_connected": 0}


# ---------------------------------------------------------------------------
# Contacts, batches, retries
# ---------------------------------------------------------------------------

def test_contacts_batches_retries():
    s = Stream()
    s("campaign.created", T0, max_attempts=3)
    t = T0 + S
    s("contact.added", t, contact_id="k1", batch_id="B1")
    s("contact.added", t + 1, contact_id="k1", batch_id="B9")        # superseded, but names B9 (R2)
    s("contact.added", t, contact_id="k2", batch_id="B1")
    s("contact.added", t, contact_id="k3", batch_id="B2")
    s("contact.status", t, contact_id="k2", status="dispatched")
    s("contact.status", t, contact_id="k3", status="in_progress")
    s("contact.status", t, contact_id="k4", status="retrying", retry_number=1)
    s("contact.status", t, contact_id="k5", status="retrying", retry_number=1)
    s("contact.status", t + 1, contact_id="k5", status="retrying", retry_number=2)
    s("contact.status", t, contact_id="k6", status="followup_scheduled")
    s("contact.status", t, contact_id="k7", status="completed")
    s("contact.added", t + 2, contact_id="k7", batch_id="B5")        # k7's first contact.added
    s("contact.added", t + 3, contact_id="k7", batch_id="B6")        # superseded, but names B6 (R2)
    for k, st_ in [("k8", "failed"), ("k9", "busy"), ("k10", "no_answer"), ("k11", "skipped"),
                   ("k12", "max_retries_reached"), ("k13", "window_closed"), ("k14", "manual_stopped")]:
        s("contact.status", t, contact_id=k, status=st_)
    s("contact.status", t, contact_id="k15", status="retrying", retry_number=1)
    s("contact.status", t + 1, contact_id="k15", status="completed")
    # dials: k16 once (named only by the dial), k4 twice, k5 four times, k7 once → 8 attempts
    dials = [("k16", True), ("k4", True), ("k4", False), ("k5", True),
             ("k5", None), ("k5", None), ("k5", None), ("k7", None)]
    for i, (k, fu) in enumerate(dials):
        s("call.dialed", t + 10 * S + i, attempt_id=f"a{i}", contact_id=k,
          **({"follow_up": fu} if fu is not None else {}))
    s("batch.created", t, batch_id="B3")
    s("batch.status", t, batch_id="B1", status="in_progress")
    s("batch.status", t + 1, batch_id="B1", status="completed")      # latest wins
    s("batch.status", t, batch_id="B3", status="paused")
    s("batch.status", t, batch_id="B4", status="cancelled")          # B4 never created/named
    st = s.stats()
    c = st["contacts"]
    assert c["by_status"] == {
        "pending": 2,  # k1, k16
        "dispatched": 1, "in_progress": 1,
        "retrying": 2,  # k4, k5
        "followup_scheduled": 1,
        "completed": 2,  # k7, k15
        "failed": 1, "busy": 1, "no_answer": 1, "skipped": 1,
        "max_retries_reached": 1, "window_closed": 1, "manual_stopped": 1}
    assert c["total"] == 16
    # pending 2+2+1 = 5; in_progress 1+1 = 2; completed 2; exhausted 7 (sum 16)
    assert c["buckets"] == {"pending": 5, "in_progress": 2, "completed": 2, "exhausted": 7}
    assert c["in_flight"] == 5     # 1 + 1 + 2 + 1
    assert list(c["by_status"]) == ["pending", "dispatched", "in_progress", "retrying",
                                    "followup_scheduled", "completed", "failed", "busy",
                                    "no_answer", "skipped", "max_retries_reached",
                                    "window_closed", "manual_stopped"]
    assert st["retry_breakdown"] == {"retry_1": 1, "retry_2": 1}   # k4: 1; k5: latest 2; k15 completed
    # non-final: k1 3, k16 3−1 = 2, k2 3, k3 3, k4 3−2 = 1, k5 max(0, 3−4) = 0, k6 3 → 15
    assert st["retries_left"] == 15
    # B1 completed, B2 pending, B3 paused, B5 pending (k7's first contact.added), B6 and B9
    # pending (named by superseded contact.added events, R2); no B4 (only a batch.status)
    assert st["batch_counts"] == {"pending": 4, "in_progress": 0, "paused": 1, "completed": 1, "cancelled": 0}
    # 8 dials / 16 contacts = 0.5; follow_up True on 3 dials
    assert st["attempts"] == {"total": 8, "average_per_contact": 0.5, "follow_up": 3}
    assert st["rates"]["completion_rate"] == 0.125   # 2 / 16
    assert st["live"]["retries_queued"] == 3          # retrying 2 + followup 1
    assert st["diagnostics"]["duplicates"] == 2       # superseded contact.added of k1, k7


def test_average_per_contact_rounding():
    s = Stream()
    s("contact.added", T0, contact_id="k3")
    s("call.dialed", T0, attempt_id="a", contact_id="k1")
    s("call.dialed", T0, attempt_id="b", contact_id="k2")
    # 2 dials / 3 contacts = 0.666… → 0.67
    assert s.stats()["attempts"]["average_per_contact"] == 0.67


# ---------------------------------------------------------------------------
# Daily buckets across DST
# ---------------------------------------------------------------------------

NY = {"start": "09:00", "end": "17:00", "tz": "America/New_York"}
ZERO_DAY = {"dials": 0, "answered": 0, "connected": 0, "abandoned": 0, "ended": 0,
            "emails_sent": 0, "opened": 0, "replied": 0, "cost_usd": 0.0}


def _day(date, **counts):
    return {"date": date, **ZERO_DAY, **counts}


def test_daily_spring_forward():
    # 2026-03-08 02:00 EST → 03:00 EDT in New York
    s = Stream()
    s("campaign.created", ms("2026-03-01T00:00:00.000Z"), time_window=NY)
    s("call.dialed", ms("2026-03-08T04:59:59.999Z"), attempt_id="a1", contact_id="k")  # Mar 7 23:59:59.999 EST
    s("call.answered", ms("2026-03-08T05:00:00.500Z"), attempt_id="a1")                # Mar 8 00:00:00.5 EST
    s("call.bridged", ms("2026-03-08T05:00:01.000Z"), attempt_id="a1")
    s("call.ended", ms("2026-03-08T05:00:30.000Z"), attempt_id="a1")                   # Mar 8: connected
    s("cost.incurred", ms("2026-03-08T06:59:59.000Z"), category="t", usd_micros=100_000)  # 01:59:59 EST Mar 8
    s("cost.incurred", ms("2026-03-08T07:00:00.000Z"), category="t", usd_micros=200_000)  # 03:00 EDT Mar 8
    s("email.sent", ms("2026-03-09T03:59:59.999Z"), message_id="m1", contact_id="k")   # Mar 8 23:59:59.999 EDT
    s("email.opened", ms("2026-03-09T04:00:00.000Z"), message_id="m1")  # Mar 9 00:00 EDT (EST would say Mar 8)
    s("email.opened", ms("2026-03-09T05:00:00.000Z"), message_id="m1")  # superseded
    s("call.dialed", ms("2026-03-09T04:30:00.000Z"), attempt_id="a2", contact_id="k")  # Mar 9 00:30 EDT
    s("call.answered", ms("2026-03-09T04:30:02.000Z"), attempt_id="a2")
    s("call.ended", ms("2026-03-09T04:30:10.000Z"), attempt_id="a2")                   # abandoned, Mar 9
    s("email.replied", ms("2026-03-10T12:00:00.000Z"), message_id="m1", sentiment="positive")  # Mar 10
    rows = reference_daily(s.events, "o1", "c1", "2026-03-06", "2026-03-10")
    assert rows == [
        _day("2026-03-06"),
        _day("2026-03-07", dials=1),
        _day("2026-03-08", answered=1, connected=1, ended=1, emails_sent=1, cost_usd=0.3),
        _day("2026-03-09", dials=1, answered=1, abandoned=1, ended=1, opened=1),
        _day("2026-03-10", replied=1),
    ]


def test_daily_fall_back():
    # 2026-11-01 02:00 EDT → 01:00 EST in New York (a 25-hour day)
    s = Stream()
    s("campaign.created", ms("2026-10-01T00:00:00.000Z"), time_window=NY)
    for i, ts in enumerate([
        "2026-11-01T03:59:59.999Z",   # Oct 31 23:59:59.999 EDT
        "2026-11-01T04:00:00.000Z",   # Nov 1 00:00 EDT
        "2026-11-01T05:30:00.000Z",   # Nov 1 01:30 EDT
        "2026-11-01T06:30:00.000Z",   # Nov 1 01:30 EST (second time)
        "2026-11-02T04:30:00.000Z",   # Nov 1 23:30 EST (EDT would say Nov 2)
        "2026-11-02T05:00:00.000Z",   # Nov 2 00:00 EST
    ]):
        s("call.dialed", ms(ts), attempt_id=f"b{i}", contact_id="k")
    rows = reference_daily(s.events, "o1", "c1", "2026-10-31", "2026-11-02")
    assert [(r["date"], r["dials"]) for r in rows] == [
        ("2026-10-31", 1), ("2026-11-01", 4), ("2026-11-02", 1)]
    # a campaign never seen: every day, zeros
    assert reference_daily(s.events, "o1", "nope", "2026-01-01", "2026-01-02") == [
        _day("2026-01-01"), _day("2026-01-02")]


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------

def test_callbacks():
    s = Stream()
    # X: two callbacks; the completion closes the earliest due_at (D2), the cancel closes D1
    s("callback.requested", T0 + 1 * H, contact_id="X", due_at=T0 + 10 * H)   # D1
    s("callback.requested", T0 + 2 * H, contact_id="X", due_at=T0 + 9 * H)    # D2
    s("callback.requested", T0 + 3 * H, contact_id="X", due_at=T0 + 10 * H)   # same (X, D1): superseded
    s("callback.completed", T0 + 11 * H, contact_id="X")   # closes D2: delay 11 h − 9 h = 7 200 000
    s("callback.cancelled", T0 + 12 * H, contact_id="X")   # closes D1
    s("callback.completed", T0 + 13 * H, contact_id="X")   # nothing open: orphan
    # Y: completed before due: delay 9.5 h − 10 h = −1 800 000
    s("callback.requested", T0 + 1 * H, contact_id="Y", due_at=T0 + 10 * H)
    s("callback.completed", T0 + 9 * H + 30 * MIN, contact_id="Y")
    # Z: a completion keyed before the request closes nothing (orphan); the request stays open
    s("callback.completed", T0 + 8 * H, contact_id="Z")
    s("callback.requested", T0 + 8 * H + 30 * MIN, contact_id="Z", due_at=T0 + 20 * H)
    st = s.stats()
    # requested X 2 + Y 1 + Z 1 = 4; completed 2; cancelled 1 → pending 1
    # avg delay = (7 200 000 − 1 800 000) / 2 = 2 700 000
    assert st["callbacks"] == {"requested": 4, "pending": 1, "completed": 2, "avg_delay_ms": 2_700_000.0}
    assert st["diagnostics"]["orphaned"] == 2
    assert st["diagnostics"]["duplicates"] == 1
    assert st["contacts"]["total"] == 3


# ---------------------------------------------------------------------------
# Passes
# ---------------------------------------------------------------------------

def test_passes():
    s = Stream()
    s("pass.started", T0, **{"pass": 1}, eligible=3)
    s("pass.started", T0 + S, **{"pass": 1}, eligible=4)           # latest wins → 4
    s("call.dialed", T0 + 10 * S, attempt_id="p1a", contact_id="a", **{"pass": 1})
    s("call.answered", T0 + 12 * S, attempt_id="p1a"); s("call.bridged", T0 + 13 * S, attempt_id="p1a")
    s("call.ended", T0 + 70 * S, attempt_id="p1a")                  # connected
    s("call.dialed", T0 + 11 * S, attempt_id="p1a", contact_id="z", **{"pass": 5})  # superseded: no pass 5
    s("call.dialed", T0 + 20 * S, attempt_id="p1b", contact_id="b")  # pass defaults to 1
    s("call.ended", T0 + 50 * S, attempt_id="p1b", sip_code=486)     # busy
    s("call.dialed", T0 + 80 * S, attempt_id="p1c", contact_id="b", **{"pass": 1})
    s("call.answered", T0 + 82 * S, attempt_id="p1c"); s("call.bridged", T0 + 83 * S, attempt_id="p1c")
    s("call.ended", T0 + 200 * S, attempt_id="p1c")                 # connected
    s("call.dialed", T0 + 30 * S, attempt_id="p1d", contact_id="c", **{"pass": 1})
    s("call.ended", T0 + 60 * S, attempt_id="p1d")                  # no_answer
    s("call.dialed", T0 + 300 * S, attempt_id="p2a", contact_id="a", **{"pass": 2})
    s("call.ended", T0 + 330 * S, attempt_id="p2a", sip_code=408)
    s("pass.started", T0 + 400 * S, **{"pass": 3}, eligible=5)
    s("call.dialed", T0 + 500 * S, attempt_id="p4a", contact_id="d", **{"pass": 4})
    st = s.stats()
    assert st["passes"] == [
        # attempted {a, b, c} = 3; connected {a, b} = 2; first dial 10 s; last end 200 s; 190 s
        {"pass": 1, "eligible": 4, "attempted": 3, "connected": 2, "connect_rate": 2 / 3,
         "started_at": fmt(T0 + 10 * S), "ended_at": fmt(T0 + 200 * S), "duration_s": 190.0},
        {"pass": 2, "eligible": None, "attempted": 1, "connected": 0, "connect_rate": 0.0,
         "started_at": fmt(T0 + 300 * S), "ended_at": fmt(T0 + 330 * S), "duration_s": 30.0},
        {"pass": 3, "eligible": 5, "attempted": 0, "connected": 0, "connect_rate": 0.0,
         "started_at": None, "ended_at": None, "duration_s": None},
        {"pass": 4, "eligible": None, "attempted": 1, "connected": 0, "connect_rate": 0.0,
         "started_at": fmt(T0 + 500 * S), "ended_at": None, "duration_s": None},
    ]
    assert st["passes"][0]["started_at"] == "2026-05-08T00:00:10.000Z"
    assert st["contacts"]["total"] == 5      # a, b, c, d, and z: a superseded dial still names z (R2)
    assert st["diagnostics"]["duplicates"] == 1


# ---------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------

def test_spam_complaints_windows_and_levels():
    s = Stream()
    s("campaign.created", T0, channel="email")
    s("email.sent", T0, message_id="m1", contact_id="x")
    s("email.delivered", T0 + 1 * S, message_id="m1")
    s("email.sent", T0 + 10 * S, message_id="m2", contact_id="y")
    s("email.delivered", T0 + 11 * S, message_id="m2")
    s("email.complained", T0 + 60 * S, message_id="m2")
    s("email.complained", T0 + 61 * S, message_id="m2")         # superseded
    st = s.stats()
    assert (st["email"]["complained"], st["email"]["rates"]["complaint_rate"]) == (1, 0.5)
    # 1 complaint of 2 delivered: 1/max(2, 1000) = 0.001 ≥ the warning 0.001, not > 0.003
    assert st["email"]["complaints"] == {"ceiling": 0.003, "warning": 0.001, "windows": {
        "lifetime": {"complained": 1, "delivered": 2, "rate": 0.5, "level": "warning"},
        "30d": {"complained": 1, "delivered": 2, "rate": 0.5, "level": "warning"}}}
    assert [(a["alert_id"], a["window"], a["from"], a["to"], a["complained"], a["delivered"], a["ceiling"])
            for a in s.alerts(kind="complaint_level")] == [
        ("o1:c1:complaint-lifetime:1", "lifetime", "ok", "warning", 1, 2, 0.003),
        ("o1:c1:complaint-30d:1", "30d", "ok", "warning", 1, 2, 0.003)]
    assert st["diagnostics"]["duplicates"] == 1
    s("campaign.status", T0 + 70 * S, status="completed")       # final: 1/2 > 0.003
    assert {w["level"] for w in s.stats()["email"]["complaints"]["windows"].values()} == {"breach"}
    # 31 days later the 30d window holds nothing: 0 → ok; lifetime stays
    s("cost.incurred", T0 + 31 * 24 * H, category="x", usd_micros=1)
    windows = s.stats()["email"]["complaints"]["windows"]
    assert (windows["30d"]["level"], windows["lifetime"]["level"]) == ("ok", "breach")


def test_email_distinct_messages():
    s = Stream()
    s("campaign.created", T0, channel="email")
    s("email.sent", T0, message_id="m1", contact_id="x")
    s("email.delivered", T0 + 1 * S, message_id="m1")
    for i in range(3):
        s("email.opened", T0 + (2 + i) * S, message_id="m1")   # 3 opens of m1: one fact, 2 superseded
    s("email.clicked", T0 + 5 * S, message_id="m1")
    s("email.replied", T0 + 6 * S, message_id="m1", sentiment="positive")
    s("email.sent", T0 + 10 * S, message_id="m2", contact_id="y")
    s("email.delivered", T0 + 11 * S, message_id="m2")
    s("email.sent", T0 + 20 * S, message_id="m3", contact_id="z")
    s("email.bounced", T0 + 21 * S, message_id="m3")
    s("email.opened", T0 + 30 * S, message_id="m4")             # no email.sent: counted, orphaned
    s("meeting.booked", T0 + 40 * S, contact_id="x")
    s("meeting.booked", T0 + 50 * S, contact_id="x")           # superseded
    st = s.stats()
    assert st["email"] == {
        "emails_sent": 3, "delivered": 2, "bounced": 1, "opened": 2, "clicked": 1,
        "replied": 1, "unsubscribed": 0, "complained": 0, "meetings_booked": 1,
        "rates": {"delivery_rate": 2 / 3,   # 2 delivered / 3 sent
                  "open_rate": 1.0,         # 2 / 2 delivered
                  "click_rate": 0.5, "reply_rate": 0.5, "conversion_rate": 0.5, "complaint_rate": 0.0},
        "complaints": {"ceiling": 0.003, "warning": 0.001, "windows": {
            "lifetime": {"complained": 0, "delivered": 2, "rate": 0.0, "level": "ok"},
            "30d": {"complained": 0, "delivered": 2, "rate": 0.0, "level": "ok"}}}}
    assert st["diagnostics"]["duplicates"] == 3
    assert st["diagnostics"]["orphaned"] == 1
    assert st["contacts"]["total"] == 3
    assert st["channel"] == "email"
    # email campaign: sends are the dials of the live block.  sends at 0, 10, 20 s; now = 50 s;
    # d(60) = min(60, 50) = 50 → 3 / 50 = 0.06
    assert st["live"]["dials_per_sec"] == 0.06
    assert st["live"]["last_dial_at"] == "2026-05-08T00:00:20.000Z"
    assert st["attempts"]["total"] == 0


# ---------------------------------------------------------------------------
# Money
# ---------------------------------------------------------------------------

def test_money_exact():
    s = Stream()
    s("cost.incurred", T0, category="telephony", usd=0.1, usd_micros=100_000)
    s("cost.incurred", T0 + S, category="telephony", usd=0.2, usd_micros=200_000)
    s("cost.incurred", T0 + 2 * S, category="ai_generation", usd=1.25, usd_micros=1_250_000)
    s("cost.incurred", T0 + 3 * S, category="lead_enrichment", usd=0.1)  # usd only: 100 000 micros
    costs = s.stats()["costs"]
    assert 0.1 + 0.2 != 0.3                          # why micros: float sum is 0.30000000000000004
    assert costs["breakdown"] == {"ai_generation": 1.25, "lead_enrichment": 0.1, "telephony": 0.3}
    assert costs["total_usd"] == 1.65                # 1 650 000 micros
    empty = Stream()
    empty("contact.added", T0, contact_id="k")
    assert empty.stats()["costs"] == {"total_usd": 0.0, "breakdown": {}}


# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------

def _body(org, kind, answer_rate, abandon_rate=0.0):
    return {"org_id": org, "kind": kind,
            "rates": {"answer_rate": answer_rate, "connect_rate": 0.5, "completion_rate": 0.0},
            "abandon": {"windows": {"lifetime": {"rate": abandon_rate}}},
            "email": {"rates": {k: 0.0 for k in ("delivery_rate", "open_rate", "click_rate",
                                                  "reply_rate", "conversion_rate")}}}


def test_benchmarks_percentiles():
    bodies = [_body("o1", "sales", r) for r in (0.8, 0.1, 0.4, 0.2)]
    bodies += [_body("o1", "support", 0.9), _body("o2", "sales", 0.9)]   # excluded
    b = reference_benchmarks(bodies, "o1", "sales")
    # sorted 0.1, 0.2, 0.4, 0.8 (n = 4); linear interpolation at p/100·(n − 1):
    #   p25: pos 0.75 → 0.1 + 0.75·0.1 = 0.175;  p50: pos 1.5 → 0.3;  p75: pos 2.25 → 0.4 + 0.25·0.4 = 0.5
    #   average 1.5 / 4 = 0.375
    a = b["answer_rate"]
    assert a["sample_size"] == 4
    assert a["average"] == pytest.approx(0.375)
    assert a["p25"] == pytest.approx(0.175)
    assert a["p50"] == pytest.approx(0.3)
    assert a["p75"] == pytest.approx(0.5)
    assert b["connect_rate"] == {"average": 0.5, "p25": 0.5, "p50": 0.5, "p75": 0.5, "sample_size": 4}
    assert set(b) == {"answer_rate", "connect_rate", "completion_rate", "abandon_rate",
                      "delivery_rate", "open_rate", "click_rate", "reply_rate", "conversion_rate"}
    # a single campaign: every percentile is its value
    one = reference_benchmarks([_body("o1", "x", 0.25)], "o1", "x")["answer_rate"]
    assert one == {"average": 0.25, "p25": 0.25, "p50": 0.25, "p75": 0.25, "sample_size": 1}
    assert reference_benchmarks(bodies, "o1", "nothing")["answer_rate"] == {
        "average": None, "p25": None, "p50": None, "p75": None, "sample_size": 0}


# ---------------------------------------------------------------------------
# Shape of the /stats body and JSON types
# ---------------------------------------------------------------------------

def test_stats_body_shape_and_types():
    s = Stream()
    s("campaign.created", T0, name="Spring", kind="sales-outreach", concurrency_limit=5,
      abandon_ceiling=0.05, config={"script": "v2", "n": [1, 2]})
    s("campaign.status", T0, status="active")
    s("contact.added", T0, contact_id="k1")
    _connected(s, "a1", T0 + S)
    s("call.dialed", T0, attempt_id="a1", contact_id="k1")
    st = s.stats()
    assert list(st) == [
        "campaign_id", "org_id", "name", "channel", "kind", "status", "as_of", "config",
        "contacts", "retry_breakdown", "retries_left", "batch_counts", "attempts", "outcomes",
        "answered", "human_answered", "active_calls", "ringing", "in_progress", "concurrency_limit",
        "rates", "aht_ms", "avg_ring_ms", "abandon", "compliance", "live", "performance", "passes", "run",
        "runs", "previous_run_stats", "agents", "callbacks", "email", "costs", "diagnostics"]
    assert (st["campaign_id"], st["org_id"], st["name"], st["channel"], st["kind"], st["status"]) == (
        "c1", "o1", "Spring", "voice", "sales-outreach", "active")
    assert st["as_of"] == "2026-05-08T00:00:31.000Z"   # end at T0 + 1 s + 30 s
    assert st["config"] == {"concurrency_limit": 5, "max_attempts": 3, "abandon_ceiling": 0.05,
                            "abandon_threshold_ms": 2000, "abandon_from": "answer", "time_window": None,
                            "config": {"script": "v2", "n": [1, 2]},
                            "calling_hours": {"start": "08:00", "end": "21:00"}, "abandon_redial_hours": 72,
                            "complaint_ceiling": 0.003, "complaint_warning": 0.001}
    assert st["concurrency_limit"] == 5
    assert set(st["live"]) == {"banner", "dials_per_sec", "connected_per_hour", "calls_per_min",
                               "avg_ring_ms", "ringing", "in_progress", "waiting_for_agent", "oldest_wait_ms",
                               "last_dial_at", "pending", "retries_queued", "eta_seconds", "eta_at"}
    assert set(st["abandon"]) == {"ceiling", "budget", "windows", "forecast", "pacing", "periods"}
    # the dial at 00:00:00 UTC is outside the default calling hours (08:00–21:00 in UTC)
    assert st["compliance"] == {"calling_hours": {"violations": 1, "last_violation_at": "2026-05-08T00:00:00.000Z"},
                                "abandon_redial": {"hours": 72, "violations": 0, "last_violation_at": None}}
    assert st["abandon"]["periods"] == [{"period": 1, "start": "2026-05-08T00:00:00.000Z",
                                         "end": "2026-06-07T00:00:00.000Z", "abandoned": 0, "human_answered": 1,
                                         "rate": 0.0, "within_ceiling": True}]
    assert set(st["abandon"]["forecast"]) == {"trend", "today", "30d"}
    assert set(st["abandon"]["forecast"]["trend"]) == {"abandoned", "human_answered", "span_s"}
    assert set(st["abandon"]["forecast"]["30d"]) == {"breach_in_s", "breach_at"}
    assert set(st["abandon"]["pacing"]) == {"remaining_dials", "expected_human_answers", "allowed_abandons",
                                            "max_abandon_rate"}
    assert set(st["abandon"]["windows"]) == {"lifetime", "today", "24h", "30d"}
    assert set(st["abandon"]["windows"]["today"]) == {"abandoned", "human_answered", "rate", "level"}
    # budget: c = 1/20, H = 1, A = 0 → (1/20 − 0)/(19/20) = 1/19 → 0
    assert st["abandon"]["budget"] == 0
    assert st["callbacks"] == {"requested": 0, "pending": 0, "completed": 0, "avg_delay_ms": None}
    assert st["diagnostics"] == {"late": 0, "duplicates": 0, "orphaned": 0}
    # ints are ints, ratios floats, JSON-serialisable
    assert type(st["attempts"]["average_per_contact"]) is float
    assert type(st["rates"]["answer_rate"]) is float and st["rates"]["answer_rate"] == 1.0
    assert type(st["abandon"]["windows"]["lifetime"]["rate"]) is float
    assert type(st["aht_ms"]) is float and st["aht_ms"] == 29000.0   # ended T0+31 s − bridged T0+2 s
    assert type(st["live"]["dials_per_sec"]) is float
    assert type(st["contacts"]["total"]) is int and type(st["retries_left"]) is int
    assert type(st["costs"]["total_usd"]) is float
    json.dumps(st)


def test_no_campaign_without_accepted_events():
    s = Stream()
    e = s("contact.added", T0, contact_id="k")
    other = dict(e, campaign_id="c9")   # same event_id → repeat; c9 has no accepted event
    assert set(reference_stats(s.events + [other])) == {("o1", "c1")}


# ---------------------------------------------------------------------------
# The alert fold against a literal per-prefix recount
# ---------------------------------------------------------------------------

def test_alert_fold_matches_literal_prefix_recount():
    rng = random.Random(7)
    s = Stream()
    s("campaign.created", T0, abandon_ceiling=0.25,
      time_window={"start": "08:00", "end": "20:00", "tz": "America/New_York"})
    t = T0
    for i in range(60):
        t += rng.choice([10 * S, 17 * MIN, 3 * H, 11 * H])
        aid = f"a{i}"
        s("call.answered", t, attempt_id=aid)
        if rng.random() < 0.2:
            s("call.amd", t + 100, attempt_id=aid, result="machine")
        if rng.random() < 0.7:
            s("call.bridged", t + rng.choice([500, 2500]), attempt_id=aid)
        s("call.ended", t + 20 * S, attempt_id=aid)
        if rng.random() < 0.1:
            s("call.ended", t + 25 * S, attempt_id=aid)   # superseded fact
        if i == 30:
            s("campaign.created", t + 30 * S, abandon_ceiling=0.4)
    ordered = sorted(s.events, key=lambda e: (e["ts"], e["event_id"]))
    # literal: after each event, recompute the whole body of the prefix and step the levels
    levels = {w: "ok" for w in ("lifetime", "today", "24h", "30d")}
    literal = []
    for i in range(len(ordered)):
        body = reference_stats(ordered[:i + 1], min_sample=3)[("o1", "c1")]
        for w in ("lifetime", "today", "24h", "30d"):
            win = body["abandon"]["windows"][w]
            new = next_level(levels[w], win["abandoned"], win["human_answered"],
                             body["abandon"]["ceiling"], 3)
            if new != levels[w]:
                literal.append((w, levels[w], new, win["abandoned"], win["human_answered"], body["as_of"]))
                levels[w] = new
    fold = [(a["window"], a["from"], a["to"], a["abandoned"], a["human_answered"], a["at"])
            for a in s.alerts(min_sample=3)]
    assert fold == literal
    assert len(fold) > 4   # the stream does move the levels
    final = s.stats(min_sample=3)["abandon"]["windows"]
    assert {w: final[w]["level"] for w in levels} == levels
