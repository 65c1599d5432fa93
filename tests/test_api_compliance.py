"""Issue 23, drill-down and audit record, end to end: `?violation=` on `/calls` and the attempt report,
`GET /compliance` (JSON and CSV), and the trail's `abandon_reason`.

Real Redis, the real flow (`callpulse flow` subprocess, lateness bound 10 min so attempts are sealed
before the late facts arrive), a real uvicorn server. One hand-written campaign whose arrival order
carries the late facts that re-decide a guard: a contact's zone after its (sealed) dials, an earlier
abandon after the redial it makes a violation, a late bridge that takes an abandon (and so a redial
violation) back. Every answer must equal the SPEC's decisions: those worked out here by hand, and the
reference model's (tests/reference_model.py) wherever it computes the same thing.
"""

from __future__ import annotations

import csv
import io

import pytest

from engine.timefmt import format_time
from tests.reference_model import reference_stats
from tests.support import run_cli
from tests.test_engine_attempt_guards import reference_records

pytestmark = pytest.mark.e2e

ORG, CAMP = "org-1", "cmp-1"
T0 = 1_778_198_400_000  # 2026-05-08T00:00:00Z
S, MIN, H = 1000, 60_000, 3_600_000
_n = iter(range(1, 10_000))


def _ev(ts: int, type_: str, **fields) -> dict:
    return {"event_id": f"cmp-{next(_n)}", "type": type_, "ts": ts, "org_id": ORG, "campaign_id": CAMP, **fields}


def _dial(ts, aid, cid):
    return _ev(ts, "call.dialed", attempt_id=aid, contact_id=cid)


def _end(ts, aid, **kw):
    return _ev(ts, "call.ended", attempt_id=aid, **kw)


def campaign() -> tuple[list[dict], list[dict]]:
    """(the events in arrival order, the same events)."""
    t = T0
    normal = [
        _ev(t - H, "campaign.created", name="C", channel="voice", calling_hours={"start": "08:00", "end": "21:00"},
            abandon_redial_hours=2),
        _ev(t - H, "campaign.status", status="active"),
        _ev(t - H, "contact.added", contact_id="ldn", tz="Europe/London"),
        # ny: 02:00Z is 22:00 in New York (a violation in either zone)
        _dial(t + 2 * H, "n1", "ny"), _end(t + 2 * H + 10 * S, "n1", sip_code=486),
        # ldn: 07:30Z is 08:30 in London (within; in UTC it would not be), 20:30Z is 21:30 there (a violation)
        _dial(t + 7 * H + 30 * MIN, "d1", "ldn"), _end(t + 7 * H + 30 * MIN + 10 * S, "d1", sip_code=486),
        # k1: a1 abandoned (never bridged) at 10:00:30; a2 at 11:00 redials within 2 h; a3 at 12:30:30 does not
        _dial(t + 10 * H, "a1", "k1"), _ev(t + 10 * H + 5 * S, "call.answered", attempt_id="a1"),
        _end(t + 10 * H + 30 * S, "a1", sip_code=200),
        _dial(t + 11 * H, "a2", "k1"), _ev(t + 11 * H + 4 * S, "call.answered", attempt_id="a2"),
        _ev(t + 11 * H + 5 * S, "call.bridged", attempt_id="a2", agent_id="ag1"),
        _end(t + 11 * H + 3 * MIN, "a2", sip_code=200),
        _dial(t + 12 * H + 30 * MIN + 30 * S, "a3", "k1"), _end(t + 12 * H + 30 * MIN + 50 * S, "a3", sip_code=486),
        # k2: b2 at 13:00 (busy); the abandoned b1 before it arrives after it (below)
        _dial(t + 13 * H, "b2", "k2"), _end(t + 13 * H + 20 * S, "b2", sip_code=486),
    ]
    late_b1 = [_dial(t + 12 * H + 55 * MIN, "b1", "k2"), _ev(t + 12 * H + 55 * MIN + 5 * S, "call.answered", attempt_id="b1"),
               _ev(t + 12 * H + 55 * MIN + 10 * S, "call.bridged", attempt_id="b1", agent_id="ag1"),  # 5 s: abandoned
               _end(t + 12 * H + 55 * MIN + 40 * S, "b1", sip_code=200)]
    k3 = [_dial(t + 14 * H, "c1", "k3"), _ev(t + 14 * H + 5 * S, "call.answered", attempt_id="c1"),
          _end(t + 14 * H + 30 * S, "c1", sip_code=200),
          _dial(t + 14 * H + 5 * MIN, "c2", "k3"), _end(t + 14 * H + 5 * MIN + 20 * S, "c2", sip_code=486)]
    late_bridge = [_ev(t + 14 * H + 6 * S, "call.bridged", attempt_id="c1", agent_id="ag1")]  # 1 s: connected
    tail = [_dial(t + 20 * H + 30 * MIN, "d2", "ldn"), _end(t + 20 * H + 30 * MIN + 10 * S, "d2", sip_code=486),
            # ny: 22:00Z is 18:00 in New York: a violation only until ny's zone arrives
            _dial(t + 22 * H, "n2", "ny"), _end(t + 22 * H + 20 * S, "n2", sip_code=486),
            _dial(t + 22 * H + 15 * MIN, "z1", "zz"), _end(t + 22 * H + 15 * MIN + 10 * S, "z1", sip_code=486)]
    late_zone = [_ev(t + 22 * H + 14 * MIN, "contact.added", contact_id="ny", tz="America/New_York")]
    arrival = normal + late_b1 + k3 + late_bridge + tail + late_zone
    return arrival, arrival


