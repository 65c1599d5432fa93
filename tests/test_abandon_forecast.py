"""`abandon_from`, the abandon forecast, pacing and forecast alerts (SPEC §1 outcome rules, §3
*Abandon forecast and pacing*), on hand-worked examples.

Every expected figure is worked out by hand in the comment beside it. Each example is checked on
both implementations: the reference model (tests/reference_model.py, written from the spec) and
the engine (`engine.state.fold.Fold`), the engine fed in arrival orders that differ from the sorted one.
"""

from __future__ import annotations

import random

import pytest

from engine.state.fold import Fold
from tests.reference_model import reference_stats
from tests.test_reference_model import MIN, T0, S, Stream

pytestmark = pytest.mark.unit

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
    from engine.validation.events import EventRejected, validate_event

    base = {"event_id": "e1", "type": "campaign.created", "ts": T0, "org_id": "o", "campaign_id": "c"}
    assert validate_event({**base, "abandon_from": "greeting_end"})["abandon_from"] == "greeting_end"
    with pytest.raises(EventRejected) as e:
        validate_event({**base, "abandon_from": "greeting"})
    assert "abandon_from" in str(e.value)


# ---------------------------------------------------------------------------- forecast

ALL_DAY = {"start": "00:00", "end": "24:00"}  # no calling-hours violations in these streams


def dial(s: Stream, aid: str, contact: str, dial_at: int, *, abandoned: bool):
    """A human-answered attempt of ``contact``: dialed, answered 5 s later, bridged 1 s after that unless
    abandoned, ended 30 s after the dial."""
    s("call.dialed", dial_at, attempt_id=aid, contact_id=contact)
    s("call.answered", dial_at + 5 * S, attempt_id=aid)
    if not abandoned:
        s("call.bridged", dial_at + 6 * S, attempt_id=aid)
    s("call.ended", dial_at + 30 * S, attempt_id=aid)


def test_a_certain_breach_shows_at_once_and_a_breached_window_forecasts_zero():
    # min_sample 4, ceiling 0.03. a1 abandoned, a2..a4 connected; dials at 00:10:01..04, ends 00:10:31..34.
    s = Stream()
    s("campaign.created", T0 - H_MS, calling_hours=ALL_DAY)
    s("campaign.status", T0 - H_MS, status="active")
    for i in range(1, 5):
        dial(s, f"a{i}", f"k{i}", T0 + 10 * MIN + i * S, abandoned=(i == 1))
    for i in range(5, 13):  # eight contacts still to call
        s("contact.added", T0, contact_id=f"k{i}")
    for i in range(1, 5):  # the four called ones are done
        s("contact.status", T0 + 11 * MIN, contact_id=f"k{i}", status="completed")
    st = both(s, min_sample=4)
    fc = st["abandon"]["forecast"]
    # trend: all 4 ends in the last 900 s; T = now − first dial = 00:11:00 − 00:10:01 = 59 s
    assert fc["trend"] == {"abandoned": 1, "human_answered": 4, "span_s": 59.0}
    # 30d: A=1, H=4: 1/max(4, 4) > 0.03 → breach → t* = 0 (even with a trend of 4 answers)
    assert st["abandon"]["windows"]["30d"]["level"] == "breach"
    assert fc["today"] == fc["30d"] == {"breach_in_s": 0.0, "breach_at": "2026-05-08T00:11:00.000Z"}
    # pacing: 8 pending contacts, none dialed, max_attempts 3 → remaining 24; O = 8, F = 4, F_h = 4
    # → E = ⌊8·4/4⌋ = 8; allowed = min(8, max(0, ⌊0.03·12 − 1⌋ = −1)) = 0 → 0/8
    assert st["abandon"]["pacing"] == {"remaining_dials": 24, "expected_human_answers": 8,
                                       "allowed_abandons": 0, "max_abandon_rate": 0.0}
    # At a1's end (00:10:31): A=1, H=1: 1/max(1, 4) = 0.25 > 0.03 → breach at once in all four windows;
    # no forecast alert (the trend holds 1 answer, and a breached window forecasts nothing to alert).
    alerts = s.alerts(kind=None, min_sample=4)
    assert [(a["kind"], a["window"], a["to"], a["at"][11:19]) for a in alerts] == [
        ("level", w, "breach", "00:10:31") for w in ("lifetime", "today", "24h", "30d")]
    for order in ("sorted", "reversed-within-lateness"):
        _, mine = engine_run(s.events, min_sample=4, order=order)
        if order == "sorted":
            assert mine == alerts
        else:  # alert history may depend on the arrival order; the ids stay unique
            assert len({a["alert_id"] for a in mine}) == len(mine)


