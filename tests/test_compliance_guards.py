"""Compliance guards, 30-day periods and callers waiting for an agent (SPEC §3), on hand-worked examples.

Each example is checked on both implementations (the reference model and the engine) and, where the
engine must re-decide a guard because a fact arrives late, in that arrival order too.
"""

from __future__ import annotations

import pytest

from engine.state.fold import Fold
from tests.reference_model import reference_stats
from tests.test_reference_model import MIN, T0, H, S, Stream

pytestmark = pytest.mark.unit

DAY = 24 * H


def run(events, order=None, **kw):
    f = Fold(**kw)
    alerts = []
    for e in (order or sorted(events, key=lambda e: (e["ts"], e["event_id"]))):
        f.apply(dict(e))
        alerts += f.take_alerts()
    return f.snapshot(("o1", "c1")), alerts


def both(s: Stream, order=None):
    ref = reference_stats(s.events)[("o1", "c1")]
    mine, alerts = run(s.events, order)
    assert mine == ref
    return ref, alerts


def test_calling_hours_in_the_contact_zone_else_the_campaigns():
    s = Stream()
    s("campaign.created", T0 - H, time_window={"start": "00:00", "end": "23:59", "tz": "Europe/London"})
    s("contact.added", T0 - H, contact_id="ny", tz="America/New_York")
    s("contact.added", T0 - H, contact_id="ldn")
    # 13:00Z: 09:00 in New York (within 08:00–21:00), 14:00 in London
    s("call.dialed", T0 + 13 * H, attempt_id="a1", contact_id="ny")
    # 00:59:59.999Z: 20:59:59.999 in New York (the last ms allowed), 01:59 in London (before 08:00)
    s("call.dialed", T0 + H - 1, attempt_id="a2", contact_id="ny")
    s("call.dialed", T0 + H - 1, attempt_id="a3", contact_id="ldn")
    # 01:00Z: 21:00 in New York (at the end: a violation)
    s("call.dialed", T0 + H, attempt_id="a4", contact_id="ny")
    st, alerts = both(s)
    assert st["compliance"]["calling_hours"] == {"violations": 2, "last_violation_at": "2026-05-08T01:00:00.000Z"}
    ch = [a for a in alerts if a["kind"] == "calling_hours"]
    assert [(a["alert_id"], a["attempt_id"], a["contact_id"], a["tz"], a["local_time"], a["dialed_at"], a["at"])
            for a in ch] == [
        ("o1:c1:calling_hours:1", "a3", "ldn", "Europe/London", "01:59:59", "2026-05-08T00:59:59.999Z",
         "2026-05-08T00:59:59.999Z"),
        ("o1:c1:calling_hours:2", "a4", "ny", "America/New_York", "21:00:00", "2026-05-08T01:00:00.000Z",
         "2026-05-08T01:00:00.000Z")]


def test_a_zone_arriving_after_the_dial_re_decides_it_and_the_alert_stays():
    s = Stream()
    s("campaign.created", T0 - H)  # UTC, 08:00–21:00
    s("call.dialed", T0 + 22 * H, attempt_id="a1", contact_id="k1")  # 22:00 UTC: a violation ...
    s("contact.added", T0 + 22 * H + 10 * S, contact_id="k1", tz="America/New_York")  # ... 18:00 in New York
    st, alerts = both(s)
    assert st["compliance"]["calling_hours"] == {"violations": 0, "last_violation_at": None}
    # delivered in that order the engine first saw a violation: one alert, kept
    assert [a["attempt_id"] for a in alerts if a["kind"] == "calling_hours"] == ["a1"]
    # an earlier contact.added without zone takes the counted place: back to UTC, violating again, no new alert
    s("contact.added", T0 + 22 * H + 5 * S, contact_id="k1")
    st, alerts = both(s, order=s.events)
    assert st["compliance"]["calling_hours"]["violations"] == 1
    assert [a["attempt_id"] for a in alerts if a["kind"] == "calling_hours"] == ["a1"]