@pytest.fixture(scope="module")
def env(stack):
    arrival, events = campaign()
    s = stack(extra={"cmp.ndjson": arrival}, flow_args=["--lateness-ms", "600000"],
              keys={"read": {"org": ORG, "scopes": ["campaigns:read"]}})
    return {"http": s.client("read"), "events": events, "redis_url": s.redis_url}


def get(env, path, **params):
    r = env["http"].get(path, params=params)
    assert r.status_code == 200, (path, params, r.text)
    return r.json()


def csv_rows(env, path, **params) -> list[dict]:
    r = env["http"].get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


EXPECTED = {"calling_hours": ["n1", "d2", "z1"], "abandon_redial": ["a2", "b2"]}  # by dial time


def test_the_reference_model_decides_as_worked_out_by_hand(env):
    ref = reference_records(env["events"], (ORG, CAMP))
    for kind, ids in EXPECTED.items():
        assert sorted(aid for aid, r in ref.items() if kind in r["violations"]) == sorted(ids)


def test_violation_filter_pages_and_combines(env):
    ref = reference_records(env["events"], (ORG, CAMP))
    for kind, ids in EXPECTED.items():
        body = get(env, f"/v1/campaigns/{CAMP}/calls", violation=kind, order="asc", limit=200)
        assert body["violation"] == kind and body["total"] == len(ids)
        assert [c["attempt_id"] for c in body["calls"]] == ids
        for c in body["calls"]:
            want = ref[c["attempt_id"]]
            assert {k: c[k] for k in want} == want
        # paging: one at a time, newest first
        paged = [get(env, f"/v1/campaigns/{CAMP}/calls", violation=kind, page=p, limit=1)["calls"][0]["attempt_id"]
                 for p in range(1, len(ids) + 1)]
        assert paged == ids[::-1]
        # the attempt report with the same filter
        assert [row["attempt_id"] for row in csv_rows(env, f"/v1/campaigns/{CAMP}/attempt-report.csv",
                                                      violation=kind)] == ids
    # combined with the outcome filter: a2 is connected, b2 busy
    assert [c["attempt_id"] for c in get(env, f"/v1/campaigns/{CAMP}/calls", violation="abandon_redial",
                                         outcome="connected")["calls"]] == ["a2"]
    assert get(env, f"/v1/campaigns/{CAMP}/calls", violation="abandon_redial", outcome="busy",
               page=1, limit=1)["total"] == 1
    assert [row["attempt_id"] for row in csv_rows(env, f"/v1/campaigns/{CAMP}/attempt-report.csv",
                                                  violation="calling_hours", outcome="busy")] == ["n1", "d2", "z1"]
    assert csv_rows(env, f"/v1/campaigns/{CAMP}/attempt-report.csv", violation="calling_hours",
                    outcome="abandoned") == []
    # with a run: everything is run 1
    assert get(env, f"/v1/campaigns/{CAMP}/calls", violation="calling_hours", run=1)["total"] == 3
    assert get(env, f"/v1/campaigns/{CAMP}/calls", violation="calling_hours", run=2)["total"] == 0
    assert env["http"].get(f"/v1/campaigns/{CAMP}/calls", params={"violation": "nope"}).status_code == 422


def test_late_facts_re_decided_the_records(env):
    calls = {c["attempt_id"]: c for c in get(env, f"/v1/campaigns/{CAMP}/calls", limit=200)["calls"]}
    # the zone that arrived after ny's (sealed) dials
    assert (calls["n2"]["violations"], calls["n2"]["dial_tz"], calls["n2"]["dial_local_time"]) == (
        [], "America/New_York", "18:00:00")
    assert (calls["n1"]["dial_tz"], calls["n1"]["dial_local_time"]) == ("America/New_York", "22:00:00")
    assert (calls["d1"]["violations"], calls["d1"]["dial_local_time"]) == ([], "08:30:00")
    # the abandon that arrived after the redial; the bridge that took c1's abandon (and c2's violation) back
    assert calls["b2"]["redial_after_abandon_at"] == format_time(T0 + 12 * H + 55 * MIN + 40 * S)
    assert calls["c2"]["violations"] == [] and calls["c1"]["outcome"] == "connected"


