"""Hand-worked checks of the engine's building blocks (SPEC §2–§3 formulas)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from engine.compliance.levels import BREACH, OK, WARNING, abandon_budget, next_level
from engine.localtime import TimeWindow, day_bounds_of
from engine.state.config import exact_decimal
from engine.state.gate import DUPLICATE, LATE, EventGate
from engine.state.gate import OK as GATE_OK
from engine.state.windows import BucketSeries, RollingPair
from engine.storage.recovery_format import decode, encode
from engine.validation.events import parse_time, validate_event

pytestmark = pytest.mark.unit

C = Fraction(3, 100)


@pytest.mark.parametrize(
    "level, a, h, expected",
    [
        # below min_sample (50) the rate judged is A / 50: a certain breach shows at once ...
        (BREACH, 49, 49, BREACH),
        (OK, 2, 4, BREACH),  # 2/50 = 0.04 > 0.03, although only 4 answers
        (OK, 3, 10, BREACH),  # 3/50 = 0.06
        # ... while a single early abandon does not
        (OK, 1, 6, OK),  # 1/50 = 0.02 < 0.024
        (OK, 0, 0, OK),
        # from ok: 3/100 = c is not > c, but ≥ 0.8c = 0.024 -> warning
        (OK, 3, 100, WARNING),
        (OK, 4, 100, BREACH),  # 0.04 > 0.03
        (OK, 23, 1000, OK),  # 0.023 < 0.024
        (OK, 24, 1000, WARNING),  # exactly 0.8c
        # from warning: leave only below 0.8c − h = 0.021
        (WARNING, 22, 1000, WARNING),
        (WARNING, 21, 1000, WARNING),  # 0.021 is not < 0.021
        (WARNING, 20, 1000, OK),
        (WARNING, 31, 1000, BREACH),
        # from breach: stay until ≤ c − h = 0.027
        (BREACH, 28, 1000, BREACH),
        (BREACH, 30, 1000, BREACH),  # exactly c: not ≤ 0.027
        (BREACH, 27, 1000, WARNING),  # ≤ 0.027 but not < 0.021
        (BREACH, 20, 1000, OK),
    ],
)
def test_hysteresis(level, a, h, expected):
    assert next_level(level, a, h, C, 50) == expected


@pytest.mark.parametrize(
    "level, a, h, expected",
    [
        (OK, 1, 6, BREACH),  # 1/6: a completed campaign is judged by its own figures
        (OK, 11, 37, BREACH),  # 29.7 %: the 40-contact campaign of issue #23
        (OK, 0, 0, OK),  # none answered: rate 0
        (OK, 1, 40, WARNING),  # 0.025 ≥ 0.024
        (BREACH, 1, 50, OK),  # 0.02 < 0.021
    ],
)
def test_final_campaigns_are_judged_by_their_own_figures(level, a, h, expected):
    assert next_level(level, a, h, C, 50, final=True) == expected


def test_complaint_levels_hand_worked():
    from engine.compliance.levels import next_complaint_level

    c, w = Fraction(3, 1000), Fraction(1, 1000)
    assert next_complaint_level(OK, 3, 10, c, w) == WARNING  # 3/1000 = c: not over, ≥ w
    assert next_complaint_level(OK, 4, 10, c, w) == BREACH  # 4/1000 > c, below the sample of 1000
    assert next_complaint_level(OK, 1, 1000, c, w) == WARNING  # exactly w
    assert next_complaint_level(WARNING, 9, 10000, c, w) == WARNING  # 0.0009 is not < w − h = 0.0009
    assert next_complaint_level(WARNING, 8, 10000, c, w) == OK
    assert next_complaint_level(BREACH, 29, 10000, c, w) == WARNING  # ≤ c − h = 0.0029
    assert next_complaint_level(BREACH, 30, 10000, c, w) == BREACH
    assert next_complaint_level(OK, 1, 10, c, w, final=True) == BREACH  # final: 1/10
    assert next_complaint_level(OK, 0, 0, c, w, final=True) == OK
    # a warning at or above the ceiling leaves no warning band
    assert next_complaint_level(OK, 3, 1000, c, Fraction(5, 1000)) == OK


def test_ceiling_is_the_decimal_written():
    assert exact_decimal(0.03) == Fraction(3, 100)
    assert exact_decimal(0.1) == Fraction(1, 10)
    # 3 of 100 is exactly at the ceiling: a float comparison 3/100 > 0.03 would also say no,
    # but 0.1 + 0.2 style drift must never flip a threshold: 30 of 1000 is not a breach.
    assert next_level(OK, 30, 1000, exact_decimal(0.03), 50) == WARNING


def test_budget_hand_worked():
    # (30 − 25)/0.97 = 5.15 -> 5; check: 30/1005 ≤ 0.03 < 31/1006
    assert abandon_budget(25, 1000, C) == 5
    assert abandon_budget(0, 0, C) == 0
    assert abandon_budget(40, 1000, C) == 0  # already over: never negative
    # c·H − A = 3 exactly, 3/0.97 = 3.09 -> 3
    assert abandon_budget(0, 100, C) == 3


def test_gate_duplicate_before_late_and_late_stays_free():
    gate = EventGate(lateness_ms=30_000)

    def ev(eid, ts):
        return {"event_id": eid, "org_id": "o", "campaign_id": "c", "ts": ts}

    assert gate.check(ev("a", 100_000)) == GATE_OK
    assert gate.check(ev("b", 60_000)) == LATE  # 60 s < 100 s − 30 s
    assert gate.check(ev("b", 60_000)) == LATE  # a late event is not "seen"
    assert gate.check(ev("a", 100_000)) == DUPLICATE
    assert gate.check(ev("c", 70_000)) == GATE_OK  # exactly 30 s behind is within the bound
    assert gate.watermark(("o", "c")) == 100_000
    # event_id uniqueness is per org: the same id in another org is a different event
    assert gate.check({**ev("a", 100_000), "org_id": "o2"}) == GATE_OK


def test_gate_forgets_ids_after_the_horizon_only():
    gate = EventGate(lateness_ms=30_000, horizon_ms=3_600_000)
    e = {"event_id": "x", "org_id": "o", "campaign_id": "c", "ts": 0}
    assert gate.check(e) == GATE_OK
    gate.advance(("o", "c"), 3_599_000)
    assert gate.check(e) == DUPLICATE  # still remembered within the hour
    gate.advance(("o", "c"), 3_700_000)
    assert not gate.is_seen("o", "x")


def test_bucket_series_grid_window_boundaries():
    s = BucketSeries(1000, 3700)
    now = 1_000_000_500
    s.add1(now - 60_000, 1)  # floor(ts/1000) = floor(now/1000) − 60: outside the 60 s window
    s.add1(now - 59_999, 1)  # bucket floor(now/1000) − 60 as well (…0500 − 59 999 = …0501 − 60 000 + …)
    s.add1(now - 59_500, 1)  # bucket −59: inside
    s.add1(now, 1)
    assert s.window_sum(now, 60_000) == 2
    s.add1(now, -1)
    assert s.window_sum(now, 60_000) == 1


def test_rolling_pair_tracks_window_sums():
    r = RollingPair(60_000, 1440)
    minute = 60_000
    r.advance(0)
    r.add(0, 1, 1)
    r.advance(1439 * minute)
    assert (r.a, r.h) == (1, 1)  # bucket 0 is still one of the last 1440 minutes
    r.add(1439 * minute, 0, 1)
    r.advance(1440 * minute)
    assert (r.a, r.h) == (0, 1)  # bucket 0 left the window
    r.add(1440 * minute, 1, 1)
    r.add(1440 * minute, -1, -1)  # retraction
    assert (r.a, r.h) == (0, 1)


NY = "America/New_York"


def test_time_window_open_and_eta_across_close():
    tw = TimeWindow.from_event({"start": "09:00", "end": "17:00", "tz": NY})
    assert tw.is_open(parse_time("2026-05-08T13:00:00Z", "t"))  # 09:00 EDT
    assert not tw.is_open(parse_time("2026-05-08T12:59:59.999Z", "t"))
    assert not tw.is_open(parse_time("2026-05-08T21:00:00Z", "t"))  # 17:00 EDT: end is exclusive
    # 16:00 EDT with 2 h of dialing left: 1 h today, the rest from 09:00 tomorrow -> 10:00 EDT
    now = parse_time("2026-05-08T20:00:00Z", "t")
    assert tw.finish_after(now, 2 * 3_600_000) == parse_time("2026-05-09T14:00:00Z", "t")
    # outside the window, work waits for the next opening
    night = parse_time("2026-05-09T02:00:00Z", "t")  # 22:00 EDT
    assert tw.finish_after(night, 1_800_000) == parse_time("2026-05-09T13:30:00Z", "t")


def test_time_window_spanning_midnight_and_dst():
    tw = TimeWindow.from_event({"start": "22:00", "end": "02:00"})  # tz defaults to UTC
    assert tw.tz == "UTC"
    now = parse_time("2026-05-08T01:00:00Z", "t")
    assert tw.is_open(now)
    assert tw.finish_after(now, 2 * 3_600_000) == parse_time("2026-05-08T23:00:00Z", "t")
    # Across the spring-forward night in New York: 16:00 EST + 2 h of work -> 1 h on Saturday,
    # then Sunday 09:00 EDT (13:00Z, not 14:00Z) + 1 h.
    ny = TimeWindow.from_event({"start": "09:00", "end": "17:00", "tz": NY})
    sat = parse_time("2026-03-07T21:00:00Z", "t")
    assert ny.finish_after(sat, 2 * 3_600_000) == parse_time("2026-03-08T14:00:00Z", "t")


def test_local_day_bounds_dst_days_are_23_and_25_hours():
    spring = day_bounds_of(parse_time("2026-03-08T12:00:00Z", "t"), NY)
    autumn = day_bounds_of(parse_time("2026-11-01T12:00:00Z", "t"), NY)
    assert spring[1] - spring[0] == 23 * 3_600_000
    assert autumn[1] - autumn[0] == 25 * 3_600_000
    assert spring[0] == parse_time("2026-03-08T05:00:00Z", "t")  # midnight EST


def test_fold_state_pickles_and_resumes_identically():
    """Bytewax recovery pickles the state: a restored fold must continue exactly like the original."""

    from callpulse.simulator import SimConfig, generate
    from engine.state.fold import Fold

    events = [e for e in generate(SimConfig(seed=3, contacts=40, jitter_ms=5000, duplicate_pct=5))
              if isinstance(e, dict)]
    from engine.validation.events import validate_event

    events = [validate_event(e) for e in events]
    half = len(events) // 2
    straight, resumed = Fold(), Fold()
    for ev in events[:half]:
        straight.apply(ev)
        resumed.apply(ev)
    resumed.gate, resumed.campaigns = decode(encode((resumed.gate, resumed.campaigns)))
    for ev in events[half:]:
        straight.apply(ev)
        resumed.apply(ev)
    assert resumed.snapshots() == straight.snapshots()
    assert resumed.snapshots()[0]["attempts"]["total"] > 0


def _ev(eid, etype, ts, **fields):
    return {"event_id": eid, "type": etype, "ts": ts, "org_id": "o", "campaign_id": "c", **fields}


def test_late_event_is_counted_and_changes_nothing():
    from engine.state.fold import Fold

    f = Fold(lateness_ms=30_000)
    f.apply(_ev("d1", "call.dialed", 100_000, contact_id="k1", attempt_id="a1"))
    before = f.snapshot(("o", "c"))
    assert f.apply(_ev("d0", "call.dialed", 69_999, contact_id="k2", attempt_id="a0")) == "late"
    after = f.snapshot(("o", "c"))
    assert after["diagnostics"]["late"] == 1
    after["diagnostics"]["late"] = 0
    assert after == before  # no contact k2, no attempt a0, same watermark
    # the late event's id stays free: the same event inside the bound later would count
    assert f.apply(_ev("d2", "call.dialed", 110_000, contact_id="k1", attempt_id="a2")) == "ok"


def test_state_does_not_grow_with_repeated_events_about_the_same_things():
    """Memory grows with entities and time buckets, never with the number of events."""
    import pickle

    from engine.state.campaign import CampaignState

    st = CampaignState("o", "c")
    n = 0

    def burst(rounds):
        nonlocal n
        for _ in range(rounds):
            for k in range(50):
                n += 1
                ts = 1_000_000 + n % 5000  # all inside a few seconds
                st.apply(_ev(f"s{n}", "contact.status", ts, contact_id=f"k{k}",
                             status="retrying", retry_number=1 + n % 3))
                n += 1
                st.apply(_ev(f"t{n}", "call.transcript", ts, attempt_id=f"a{k}", role="user", content="hi"))
                n += 1
                st.apply(_ev(f"c{n}", "cost.incurred", ts, category="telephony", usd=0.01, usd_micros=10_000))

    burst(20)
    size_1 = len(pickle.dumps(st))
    burst(200)  # 10x more events about the same 50 contacts and attempts
    size_2 = len(pickle.dumps(st))
    assert size_2 <= size_1 * 1.05
    assert st.cost_micros == 220 * 50 * 10_000


def test_sealed_attempt_takes_a_later_fact_exactly():
    """An ended attempt behind the lateness horizon is sealed (its object dropped); a bridge stamped
    after its end, a duplicate dial and an evaluation still count exactly as for an open attempt."""
    from engine.state.fold import Fold
    from tests.reference_model import reference_stats

    t0 = 1_778_198_400_000
    evs = [
        {"type": "call.dialed", "ts": t0, "contact_id": "k1", "attempt_id": "a1"},
        {"type": "call.answered", "ts": t0 + 5000, "attempt_id": "a1"},
        {"type": "call.ended", "ts": t0 + 9000, "attempt_id": "a1", "sip_code": 200},
        {"type": "cost.incurred", "ts": t0 + 200_000, "category": "x", "usd": 1},  # moves the watermark on
        {"type": "call.bridged", "ts": t0 + 200_000, "attempt_id": "a1"},  # after its end: counts as a bridge
        {"type": "call.dialed", "ts": t0 + 200_001, "contact_id": "k2", "attempt_id": "a1"},  # a later copy
        {"type": "conversation.evaluated", "ts": t0 + 200_002, "attempt_id": "a1", "conversation_id": "c",
         "results": {"q.ok": True}},
    ]
    events = [validate_event({"event_id": f"e{i}", "org_id": "o", "campaign_id": "c", **e})
              for i, e in enumerate(evs)]
    f = Fold()
    sealed_seen = 0
    for ev in events:
        f.apply(ev)
        sealed_seen = max(sealed_seen, len(f.campaigns[("o", "c")].sealed))
    st = f.campaigns[("o", "c")]
    assert sealed_seen == 1 and "a1" in st.attempts and st.attempts["a1"].partial  # sealed, then unsealed
    body = f.snapshot(("o", "c"))
    assert body == reference_stats(events)[("o", "c")]
    assert body["outcomes"]["abandoned"] == 1 and body["diagnostics"]["duplicates"] == 1
    assert body["contacts"]["total"] == 2 and body["live"]["connected_per_hour"] > 0
