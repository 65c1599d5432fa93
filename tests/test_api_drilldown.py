"""Issue #14 end to end: call filters, one contact's trail, the activity log, usage with a plan.

Real Redis, the real flow (`callpulse flow` subprocess), a real uvicorn server, real HTTP. Two data sets:
- a simulated voice campaign (pauses, callbacks, abandons that raise alerts), checked against figures
  computed here from the raw event file by the SPEC rules (not by the engine);
- a hand-written campaign ``act-1`` whose events arrive shuffled and re-sent, checked against the
  exact entries an operator expects.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from api.auth import create_key
from engine.validation.events import parse_event
from tests.support import run_cli

pytestmark = pytest.mark.e2e

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
ORG = "org-1"


def _ev(n: int, dt: int, type_: str, **fields) -> dict:
    return {"event_id": f"act-{n}", "type": type_, "ts": T + dt, "org_id": ORG, "campaign_id": "act-1", **fields}


ACT_EVENTS = [
    _ev(1, 0, "campaign.created", name="A", channel="voice", concurrency_limit=5),
    _ev(2, 1000, "campaign.status", status="active"),
    _ev(3, 2000, "batch.created", batch_id="b1"),
    _ev(4, 3000, "batch.status", batch_id="b1", status="in_progress"),
    _ev(5, 4000, "campaign.status", status="paused"),
    _ev(6, 5000, "campaign.status", status="paused"),  # the status in force again: no entry
    _ev(7, 6000, "campaign.created", name="A", concurrency_limit=8, abandon_ceiling=0.05),
    _ev(8, 7000, "campaign.status", status="active"),
    _ev(9, 8000, "batch.status", batch_id="b1", status="completed"),
    _ev(10, 9000, "campaign.status", status="completed"),
    # contacts c1..c3 with one attempt each, and their callbacks
    _ev(20, 100, "contact.added", contact_id="c1", batch_id="b1", phone_number="+15550001"),
    _ev(21, 110, "contact.added", contact_id="c2", batch_id="b1", phone_number="+15550002"),
    _ev(22, 120, "contact.added", contact_id="c3", batch_id="b1", phone_number="+15550003"),
    _ev(30, 1500, "call.dialed", contact_id="c1", attempt_id="a1"),  # never ends: active
    _ev(31, 1600, "call.dialed", contact_id="c2", attempt_id="a2"),
    _ev(32, 1700, "call.answered", attempt_id="a2"),
    _ev(33, 2900, "call.ended", attempt_id="a2", sip_code=200),  # answered, never bridged: abandoned
    _ev(34, 1800, "call.dialed", contact_id="c3", attempt_id="a3"),
    _ev(35, 2100, "call.ended", attempt_id="a3", sip_code=486),  # busy
    _ev(40, 3100, "callback.requested", contact_id="c1", due_at=T + 60_000),
    _ev(41, 3200, "callback.requested", contact_id="c2", due_at=T + 60_000),
    _ev(42, 3300, "callback.completed", contact_id="c2"),
    _ev(43, 3400, "callback.requested", contact_id="c3", due_at=T + 60_000),
    _ev(44, 3500, "callback.cancelled", contact_id="c3"),
    _ev(50, 2200, "email.sent", contact_id="c1", message_id="m1"),
    _ev(51, 2300, "email.sent", contact_id="c2", message_id="m2"),
]

EXPECTED_ACTIVITY = [  # newest first: (kind, event_id, from, to, batch_id, changes)
    ("status", "act-10", "active", "completed", None, None),
    ("batch_status", "act-9", "in_progress", "completed", "b1", None),
    ("resumed", "act-8", "paused", "active", None, None),
    ("config", "act-7", None, None, None, [{"field": "concurrency_limit", "from": 5, "to": 8},
                                            {"field": "abandon_ceiling", "from": 0.03, "to": 0.05}]),
    ("paused", "act-5", "active", "paused", None, None),
    ("batch_status", "act-4", "pending", "in_progress", "b1", None),
    ("status", "act-2", "draft", "active", None, None),
    ("created", "act-1", None, None, None, [{"field": "name", "from": None, "to": "A"},
                                             {"field": "concurrency_limit", "from": 10, "to": 5}]),
]


@pytest.fixture(scope="module")
def env(stack):
    # act-1: shuffled (all within the lateness bound), and one event re-sent with its own event_id
    shuffled = list(ACT_EVENTS)
    random.Random(7).shuffle(shuffled)
    s = stack(["--orgs", "1", "--campaigns", "1", "--contacts", "150", "--seed", "4", "--channel", "voice",
               "--abandon-prob", "0.3", "--pause"], extra={"act.ndjson": shuffled + [ACT_EVENTS[4]]},
              min_sample=10, keys={"read": {"org": ORG, "scopes": ["campaigns:read"]}})
    events = [parse_event(line) for line in s.lines]
    return {"http": s.client("read"), "events": events, "sim": events[0]["campaign_id"], "redis": s.redis,
            "redis_url": s.redis_url}


def get(env, path, **params):
    r = env["http"].get(path, params=params)
    assert r.status_code == 200, (path, params, r.text)
    return r.json()


def all_calls(env, camp, **params) -> list[dict]:
    out, page = [], 1
    while True:
        body = get(env, f"/v1/campaigns/{camp}/calls", page=page, limit=50, **params)
        out += body["calls"]
        if len(body["calls"]) < 50:
            assert body["total"] == len(out), "total counts what the filters keep"
            return out
        page += 1


def csv_ids(env, camp, **params) -> list[str]:
    r = env["http"].get(f"/v1/campaigns/{camp}/attempt-report.csv", params=params)
    assert r.status_code == 200, r.text
    return [row["attempt_id"] for row in csv.DictReader(io.StringIO(r.text))]


# ------------------------------------------------------------------ reference, from the raw events

def callback_reference(events) -> dict[str, dict]:
    """Per contact: requested / completed / cancelled / pending by SPEC §3 *Callbacks* (a close takes
    the open callback with the earliest due_at; a close with none open is ignored)."""
    per = defaultdict(list)
    for e in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        if e["type"].startswith("callback."):
            per[e["contact_id"]].append(e)
    out = {}
    for cid, evs in per.items():
        open_, seen_due, n = [], set(), {"requested": 0, "completed": 0, "cancelled": 0}
        for e in evs:
            kind = e["type"].split(".")[1]
            if kind == "requested":
                if e["due_at"] in seen_due:
                    continue  # one fact per (contact, due_at)
                seen_due.add(e["due_at"])
                open_.append(e["due_at"])
                n["requested"] += 1
            elif open_:
                open_.remove(min(open_))
                n[kind] += 1
        n["pending"] = len(open_)
        out[cid] = n
    return out


def attempt_contacts(events) -> dict[str, str]:
    first = {}
    for e in sorted(events, key=lambda e: (e["ts"], e["event_id"])):
        if e["type"] == "call.dialed" and e["attempt_id"] not in first:
            first[e["attempt_id"]] = e["contact_id"]
    return first


# ------------------------------------------------------------------ call filters

def test_outcome_filter_drills_into_the_outcome_tiles(env):
    camp = env["sim"]
    stats = get(env, f"/v1/campaigns/{camp}/stats")
    everything = all_calls(env, camp)
    assert stats["outcomes"]["abandoned"] > 0
    for outcome in ("connected", "abandoned", "machine", "busy", "no_answer", "failed", "active"):
        calls = all_calls(env, camp, outcome=outcome)
        expected = stats["active_calls"] if outcome == "active" else stats["outcomes"][outcome]
        assert len(calls) == expected, outcome
        want = [c["attempt_id"] for c in everything
                if (c["outcome"] == outcome if outcome != "active" else c["started_at"] and not c["ended_at"])]
        assert [c["attempt_id"] for c in calls] == want, outcome  # same order as the unfiltered table
        assert sorted(csv_ids(env, camp, outcome=outcome)) == sorted(want)
    # the hand-written campaign has one call of each of these
    for outcome, aid in (("active", "a1"), ("abandoned", "a2"), ("busy", "a3")):
        body = get(env, "/v1/campaigns/act-1/calls", outcome=outcome)
        assert body["total"] == 1 and [c["attempt_id"] for c in body["calls"]] == [aid]
        assert body["outcome"] == outcome and body["callback"] == "all"
    assert get(env, "/v1/campaigns/act-1/calls", outcome="connected")["total"] == 0


def test_callback_filter_matches_the_spec_fold_of_the_raw_events(env):
    camp = env["sim"]
    ref = callback_reference(env["events"])
    owner = attempt_contacts(env["events"])
    stats = get(env, f"/v1/campaigns/{camp}/stats")
    assert stats["callbacks"]["requested"] == sum(n["requested"] for n in ref.values()) > 0
    everything = all_calls(env, camp, order="asc")
    assert sorted(csv_ids(env, camp, callback="all")) == sorted(c["attempt_id"] for c in everything)
    for state in ("requested", "pending", "completed", "cancelled"):
        contacts = {cid for cid, n in ref.items() if n[state] > 0}
        want = [c["attempt_id"] for c in everything if owner.get(c["attempt_id"]) in contacts]
        got = all_calls(env, camp, callback=state, order="asc")
        assert [c["attempt_id"] for c in got] == want, state
        assert [c["attempt_id"] for c in all_calls(env, camp, callback=state)] == want[::-1], state
        assert csv_ids(env, camp, callback=state) == want, state
        for outcome in ("connected", "no_answer"):  # both filters: an attempt must match both
            both = [c["attempt_id"] for c in everything
                    if owner.get(c["attempt_id"]) in contacts and c["outcome"] == outcome]
            assert [c["attempt_id"] for c in all_calls(env, camp, callback=state, outcome=outcome, order="asc")] \
                == both
            assert csv_ids(env, camp, callback=state, outcome=outcome) == both
    # each contact record says why it matches
    for cid, n in list(ref.items())[:20]:
        c = get(env, f"/v1/campaigns/{camp}/contacts", contact_id=cid)["contacts"][0]
        assert c["callbacks"] == {k: n[k] for k in ("requested", "pending", "completed", "cancelled")}


def test_callback_filter_on_the_hand_written_campaign_with_pagination(env):
    want = {"requested": ["a3", "a2", "a1"], "pending": ["a1"], "completed": ["a2"], "cancelled": ["a3"]}
    for state, ids in want.items():
        assert [c["attempt_id"] for c in all_calls(env, "act-1", callback=state)] == ids, state
    p1 = get(env, "/v1/campaigns/act-1/calls", callback="requested", limit=2, page=1)
    p2 = get(env, "/v1/campaigns/act-1/calls", callback="requested", limit=2, page=2)
    p3 = get(env, "/v1/campaigns/act-1/calls", callback="requested", limit=2, page=3)
    assert p1["total"] == p2["total"] == p3["total"] == 3
    assert [c["attempt_id"] for c in p1["calls"] + p2["calls"]] == ["a3", "a2", "a1"] and p3["calls"] == []
    assert p1["calls"][0]["to"] == "+15550003"  # the number comes from the contact's profile
    body = get(env, "/v1/campaigns/act-1/calls", callback="requested", outcome="abandoned")
    assert body["total"] == 1 and body["calls"][0]["attempt_id"] == "a2"
    assert get(env, "/v1/campaigns/act-1/calls", callback="pending", outcome="busy")["total"] == 0
    for bad in ({"callback": "open"}, {"outcome": "ringing"}, {"callback": ""}):
        r = env["http"].get("/v1/campaigns/act-1/calls", params=bad)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == next(iter(bad))
        r = env["http"].get("/v1/campaigns/act-1/attempt-report.csv", params=bad)
        assert r.status_code == 422


# ------------------------------------------------------------------ one contact's trail

def test_one_contacts_whole_trail(env):
    camp = env["sim"]
    owner = attempt_contacts(env["events"])
    per_contact = defaultdict(list)
    for aid, cid in owner.items():
        per_contact[cid].append(aid)
    cid = max(per_contact, key=lambda c: (len(per_contact[c]), c))
    assert len(per_contact[cid]) >= 2
    body = get(env, f"/v1/campaigns/{camp}/contacts", contact_id=cid)
    assert body["total"] == 1 and body["contact_id"] == cid and len(body["contacts"]) == 1
    c = body["contacts"][0]
    assert c["contact_id"] == cid and sorted(a["attempt_id"] for a in c["attempts"]) == sorted(per_contact[cid])
    starts = [a["started_at"] for a in c["attempts"]]
    assert starts == sorted(starts)
    # the same record as in the full listing
    listing = [x for x in get(env, f"/v1/campaigns/{camp}/contacts", limit=200)["contacts"] if x["contact_id"] == cid]
    assert listing == [c]
    # with a status filter: the contact only if it is in that status
    assert get(env, f"/v1/campaigns/{camp}/contacts", contact_id=cid, status=c["status"])["total"] == 1
    other = "pending" if c["status"] != "pending" else "completed"
    assert get(env, f"/v1/campaigns/{camp}/contacts", contact_id=cid, status=other) == {
        "total": 0, "limit": 50, "offset": 0, "status": other, "contact_id": cid, "contacts": []}
    # unknown contact: an empty page (the campaign exists); unknown campaign: 404
    assert get(env, f"/v1/campaigns/{camp}/contacts", contact_id="nobody")["total"] == 0
    assert env["http"].get("/v1/campaigns/nope/contacts", params={"contact_id": cid}).status_code == 404
    assert env["http"].get(f"/v1/campaigns/{camp}/contacts", params={"contact_id": "a b"}).status_code == 422
    one = get(env, "/v1/campaigns/act-1/contacts", contact_id="c2")["contacts"][0]
    assert [a["attempt_id"] for a in one["attempts"]] == ["a2"] and one["attempts"][0]["outcome"] == "abandoned"
    assert one["callbacks"] == {"requested": 1, "pending": 0, "completed": 1, "cancelled": 0}


# ------------------------------------------------------------------ activity

def _strip(e: dict) -> tuple:
    return (e["kind"], e["event_id"], e["from"], e["to"], e["batch_id"], e["changes"])


def test_activity_of_shuffled_and_resent_events_is_exact(env):
    body = get(env, "/v1/campaigns/act-1/activity")
    # SPEC §3: a2's abandon is 1 of 1 answer, judged against the sample of 50 while the campaign runs
    # (ok; a trend of 1 answer forecasts nothing) and as 1/1 once it is completed: a breach in every
    # window; and every dial, at 22:13 UTC with no zone given, is outside the default 08:00-21:00
    alerts = [e for e in body["entries"] if e["kind"] == "alert"]
    assert sorted((e["alert"]["kind"], e["alert"].get("window") or e["alert"]["attempt_id"]) for e in alerts) == [
        ("calling_hours", "a1"), ("calling_hours", "a2"), ("calling_hours", "a3"),
        ("level", "24h"), ("level", "30d"), ("level", "lifetime"), ("level", "today")]
    assert {e["alert"].get("to") for e in alerts if e["alert"]["kind"] == "level"} == {"breach"}
    entries = [e for e in body["entries"] if e["kind"] != "alert"]
    assert body["total"] == len(EXPECTED_ACTIVITY) + len(alerts)
    assert [_strip(e) for e in entries] == EXPECTED_ACTIVITY
    ats = [e["at"] for e in body["entries"]]
    assert ats == sorted(ats, reverse=True) and ats[0] == "2023-11-14T22:13:29.000Z"
    assert all(e["alert"] is None and e["alert_id"] is None and e["summary"] for e in entries)
    # pages and the kind filter
    everything = get(env, "/v1/campaigns/act-1/activity", limit=200)["entries"]
    p2 = get(env, "/v1/campaigns/act-1/activity", limit=3, page=2)
    assert p2["total"] == len(everything) and p2["entries"] == everything[3:6]
    paused = get(env, "/v1/campaigns/act-1/activity", kind="batch_status")
    assert paused["total"] == 2 and [e["event_id"] for e in paused["entries"]] == ["act-9", "act-4"]
    assert env["http"].get("/v1/campaigns/act-1/activity", params={"kind": "nope"}).status_code == 422
    assert env["http"].get("/v1/campaigns/nope/activity").status_code == 404


def test_activity_of_the_simulated_campaign_pauses_resumes_and_alerts(env):
    camp = env["sim"]
    entries = get(env, f"/v1/campaigns/{camp}/activity", limit=200)["entries"]
    # status changes: the SPEC fold of the campaign.status events (latest by ts, event_id counts)
    status, want = "draft", []
    for e in sorted(env["events"], key=lambda e: (e["ts"], e["event_id"])):
        if e["type"] == "campaign.status" and e["status"] != status:
            want.append((status, e["status"], e["event_id"]))
            status = e["status"]
    got = [(e["from"], e["to"], e["event_id"]) for e in reversed(entries)
           if e["kind"] in ("status", "paused", "resumed")]
    assert got == want and any(t == "paused" for _f, t, _e in want)
    assert any(e["kind"] == "resumed" for e in entries) and any(e["kind"] == "paused" for e in entries)
    # batch status changes, per batch
    batch_want = []
    per_batch = {}
    for e in sorted(env["events"], key=lambda e: (e["ts"], e["event_id"])):
        if e["type"] == "batch.status" and e["status"] != per_batch.get(e["batch_id"], "pending"):
            batch_want.append((e["batch_id"], per_batch.get(e["batch_id"], "pending"), e["status"]))
            per_batch[e["batch_id"]] = e["status"]
    assert [(e["batch_id"], e["from"], e["to"]) for e in reversed(entries) if e["kind"] == "batch_status"] \
        == batch_want
    # the campaign's abandon alerts, as /v1/alerts/recent has them
    alerts = get(env, "/v1/alerts/recent", campaign_id=camp, limit=1000)["alerts"]
    assert alerts, "abandon-prob 0.3 with min-sample 10 raises alerts"
    got_alerts = [e for e in entries if e["kind"] == "alert"]
    assert sorted(e["alert_id"] for e in got_alerts) == sorted(a["alert_id"] for a in alerts)
    for e in got_alerts:
        assert e["at"] == e["alert"]["at"] and e["event_id"] is None
    ats = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in entries]
    assert ats == sorted(ats, reverse=True)
    created = [e for e in entries if e["kind"] == "created"]
    assert len(created) == 1 and created[0]["at"] == datetime.fromtimestamp(
        env["events"][0]["ts"] / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_reprocessing_every_event_again_changes_nothing(env):
    """A second flow over the same streams (what a recovery rewind does, at its largest) rewrites the
    same records: the activity log and the filter indexes stay exactly as they were."""
    camp = env["sim"]
    queries = [("/v1/campaigns/act-1/activity", {}), (f"/v1/campaigns/{camp}/activity", {"limit": 200}),
               (f"/v1/campaigns/{camp}/calls", {"callback": "pending", "limit": 200}),
               (f"/v1/campaigns/{camp}/calls", {"outcome": "abandoned", "limit": 200}),
               ("/v1/campaigns/act-1/calls", {"callback": "requested"})]
    before = [get(env, path, **params) for path, params in queries]
    r = run_cli(env["redis_url"], "flow", "--replay", "--no-recovery", "--until-drained", "--min-sample", "10")
    assert r.returncode == 0, r.stderr
    assert [get(env, path, **params) for path, params in queries] == before


# ------------------------------------------------------------------ usage with a plan

def test_usage_plan_block(env):
    usage = get(env, "/v1/usage")
    assert usage["plan"] is None
    assert usage["totals"]["emails_sent"] == 2  # the simulated campaign is voice only
    r = run_cli(env["redis_url"], "orgs", "set-plan", "--org", ORG, "--name", "Growth", "--email-limit", "5",
                "--price-usd", "49.99")
    assert r.returncode == 0, r.stderr
    usage = get(env, "/v1/usage")
    assert usage["plan"] == {"name": "Growth", "email_limit": 5, "price_usd": 49.99, "emails_remaining": 3}
    assert get(env, "/v1/usage", period="2023-11")["plan"]["emails_remaining"] == 3
    assert get(env, "/v1/usage", period="2023-11-15")["plan"]["emails_remaining"] == 5  # none sent that UTC day
    assert get(env, "/v1/usage", period="2023-11-14")["totals"]["emails_sent"] == 2
    r = run_cli(env["redis_url"], "orgs", "set-plan", "--org", ORG, "--name", "Starter", "--email-limit", "1",
                "--price-usd", "0")
    assert r.returncode == 0, r.stderr
    assert get(env, "/v1/usage")["plan"] == {"name": "Starter", "email_limit": 1, "price_usd": 0.0,
                                             "emails_remaining": 0}  # 2 sent over a limit of 1: never negative
    shown = run_cli(env["redis_url"], "orgs", "show-plan", "--org", ORG, "--json")
    assert json.loads(shown.stdout) == {"name": "Starter", "email_limit": 1, "price_usd": 0.0}
    for bad in (["--email-limit", "-1", "--price-usd", "1"], ["--email-limit", "3", "--price-usd", "-2"],
                ["--email-limit", "3", "--price-usd", "abc"]):
        r = run_cli(env["redis_url"], "orgs", "set-plan", "--org", ORG, "--name", "X", *bad)
        assert r.returncode == 2, bad
    assert get(env, "/v1/usage")["plan"]["name"] == "Starter"  # a refused change leaves the plan as it was
    # another org has no plan
    other = create_key(env["redis"], org="org-2", scopes=["campaigns:read"])[1]
    r = env["http"].get("/v1/usage", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200 and r.json()["plan"] is None
    assert run_cli(env["redis_url"], "orgs", "clear-plan", "--org", ORG).returncode == 0
    assert get(env, "/v1/usage")["plan"] is None
    assert run_cli(env["redis_url"], "orgs", "--help").returncode == 0
