"""Runs of a campaign (restarts, SPEC §3 "Runs"): hand-worked examples, engine and reference model alike.

Each example is checked against figures worked out by hand, on sorted delivery and on a messy arrival
order (within the lateness bound), through the engine (`Fold`) and the reference model."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import HealthCheck, given, settings

from engine.state.fold import Fold
from engine.storage.recovery_format import decode
from engine.validation.events import validate_event
from tests.reference_model import reference_stats
from tests.stream_strategies import event_streams
from tests.test_engine_vs_reference import assert_same, diff

pytestmark = pytest.mark.unit

T = 1_778_230_800_000  # 2026-05-08T09:00:00.000Z
S = 1000
KEY = ("o1", "c1")


def iso(ms: int) -> str:
    from tests.reference_model import fmt

    return fmt(ms)


class Log:
    """Builds a campaign's events with unique event ids."""

    def __init__(self):
        self.events: list[dict] = []

    def add(self, etype: str, ts: int, **fields) -> dict:
        ev = {"event_id": f"e{len(self.events):03d}", "type": etype, "ts": ts, "org_id": "o1",
              "campaign_id": "c1", **fields}
        self.events.append(ev)
        return ev

    def call(self, aid: str, contact: str, dial: int, *, answer: int | None = None, bridge: int | None = None,
             end: int | None = None, sip: int | None = None) -> None:
        self.add("call.dialed", dial, contact_id=contact, attempt_id=aid)
        if answer is not None:
            self.add("call.answered", answer, attempt_id=aid)
        if bridge is not None:
            self.add("call.bridged", bridge, attempt_id=aid)
        if end is not None:
            fields = {"sip_code": sip} if sip is not None else {}
            self.add("call.ended", end, attempt_id=aid, **fields)

    def run(self, started: bool, n: int, ts: int) -> dict:
        return self.add("campaign.run_started" if started else "campaign.run_cancelled", ts, run=n)


def jumbled(events: list[dict], seed: int = 1) -> list[dict]:
    """An arrival order in which each event is delayed by up to 29 s (inside the 30 s lateness bound)."""
    import random

    rng = random.Random(seed)
    delayed = [(e["ts"] + rng.randrange(29_000), i, e) for i, e in enumerate(events)]
    return [e for _d, _i, e in sorted(delayed)]


def engine_body(events: list[dict]) -> dict:
    f = Fold()
    for ev in events:
        f.apply(validate_event(ev))
    return f.snapshot(KEY)


def bodies(events: list[dict], messy: list[dict] | None = None) -> list[dict]:
    """The body from engine (sorted, and in the messy order when given) and reference; all equal."""
    valid = [validate_event(e) for e in events]
    ref = reference_stats(valid)[KEY]
    out = [engine_body(sorted(events, key=lambda e: (e["ts"], e["event_id"])))]
    if messy is not None:
        assert sorted(e["event_id"] for e in messy) == sorted(e["event_id"] for e in events)
        out.append(engine_body(messy))
    for body in out:
        assert not diff(body, ref), diff(body, ref)[:8]
    return out + [ref]


def short(row: dict) -> tuple:
    return (row["run"], row["started_at"], row["attempts"], row["outcomes"]["connected"],
            row["outcomes"]["no_answer"], row["first_dial_at"], row["last_end_at"])


def test_only_run_1_without_run_events():
    log = Log()
    log.call("a1", "k1", T, answer=T + 4 * S, bridge=T + 5 * S, end=T + 65 * S)
    log.call("a2", "k2", T + S, end=T + 31 * S)  # no sip code: no_answer
    for body in bodies(log.events):
        assert body["run"] == 1 and body["previous_run_stats"] is None
        (row,) = body["runs"]
        assert short(row) == (1, None, 2, 1, 1, iso(T), iso(T + 65 * S))
        assert (row["answered"], row["human_answered"], row["answer_rate"], row["connect_rate"]) == (1, 1, 0.5, 0.5)
        assert (row["aht_ms"], row["avg_ring_ms"], row["abandon_rate"]) == (60_000.0, 4000.0, 0.0)


def test_a_run_withdrawn_before_dialing_is_not_listed():
    """Run 2 is prepared then withdrawn: only run 1 exists, and a later dial still belongs to it."""
    log = Log()
    log.call("a1", "k1", T, end=T + 20 * S)
    started = log.run(True, 2, T + 100 * S)
    cancelled = log.run(False, 2, T + 110 * S)
    log.call("a2", "k1", T + 120 * S, end=T + 125 * S, sip=486)
    messy = [log.events[0], log.events[1], cancelled, started, log.events[4], log.events[5]]
    for body in bodies(log.events, messy):
        assert body["run"] == 1 and body["previous_run_stats"] is None
        assert [short(r) for r in body["runs"]] == [(1, None, 2, 0, 1, iso(T), iso(T + 125 * S))]
        assert body["runs"][0]["outcomes"]["busy"] == 1


