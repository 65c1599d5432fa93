"""Each attempt's detail record carries its current guard decisions (issue 23, drill-down and audit
record): ``violations``, the zone and local time of its dial, the abandoned call a redial followed, and
why it is ``abandoned``. The records are drained after every event and laid over a store the way the
flow's sink does (a full record replaces, a patch merges), so a record a late fact re-decides — an open
attempt or a sealed one — must be written again; the store must equal the reference model's decisions.
"""

from __future__ import annotations

import pytest

from engine.state.fold import Fold
from engine.timefmt import format_time
from tests.reference_model import Prefix, build_worlds, guard_violations, local_time_of_day_ms
from tests.test_reference_model import MIN, T0, H, S, Stream

pytestmark = pytest.mark.unit

KEY = ("o1", "c1")


def drain(events, lateness_ms: int = 3_600_000) -> tuple[dict[str, dict], object]:
    """Apply the events in this order; after each, lay the drained attempt records over a store."""
    f = Fold(lateness_ms=lateness_ms)
    f.state(KEY).collect_details = True
    store: dict[str, dict] = {}
    for e in events:
        f.apply(dict(e))
        d = f.campaigns[KEY].take_details()
        for rec in d.attempts:
            store[rec["attempt_id"]] = rec
        for rec in d.attempt_patches:
            store[rec["attempt_id"]] = {**store.get(rec["attempt_id"], {}), **rec}
    return store, f.campaigns[KEY]


def _hms(ms: int) -> str:
    t = ms // 1000
    return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


def reference_records(events, key=KEY) -> dict[str, dict]:
    """{attempt_id: {violations, dial_tz, dial_local_time, redial_after_abandon_at}} by the SPEC rules."""
    w = build_worlds(events)[key]
    p = Prefix(w, None)
    v = guard_violations(p)
    span = p.cfg["abandon_redial_hours"] * H
    out = {}
    for a in p.dialed:
        aid, d, cid = a["dialed"]["attempt_id"], a["dialed"]["ts"], a["dialed"]["contact_id"]
        zone = p.contact_zone(cid)
        followed = None
        if aid in v["abandon_redial"]:
            ends = [b["ended"]["ts"] for b in p.dialed if b is not a and b["dialed"]["contact_id"] == cid
                    and p.has_ended(b) and w.outcome(b) == "abandoned" and b["ended"]["ts"] < d <= b["ended"]["ts"] + span]
            followed = format_time(max(ends))
        out[aid] = {"violations": [k for k in ("calling_hours", "abandon_redial") if aid in v[k]],
                    "dial_tz": zone, "dial_local_time": _hms(local_time_of_day_ms(d, zone)),
                    "redial_after_abandon_at": followed}
    return out


def by_key(events) -> list[dict]:
    return sorted(events, key=lambda e: (e["ts"], e["event_id"]))


def check(events, order=None, **kw) -> dict[str, dict]:
    store, st = drain(order or by_key(events), **kw)
    ref = reference_records(events)
    got = {aid: {k: rec.get(k) for k in ("violations", "dial_tz", "dial_local_time", "redial_after_abandon_at")}
           for aid, rec in store.items() if rec.get("started_at") is not None}
    assert got == ref
    return store


def campaign() -> tuple[Stream, dict]:
    s = Stream()
    s("campaign.created", T0 - H, calling_hours={"start": "08:00", "end": "21:00"}, abandon_redial_hours=2)
    named = {}
    # ny: New York; 13:00Z is 09:00 there (fine), 01:30Z is 21:30 there (a violation)
    named["add_ny"] = s("contact.added", T0 - H, contact_id="ny", tz="America/New_York")
    s("call.dialed", T0 + 13 * H, attempt_id="ny1", contact_id="ny")
    s("call.dialed", T0 + 90 * MIN, attempt_id="ny2", contact_id="ny")
    s("call.ended", T0 + 13 * H + 20 * S, attempt_id="ny1", sip_code=486)
    s("call.ended", T0 + 90 * MIN + 20 * S, attempt_id="ny2", sip_code=486)
    # k1: no zone (the campaign's, UTC); k1a abandoned (never bridged) at 14:00:30, redialed at 15:00
    s("call.dialed", T0 + 14 * H, attempt_id="k1a", contact_id="k1")
    s("call.answered", T0 + 14 * H + 5 * S, attempt_id="k1a")
    s("call.ended", T0 + 14 * H + 30 * S, attempt_id="k1a")
    s("call.dialed", T0 + 15 * H, attempt_id="k1b", contact_id="k1")
    s("call.answered", T0 + 15 * H + 4 * S, attempt_id="k1b")
    s("call.bridged", T0 + 15 * H + 10 * S, attempt_id="k1b")  # 6 s after the answer: abandoned too
    s("call.ended", T0 + 15 * H + 60 * S, attempt_id="k1b")
    s("call.dialed", T0 + 15 * H + 30 * MIN, attempt_id="k1c", contact_id="k1")  # follows k1b's end
    s("call.ended", T0 + 15 * H + 31 * MIN, attempt_id="k1c", sip_code=486)
    return s, named