def test_abandon_redial_window_and_re_decision():
    s = Stream()
    s("campaign.created", T0 - H, calling_hours={"start": "00:00", "end": "24:00"}, abandon_redial_hours=2)
    # a1 abandoned: answered, never bridged, ended at 00:10:30
    s("call.dialed", T0 + 10 * MIN, attempt_id="a1", contact_id="k1")
    s("call.answered", T0 + 10 * MIN + 5 * S, attempt_id="a1")
    s("call.ended", T0 + 10 * MIN + 30 * S, attempt_id="a1")
    s("call.dialed", T0 + 10 * MIN + 30 * S, attempt_id="a2", contact_id="k1")  # at e: not after it
    s("call.dialed", T0 + 2 * H + 10 * MIN + 30 * S, attempt_id="a3", contact_id="k1")  # e + 2 h: a violation
    s("call.dialed", T0 + 2 * H + 10 * MIN + 30 * S + 1, attempt_id="a4", contact_id="k1")  # e + 2 h + 1 ms
    s("call.dialed", T0 + 30 * MIN, attempt_id="b1", contact_id="k2")  # another contact
    st, alerts = both(s)
    assert st["compliance"]["abandon_redial"] == {"hours": 2, "violations": 1,
                                                  "last_violation_at": "2026-05-08T02:10:30.000Z"}
    assert [(a["attempt_id"], a["contact_id"], a["dialed_at"]) for a in alerts if a["kind"] == "abandon_redial"] == [
        ("a3", "k1", "2026-05-08T02:10:30.000Z")]
    # 0 hours: no guard
    s.events[0]["abandon_redial_hours"] = 0
    assert both(s)[0]["compliance"]["abandon_redial"] == {"hours": 0, "violations": 0, "last_violation_at": None}


def test_a_late_bridge_takes_the_abandon_back_and_the_redial_is_no_violation():
    s = Stream()
    s("campaign.created", T0 - H, calling_hours={"start": "00:00", "end": "24:00"})
    s("call.dialed", T0, attempt_id="a1", contact_id="k1")
    s("call.answered", T0 + 5 * S, attempt_id="a1")
    s("call.ended", T0 + 20 * S, attempt_id="a1")
    s("call.dialed", T0 + 25 * S, attempt_id="a2", contact_id="k1")
    late = s("call.bridged", T0 + 6 * S, attempt_id="a1")  # within 2 s of the answer: a1 connected
    order = [e for e in s.events if e is not late] + [late]  # delivered last, 19 s behind the watermark
    st, alerts = both(s, order=order)
    assert st["outcomes"]["connected"] == 1 and st["compliance"]["abandon_redial"]["violations"] == 0
    # the engine saw a2 as a violation before the bridge arrived: its alert stays
    assert [a["attempt_id"] for a in alerts if a["kind"] == "abandon_redial"] == ["a2"]


def test_periods_and_waiting_for_agent():
    s = Stream()
    s("campaign.created", T0 - H, calling_hours={"start": "00:00", "end": "24:00"},
      abandon_from="greeting_end", abandon_ceiling=0.5)
    s("campaign.status", T0 - H, status="active")
    s("call.ended", T0 - MIN, attempt_id="x0")  # ended before the first dial, never answered
    s("call.dialed", T0, attempt_id="a1", contact_id="k1")  # first dial: period 1 starts here
    s("call.answered", T0 + 5 * S, attempt_id="a1")
    s("call.ended", T0 + 30 * S, attempt_id="a1")  # abandoned, period 1
    for i, day in enumerate((30, 31, 95), start=2):  # period 2 starts at day 30 exactly; day 95: period 4
        t = T0 + day * DAY
        s("call.dialed", t, attempt_id=f"a{i}", contact_id=f"k{i}")
        s("call.answered", t + 5 * S, attempt_id=f"a{i}")
        s("call.bridged", t + 6 * S, attempt_id=f"a{i}")
        s("call.ended", t + 30 * S, attempt_id=f"a{i}")
    # two callers waiting at the end: w1 answered at +100 s (greeting ends at +103 s), w2 answered at +110 s
    t = T0 + 95 * DAY
    s("call.dialed", t + 90 * S, attempt_id="w1", contact_id="k9")
    s("call.answered", t + 100 * S, attempt_id="w1")
    s("call.amd", t + 103 * S, attempt_id="w1", result="human")
    s("call.dialed", t + 95 * S, attempt_id="w2", contact_id="k8")
    s("call.answered", t + 110 * S, attempt_id="w2")
    s("call.dialed", t + 96 * S, attempt_id="m1", contact_id="k7")  # a machine: nobody waits
    s("call.answered", t + 97 * S, attempt_id="m1")
    s("call.amd", t + 99 * S, attempt_id="m1", result="machine")
    s("cost.incurred", t + 120 * S, category="x", usd_micros=1)
    st, _ = both(s)
    assert [(p["period"], p["start"][:10], p["abandoned"], p["human_answered"], p["within_ceiling"])
            for p in st["abandon"]["periods"]] == [
        (1, "2026-05-08", 1, 1, False), (2, "2026-06-07", 0, 2, True), (3, "2026-07-07", 0, 0, True),
        (4, "2026-08-06", 0, 1, True)]
    assert st["abandon"]["periods"][0]["end"] == st["abandon"]["periods"][1]["start"]
    # now = +120 s; the earliest connection start is w1's greeting end (+103 s) → 17 s
    assert (st["live"]["waiting_for_agent"], st["live"]["oldest_wait_ms"]) == (2, 17_000)