def test_too_few_to_judge_shows_ok_and_a_finished_campaign_is_judged_by_its_figures():
    s = Stream()
    s("campaign.created", T0 - H_MS, calling_hours=ALL_DAY)
    for i in range(1, 7):  # 1 abandoned of 6: 1/50 = 0.02 < 0.024 → ok while it runs
        dial(s, f"a{i}", f"k{i}", T0 + 10 * MIN + i * S, abandoned=(i == 1))
    assert both(s)["abandon"]["windows"]["lifetime"]["level"] == "ok"
    s("campaign.status", T0 + 20 * MIN, status="completed")  # final: 1/6 > 0.03 → breach
    st = both(s)
    assert {w["level"] for w in st["abandon"]["windows"].values()} == {"breach"}
    assert [(a["window"], a["to"], a["at"][11:19]) for a in s.alerts()] == [
        (w, "breach", "00:20:00") for w in ("lifetime", "today", "24h", "30d")]
    assert [a for a in engine_run(s.events)[1] if a["kind"] == "level"] == s.alerts()


def _rising_trend_stream(trend_at=40 * MIN, open_contacts=30):
    """ceiling 0.25, min_sample 4 (0.8c = 0.2, 0.8c − h = 0.175, c − h = 0.225), active.
    8 connected calls of contacts c1..c8 (completed), ended 00:01:31..38, far outside the later trend;
    then 12 calls b1..b12 of contacts d1..d12, b1 b4 b7 b10 abandoned, ended at trend_at + 31..42 s;
    ``open_contacts`` more contacts pending."""
    s = Stream()
    s("campaign.created", T0 - H_MS, abandon_ceiling=0.25, calling_hours=ALL_DAY)
    s("campaign.status", T0 - H_MS, status="active")
    for i in range(1, open_contacts + 1):
        s("contact.added", T0, contact_id=f"o{i}")
    for i in range(1, 9):
        dial(s, f"a{i}", f"c{i}", T0 + MIN + i * S, abandoned=False)
        s("contact.status", T0 + 2 * MIN, contact_id=f"c{i}", status="completed")
    for i in range(1, 13):
        dial(s, f"b{i}", f"d{i}", T0 + trend_at + i * S, abandoned=i in (1, 4, 7, 10))
    return s


