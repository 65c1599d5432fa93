"""Sealed rows in the compact layout (engine.sealed.CompactLayout), and states written in release 3's
wide layout resuming exactly.

`tests/data/release3_voice_campaign_state.pickle` was written by the engine as of commit 3ef4954 (the
last with the wide layout): the scenario below folded through its first two thirds with 32-row chunks
(6 frozen chunks and 27 hot rows), details and alerts drained, ``pickle.dumps((gate, state))``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from callpulse.simulator import SimConfig, generate
from engine.entities import Attempt
from engine.events import validate_event
from engine.gate import OK, EventGate
from engine.sealed import NO_TS, CompactLayout, SealedAttempts, WideLayout
from engine.snapshot import build_snapshot
from engine.state import CampaignState

DATA = Path(__file__).parent / "data"
SCENARIO = SimConfig(seed=23, contacts=150, jitter_ms=5000, duplicate_pct=3, abandon_prob=0.08, restart=True)


def _events():
    return [validate_event(e) for e in generate(SCENARIO) if isinstance(e, dict)]


def _fold(events):
    gate = EventGate()
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True,
                       lateness_ms=gate.lateness_ms, seal_chunk_rows=32)
    for ev in events:
        if gate.check(ev) == OK:
            st.apply(ev)
    return gate, st


def test_release_3_wide_rows_resume_exactly_and_new_chunks_are_compact():
    events = _events()
    cut = len(events) * 2 // 3
    old_gate, old = pickle.loads((DATA / "release3_voice_campaign_state.pickle").read_bytes())
    assert {c.layout for c in old.sealed.chunks} == {WideLayout} and old.sealed.hot_layout is WideLayout
    gate, fresh = _fold(events[:cut])
    fresh.take_details()
    fresh.take_alerts()
    assert {c.layout for c in fresh.sealed.chunks} == {CompactLayout}
    assert build_snapshot(old) == build_snapshot(fresh)
    for name in ("dial", "ans", "bridge", "end", "wrap", "outcome", "pass_no", "sip", "mask"):
        assert np.array_equal(old.sealed.column(name), fresh.sealed.column(name)), name
    for ev in events[cut:]:
        verdict = gate.check(ev)
        assert old_gate.check(ev) == verdict
        if verdict == OK:
            old.apply(ev)
            fresh.apply(ev)
        assert old.take_alerts() == fresh.take_alerts()
    assert build_snapshot(old) == build_snapshot(fresh)
    assert old.take_details() == fresh.take_details()
    layouts = [c.layout for c in old.sealed.chunks]
    assert layouts[:6] == [WideLayout] * 6 and CompactLayout in layouts[6:], "frozen after the load: compact"
    # every attempt is found in either layout, and unseals to the same attempt
    back = pickle.loads(pickle.dumps(old))
    for aid in {e["attempt_id"] for e in events if e.get("attempt_id")}:
        assert back.sealed.find(aid) == old.sealed.find(aid) == fresh.sealed.find(aid)


def _ended_attempt(dial: int, end: int, **kw) -> Attempt:
    a = Attempt()
    a.dial, a.end, a.contact, a.outcome = (dial, "e1"), (end, "e2"), "c1", "no_answer"
    for k, v in kw.items():
        setattr(a, k, v)
    return a


def test_compact_rows_round_trip_and_wide_values_are_refused():
    s = SealedAttempts(4)
    a = _ended_attempt(1_000, 61_000, ans=(21_000, "e3"), bridge=(22_000, "e4"), sip=200, wrap=5_000,
                       amd=(9_000, "e5"), amd_result="human", outcome="connected", pass_no=3)
    assert s.seal("a1", a, 7)
    b = _ended_attempt(70_000, 70_000, sip=None, wrap=0)  # no answer, no SIP code, dial == end
    assert s.seal("b1", b, 8)
    for i in range(3):  # a frozen chunk, then one hot row
        assert s.seal(f"x{i}", _ended_attempt(i, i + 1), 9)
    assert len(s.chunks) == 1 and s.chunks[0].layout is CompactLayout
    back = pickle.loads(pickle.dumps(s))
    assert back.column("ans").tolist() == [21_000, NO_TS, NO_TS, NO_TS, NO_TS]
    assert back.column("dial").tolist() == [1_000, 70_000, 0, 1, 2]
    assert back.column("sip").tolist() == [200, NO_TS, NO_TS, NO_TS, NO_TS]
    for aid, want in (("a1", a), ("b1", b)):
        row = back.find(aid)
        got = back.unseal(row, lambda r: "c1")
        for slot in ("dial", "ans", "amd", "bridge", "end"):
            assert (getattr(got, slot) or (None,))[0] == (getattr(want, slot) or (None,))[0], slot
        assert (got.sip, got.wrap, got.pass_no, got.outcome, got.amd_result) == \
            (want.sip, want.wrap, want.pass_no, want.outcome, want.amd_result)
    assert back.live == 3 and back.find("a1") is None  # unsealed
    # values a compact row cannot hold: not sealed (the state keeps such an attempt open)
    month = 31 * 24 * 3600 * 1000
    for wide in (_ended_attempt(0, month), _ended_attempt(0, 1, wrap=month), _ended_attempt(0, 1, pass_no=1 << 40)):
        assert not s.seal("w", wide, 1)
    assert s.find("w") is None and s.live == 5


def test_an_attempt_too_long_for_a_sealed_row_stays_open_and_exact():
    """An attempt whose end is a month after its dial cannot be a compact row; it stays open."""
    events = [e for e in _events()]
    month = 31 * 24 * 3600 * 1000
    first_dial = next(e for e in events if e["type"] == "call.dialed")
    late_end = dict(next(e for e in events if e["type"] == "call.ended" and e["attempt_id"] == first_dial["attempt_id"]))
    events = [e for e in events if not (e["type"] == "call.ended" and e["attempt_id"] == first_dial["attempt_id"])]
    late_end["ts"] = first_dial["ts"] + month
    late_end["event_id"] = "late-end"
    events.append(late_end)
    _gate, st = _fold(events)
    assert first_dial["attempt_id"] in st.attempts and st.sealed.find(first_dial["attempt_id"]) is None
    assert st.sealed.live > 100  # the others sealed as usual
    ref = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)  # never seals
    g = EventGate()
    for ev in events:
        if g.check(ev) == OK:
            ref.apply(ev)
    assert build_snapshot(st) == build_snapshot(ref)
