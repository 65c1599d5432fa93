"""`abandon_from`, the abandon forecast, pacing and forecast alerts (SPEC §1 outcome rules, §3
*Abandon forecast and pacing*), on hand-worked examples.

Every expected figure is worked out by hand in the comment beside it. Each example is checked on
both implementations: the reference model (tests/reference_model.py, written from the spec) and
the engine (`engine.fold.Fold`), the engine fed in arrival orders that differ from the sorted one.
"""

from __future__ import annotations

import random

import pytest

from engine.fold import Fold
from tests.reference_model import reference_stats
from tests.test_reference_model import MIN, T0, S, Stream

H_MS = 60 * MIN


def engine_run(events, *, min_sample=50, order="sorted", seed=0):
    """(body, alerts) of the engine for campaign o1/c1, the events fed in the given order."""
    evs = sorted(events, key=lambda e: (e["ts"], e["event_id"]))
    if order == "reversed-within-lateness":
        # every event delayed by up to 25 s (inside the 30 s lateness bound), then sorted by arrival
        rng = random.Random(seed)
        evs = [e for _, _, e in sorted((e["ts"] + rng.randint(0, 25_000), i, e) for i, e in enumerate(evs))]
    f = Fold(min_sample=min_sample)
    alerts = []
    for e in evs:
        f.apply(dict(e))
        alerts += f.take_alerts()
    return f.snapshot(("o1", "c1")), alerts


def both(s: Stream, *, min_sample=50):
    """The reference body and the engine body (sorted delivery); asserts they are equal."""
    ref = reference_stats(s.events, min_sample=min_sample)[("o1", "c1")]
    mine, _ = engine_run(s.events, min_sample=min_sample)
    assert mine == ref
    return ref


def call(s: Stream, aid: str, dial_at: int, *, abandoned: bool):
    """A human-answered attempt: dialed, answered 5 s later, bridged 1 s after that unless
    abandoned, ended 30 s after the dial."""
    s("call.dialed", dial_at, attempt_id=aid, contact_id="k" + aid[1:])
    s("call.answered", dial_at + 5 * S, attempt_id=aid)
    if not abandoned:
        s("call.bridged", dial_at + 6 * S, attempt_id=aid)
    s("call.ended", dial_at + 30 * S, attempt_id=aid)


# ---------------------------------------------------------------------------- abandon_from


def _greeting_stream(abandon_from):
    s = Stream()
    s("campaign.created", T0 - H_MS, abandon_from=abandon_from)  # threshold: default 2000 ms
    t = T0 + 10 * MIN
    # g1: greeting ends (AMD human) 1500 ms after the answer, bridge 3400 ms after the answer:
    #     from the answer 3400 > 2000 → abandoned; from the greeting end 1900 ≤ 2000 → connected
    s("call.answered", t, attempt_id="g1"); s("call.amd", t + 1500, attempt_id="g1", result="human")
    s("call.bridged", t + 3400, attempt_id="g1"); s("call.ended", t + 30 * S, attempt_id="g1")
    # g2: AMD unknown at +1000 (it counts as the greeting end), bridge at +3001: 2001 > 2000 → abandoned
    s("call.answered", t, attempt_id="g2"); s("call.amd", t + 1000, attempt_id="g2", result="unknown")
    s("call.bridged", t + 3001, attempt_id="g2"); s("call.ended", t + 30 * S, attempt_id="g2")
    # g3: bridged (+2500) before the greeting ends (+5000): within the threshold → connected;
    #     from the answer 2500 > 2000 → abandoned
    s("call.answered", t, attempt_id="g3"); s("call.amd", t + 5000, attempt_id="g3", result="human")
    s("call.bridged", t + 2500, attempt_id="g3"); s("call.ended", t + 30 * S, attempt_id="g3")
    # g4: no AMD: measured from the answer either way, 2500 > 2000 → abandoned
    s("call.answered", t, attempt_id="g4"); s("call.bridged", t + 2500, attempt_id="g4")
    s("call.ended", t + 30 * S, attempt_id="g4")
    # g5: AMD stamped after the hang-up is no fact of the decision: from the answer → abandoned
    s("call.answered", t, attempt_id="g5"); s("call.bridged", t + 2500, attempt_id="g5")
    s("call.ended", t + 30 * S, attempt_id="g5"); s("call.amd", t + 40 * S, attempt_id="g5", result="human")
    return s


