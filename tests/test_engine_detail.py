"""Detail records (contacts with their attempt trail, attempts, transcripts) agree with the metrics."""

from __future__ import annotations

from collections import Counter

from engine.detail import sip_text
from engine.events import validate_event
from engine.gate import OK, EventGate
from engine.snapshot import build_snapshot
from engine.state import CampaignState
from flows.simulator import SimConfig, generate


def test_sip_friendly_text():
    assert sip_text(486) == "Line busy"
    assert sip_text(408) == "No answer (rang out)"
    assert sip_text(599) == "SIP 599"
    assert sip_text(None) is None


def test_details_drained_incrementally_match_the_snapshot():
    events = [validate_event(e) for e in generate(SimConfig(seed=5, contacts=80, jitter_ms=8000, duplicate_pct=4))
              if isinstance(e, dict)]
    gate = EventGate()
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)
    contacts, attempts, transcripts = {}, {}, {}
    for i, ev in enumerate(events):
        if gate.check(ev) == OK:
            st.apply(ev)
        if i % 97 == 0 or i == len(events) - 1:  # drain now and then, like the flow at frame time
            cs, ats, lines = st.take_details()
            contacts.update((c["contact_id"], c) for c in cs)
            attempts.update((a["attempt_id"], a) for a in ats)
            for line in lines:
                assert line["event_id"] not in transcripts  # each line handed over once
                transcripts[line["event_id"]] = line
    body = build_snapshot(st)
    assert len(contacts) == body["contacts"]["total"]
    assert Counter(c["status"] for c in contacts.values()) == +Counter(body["contacts"]["by_status"])
    ended = Counter(a["outcome"] for a in attempts.values() if a["outcome"])
    assert ended == +Counter(body["outcomes"])
    assert sum(1 for a in attempts.values() if a["started_at"]) == body["attempts"]["total"]
    # every contact's trail lists exactly its dialed attempts
    trail = Counter(a["contact_id"] for a in attempts.values() if a["started_at"])
    assert {c: len(r["attempt_ids"]) for c, r in contacts.items() if r["attempt_ids"]} == dict(trail)
    connected = [a for a in attempts.values() if a["outcome"] == "connected"]
    assert connected and all(a["handle_ms"] is not None and a["ring_ms"] is not None for a in connected)
    n_lines = sum(1 for e in events if e["type"] == "call.transcript")
    assert len(transcripts) == len({e["event_id"] for e in events if e["type"] == "call.transcript"}) <= n_lines


def test_replay_mode_collects_nothing():
    st = CampaignState("o", "c")
    st.apply({"event_id": "t1", "type": "call.transcript", "ts": 1, "org_id": "o", "campaign_id": "c",
              "attempt_id": "a1", "role": "user", "content": "hi"})
    assert st.take_details() == ([], [], [])