def test_abandon_reason_in_the_trail_and_the_calls(env):
    contacts = {c["contact_id"]: c for c in get(env, f"/v1/campaigns/{CAMP}/contacts", limit=200)["contacts"]}
    trail = {a["attempt_id"]: a for c in contacts.values() for a in c["attempts"]}
    assert trail["a1"]["abandon_reason"] == "never bridged"
    assert trail["b1"]["abandon_reason"] == "bridged 5000 ms after the connection start (threshold 2000 ms)"
    assert trail["c1"]["abandon_reason"] is None and trail["a2"]["abandon_reason"] is None
    assert trail["a2"]["violations"] == ["abandon_redial"]
    calls = {c["attempt_id"]: c for c in get(env, f"/v1/campaigns/{CAMP}/calls", limit=200)["calls"]}
    assert {aid: c["abandon_reason"] for aid, c in calls.items() if c["abandon_reason"]} == {
        "a1": "never bridged", "b1": "bridged 5000 ms after the connection start (threshold 2000 ms)"}


def test_compliance_record(env):
    body = get(env, f"/v1/campaigns/{CAMP}/compliance")
    stats = get(env, f"/v1/campaigns/{CAMP}/stats")
    ref = reference_stats(env["events"])[(ORG, CAMP)]
    assert body["periods"] == stats["abandon"]["periods"] == ref["abandon"]["periods"]
    assert body["periods"][0]["abandoned"] == 2 and body["periods"][0]["human_answered"] == 4
    for kind in EXPECTED:
        assert {k: body[kind][k] for k in stats["compliance"][kind]} == stats["compliance"][kind] \
            == ref["compliance"][kind]
    assert (body["calling_hours"]["start"], body["calling_hours"]["end"], body["calling_hours"]["tz"]) == (
        "08:00", "21:00", "UTC")
    assert body["abandon_redial"]["hours"] == 2
    assert body["calling_hours"]["attempts"] == [
        {"attempt_id": "n1", "contact_id": "ny", "dialed_at": "2026-05-08T02:00:00.000Z", "tz": "America/New_York",
         "local_time": "22:00:00", "outcome": "busy", "followed": None},
        {"attempt_id": "d2", "contact_id": "ldn", "dialed_at": "2026-05-08T20:30:00.000Z", "tz": "Europe/London",
         "local_time": "21:30:00", "outcome": "busy", "followed": None},
        {"attempt_id": "z1", "contact_id": "zz", "dialed_at": "2026-05-08T22:15:00.000Z", "tz": "UTC",
         "local_time": "22:15:00", "outcome": "busy", "followed": None}]
    assert body["abandon_redial"]["attempts"] == [
        {"attempt_id": "a2", "contact_id": "k1", "dialed_at": "2026-05-08T11:00:00.000Z", "tz": "UTC",
         "local_time": "11:00:00", "outcome": "connected",
         "followed": {"attempt_id": "a1", "ended_at": "2026-05-08T10:00:30.000Z"}},
        {"attempt_id": "b2", "contact_id": "k2", "dialed_at": "2026-05-08T13:00:00.000Z", "tz": "UTC",
         "local_time": "13:00:00", "outcome": "busy",
         "followed": {"attempt_id": "b1", "ended_at": "2026-05-08T12:55:40.000Z"}}]
    assert env["http"].get("/v1/campaigns/nope/compliance").status_code == 404


def test_compliance_csv_is_the_same_record(env):
    body = get(env, f"/v1/campaigns/{CAMP}/compliance")
    rows = csv_rows(env, f"/v1/campaigns/{CAMP}/compliance", format="csv")
    periods = [r for r in rows if r["record"] == "period"]
    assert [(int(r["period"]), r["start"], r["end"], int(r["abandoned"]), int(r["human_answered"]),
             float(r["rate"]), r["within_ceiling"] == "true") for r in periods] == [
        (p["period"], p["start"], p["end"], p["abandoned"], p["human_answered"], p["rate"], p["within_ceiling"])
        for p in body["periods"]]
    for kind in EXPECTED:
        got = [r for r in rows if r["record"] == kind]
        assert [(r["attempt_id"], r["contact_id"], r["dialed_at"], r["tz"], r["local_time"], r["outcome"],
                 r["followed_attempt_id"] or None, r["followed_ended_at"] or None) for r in got] == [
            (a["attempt_id"], a["contact_id"], a["dialed_at"], a["tz"], a["local_time"], a["outcome"],
             (a["followed"] or {}).get("attempt_id"), (a["followed"] or {}).get("ended_at"))
            for a in body[kind]["attempts"]]
    assert [r["record"] for r in rows] == ["period"] * len(periods) + ["calling_hours"] * 3 + ["abandon_redial"] * 2


def test_reprocessing_every_event_again_changes_nothing(env):
    """A second flow over the same streams (a recovery rewind at its largest): the same records and indexes."""
    queries = [(f"/v1/campaigns/{CAMP}/compliance", {}), (f"/v1/campaigns/{CAMP}/calls", {"limit": 200}),
               (f"/v1/campaigns/{CAMP}/calls", {"violation": "calling_hours"}),
               (f"/v1/campaigns/{CAMP}/calls", {"violation": "abandon_redial"})]
    before = [get(env, path, **params) for path, params in queries]
    r = run_cli(env["redis_url"], "flow", "--replay", "--no-recovery", "--until-drained", "--lateness-ms", "600000")
    assert r.returncode == 0, r.stderr
    after = [get(env, path, **params) for path, params in queries]
    before[0].pop("as_of"), after[0].pop("as_of")
    assert after == before