def test_abandon_from_greeting_end_moves_the_connection_start():
    st = both(_greeting_stream("greeting_end"))
    assert st["config"]["abandon_from"] == "greeting_end"
    assert (st["outcomes"]["connected"], st["outcomes"]["abandoned"]) == (2, 3)  # g1 g3 | g2 g4 g5
    st = both(_greeting_stream("answer"))
    assert st["config"]["abandon_from"] == "answer"
    assert (st["outcomes"]["connected"], st["outcomes"]["abandoned"]) == (0, 5)  # every bridge > 2000 ms


def test_a_late_abandon_from_change_re_decides_outcomes_exactly():
    s = _greeting_stream("answer")
    # a second campaign.created before every end switches the rule; it arrives last
    s("campaign.created", T0 + 10 * MIN + 15 * S, abandon_from="greeting_end")  # within the lateness bound
    ref = reference_stats(s.events)[("o1", "c1")]
    assert (ref["outcomes"]["connected"], ref["outcomes"]["abandoned"]) == (2, 3)
    f = Fold()
    for e in s.events:  # creation order: the switch comes after every call event
        f.apply(dict(e))
    assert f.snapshot(("o1", "c1")) == ref


def test_abandon_from_is_validated():
    from engine.events import EventRejected, validate_event

    base = {"event_id": "e1", "type": "campaign.created", "ts": T0, "org_id": "o", "campaign_id": "c"}
    assert validate_event({**base, "abandon_from": "greeting_end"})["abandon_from"] == "greeting_end"
    with pytest.raises(EventRejected) as e:
        validate_event({**base, "abandon_from": "greeting"})
    assert "abandon_from" in str(e.value)


# ---------------------------------------------------------------------------- forecast


def test_breached_window_forecasts_zero_and_t1_alert_before_the_sample_is_full():
    # min_sample 4, ceiling 0.03. a1 abandoned, a2..a4 connected; dials at 00:10:01..04,
    # ends at 00:10:31..34.
    s = Stream()
    s("campaign.created", T0 - H_MS)
    for i in range(1, 5):
        call(s, f"a{i}", T0 + 10 * MIN + i * S, abandoned=(i == 1))
    st = both(s, min_sample=4)
    fc = st["abandon"]["forecast"]
    # trend: all 4 ends in the last 900 s; T = now − first dial = 00:10:34 − 00:10:01 = 33 s
    assert fc["trend"] == {"abandoned": 1, "human_answered": 4, "span_s": 33.0}
    # 30d: A=1, H=4 ≥ 4, 1/4 > 0.03 → breach → t* = 0
    assert st["abandon"]["windows"]["30d"]["level"] == "breach"
    assert fc["today"] == fc["30d"] == {"breach_in_s": 0.0, "breach_at": "2026-05-08T00:10:34.000Z"}
    # pacing: 4 contacts pending, 1 dial each, max_attempts 3 → remaining 8; E = ⌊8·4/4⌋ = 8;
    # allowed = min(8, max(0, ⌊0.03·12 − 1⌋ = −1)) = 0 → 0/8
    assert st["abandon"]["pacing"] == {"remaining_dials": 8, "expected_human_answers": 8,
                                       "allowed_abandons": 0, "max_abandon_rate": 0.0}
    # At a1's end (00:10:31): A=1, H=1 < 4; trend a=1, h=1 over T = 30 s → η = 1/30,
    # t₁ = (4 − 1)/η = 90 s; f(t₁) = 0.97 + (0.97/30)·90 = 3.88 > 0 → t* = 90 s ≤ 900 → alert.
    # At a2's end t* = t₁ = 31 s: still ≤ 900, not re-armed → nothing. At a4's end: breach levels.
    alerts = s.alerts(kind=None, min_sample=4)
    forecast = {"kind": "forecast", "campaign_id": "c1", "org_id": "o1", "breach_in_s": 90.0,
                "breach_at": "2026-05-08T00:12:01.000Z", "rate": 1.0, "abandoned": 1, "human_answered": 1,
                "ceiling": 0.03, "at": "2026-05-08T00:10:31.000Z"}
    assert alerts[:2] == [{"alert_id": "o1:c1:forecast-today:1", "window": "today", **forecast},
                          {"alert_id": "o1:c1:forecast-30d:1", "window": "30d", **forecast}]
    assert [(a["kind"], a["window"], a["to"]) for a in alerts[2:]] == [
        ("level", w, "breach") for w in ("lifetime", "today", "24h", "30d")]
    assert all(a["at"] == "2026-05-08T00:10:34.000Z" for a in alerts[2:])
    for order in ("sorted", "reversed-within-lateness"):
        _, mine = engine_run(s.events, min_sample=4, order=order)
        if order == "sorted":
            assert mine == alerts
        else:  # alert history may depend on the arrival order; the ids stay unique
            assert len({a["alert_id"] for a in mine}) == len(mine)


