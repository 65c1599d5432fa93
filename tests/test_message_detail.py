"""Email message records (engine.views.message_detail, drained by take_details): each message's counted (earliest)
fact of every type and its furthest status, exact whatever the order and repeats of the events, sealed
messages included."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from callpulse.simulator import SimConfig, generate
from engine.state.campaign import CampaignState
from engine.state.gate import OK, EventGate
from engine.timefmt import format_time
from engine.validation.events import validate_event
from engine.views.message_detail import MESSAGE_STATUSES, VIEW_FIELDS, message_status, message_view
from engine.views.snapshot import build_snapshot

pytestmark = pytest.mark.unit

T = 1_700_000_000_000
TIME_FIELDS = {f"email.{s}": f"{s}_ms" for s in MESSAGE_STATUSES}  # the stored record's times (epoch ms)


def _ev(eid: str, dt: int, type_: str, mid: str, **fields) -> dict:
    return validate_event({"event_id": eid, "type": type_, "ts": T + dt, "org_id": "o", "campaign_id": "c",
                           "message_id": mid, **fields})


def _drain_into(records: dict, st: CampaignState) -> None:
    """What the sink's message hash holds after one more drain (a record overwrites the message's)."""
    for rec in st.take_details().messages:
        records[rec["message_id"]] = rec


def _reference(events: list[dict]) -> dict[str, dict]:
    """The stored records by the rule itself, from the events sorted by (ts, event_id): each type's first
    event."""
    first: dict[str, dict] = {}
    for ev in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        if ev["type"] in TIME_FIELDS:
            first.setdefault(ev["message_id"], {}).setdefault(ev["type"], ev)
    out = {}
    for mid, facts in first.items():
        sent, replied = facts.get("email.sent"), facts.get("email.replied")
        rec = {"message_id": mid, "contact_id": sent["contact_id"] if sent else None,
               "status": [s for s in MESSAGE_STATUSES if f"email.{s}" in facts][-1]}
        rec.update({TIME_FIELDS[t]: ev["ts"] for t, ev in facts.items()})  # (a fact it lacks: no field)
        if replied:
            rec["sentiment"] = replied["sentiment"]
        out[mid] = rec
    return out


def _campaign_with_repeats() -> list[dict]:
    """A jittered email campaign (with re-sent event_ids), plus a second event of the same type and message
    under its own event_id for one email event in five, a few seconds before or after the first: the earlier
    one must win wherever it arrives."""
    rng = random.Random(3)
    events = [validate_event(e) for e in generate(SimConfig(seed=17, contacts=200, channel="email", jitter_ms=5000,
                                                             duplicate_pct=4)) if isinstance(e, dict)]
    out = []
    for ev in events:
        out.append(ev)
        if ev["type"].startswith("email.") and rng.random() < 0.2:
            out.insert(max(0, len(out) - rng.randint(1, 20)),
                       dict(ev, event_id=ev["event_id"] + "-again", ts=max(0, ev["ts"] + rng.randint(-4000, 4000))))
    return out


def test_records_equal_the_sorted_fold_under_repeats_and_reordering():
    events = _campaign_with_repeats()
    gate = EventGate()
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True,
                       lateness_ms=gate.lateness_ms, seal_chunk_rows=16)
    records: dict[str, dict] = {}
    applied = []
    for i, ev in enumerate(events):
        if gate.check(ev) == OK:
            st.apply(ev)
            applied.append(ev)
        if i % 89 == 0:  # drained now and then, like the flow at frame time
            _drain_into(records, st)
    _drain_into(records, st)
    assert st.sealed_messages.live > 100, "long enough for messages to be sealed along the way"
    assert any(e["event_id"].endswith("-again") for e in applied)
    assert records == _reference(applied)
    # the same events in (ts, event_id) order, one drain at the end, give the same records
    plain = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)
    for ev in sorted(applied, key=lambda e: (e["ts"], e["event_id"])):
        plain.apply(ev)
    assert {r["message_id"]: r for r in plain.take_details().messages} == records
    # and they add up to the /stats email counts
    email = build_snapshot(st)["email"]
    for etype, field in TIME_FIELDS.items():
        n = sum(1 for r in records.values() if field in r)
        assert n == email["emails_sent" if etype == "email.sent" else etype.split(".")[1]], etype
    assert Counter(r["status"] for r in records.values()).keys() >= {"delivered", "opened", "replied"}


def test_the_earliest_event_of_each_type_counts_and_the_furthest_stage_is_the_status():
    events = [
        _ev("e1", 0, "email.sent", "m1", contact_id="c1"),
        _ev("e2", 1000, "email.delivered", "m1"),
        _ev("e3", 5000, "email.opened", "m1"),
        _ev("e4", 3000, "email.opened", "m1"),  # an earlier open, later in the stream: it counts
        _ev("e5", 9000, "email.opened", "m1"),  # a later open: nothing changes
        _ev("e6", 2000, "email.bounced", "m2"),  # before its send: an orphan for now
        _ev("e7", 1500, "email.sent", "m2", contact_id="c2"),
        _ev("e8", 2500, "email.delivered", "m2"),  # delivered and bounced: bounced is further
        _ev("e9", 4000, "email.opened", "m3"),  # never sent
        _ev("e10", 100, "email.sent", "m4", contact_id="c4"),
        _ev("e11", 900, "email.complained", "m4"),
        _ev("e12", 800, "email.replied", "m4", sentiment="negative", preview="stop"),
        _ev("e13", 700, "email.unsubscribed", "m4"),
        _ev("e14", 600, "email.replied", "m4", sentiment="neutral", preview="hm"),  # the earlier reply wins
    ]
    for order in (events, list(reversed(events)), random.Random(5).sample(events, len(events))):
        st = CampaignState("o", "c", collect_details=True)
        records: dict[str, dict] = {}
        for i, ev in enumerate(order):
            st.apply(ev)
            if i % 3 == 0:
                _drain_into(records, st)
        _drain_into(records, st)
        m1, m2, m3, m4 = (message_view(records[m]) for m in ("m1", "m2", "m3", "m4"))
        assert m1["opened_at"] == format_time(T + 3000) and m1["status"] == "opened"
        assert m1["sent_at"] == format_time(T) and m1["contact_id"] == "c1" and m1["email"] is None
        assert (m2["status"], m2["sent_at"], m2["bounced_at"]) == ("bounced", format_time(T + 1500),
                                                                   format_time(T + 2000))
        assert (m3["status"], m3["sent_at"], m3["contact_id"]) == ("opened", None, None)
        assert (m4["status"], m4["sentiment"], m4["replied_at"]) == ("complained", "neutral", format_time(T + 600))
        assert m4["unsubscribed_at"] == format_time(T + 700) and m4["clicked_at"] is None
        assert tuple(m4) == VIEW_FIELDS
        assert records == _reference(events)


def test_a_message_sealed_before_its_record_was_taken_still_gets_it():
    st = CampaignState("o", "c", collect_details=True, lateness_ms=1000, seal_chunk_rows=4)
    st.apply(_ev("e1", 0, "email.sent", "m1", contact_id="c1"))
    st.apply(_ev("e2", 500, "email.delivered", "m1"))
    st.apply(_ev("e3", 120_000, "email.sent", "m2", contact_id="c2"))  # a new minute: m1 is sealed
    assert "m1" not in st.messages and st.sealed_messages.find("m1") is not None
    got = {r["message_id"]: r for r in st.take_details().messages}
    assert got["m1"]["status"] == "delivered" and got["m1"]["delivered_ms"] == T + 500
    assert got["m1"]["contact_id"] == "c1" and set(got) == {"m1", "m2"}
    # a repeat of a sealed fact changes nothing: no record; a new type unseals it and rewrites it
    st.apply(_ev("e4", 120_100, "email.delivered", "m1"))
    assert st.take_details().messages == []
    st.apply(_ev("e5", 120_200, "email.clicked", "m1"))
    (rec,) = st.take_details().messages
    assert (rec["message_id"], rec["status"], rec["delivered_ms"]) == ("m1", "clicked", T + 500)


def test_status_order_and_a_voice_campaign_has_no_messages():
    assert message_status({"email.sent": 1, "email.delivered": 1, "email.bounced": 1}) == "bounced"
    assert message_status({"email.opened": 1, "email.complained": 1, "email.unsubscribed": 1}) == "complained"
    assert message_status({"email.replied": 1, "email.clicked": 1}) == "replied"
    events = [validate_event(e) for e in generate(SimConfig(seed=2, contacts=20)) if isinstance(e, dict)]
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True)
    for ev in events:
        st.apply(ev)
    assert st.take_details().messages == []
