"""Issue 24, engine and step: the minute points of the history (engine.views.history) and the follow-up schedule with
its view (engine.state.followups), exact under reordering and duplicates, derived again on load, and carried by the
campaign step's frames."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpulse.simulator import SimConfig, generate
from engine.state.campaign import CampaignState
from engine.state.followups import DueSchedule, followups_view
from engine.storage.recovery_format import decode, encode
from engine.timefmt import format_time
from engine.validation.events import validate_event
from engine.views.due_statuses import DUE_STATUSES, view_without_due
from engine.views.history import history_entry, history_point, recent
from engine.views.snapshot import build_snapshot
from flows.campaign_step import CampaignLogic
from flows.config import FlowConfig
from flows.messages import CampaignBatch, Frame
from tests.state_folds import fold

pytestmark = pytest.mark.unit

T0 = 1_778_198_400_000  # 2026-05-08T00:00:00Z
MIN, HOUR = 60_000, 3_600_000
DATA = Path(__file__).parent / "data"


def _ev(i, ts, type_, **fields) -> dict:
    return validate_event({"event_id": f"e{i:03d}", "type": type_, "ts": ts, "org_id": "o1", "campaign_id": "c1",
                           **fields})


def _state(events) -> CampaignState:
    st_ = CampaignState("o1", "c1")
    seen = set()
    for ev in events:
        if ev["event_id"] not in seen:  # the gate's duplicate check (no lateness bound here: any order)
            seen.add(ev["event_id"])
            st_.apply(ev)
    return st_


# ------------------------------------------------------------------ history


def test_history_point_copies_the_body_figures_at_the_minute_of_as_of():
    events = [validate_event(e) for e in generate(SimConfig(seed=3, contacts=40, abandon_prob=0.2))
              if isinstance(e, dict)]
    _gate, st_ = fold(events[: len(events) // 2])
    body = orjson.loads(orjson.dumps(build_snapshot(st_)))
    point = history_point(body)
    assert point["t"] == format_time(st_.now // MIN * MIN) and point["t"][:16] == body["as_of"][:16]
    live, windows = body["live"], body["abandon"]["windows"]
    assert point == {
        "t": point["t"], "dials_per_sec": live["dials_per_sec"], "connected_per_hour": live["connected_per_hour"],
        "calls_per_min": live["calls_per_min"], "active_calls": body["active_calls"],
        "waiting_for_agent": live["waiting_for_agent"], "pending": live["pending"],
        "abandon_today": {k: windows["today"][k] for k in ("abandoned", "human_answered", "rate")},
        "abandon_30d": {k: windows["30d"][k] for k in ("abandoned", "human_answered", "rate")},
        "ceiling": body["abandon"]["ceiling"]}
    assert point["abandon_30d"]["human_answered"] > 0, "the data set answers calls"
    minute, raw = history_entry(body)
    assert minute == st_.now // MIN and orjson.loads(raw) == point
    assert history_entry(dict(body, as_of=None)) is None


def test_recent_keeps_the_minutes_within_the_span_of_the_newest_point():
    entries = [(100, b"a"), (140, b"b"), (159, b"c"), (160, b"d")]
    assert recent(entries, 60) == [b"b", b"c", b"d"]  # 101..160
    assert recent(entries, 61) == [b"a", b"b", b"c", b"d"]
    assert recent(entries, 1) == [b"d"]
    assert recent([], 60) == []


# ------------------------------------------------------------------ follow-ups


def _statuses():
    """Hand-made: k1 follow-up due in 30 min, then a *late older* status (must change nothing); k2 retrying
    due 3 h ahead; k3 retrying without due_at; k4 follow-up already due; k5 follow-up due in 3 days, then
    completed; k6 retrying due in 50 h."""
    now = T0 + 10 * MIN + 5_000
    return now, [
        _ev(1, T0, "contact.added", contact_id="k1"),
        _ev(2, T0 + MIN, "contact.status", contact_id="k1", status="followup_scheduled", due_at=T0 + 40 * MIN),
        _ev(3, T0 + 30_000, "contact.status", contact_id="k1", status="retrying", retry_number=1,
            due_at=T0 + 5 * MIN),  # older than e002: loses
        _ev(4, T0 + 2 * MIN, "contact.status", contact_id="k2", status="retrying", retry_number=2,
            due_at=T0 + 3 * HOUR + 10 * MIN),
        _ev(5, T0 + 3 * MIN, "contact.status", contact_id="k3", status="retrying", retry_number=1),
        _ev(6, T0 + 4 * MIN, "contact.status", contact_id="k4", status="followup_scheduled",
            due_at=T0 + 10 * MIN + 30_000),  # due within now's minute: counts as due now
        _ev(7, T0 + 5 * MIN, "contact.status", contact_id="k5", status="followup_scheduled", due_at=T0 + 72 * HOUR),
        _ev(8, T0 + 6 * MIN, "contact.status", contact_id="k5", status="completed"),
        _ev(9, T0 + 7 * MIN, "contact.status", contact_id="k6", status="retrying", retry_number=1,
            due_at=T0 + 50 * HOUR),
        _ev(10, T0 + 8 * MIN, "call.dialed", contact_id="k2", attempt_id="a1"),  # another contribution of k2
        _ev(11, now, "contact.status", contact_id="k7", status="pending"),
    ]


def test_the_view_counts_due_times_by_status_and_hour():
    now, events = _statuses()
    view = followups_view(_state(events))
    assert view == {
        "as_of": format_time(now),
        "followup_scheduled": {"count": 2, "due_now": 1, "without_due": 0, "next_due_at": format_time(T0 + 40 * MIN),
                               "last_due_at": format_time(T0 + 40 * MIN)},
        "retrying": {"count": 3, "due_now": 0, "without_due": 1, "next_due_at": format_time(T0 + 3 * HOUR + 10 * MIN),
                     "last_due_at": format_time(T0 + 50 * HOUR)},
        "by_hour": [{"hour": format_time(T0), "followup_scheduled": 1, "retrying": 0},
                    {"hour": format_time(T0 + 3 * HOUR), "followup_scheduled": 0, "retrying": 1}],
        "later": {"followup_scheduled": 0, "retrying": 1},
    }


def test_any_arrival_order_with_repeats_gives_the_sorted_result():
    _now, events = _statuses()
    want = followups_view(_state(sorted(events, key=lambda e: (e["ts"], e["event_id"]))))
    rnd = random.Random(5)
    for _ in range(20):
        shuffled = events + rnd.sample(events, 4)  # exact repeats
        rnd.shuffle(shuffled)
        assert followups_view(_state(shuffled)) == want


_STATUS = st.sampled_from(["pending", "dispatched", "retrying", "retrying", "followup_scheduled",
                           "followup_scheduled", "completed", "failed"])


@st.composite
def _status_streams(draw):
    """contact.status events of four contacts (ts collisions likely, due times around the watermark, some
    without due_at), a few contact.added and call.dialed around them, then an arbitrary arrival order with
    exact repeats."""
    events = []
    for i in range(draw(st.integers(1, 25))):
        ts = T0 + draw(st.integers(0, 20)) * 30_000
        kind = draw(st.sampled_from(["contact.status"] * 6 + ["contact.added", "call.dialed"]))
        contact = draw(st.sampled_from(["k1", "k2", "k3", "k4"]))
        f: dict = {"contact_id": contact}
        if kind == "contact.status":
            f["status"] = draw(_STATUS)
            if f["status"] == "retrying":
                f["retry_number"] = draw(st.integers(1, 3))
            if draw(st.integers(0, 3)):
                f["due_at"] = T0 + draw(st.sampled_from([0, 1, 5, 9, 10, 11, 60, 61, 2880, 2890, 3000])) * MIN \
                    + draw(st.sampled_from([0, 1, 59_999]))
        elif kind == "call.dialed":
            f["attempt_id"] = f"a{i}"
        events.append(_ev(i, ts, kind, **f))
    arrival = draw(st.permutations(events))
    repeats = draw(st.lists(st.sampled_from(events), max_size=4))
    return events, list(arrival) + repeats


def _reference(events) -> dict:
    """The view computed from the events sorted by (ts, event_id), without the engine's schedule."""
    latest = {}
    for ev in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        if ev["type"] == "contact.status":
            latest[ev["contact_id"]] = ev
    now = max(e["ts"] for e in events)
    now_min = now // MIN
    view = {"as_of": format_time(now)}
    hours, later = {}, {}
    for i, status in enumerate(DUE_STATUSES):
        mins = [ev["due_at"] // MIN for ev in latest.values() if ev["status"] == status and "due_at" in ev]
        count = sum(1 for ev in latest.values() if ev["status"] == status)
        ahead = [m for m in mins if m > now_min]
        for m in ahead:
            if m <= now_min + 48 * 60:
                hours.setdefault(m // 60, [0, 0])[i] += 1
        view[status] = {"count": count, "due_now": len(mins) - len(ahead), "without_due": count - len(mins),
                        "next_due_at": format_time(min(ahead) * MIN) if ahead else None,
                        "last_due_at": format_time(max(mins) * MIN) if mins else None}
        later[status] = sum(1 for m in ahead if m > now_min + 48 * 60)
    view["by_hour"] = [{"hour": format_time(h * HOUR), "followup_scheduled": a, "retrying": b}
                       for h, (a, b) in sorted(hours.items())]
    view["later"] = later
    return view


@settings(max_examples=150, deadline=None)
@given(_status_streams())
def test_schedule_is_exact_in_any_order_incremental_and_derived(stream):
    events, arrival = stream
    state = _state(arrival)
    view = followups_view(state)
    assert view == followups_view(_state(sorted(events, key=lambda e: (e["ts"], e["event_id"]))))
    assert view == _reference(events)
    derived = DueSchedule.of_table(state.table)  # what a loaded state gets: the same schedule
    assert (derived.minutes, derived.with_due) == (state.due_schedule.minutes, state.due_schedule.with_due)
    assert followups_view(decode(encode(state))) == view
    for status in DUE_STATUSES:
        v = view[status]
        total = v["due_now"] + v["without_due"] + view["later"][status] + sum(h[status] for h in view["by_hour"])
        assert total == v["count"] == build_snapshot(state)["contacts"]["by_status"][status]


@pytest.mark.parametrize("name", ["release2_email_campaign_snapshot.pickle", "release2_voice_campaign_snapshot.pickle"])
def test_an_older_state_loads_with_its_due_times_unknown(name):
    """A state from before the due column: its contacts in those statuses count as without_due, and a new
    status with a due_at is scheduled at once."""
    logic = CampaignLogic(FlowConfig(), (DATA / name).read_bytes())
    st_ = logic.state
    view = followups_view(st_)
    assert sum(view[s]["count"] for s in DUE_STATUSES) > 0, "the snapshot holds contacts to follow up"
    for s in DUE_STATUSES:
        assert view[s]["without_due"] == view[s]["count"] and view[s]["due_now"] == 0
    assert view == view_without_due(view["as_of"], build_snapshot(st_)["contacts"]["by_status"])
    st_.apply(_ev(999, st_.now + 1, "contact.status", contact_id="new-contact", status="retrying", retry_number=1,
                  due_at=st_.now + 2 * HOUR))
    after = followups_view(st_)
    assert after["retrying"]["count"] == view["retrying"]["count"] + 1
    assert after["retrying"]["without_due"] == view["retrying"]["without_due"]
    assert after["retrying"]["next_due_at"] == format_time((st_.now + 2 * HOUR) // MIN * MIN)


# ------------------------------------------------------------------ the campaign step


def _batch(events) -> CampaignBatch:
    return CampaignBatch("o1\x1fc1", [(f"0:{i}-0", orjson.dumps(e)) for i, e in enumerate(events)])


def test_each_frame_carries_its_minute_point_and_the_view_only_when_it_moved():
    _now, events = _statuses()
    logic = CampaignLogic(FlowConfig(replay=True, recovery=False, retire_after_ms=0), None)
    out, _ = logic.on_batch([_batch(events)])
    frames = [m for m in out if type(m) is Frame]
    assert len(frames) == 1
    f = frames[0]
    body = orjson.loads(f.body)
    assert f.history == history_entry(body) and orjson.loads(f.history[1])["t"][:16] == body["as_of"][:16]
    assert orjson.loads(f.followups) == followups_view(logic.state)
    # same minute, nothing of the schedule changed: the next frame carries no view
    logic.on_batch([_batch([_ev(50, events[-1]["ts"] + 1, "cost.incurred", category="telephony", usd=0.5)])])
    (f2,) = [m for m in logic.on_eof()[0] if type(m) is Frame]
    assert f2.followups is None and f2.history[0] == f.history[0]
    # a status that moves the schedule: the view comes again
    logic.on_batch([_batch([_ev(51, events[-1]["ts"] + 2, "contact.status", contact_id="k7",
                                status="followup_scheduled", due_at=T0 + 5 * HOUR)])])
    (f3,) = [m for m in logic.on_eof()[0] if type(m) is Frame]
    assert orjson.loads(f3.followups)["followup_scheduled"]["count"] == 3
    # the next minute: the view comes again even though the schedule did not move
    logic.on_batch([_batch([_ev(52, events[-1]["ts"] + MIN, "cost.incurred", category="telephony", usd=0.5)])])
    (f4,) = [m for m in logic.on_eof()[0] if type(m) is Frame]
    assert f4.followups is not None and f4.history[0] == f.history[0] + 1
