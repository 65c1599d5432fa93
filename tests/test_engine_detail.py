"""Detail records (contacts with their attempt trail, attempts, transcripts) agree with the metrics."""

from __future__ import annotations

from collections import Counter

import pytest

from callpulse.simulator import SimConfig, generate
from engine.state.campaign import CampaignState
from engine.state.gate import OK, EventGate
from engine.validation.events import validate_event
from engine.views.detail import sip_text
from engine.views.snapshot import build_snapshot

pytestmark = pytest.mark.unit


def test_sip_friendly_text():
    assert sip_text(486) == "Line busy"
    assert sip_text(408) == "No answer (rang out)"
    assert sip_text(599) == "SIP 599"
    assert sip_text(None) is None


def test_details_drained_incrementally_match_the_snapshot():
    events = [validate_event(e) for e in generate(SimConfig(seed=5, contacts=80, jitter_ms=8000, duplicate_pct=4))
              if isinstance(e, dict)]
    gate = EventGate()
    # with the lateness bound, so attempts are sealed (and some unsealed) along the way
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True,
                       lateness_ms=gate.lateness_ms)
    contacts, profiles, attempts, transcripts, batches, daily = {}, {}, {}, {}, {}, {}
    trail: dict[str, set] = {}
    for i, ev in enumerate(events):
        if gate.check(ev) == OK:
            st.apply(ev)
        if i % 97 == 0 or i == len(events) - 1:  # drain now and then, like the flow at frame time
            d = st.take_details()
            contacts.update((c["contact_id"], c) for c in d.contacts)
            profiles.update((p["contact_id"], p) for p in d.profiles)
            attempts.update((a["attempt_id"], a) for a in d.attempts)
            for patch in d.attempt_patches:  # the sink lays a patch over the stored record
                attempts[patch["attempt_id"]] = {**attempts.get(patch["attempt_id"], {}), **patch}
            for cid, aid, delta in d.trail:
                (trail.setdefault(cid, set()).add if delta > 0 else trail[cid].remove)(aid)
            batches.update((b["batch_id"], b) for b in d.batches)
            daily.update(d.daily)
            for line in d.transcripts:
                assert line["event_id"] not in transcripts  # each line handed over once
                transcripts[line["event_id"]] = line
    assert len(st.sealed) > 0, "the stream is long enough for attempts to be sealed"
    body = build_snapshot(st)
    assert len(contacts) == body["contacts"]["total"]
    assert Counter(c["status"] for c in contacts.values()) == +Counter(body["contacts"]["by_status"])
    ended = Counter(a["outcome"] for a in attempts.values() if a["outcome"])
    assert ended == +Counter(body["outcomes"])
    assert sum(1 for a in attempts.values() if a["started_at"]) == body["attempts"]["total"]
    # every contact's trail lists exactly its dialed attempts, and its attempts_dialed counts them
    dialed = Counter(a["contact_id"] for a in attempts.values() if a["started_at"])
    assert {c: len(aids) for c, aids in trail.items() if aids} == dict(dialed)
    assert {c: r["attempts_dialed"] for c, r in contacts.items() if r["attempts_dialed"]} == dict(dialed)
    connected = [a for a in attempts.values() if a["outcome"] == "connected"]
    assert connected and all(a["handle_ms"] is not None and a["ring_ms"] is not None for a in connected)
    # batch records add up to the contacts whose profile names a batch; daily cells equal the state's
    assert sum(b["contacts"]["total"] for b in batches.values()) == sum(
        1 for p in profiles.values() if p["batch_id"] is not None)
    assert {b: r["status"] for b, r in batches.items()} == {b: x.status for b, x in st.batches.items() if x.exists}
    assert {q: c for q, c in daily.items() if any(c)} == {q: c for q, c in st.daily.items() if any(c)}
    n_lines = sum(1 for e in events if e["type"] == "call.transcript")
    assert len(transcripts) == len({e["event_id"] for e in events if e["type"] == "call.transcript"}) <= n_lines


def test_replay_mode_collects_nothing():
    st = CampaignState("o", "c")
    st.apply({"event_id": "t1", "type": "call.transcript", "ts": 1, "org_id": "o", "campaign_id": "c",
              "attempt_id": "a1", "role": "user", "content": "hi"})
    assert not st.take_details().has_records()


def test_reply_records_for_email_campaigns():
    events = [validate_event(e) for e in generate(SimConfig(seed=6, contacts=60, channel="email"))
              if isinstance(e, dict)]
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)
    gate = EventGate()
    for ev in events:
        if gate.check(ev) == OK:
            st.apply(ev)
    replies = st.take_details().replies
    assert len(replies) == build_snapshot(st)["email"]["replied"] > 0
    assert all(r["sentiment"] in ("positive", "neutral", "negative") and r["replied_at"] for r in replies)