def _rising_trend_stream():
    """ceiling 0.25, min_sample 4 (0.8c = 0.2, 0.8c − h = 0.175, c − h = 0.225)."""
    s = Stream()
    s("campaign.created", T0 - H_MS, abandon_ceiling=0.25)
    for i in range(1, 9):  # 8 connected, ended 00:01:31..38: outside the later trend window
        call(s, f"a{i}", T0 + MIN + i * S, abandoned=False)
    for i in range(9, 13):  # a9, a10 abandoned, a11, a12 connected; ends 00:40:31..34
        call(s, f"a{i}", T0 + 40 * MIN + (i - 8) * S, abandoned=i in (9, 10))
    return s


def test_rising_trend_alert_then_level_changes_and_the_window_forecast():
    s = _rising_trend_stream()
    st = both(s, min_sample=4)
    fc = st["abandon"]["forecast"]
    # now 00:40:34; first dial 00:01:01 → T = 900 s; trend = a9..a12: a=2, h=4
    assert fc["trend"] == {"abandoned": 2, "human_answered": 4, "span_s": 900.0}
    # 30d/today: A=2, H=12, level ok (2/12 < 0.175 after warning). α − cη = (2 − 1)/900 > 0,
    # f(0) = 2 − 3 = −1 → t* = (3 − 2)/(1/900) = 900 s → breach_at 00:55:34
    assert fc["today"] == fc["30d"] == {"breach_in_s": 900.0, "breach_at": "2026-05-08T00:55:34.000Z"}
    # pacing: 12 pending contacts × 2 → 24; E = ⌊24·12/12⌋ = 24; ⌊0.25·36 − 2⌋ = 7 → 7/24
    assert st["abandon"]["pacing"] == {"remaining_dials": 24, "expected_human_answers": 24,
                                       "allowed_abandons": 7, "max_abandon_rate": 7 / 24}
    # a9 end (00:40:31): A=1,H=9, a=h=1: t* = (9/4 − 1)·900/(3/4) = 1500 s: > 900, ≤ 1800 → nothing.
    # a10 end (00:40:32): A=2,H=10 → rate 0.2 ≥ 0.2 → warning ×4; a=h=2: t* = 0.5·900/1.5 = 300 s → alert.
    # a11 end: 2/11 ≥ 0.175 stays warning; t* = 0.75·900/1.25 = 540 s (disarmed).
    # a12 end: 2/12 < 0.175 → ok ×4; t* = 900 s (still disarmed: needs null or > 1800).
    alerts = s.alerts(kind=None, min_sample=4)
    assert [(a["kind"], a["window"], a["at"][11:19]) for a in alerts] == (
        [("level", w, "00:40:32") for w in ("lifetime", "today", "24h", "30d")]
        + [("forecast", "today", "00:40:32"), ("forecast", "30d", "00:40:32")]
        + [("level", w, "00:40:34") for w in ("lifetime", "today", "24h", "30d")])
    f = alerts[4]
    assert (f["breach_in_s"], f["breach_at"], f["rate"], f["abandoned"], f["human_answered"]) == (
        300.0, "2026-05-08T00:45:32.000Z", 0.2, 2, 10)
    assert engine_run(s.events, min_sample=4)[1] == alerts