def test_rising_trend_alert_then_the_window_forecast():
    s = _rising_trend_stream()
    st = both(s, min_sample=4)
    fc = st["abandon"]["forecast"]
    # now 00:40:42; first dial 00:01:01 → T = 900 s; trend = b1..b12: a=4, h=12
    assert fc["trend"] == {"abandoned": 4, "human_answered": 12, "span_s": 900.0}
    # today/30d: A=4, H=20 (≥ m), level warning (since b7: 3/15 = 0.2). D = a·q − p·h = 16 − 12 = 4 > 0:
    # t* = (p·H − A·q)·T/D = (20 − 16)·900/4 = 900 s; η·t* = 12/900·900 = 12 ≤ E
    # E: O = 30 + 12 pending contacts, F = 8 completed with F_h = 8 → ⌊42·8/8⌋ = 42
    assert fc["today"] == fc["30d"] == {"breach_in_s": 900.0, "breach_at": "2026-05-08T00:55:42.000Z"}
    # pacing: remaining = 30·3 + 12·2 = 114; allowed = min(42, ⌊0.25·62 − 4⌋ = 11) = 11 → 11/42
    assert st["abandon"]["pacing"] == {"remaining_dials": 114, "expected_human_answers": 42,
                                       "allowed_abandons": 11, "max_abandon_rate": 11 / 42}
    # b7 end (00:40:37): 3/15 = 0.2 → warning ×4. Trend h < 10 until b10's end (00:40:40): A=4, H=18,
    # a=4, h=10: D = 6, t* = (18 − 16)·900/6 = 300 s ≤ 900 → forecast alerts; b11: 540 s, b12: 900 s
    # (disarmed: re-arms only at null or > 1800).
    alerts = s.alerts(kind=None, min_sample=4)
    assert [(a["kind"], a["window"], a["at"][11:19]) for a in alerts] == (
        [("level", w, "00:40:37") for w in ("lifetime", "today", "24h", "30d")]
        + [("forecast", "today", "00:40:40"), ("forecast", "30d", "00:40:40")])
    f = alerts[4]
    assert (f["breach_in_s"], f["breach_at"], f["rate"], f["abandoned"], f["human_answered"]) == (
        300.0, "2026-05-08T00:45:40.000Z", 4 / 18, 4, 18)
    assert engine_run(s.events, min_sample=4)[1] == alerts


def test_no_forecast_beyond_the_answers_left_while_not_active_or_on_a_thin_trend():
    # Only the 12 trend contacts are open: E = ⌊12·8/8⌋ = 12 = η·t* → still forecast (not beyond)
    s = _rising_trend_stream(open_contacts=0)
    assert both(s, min_sample=4)["abandon"]["forecast"]["30d"]["breach_in_s"] == 900.0
    # one of them completed: O = 11, F = 9, F_h = 9 → E = 11 < 12: the answers run out first
    s("contact.status", T0 + 41 * MIN, contact_id="d12", status="completed")
    st = both(s, min_sample=4)
    assert st["abandon"]["pacing"]["expected_human_answers"] == 11
    assert st["abandon"]["forecast"]["30d"] == {"breach_in_s": None, "breach_at": None}
    # paused: no forecast whatever the trend
    s = _rising_trend_stream()
    s("campaign.status", T0 + 41 * MIN, status="paused")
    fc = both(s, min_sample=4)["abandon"]["forecast"]
    assert fc["today"] == fc["30d"] == {"breach_in_s": None, "breach_at": None}
    # a trend of 9 human answers is too thin: drop b10..b12's ends
    s = _rising_trend_stream()
    s.events = [e for e in s.events if not (e["type"] == "call.ended" and e["attempt_id"] in ("b10", "b11", "b12"))]
    st = both(s, min_sample=4)
    assert st["abandon"]["forecast"]["trend"]["human_answered"] == 9
    assert st["abandon"]["forecast"]["30d"] == {"breach_in_s": None, "breach_at": None}