def test_records_carry_the_guard_decisions_zone_local_time_and_the_abandoned_call_followed():
    s, _ = campaign()
    store = check(s.events)
    assert store["ny2"]["violations"] == ["calling_hours"]
    assert (store["ny2"]["dial_tz"], store["ny2"]["dial_local_time"]) == ("America/New_York", "21:30:00")
    assert store["ny1"]["violations"] == [] and store["ny1"]["dial_local_time"] == "09:00:00"
    assert store["k1b"]["violations"] == ["abandon_redial"]
    assert store["k1b"]["redial_after_abandon_at"] == "2026-05-08T14:00:30.000Z"
    assert store["k1c"]["redial_after_abandon_at"] == "2026-05-08T15:01:00.000Z"  # the latest one before it
    assert store["k1a"]["abandon_reason"] == "never bridged"
    assert store["k1b"]["abandon_reason"] == "bridged 6000 ms after the connection start (threshold 2000 ms)"
    assert store["k1c"]["abandon_reason"] is None and store["k1c"]["outcome"] == "busy"


@pytest.mark.parametrize("lateness_ms", [3_600_000, 10 * 60_000])
def test_a_zone_arriving_after_the_dial_rewrites_the_records(lateness_ms):
    s, named = campaign()
    add = named["add_ny"]
    add["ts"] = T0 + 15 * H + 35 * MIN  # after every other event: ny's dials re-decided in its zone
    order = by_key(e for e in s.events if e is not add) + [add]
    sealed = drain(order[:-1], lateness_ms=lateness_ms)[1].sealed.live
    assert sealed >= (2 if lateness_ms < H else 0)  # the short bound: ny's attempts are sealed rows by then
    store = check(s.events, order=order, lateness_ms=lateness_ms)
    assert store["ny1"]["violations"] == [] and store["ny2"]["violations"] == ["calling_hours"]


@pytest.mark.parametrize("lateness_ms", [3_600_000, 30 * 60_000])
def test_an_earlier_abandon_arriving_late_re_decides_the_redial(lateness_ms):
    # (a redial cannot be sealed when an abandon before it arrives: its dial follows that end, which the
    # gate still accepts, so the redial's facts are not behind the horizon yet; a zone can: above)
    s, _ = campaign()
    early = [s("call.dialed", T0 + 15 * H + 20 * MIN, attempt_id="k1x", contact_id="k1"),
             s("call.answered", T0 + 15 * H + 21 * MIN, attempt_id="k1x"),
             s("call.ended", T0 + 15 * H + 22 * MIN, attempt_id="k1x")]
    s("call.dialed", T0 + 15 * H + 40 * MIN, attempt_id="z", contact_id="k9")  # moves the watermark on
    order = by_key(e for e in s.events if not any(e is x for x in early)) + early
    store = check(s.events, order=order, lateness_ms=lateness_ms)
    assert store["k1c"]["redial_after_abandon_at"] == "2026-05-08T15:22:00.000Z"  # now the later abandon


@pytest.mark.parametrize("lateness_ms", [3_600_000, 2 * 60_000])
def test_a_late_bridge_takes_the_redial_violation_back(lateness_ms):
    s = Stream()
    s("campaign.created", T0 - H, calling_hours={"start": "00:00", "end": "24:00"})
    s("call.dialed", T0, attempt_id="a1", contact_id="k1")
    s("call.answered", T0 + 5 * S, attempt_id="a1")
    s("call.ended", T0 + 20 * S, attempt_id="a1")
    s("call.dialed", T0 + 25 * S, attempt_id="a2", contact_id="k1")
    s("call.ended", T0 + 26 * S, attempt_id="a2")
    s("call.dialed", T0 + 100 * S, attempt_id="z", contact_id="k2")
    late = s("call.bridged", T0 + 6 * S, attempt_id="a1")
    order = by_key(e for e in s.events if e is not late) + [late]
    store, _ = drain(order, lateness_ms=lateness_ms)
    before = {aid: rec["violations"] for aid, rec in drain(order[:-1], lateness_ms=lateness_ms)[0].items()}
    assert before["a2"] == ["abandon_redial"]
    assert store["a2"]["violations"] == [] and store["a2"]["redial_after_abandon_at"] is None
    assert store["a1"]["outcome"] == "connected" and store["a1"]["abandon_reason"] is None
    check(s.events, order=order, lateness_ms=lateness_ms)


def test_greeting_end_reason_counts_from_the_amd_decision():
    s = Stream()
    s("campaign.created", T0 - H, abandon_from="greeting_end", abandon_threshold_ms=1500)
    s("call.dialed", T0 + 10 * H, attempt_id="a1", contact_id="k1")
    s("call.answered", T0 + 10 * H + 2 * S, attempt_id="a1")
    s("call.amd", T0 + 10 * H + 5 * S, attempt_id="a1", result="human")
    s("call.bridged", T0 + 10 * H + 7 * S, attempt_id="a1")
    s("call.ended", T0 + 10 * H + 60 * S, attempt_id="a1")
    store = check(s.events)
    assert store["a1"]["abandon_reason"] == "bridged 2000 ms after the connection start (threshold 1500 ms)"