def test_a_withdrawn_restart_started_again_counts_from_its_latest_start():
    """Per run number the latest run event decides: started, withdrawn, started again later."""
    log = Log()
    log.run(True, 2, T)
    log.call("a1", "k1", T + 2 * S, end=T + 4 * S)
    log.run(False, 2, T + 8 * S)
    log.call("a2", "k1", T + 10 * S, end=T + 12 * S)
    log.run(True, 2, T + 16 * S)
    log.call("a3", "k1", T + 18 * S, end=T + 20 * S)
    for body in bodies(log.events, list(reversed(log.events))):  # 20 s end to end: none is late
        assert [short(r) for r in body["runs"]] == [
            (1, None, 2, 0, 2, iso(T + 2 * S), iso(T + 12 * S)),
            (2, iso(T + 16 * S), 1, 0, 1, iso(T + 18 * S), iso(T + 20 * S)),
        ]
        assert body["run"] == 2 and body["previous_run_stats"] == body["runs"][0]


def test_a_dial_delivered_before_its_run_start_moves_into_the_run():
    """Messy order: the dial (stamped after the restart) arrives before the run_started event."""
    log = Log()
    log.call("a1", "k1", T, answer=T + 2 * S, end=T + 10 * S)  # abandoned (never bridged)
    start = log.run(True, 2, T + 60 * S)
    log.call("a2", "k1", T + 65 * S, answer=T + 68 * S, bridge=T + 69 * S, end=T + 90 * S)
    messy = [e for e in log.events if e is not start]
    messy.insert(messy.index(next(e for e in messy if e["ts"] == T + 68 * S)), start)  # after a2's dial
    assert messy.index(start) > [e["type"] for e in messy].index("call.dialed", 3)
    for body in bodies(log.events, messy):
        run1, run2 = body["runs"]
        assert short(run1) == (1, None, 1, 0, 0, iso(T), iso(T + 10 * S))
        assert (run1["outcomes"]["abandoned"], run1["human_answered"], run1["abandon_rate"]) == (1, 1, 1.0)
        assert short(run2) == (2, iso(T + 60 * S), 1, 1, 0, iso(T + 65 * S), iso(T + 90 * S))
        assert (run2["abandon_rate"], run2["aht_ms"], run2["avg_ring_ms"]) == (0.0, 21_000.0, 3000.0)
        assert body["run"] == 2 and body["previous_run_stats"] == run1
        # every other figure stays campaign-wide
        assert body["outcomes"]["abandoned"] == 1 and body["outcomes"]["connected"] == 1


def test_runs_started_out_of_number_order_are_ordered_by_start():
    """Run 3 starts before run 2: the order is 1, 3, 2; run 2 is current and run 3 the previous."""
    log = Log()
    log.call("a1", "k1", T, end=T + 5 * S)
    log.run(True, 3, T + 100 * S)
    log.call("a2", "k2", T + 150 * S, end=T + 155 * S)
    log.run(True, 2, T + 200 * S)
    log.call("a3", "k3", T + 250 * S, end=T + 255 * S)
    log.call("a4", "k1", T + 260 * S)  # still ringing
    for seed in range(5):
        bodies(log.events, jumbled(log.events, seed))
    for body in bodies(log.events):
        assert [short(r) for r in body["runs"]] == [
            (1, None, 1, 0, 1, iso(T), iso(T + 5 * S)),
            (3, iso(T + 100 * S), 1, 0, 1, iso(T + 150 * S), iso(T + 155 * S)),
            (2, iso(T + 200 * S), 2, 0, 1, iso(T + 250 * S), iso(T + 255 * S)),
        ]
        assert body["run"] == 2 and body["previous_run_stats"]["run"] == 3


def test_a_prepared_run_without_attempts_is_current_and_the_one_before_is_previous():
    log = Log()
    log.call("a1", "k1", T, end=T + 5 * S)
    log.run(True, 2, T + 100 * S)
    log.call("a2", "k1", T + 110 * S, answer=T + 111 * S, bridge=T + 112 * S, end=T + 150 * S)
    log.run(True, 3, T + 300 * S)  # prepared, nothing dialed yet
    for body in bodies(log.events, jumbled(log.events, 3)):
        assert body["run"] == 3
        assert short(body["runs"][-1]) == (3, iso(T + 300 * S), 0, 0, 0, None, None)
        assert body["runs"][-1]["aht_ms"] is None and body["runs"][-1]["answer_rate"] == 0.0
        assert body["previous_run_stats"] == body["runs"][1]
        assert short(body["previous_run_stats"]) == (2, iso(T + 100 * S), 1, 1, 0, iso(T + 110 * S),
                                                     iso(T + 150 * S))


