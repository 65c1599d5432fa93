"""Sealed rows in the compact layout (engine.storage.sealed_layouts.CompactLayout), and states written in release 3's
wide layout resuming exactly.

`tests/data/release3_voice_campaign_state.pickle` was written by the engine as of commit 3ef4954 (the
last with the wide layout): the scenario below folded through its first two thirds with 32-row chunks
(6 frozen chunks and 27 hot rows), details and alerts drained, ``pickle.dumps((gate, state))``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from callpulse.simulator import SimConfig, generate
from engine.state.campaign import CampaignState
from engine.state.entities import Attempt
from engine.state.gate import OK, EventGate
from engine.storage.contact_table import NO_TS
from engine.storage.recovery_format import decode, encode
from engine.storage.sealed import SealedAttempts
from engine.storage.sealed_layouts import CompactLayout, WideLayout
from engine.validation.events import validate_event
from engine.views.snapshot import build_snapshot
from tests.state_folds import fold, go_on_side_by_side

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data"
SCENARIO = SimConfig(seed=23, contacts=150, jitter_ms=5000, duplicate_pct=3, abandon_prob=0.08, restart=True)


def _events():
    return [validate_event(e) for e in generate(SCENARIO) if isinstance(e, dict)]


def _fold(events):
    return fold(events, seal_chunk_rows=32)


def test_release_3_wide_rows_resume_exactly_and_new_chunks_are_compact():
    events = _events()
    cut = len(events) * 2 // 3
    old_gate, old = decode((DATA / "release3_voice_campaign_state.pickle").read_bytes())
    assert {c.layout for c in old.sealed.chunks} == {WideLayout} and old.sealed.hot_layout is WideLayout
    gate, fresh = _fold(events[:cut])
    fresh.take_details()
    fresh.take_alerts()
    assert {c.layout for c in fresh.sealed.chunks} == {CompactLayout}
    assert build_snapshot(old) == build_snapshot(fresh)
    for name in ("dial", "ans", "amd", "bridge", "end", "wrap", "outcome", "amd_result", "contact", "pass_no", "sip",
                 "mask"):
        assert np.array_equal(old.sealed.column(name), fresh.sealed.column(name)), name
    go_on_side_by_side(events[cut:], old_gate, old, gate, fresh)
    assert build_snapshot(old) == build_snapshot(fresh)
    assert old.take_details() == fresh.take_details()
    layouts = [c.layout for c in old.sealed.chunks]
    assert layouts[:6] == [WideLayout] * 6 and CompactLayout in layouts[6:], "frozen after the load: compact"
    # every attempt is found in either layout, and unseals to the same attempt
    back = decode(encode(old))
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
    lim = 1 << 31
    for wide in (_ended_attempt(0, lim), _ended_attempt(lim, -1), _ended_attempt(0, 1, wrap=lim),
                 _ended_attempt(0, 1, pass_no=1 << 40)):
        assert not s.seal("w", wide, 1)
    assert s.find("w") is None and s.live == 5
    # ... and the edges it can: distances of 2³¹ - 1 back and 2³¹ forward (a fact stamped after the end),
    # the largest wrap, SIP 699
    edge = SealedAttempts(4)
    e1 = _ended_attempt(0, lim - 1, wrap=lim - 1, sip=699)
    e2 = _ended_attempt(lim, 0, bridge=(5, "b"))
    assert edge.seal("e1", e1, 0) and edge.seal("e2", e2, 1)
    assert edge.column("dial").tolist() == [0, lim] and edge.column("wrap").tolist() == [lim - 1, 0]
    assert edge.column("bridge").tolist() == [NO_TS, 5] and edge.column("sip").tolist() == [699, NO_TS]
    back_e2 = edge.unseal(edge.find("e2"), lambda r: "c1")
    assert (back_e2.dial[0], back_e2.end[0], back_e2.bridge[0]) == (lim, 0, 5)


def test_an_attempt_too_wide_for_a_sealed_row_stays_open_and_exact():
    """An early attempt whose wrap time is over 2³¹ ms cannot be a compact row: when the horizon passes
    it, it is refused (engine.state.campaign._seal) and stays an ordinary open attempt, exact."""
    events = _events()
    first_end = next(i for i, e in enumerate(events) if e["type"] == "call.ended")
    wide_id = events[first_end]["attempt_id"]
    events[first_end] = dict(events[first_end], wrap_ms=1 << 31)
    _gate, st = _fold(events)
    assert wide_id in st.attempts and st.sealed.find(wide_id) is None
    assert st.sealed.live > 100 and st.sealed_below > events[first_end]["ts"] + 60_000  # long behind the horizon
    ref = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)  # never seals
    g = EventGate()
    for ev in events:
        if g.check(ev) == OK:
            ref.apply(ev)
    assert build_snapshot(st) == build_snapshot(ref)
    ours = {a["attempt_id"]: a for a in st.take_details().attempts}
    assert ours[wide_id] == {a["attempt_id"]: a for a in ref.take_details().attempts}[wide_id]
    back = pickle.loads(pickle.dumps(st))
    assert wide_id in back.attempts and build_snapshot(back) == build_snapshot(ref)


def test_states_pickled_before_the_shared_sealed_base_resume_exactly():
    """`tests/data/release5_sealed_states.pickle` was written by the engine as of commit f694d72, when
    `SealedMessages` subclassed `SealedAttempts` and registered its layout on import: an email state with 16
    frozen chunks of sealed messages and a voice state with 6 frozen chunks of compact attempt rows (each
    folded through two thirds of its scenario, details and alerts drained; ``{"email"|"voice": (gate,
    state)}``). Its pickles name engine.storage.sealed.SealedAttempts, engine.storage.sealed.FrozenChunk and
    engine.storage.sealed_messages.SealedMessages; each state resumes beside a fresh one, exactly."""
    from engine.storage.sealed_layouts import MessageLayout
    from engine.storage.sealed_messages import SealedMessages

    saved = decode((DATA / "release5_sealed_states.pickle").read_bytes())
    email = SimConfig(seed=41, contacts=150, channel="email", jitter_ms=5000, duplicate_pct=3)
    for name, scenario, chunk_rows in (("email", email, 16), ("voice", SCENARIO, 32)):
        events = [validate_event(e) for e in generate(scenario) if isinstance(e, dict)]
        cut = len(events) * 2 // 3
        old_gate, old = saved[name]
        assert type(old.sealed) is SealedAttempts and type(old.sealed_messages) is SealedMessages
        gate, fresh = fold(events[:cut], seal_chunk_rows=chunk_rows)
        fresh.take_details()
        fresh.take_alerts()
        sealed = old.sealed_messages if name == "email" else old.sealed
        assert len(sealed.chunks) >= 6 and {c.layout for c in sealed.chunks} == \
            ({MessageLayout} if name == "email" else {CompactLayout})
        assert sealed.live == (fresh.sealed_messages if name == "email" else fresh.sealed).live
        assert build_snapshot(old) == build_snapshot(fresh)
        go_on_side_by_side(events[cut:], old_gate, old, gate, fresh)
        assert build_snapshot(old) == build_snapshot(fresh)
        assert old.take_details() == fresh.take_details()
        back = decode(encode(old))
        assert build_snapshot(back) == build_snapshot(fresh)


def test_a_chunk_file_of_a_release_5_store_loads(monkeypatch):
    """Release 5 wrote chunk files as plain pickles naming engine.sealed.FrozenChunk (engine/ was flat then):
    the store reads them through the legacy reader, whatever module the class is in now."""
    import pickletools
    import sys
    import types

    from engine.storage.recovery_format import LEGACY_MODULES
    from engine.storage.sealed_base import FrozenChunk

    s = SealedAttempts(2)
    for i in range(2):
        assert s.seal(f"a{i}", _ended_attempt(i, i + 1), 0)
    chunk = s.chunks[0]
    # pickled as release 5 did: the class named engine.sealed.FrozenChunk (a module that is gone)
    monkeypatch.setattr(FrozenChunk, "__module__", "engine.sealed")
    monkeypatch.setitem(sys.modules, "engine.sealed", types.SimpleNamespace(FrozenChunk=FrozenChunk))
    data = pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
    monkeypatch.undo()
    names = [arg for op, arg, _pos in pickletools.genops(data) if op.name in ("SHORT_BINUNICODE", "BINUNICODE")]
    assert "engine.sealed" in names and LEGACY_MODULES["engine.sealed"] == "engine.storage.sealed"
    back = decode(data)
    assert back.key == chunk.key and back.layout is chunk.layout and back.__getstate__() == chunk.__getstate__()