def test_forecast_alert_re_arms_after_the_trend_clears():
    s = _rising_trend_stream()
    # Two hours in: a13, a14 abandoned, a15, a16 connected (dials 02:00:01..04, ends 02:00:31..34).
    # The dial at 02:00:01 sees an empty trend window → no t* → both windows re-arm.
    for i in range(13, 17):
        call(s, f"a{i}", T0 + 120 * MIN + (i - 12) * S, abandoned=i in (13, 14))
    st = both(s, min_sample=4)
    # a13 end: A=3, H=13 (3/13 ≥ 0.2 → warning); a=h=1: t* = (13/4 − 3)·900/(3/4) = 300 s → alert #2.
    # a14 end: 4/14 > 0.25 → breach (t* = 0 from now on: no alert in breach).
    alerts = s.alerts(kind="forecast", min_sample=4)
    assert [(a["alert_id"], a["at"][11:19], a["breach_in_s"], a["breach_at"]) for a in alerts] == [
        ("o1:c1:forecast-today:1", "00:40:32", 300.0, "2026-05-08T00:45:32.000Z"),
        ("o1:c1:forecast-30d:1", "00:40:32", 300.0, "2026-05-08T00:45:32.000Z"),
        ("o1:c1:forecast-today:2", "02:00:31", 300.0, "2026-05-08T02:05:31.000Z"),
        ("o1:c1:forecast-30d:2", "02:00:31", 300.0, "2026-05-08T02:05:31.000Z"),
    ]
    # final: A=4, H=16, 0.25 > c − h → stays breach → t* = 0
    assert st["abandon"]["windows"]["30d"]["level"] == "breach"
    assert st["abandon"]["forecast"]["30d"] == {"breach_in_s": 0.0, "breach_at": "2026-05-08T02:00:34.000Z"}
    # pacing: 16 pending × 2 = 32; E = 32; ⌊0.25·48 − 4⌋ = 8 → 8/32
    assert st["abandon"]["pacing"]["allowed_abandons"] == 8
    assert st["abandon"]["pacing"]["max_abandon_rate"] == 0.25
    assert [a for a in engine_run(s.events, min_sample=4)[1] if a["kind"] == "forecast"] == alerts


def test_falling_trend_and_a_trend_at_the_ceiling_forecast_nothing():
    s = Stream()
    s("campaign.created", T0 - H_MS, abandon_ceiling=0.25)
    for i in range(1, 5):  # a1 abandoned, a2..a4 connected: A=1, H=4, rate = c exactly
        call(s, f"a{i}", T0 + 10 * MIN + i * S, abandoned=(i == 1))
    st = both(s, min_sample=4)
    # 1/4 is not > 0.25 → warning; α − cη = (1 − 1)/T = 0 and f(0) = 1 − 1 = 0: no t*
    assert st["abandon"]["windows"]["30d"]["level"] == "warning"
    assert st["abandon"]["forecast"]["30d"] == {"breach_in_s": None, "breach_at": None}
    call(s, "a5", T0 + 10 * MIN + 5 * S, abandoned=False)
    st = both(s, min_sample=4)
    # A=1, H=5, trend a=1, h=5: α − cη = (1 − 1.25)/T < 0, f(0) < 0 → no t*
    assert st["abandon"]["forecast"]["today"] == {"breach_in_s": None, "breach_at": None}
    assert st["abandon"]["forecast"]["trend"] == {"abandoned": 1, "human_answered": 5, "span_s": 34.0}