def test_runs_starting_at_the_same_time_order_by_number():
    log = Log()
    log.run(True, 3, T)
    log.run(True, 2, T)
    log.call("a1", "k1", T, end=T + 5 * S)
    for body in bodies(log.events):
        assert [(r["run"], r["attempts"]) for r in body["runs"]] == [(1, 0), (2, 0), (3, 1)]
        assert body["run"] == 3 and body["previous_run_stats"]["run"] == 2


def test_an_older_run_event_does_not_override_the_latest():
    log = Log()
    log.run(True, 2, T + 10 * S)
    late_cancel = log.run(False, 2, T + 5 * S)  # older: the start decides
    log.call("a1", "k1", T + 20 * S)
    for body in bodies(log.events, [log.events[0], log.events[2], late_cancel]):
        assert [(r["run"], r["attempts"]) for r in body["runs"]] == [(1, 0), (2, 1)]
        assert body["diagnostics"]["duplicates"] == 0  # a superseded run event is not a duplicate


def _sealed_then_moved(started_again: bool) -> tuple[list[dict], list[dict]]:
    """Run 2 starts early; its attempts end and are sealed (more than the lateness bound behind);
    then, within the bound, run 2 is withdrawn or restarted later: the sealed attempts change runs."""
    log = Log()
    log.call("a0", "k0", T, end=T + 2 * S)
    log.run(True, 2, T + 10 * S)
    log.call("a1", "k1", T + 12 * S, answer=T + 13 * S, bridge=T + 14 * S, end=T + 20 * S)
    log.call("a2", "k2", T + 15 * S, end=T + 25 * S, sip=486)
    log.add("cost.incurred", T + 200 * S, category="telephony", usd=0.01)  # moves the watermark on
    log.run(started_again, 2, T + 190 * S)
    log.call("a3", "k3", T + 195 * S, end=T + 199 * S)
    return log.events, log.events[:-3] + [log.events[-2], log.events[-1], log.events[-3]]


@pytest.mark.parametrize("started_again", [False, True])
def test_sealed_attempts_change_runs_when_a_run_boundary_moves(started_again):
    events, arrival = _sealed_then_moved(started_again)
    f = Fold()
    for ev in arrival[:-3]:
        f.apply(validate_event(ev))
    st = f.campaigns[KEY]
    assert len(st.sealed) == 3  # a0, a1, a2: ended long before the watermark
    before = f.snapshot(KEY)
    assert [(r["run"], r["attempts"]) for r in before["runs"]] == [(1, 1), (2, 2)]
    for ev in arrival[-3:]:
        assert f.apply(validate_event(ev)) == "ok"
    body = f.snapshot(KEY)
    assert not diff(body, reference_stats([validate_event(e) for e in events])[KEY])
    if started_again:
        assert [short(r) for r in body["runs"]] == [
            (1, None, 3, 1, 1, iso(T), iso(T + 25 * S)),
            (2, iso(T + 190 * S), 1, 0, 1, iso(T + 195 * S), iso(T + 199 * S))]
        assert body["runs"][0]["outcomes"]["busy"] == 1 and body["runs"][0]["aht_ms"] == 6000.0
    else:
        assert [short(r) for r in body["runs"]] == [(1, None, 4, 1, 2, iso(T), iso(T + 199 * S))]
        assert body["previous_run_stats"] is None


def test_a_state_pickled_before_runs_existed_builds_them_on_load():
    events, _ = _sealed_then_moved(True)
    f = Fold()
    for ev in events[:4]:  # no run event before the cut: an old release never saw one
        if ev["type"].startswith("campaign.run"):
            continue
        f.apply(validate_event(ev))
    st = f.campaigns[KEY]
    expected = f.snapshot(KEY)
    del st.__dict__["runs"]
    loaded = decode(pickle.dumps(st))  # a legacy snapshot (a pickle, STATE_VERSION < 6)
    from engine.views.snapshot import build_snapshot

    assert build_snapshot(loaded) == expected
    assert loaded.runs.figures[1][0] == expected["runs"][0]["attempts"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams(lateness_ms=3000))
def test_engine_equals_reference_with_a_short_lateness_bound_and_tiny_seal_chunks(raw):
    """Attempts are sealed a few seconds after they end and frozen two at a time, so run events
    arriving later move sealed, frozen attempts between runs (engine/state/runs.py rebuild)."""
    import engine.storage.sealed_base as sealed

    saved, sealed.CHUNK_ROWS = sealed.CHUNK_ROWS, 2
    try:
        events = [validate_event(e) for e in raw]
        f = Fold(lateness_ms=3000)
        for ev in events:
            assert f.apply(ev) != "late"
        assert_same({(b["org_id"], b["campaign_id"]): b for b in f.snapshots()}, reference_stats(events))
    finally:
        sealed.CHUNK_ROWS = saved