def test_sample_not_full_breach_at_the_sample_size_or_later():
    # min_sample 40: the trend block alone: 12 calls, 4 abandoned (b1 b4 b7 b10), 30 open contacts.
    s = Stream()
    s("campaign.created", T0 - H_MS, abandon_ceiling=0.25, calling_hours=ALL_DAY)
    s("campaign.status", T0 - H_MS, status="active")
    for i in range(1, 31):
        s("contact.added", T0, contact_id=f"o{i}")
    for i in range(1, 9):
        s("contact.added", T0, contact_id=f"c{i}")
        s("contact.status", T0 + 2 * MIN, contact_id=f"c{i}", status="completed")
        dial(s, f"a{i}", f"c{i}", T0 + 10 * MIN + i * S, abandoned=False)
    for i in range(1, 13):
        dial(s, f"b{i}", f"d{i}", T0 + 10 * MIN + (8 + i) * S, abandoned=i in (1, 4, 7, 10))
    st = both(s, min_sample=40)
    fc = st["abandon"]["forecast"]
    # now 00:10:50, first dial 00:10:01 → T = 49 s; trend = all 20: a = 4, h = 20; A = 4, H = 20 < m = 40
    assert fc["trend"] == {"abandoned": 4, "human_answered": 20, "span_s": 49.0}
    # α = 4/49, η = 20/49; t₁ = (40 − 20)/η = 49 s; (c·m − A)/α = (10 − 4)·49/4 = 73.5 s > t₁;
    # α − cη = (4 − 5)/49 < 0 → no t*
    assert fc["30d"] == {"breach_in_s": None, "breach_at": None}
    # with ceiling 0.1: c·m − A = 0 → t* = max(0, 0) = 0 ≤ t₁, but the level already says breach
    # (4/40 = 0.1 is not > 0.1: warning) → t* = 0 s
    s.events[0]["abandon_ceiling"] = 0.1
    fc = both(s, min_sample=40)["abandon"]["forecast"]
    assert fc["30d"] == {"breach_in_s": 0.0, "breach_at": "2026-05-08T00:10:50.000Z"}


def test_today_forecast_stops_at_midnight_and_30d_at_24_hours():
    # The rising-trend pattern, its trend block just before midnight: at the last end (23:50:42)
    # t* = 900 s → breach_at 00:05:42 the next day: `today` has no forecast, `30d` has.
    s = _rising_trend_stream(trend_at=23 * H_MS + 50 * MIN)
    st = both(s, min_sample=4)
    assert st["abandon"]["forecast"]["today"] == {"breach_in_s": None, "breach_at": None}
    assert st["abandon"]["forecast"]["30d"] == {"breach_in_s": 900.0, "breach_at": "2026-05-09T00:05:42.000Z"}
    # (both windows hold the same 20 answers, at warning: the same t* = 900 s, cut by today's midnight)
    assert st["abandon"]["windows"]["today"]["level"] == st["abandon"]["windows"]["30d"]["level"] == "warning"


def test_pacing_with_nothing_expected():
    s = Stream()
    s("campaign.created", T0)
    s("contact.added", T0, contact_id="k1")
    s("contact.status", T0 + S, contact_id="k1", status="completed")
    st = both(s)
    # a final contact leaves no dial; no open contact → E = 0, no target rate
    assert st["abandon"]["pacing"] == {"remaining_dials": 0, "expected_human_answers": 0,
                                       "allowed_abandons": 0, "max_abandon_rate": None}
    # before any dial T = 1 s
    assert st["abandon"]["forecast"]["trend"] == {"abandoned": 0, "human_answered": 0, "span_s": 1.0}


def test_forecast_moves_with_live_ticks():
    """A quiet campaign's forecast moves with the clock: live-mode ticks advance `now`, the trend
    window empties, the forecast goes null and the alarm re-arms without any event."""
    s = _rising_trend_stream()
    events = [e for e in s.events if e.get("attempt_id") not in ("b11", "b12")]
    f = Fold(min_sample=4)
    for e in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        f.apply(dict(e))
    alerts = f.take_alerts()
    assert [a["kind"] for a in alerts if a["kind"] == "forecast"] == ["forecast", "forecast"]  # at b10's end
    st = f.campaigns[("o1", "c1")]
    body = f.snapshot(("o1", "c1"))
    # A=4, H=18, trend a=4, h=10: t* = 300 s at 00:40:40
    assert body["abandon"]["forecast"]["30d"]["breach_in_s"] == 300.0
    # 20 minutes later the trend window (last 900 s) is empty: no forecast, and the alarm re-arms
    f.advance(T0 + 60 * MIN)
    assert f.take_alerts() == []
    body = f.snapshot(("o1", "c1"))
    assert body["abandon"]["forecast"]["trend"]["human_answered"] == 0
    assert body["abandon"]["forecast"]["30d"] == {"breach_in_s": None, "breach_at": None}
    assert all(alarm.armed for alarm in st.forecast_alarms.values())
