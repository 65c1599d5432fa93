"""The activity log's engine side (engine/views/activity.py): what the state hands the sink, and the fold.

The end-to-end checks (real flow, Redis, HTTP) are in tests/test_api_drilldown.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.state.campaign import CampaignState
from engine.state.gate import OK, EventGate
from engine.views.activity import activity_log, callback_states, outcome_class

pytestmark = pytest.mark.unit

T = 1_700_000_000_000


def _ev(n, dt, type_, **f):
    return {"event_id": f"e{n:03d}", "type": type_, "ts": T + dt, "org_id": "o", "campaign_id": "c", **f}


def _stored(events, lateness_ms=30_000) -> dict:
    """What the sink's activity hash holds after the flow's path (gate, apply, take_details)."""
    gate, state = EventGate(lateness_ms=lateness_ms), CampaignState("o", "c", collect_details=True,
                                                                    lateness_ms=lateness_ms)
    stored = {}
    for ev in events:
        if gate.check(ev) is OK:
            state.apply(ev)
        for src in state.take_details().activity:
            stored[src["event_id"]] = src
    return stored


STATUSES = ["active", "paused", "active", "paused", "active", "completed"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["campaign.status", "batch.status", "campaign.created"]),
                          st.integers(0, 20_000), st.integers(0, 4)), min_size=1, max_size=25),
       st.randoms(use_true_random=False))
def test_the_log_is_the_same_whatever_the_arrival_order(spec, rnd):
    events = []
    for n, (t, dt, v) in enumerate(spec):
        if t == "campaign.status":
            events.append(_ev(n, dt, t, status=STATUSES[v]))
        elif t == "batch.status":
            events.append(_ev(n, dt, t, batch_id=f"b{v % 2}", status=["in_progress", "paused", "completed"][v % 3]))
        else:
            events.append(_ev(n, dt, t, concurrency_limit=v + 1, **({"name": "x"} if v % 2 else {})))
    in_order = sorted(events, key=lambda e: (e["ts"], e["event_id"]))
    shuffled = list(events)
    rnd.shuffle(shuffled)
    shuffled += [dict(e, event_id=e["event_id"] + "-again") for e in shuffled[:3]]  # same facts, new ids
    want = activity_log(list(_stored(in_order).values()), [])
    got = activity_log(list(_stored(shuffled).values()), [])
    # the re-sent copies share their originals' (ts, fact): they never make an entry of their own
    # unless they come first in (ts, event_id) order, which "-again" never does
    assert [(e["kind"], e["at"], e["from"], e["to"], e["batch_id"], e["changes"]) for e in got] == \
        [(e["kind"], e["at"], e["from"], e["to"], e["batch_id"], e["changes"]) for e in want]


def test_late_events_are_not_in_the_log():
    events = [_ev(1, 100_000, "campaign.status", status="active"),
              _ev(2, 0, "campaign.status", status="paused")]  # 100 s behind: late, not applied
    stored = _stored(events)
    assert set(stored) == {"e001"}
    assert [e["kind"] for e in activity_log(list(stored.values()), [])] == ["status"]


def test_a_late_arriving_earlier_config_becomes_the_creation():
    events = [_ev(2, 5000, "campaign.created", concurrency_limit=4, name="n"),
              _ev(1, 1000, "campaign.created", concurrency_limit=2)]
    log = activity_log(list(_stored(events).values()), [])
    assert [(e["kind"], e["event_id"], e["changes"]) for e in log] == [
        ("config", "e002", [{"field": "name", "from": None, "to": "n"},
                            {"field": "concurrency_limit", "from": 2, "to": 4}]),
        ("created", "e001", [{"field": "concurrency_limit", "from": 10, "to": 2}])]


def test_alerts_merge_by_time_after_events_of_the_same_time():
    src = [{"event_id": "e1", "type": "campaign.status", "ts": T, "status": "active"}]
    alerts = [{"alert_id": "a:1", "kind": "level", "window": "30d", "from": "ok", "to": "warning",
               "at": "2023-11-14T22:13:20.000Z"},
              {"alert_id": "a:2", "kind": "forecast", "window": "today", "breach_in_s": 60.0,
               "at": "2023-11-14T22:13:21.000Z"}]
    log = activity_log(src, alerts)
    assert [(e["kind"], e["alert_id"] or e["event_id"], e["from"], e["to"]) for e in log] == [
        ("alert", "a:2", None, None), ("alert", "a:1", "ok", "warning"), ("status", "e1", "draft", "active")]


def test_filter_classes():
    assert outcome_class({"started_at": "x", "ended_at": None}) == "active"
    assert outcome_class({"started_at": "x", "ended_at": "y", "outcome": "busy"}) == "busy"
    assert outcome_class({"started_at": None, "ended_at": None}) is None
    assert callback_states({"requested": 2, "pending": 1, "completed": 1, "cancelled": 0}) == \
        {"requested", "pending", "completed"}
    assert callback_states(None) == set()


def test_a_rewrite_hands_over_the_config_history():
    state = CampaignState("o", "c", collect_details=True)
    for ev in (_ev(1, 0, "campaign.created", name="a"), _ev(2, 10, "campaign.status", status="active")):
        state.apply(ev)
    state.take_details()
    state.mark_all_details_dirty()
    assert [s["event_id"] for s in state.take_details().activity] == ["e001"]