def test_today_forecast_stops_at_midnight_and_30d_at_24_hours():
    # The rising-trend pattern, its second block just before midnight: at the last end (23:50:34)
    # t* = 900 s → breach_at 00:05:34 the next day: `today` has no forecast, `30d` has.
    s = Stream()
    s("campaign.created", T0 - H_MS, abandon_ceiling=0.25)
    for i in range(1, 9):
        call(s, f"a{i}", T0 + MIN + i * S, abandoned=False)
    for i in range(9, 13):
        call(s, f"a{i}", T0 + 23 * H_MS + 50 * MIN + (i - 8) * S, abandoned=i in (9, 10))
    st = both(s, min_sample=4)
    assert st["abandon"]["forecast"]["today"] == {"breach_in_s": None, "breach_at": None}
    assert st["abandon"]["forecast"]["30d"] == {"breach_in_s": 900.0, "breach_at": "2026-05-09T00:05:34.000Z"}

    # 30d beyond 24 h: A=5, H=120 (4 old abandoned + 113 old connected + a1 abandoned, a2, a3
    # connected in the trend): α − cη = (1 − 0.75)/900, f(0) = 5 − 30 = −25 → t* = 25·900/0.25
    # = 90 000 s > 86 400 s → null; today is past midnight too.
    s = Stream()
    s("campaign.created", T0 - H_MS, abandon_ceiling=0.25)
    for i in range(1, 118):
        call(s, f"o{i}", T0 + MIN + i * S, abandoned=i > 113)
    for i in range(1, 4):
        call(s, f"n{i}", T0 + 60 * MIN + i * S, abandoned=(i == 1))
    st = both(s, min_sample=4)
    assert (st["abandon"]["windows"]["30d"]["abandoned"], st["abandon"]["windows"]["30d"]["human_answered"]) == (5, 120)
    assert st["abandon"]["forecast"]["trend"]["human_answered"] == 3
    assert st["abandon"]["forecast"]["30d"] == {"breach_in_s": None, "breach_at": None}
    assert st["abandon"]["forecast"]["today"] == {"breach_in_s": None, "breach_at": None}


def test_pacing_with_nothing_expected():
    s = Stream()
    s("campaign.created", T0)
    s("contact.added", T0, contact_id="k1")
    s("contact.status", T0 + S, contact_id="k1", status="completed")
    st = both(s)
    # a final contact leaves no dial; no attempt ended → E = 0, no target rate
    assert st["abandon"]["pacing"] == {"remaining_dials": 0, "expected_human_answers": 0,
                                       "allowed_abandons": 0, "max_abandon_rate": None}
    # before any dial T = 1 s
    assert st["abandon"]["forecast"]["trend"] == {"abandoned": 0, "human_answered": 0, "span_s": 1.0}


def test_forecast_moves_with_live_ticks():
    """A quiet campaign's forecast moves with the clock: live-mode ticks advance `now`, the trend
    window empties, the forecast goes null and the alarm re-arms without any event."""
    s = _rising_trend_stream()
    events = [e for e in s.events if e.get("attempt_id") not in ("a11", "a12")]
    f = Fold(min_sample=4)
    for e in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        f.apply(dict(e))
    alerts = f.take_alerts()
    assert [a["kind"] for a in alerts if a["kind"] == "forecast"] == ["forecast", "forecast"]  # at a10's end
    st = f.campaigns[("o1", "c1")]
    body = f.snapshot(("o1", "c1"))
    # A=2, H=10, trend a=h=2: t* = 0.5·900/1.5 = 300 s at 00:40:32
    assert body["abandon"]["forecast"]["30d"]["breach_in_s"] == 300.0
    # 20 minutes later the trend window (last 900 s) is empty: no forecast, and the alarm re-arms
    f.advance(T0 + 60 * MIN)
    assert f.take_alerts() == []
    body = f.snapshot(("o1", "c1"))
    assert body["abandon"]["forecast"]["trend"]["human_answered"] == 0
    assert body["abandon"]["forecast"]["30d"] == {"breach_in_s": None, "breach_at": None}
    assert all(alarm.armed for alarm in st.forecast_alarms.values())
