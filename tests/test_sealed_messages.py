"""Sealed email messages (engine.storage.sealed_messages): a state that seals them equals one that never seals,
on a jittered, duplicated email campaign and on late events for sealed messages (a repeat, a repeat
`email.sent` naming another contact, a new type that unseals, a reply)."""

from __future__ import annotations

import pickle

import pytest

from callpulse.simulator import SimConfig, generate
from engine.state.campaign import CampaignState
from engine.state.gate import OK, EventGate
from engine.storage.recovery_format import encode
from engine.validation.events import validate_event
from engine.views.snapshot import build_snapshot

pytestmark = pytest.mark.e2e

SCENARIO = SimConfig(seed=41, contacts=300, channel="email", jitter_ms=5000, duplicate_pct=3)


def _events():
    return [validate_event(e) for e in generate(SCENARIO) if isinstance(e, dict)]


def _states(events):
    """(sealing state, never-sealing state) after the same gated events."""
    gate = EventGate()
    sealing = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True,
                            lateness_ms=gate.lateness_ms, seal_chunk_rows=16)
    plain = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)
    for ev in events:
        if gate.check(ev) == OK:
            sealing.apply(ev)
            plain.apply(ev)
            assert sealing.take_alerts() == plain.take_alerts()
    return sealing, plain


def _same(a: CampaignState, b: CampaignState) -> None:
    assert build_snapshot(a) == build_snapshot(b)
    da, db = a.take_details(), b.take_details()
    assert da.replies == db.replies and da.contacts == db.contacts and da.daily == db.daily


def test_sealed_messages_change_no_figure():
    events = _events()
    sealing, plain = _states(events)
    assert sealing.sealed_messages.live > 300 and len(sealing.sealed_messages.chunks) > 10
    assert len(sealing.messages) < len(plain.messages) / 5
    assert any("email.replied" in m.keys for m in sealing.messages.values())  # replied ones stay objects
    _same(sealing, plain)
    back = pickle.loads(pickle.dumps(sealing))
    assert back.sealed_messages.live == sealing.sealed_messages.live
    assert build_snapshot(back) == build_snapshot(plain)


def test_late_events_for_sealed_messages_are_applied_exactly():
    events = _events()
    sealing, plain = _states(events)
    sealing.take_details()
    plain.take_details()
    last = max(e["ts"] for e in events)
    sealed_ids = [e["message_id"] for e in events if e["type"] == "email.sent"
                  and sealing.sealed_messages.find(e["message_id"]) is not None][:6]
    assert len(sealed_ids) == 6
    org, camp = events[0]["org_id"], events[0]["campaign_id"]
    sent = {e["message_id"]: e for e in events if e["type"] == "email.sent"}
    late = []
    for i, mid in enumerate(sealed_ids):
        base = {"org_id": org, "campaign_id": camp, "message_id": mid, "ts": last + 1000 + i}
        late += [
            {**base, "event_id": f"late-sent-{i}", "type": "email.sent", "contact_id": f"other-{i}"},  # a repeat
            {**base, "event_id": f"late-deliv-{i}", "type": "email.delivered"},
            {**base, "event_id": f"late-open-{i}", "type": "email.opened"},
        ]
        if i % 2:
            late.append({**base, "event_id": f"late-reply-{i}", "type": "email.replied", "sentiment": "positive",
                         "preview": "yes", "name": "N", "company": "C", "from_email": "n@example.com"})
    late.append({"org_id": org, "campaign_id": camp, "message_id": sealed_ids[0], "ts": last + 2000,
                 "event_id": "late-sent-again", "type": "email.sent",
                 "contact_id": sent[sealed_ids[0]]["contact_id"]})
    gate_events = [validate_event(e) for e in late]
    for ev in gate_events:
        sealing.apply(ev)
        plain.apply(ev)
    _same(sealing, plain)
    assert any(mid in sealing.messages for mid in sealed_ids)  # unsealed by a new type


def test_a_state_pickled_before_sealed_messages_seals_them_after_the_load():
    events = _events()
    cut = len(events) // 2
    gate = EventGate()
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True,
                       lateness_ms=gate.lateness_ms, seal_chunk_rows=16)
    plain = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)
    for ev in events[:cut]:
        if gate.check(ev) == OK:
            st.apply(ev)
            plain.apply(ev)
    # what a release-3 snapshot holds: every message an object (the never-sealing state's), no sealed
    # messages and no message queue
    assert st.sealed_messages.live > 0
    old = dict(st.__getstate__())
    del old["sealed_messages"], old["message_seal_queue"]
    old["messages"] = plain.messages
    back = CampaignState.__new__(CampaignState)
    back.__setstate__(pickle.loads(pickle.dumps(old)))
    assert back.sealed_messages.live == 0 and back.message_seal_queue
    for ev in events[cut:]:
        if gate.check(ev) == OK:
            back.apply(ev)
            plain.apply(ev)
    assert back.sealed_messages.live > 100
    _same(back, plain)


def test_a_message_chunk_file_loads_with_only_the_recovery_format_imported(tmp_path):
    """A frozen chunk of messages names layout 3, which engine.storage.sealed_layouts lists with the attempts'
    layouts: a chunk file read alone (as a tool might), with only the recovery format imported, finds it."""
    import subprocess
    import sys
    from pathlib import Path

    sealing, _plain = _states(_events())
    chunk = sealing.sealed_messages.chunks[0]
    path = tmp_path / "chunk.bin"
    path.write_bytes(encode(chunk))
    root = str(Path(__file__).resolve().parent.parent)
    code = (f"import sys; sys.path.insert(0, {root!r}); from engine.storage.recovery_format import decode; "
            f"c = decode(open({str(path)!r}, 'rb').read()); print(c.layout.__name__, c.key)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["MessageLayout", chunk.key]
