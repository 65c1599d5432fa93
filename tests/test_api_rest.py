"""REST API end to end: real Redis, the real flow (subprocess), a real uvicorn server, real HTTP.

Data: `callpulse simulate` -> `callpulse ingest --replay` -> `callpulse flow --replay --until-drained`,
then the endpoints are checked against SPEC §3.1/§4 and against the offline `callpulse replay`.
"""

from __future__ import annotations

import csv
import io
import json
import time

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.auth import DEV_KEY
from engine.storage.keys import DEFAULT_PARTITIONS, INGEST_FIELD, contact_details_key, flow_status_key, ingest_stream
from engine.validation.events import CONTACT_STATUSES, MAX_BATCH_EVENTS, MAX_BODY_BYTES, parse_event, split_body
from tests.support import run_cli

pytestmark = pytest.mark.e2e

STATS_KEYS = {
    "campaign_id", "org_id", "name", "channel", "kind", "status", "as_of", "config", "contacts",
    "retry_breakdown", "retries_left", "batch_counts", "attempts", "outcomes", "answered", "human_answered",
    "active_calls", "ringing", "in_progress", "concurrency_limit", "rates", "aht_ms", "avg_ring_ms", "abandon",
    "compliance", "live", "performance", "passes", "run", "runs", "previous_run_stats", "agents", "callbacks", "email",
    "costs",
    "diagnostics",
}
LIVE_KEYS = {"banner", "dials_per_sec", "connected_per_hour", "calls_per_min", "avg_ring_ms", "ringing",
             "in_progress", "waiting_for_agent", "oldest_wait_ms", "last_dial_at", "pending", "retries_queued",
             "eta_seconds", "eta_at"}
TRAIL_KEYS = {"attempt_id", "started_at", "ended_at", "outcome", "sip_code", "sip_text", "conversation_id", "result",
              "abandon_reason", "violations", "agent_id", "handle_ms"}


@pytest.fixture(scope="module")
def env(stack):
    s = stack(["--orgs", "2", "--campaigns", "2", "--contacts", "80", "--channel", "mixed", "--abandon-prob", "0.3"],
              min_sample=10, apps=[{"dev_mode": True}],
              keys={"org2": {"org": "org-2", "scopes": ["campaigns:read", "events:write"]},
                    "org1_write_only": {"org": "org-1", "scopes": ["events:write"]},
                    "org1_read_only": {"org": "org-1", "scopes": ["campaigns:read"]},
                    "user": {"user": "ann", "orgs": ["org-1", "org-3"], "scopes": ["campaigns:read"]}})
    client = s.redis
    events = [parse_event(line) for line in s.lines]
    camps = sorted({(e["org_id"], e["campaign_id"]) for e in events})
    assert all(client.exists(contact_details_key(*c)) for c in camps), "the flow writes the detail records"
    # keys: one through the CLI (prints the key once), the rest through the same function (the stack's)
    r = run_cli(s.redis_url, "keys", "create", "--org", "org-1", "--scopes", "campaigns:read,events:write")
    assert r.returncode == 0, r.stderr
    keys = {"org1": r.stdout.decode().strip(), **s.keys}
    return {"url": s.url, "http": s.client(), "keys": keys, "camps": camps, "events_file": s.files[0],
            "events": events, "redis": client, "redis_url": s.redis_url}


def H(key: str, **extra) -> dict:
    return {"Authorization": f"Bearer {key}", **extra}


def org_camps(env, org):
    return [c for o, c in env["camps"] if o == org]


def voice_camp(env, org="org-1"):
    for c in org_camps(env, org):
        if get(env, f"/v1/campaigns/{c}").json()["channel"] == "voice":
            return c
    raise AssertionError("no voice campaign simulated")


def get(env, path, key="org1", **kw):
    return env["http"].get(path, headers=H(env["keys"].get(key, key)), **kw)


# ------------------------------------------------------------------------------ auth

def test_auth_rules(env):
    http, keys = env["http"], env["keys"]
    camp = org_camps(env, "org-1")[0]
    assert http.get("/v1/campaigns").status_code == 401
    assert http.get("/v1/campaigns", headers={"Authorization": "Basic abc"}).status_code == 401
    assert http.get("/v1/campaigns", headers=H("ak_000000000000_notarealsecretnotarealsecret")).status_code == 401
    tampered = keys["org1"][:-2] + ("AA" if not keys["org1"].endswith("AA") else "BB")
    assert http.get("/v1/campaigns", headers=H(tampered)).status_code == 401
    # wrong scope -> 403, both ways
    assert get(env, "/v1/campaigns", "org1_write_only").status_code == 403
    assert get(env, f"/v1/campaigns/{camp}/stats", "org1_write_only").status_code == 403
    r = http.post("/v1/events", headers=H(keys["org1_read_only"]), content=b"[]")
    assert r.status_code == 403 and "events:write" in r.json()["detail"]
    # user tokens: X-Org required, membership enforced
    assert get(env, "/v1/campaigns", "user").status_code == 400
    assert http.get("/v1/campaigns", headers=H(keys["user"], **{"X-Org": "org-2"})).status_code == 403
    r = http.get("/v1/campaigns", headers=H(keys["user"], **{"X-Org": "org-1"}))
    assert r.status_code == 200 and {c["campaign_id"] for c in r.json()["campaigns"]} == set(org_camps(env, "org-1"))
    r = http.get("/v1/campaigns", headers=H(keys["user"], **{"X-Org": "org-3"}))
    assert r.status_code == 200 and r.json()["campaigns"] == []
    # an org key naming another org in X-Org is refused
    assert http.get("/v1/campaigns", headers=H(keys["org1"], **{"X-Org": "org-2"})).status_code == 403
    # dev mode key (this server runs with dev_mode=True)
    r = http.get("/v1/campaigns", headers=H(DEV_KEY, **{"X-Org": "org-2"}))
    assert r.status_code == 200 and {c["campaign_id"] for c in r.json()["campaigns"]} == set(org_camps(env, "org-2"))


def test_keys_are_stored_hashed_and_revocable(env):
    client, url = env["redis"], env["redis_url"]
    r = run_cli(url, "keys", "create", "--user", "bob", "--orgs", "org-1", "--scopes", "campaigns:read", "--json")
    assert r.returncode == 0, r.stderr
    made = orjson.loads(r.stdout)
    key, key_id = made["key"], made["key_id"]
    assert key.startswith("pat_")
    dump = b"".join(client.dump(k) or b"" for k in client.keys("callpulse:apikey*"))
    assert key.encode() not in dump and key.split("_", 2)[2].encode() not in dump
    http = env["http"]
    assert http.get("/v1/campaigns", headers=H(key, **{"X-Org": "org-1"})).status_code == 200
    r = run_cli(url, "keys", "list", "--json")
    listed = {k["key_id"]: k for k in orjson.loads(r.stdout)}
    assert listed[key_id]["user"] == "bob" and not listed[key_id]["revoked"]
    assert "sha256" not in listed[key_id]
    assert run_cli(url, "keys", "revoke", key_id).returncode == 0
    assert http.get("/v1/campaigns", headers=H(key, **{"X-Org": "org-1"})).status_code == 401
    assert run_cli(url, "keys", "revoke", "000000000000").returncode == 1
    assert run_cli(url, "keys", "create", "--org", "org-1", "--scopes", "nope").returncode == 2


CAMPAIGN_PATHS = ["", "/stats", "/contacts", "/calls", "/attempt-report.csv", "/batches", "/export?format=csv",
                  "/export?format=json", "/stats/daily?start=2026-05-08&end=2026-05-09", "/replies", "/live",
                  "/messages", "/messages.csv"]


def test_cross_tenant_is_404_exactly_like_missing(env):
    victim = org_camps(env, "org-1")[0]
    for suffix in CAMPAIGN_PATHS:
        path, _, query = suffix.partition("?")
        r_other = get(env, f"/v1/campaigns/{victim}{path}" + (f"?{query}" if query else ""), "org2")
        assert r_other.status_code == 404, (suffix, r_other.status_code)
        assert r_other.json() == {"detail": f"campaign {victim!r} not found"}
        # a truly missing id answers the same shape
        r_missing = get(env, f"/v1/campaigns/no-such-campaign{path}" + (f"?{query}" if query else ""), "org2")
        assert r_missing.status_code == 404 and r_missing.json() == {"detail": "campaign 'no-such-campaign' not found"}
    own = {c["campaign_id"] for c in get(env, "/v1/campaigns", "org2").json()["campaigns"]}
    assert own == set(org_camps(env, "org-2"))
    alerts = get(env, "/v1/alerts/recent?limit=1000", "org2").json()["alerts"]
    assert all(a["org_id"] == "org-2" for a in alerts)
    # events naming another org are rejected, never written
    ev = dict(env["events"][0], org_id="org-1", event_id="xtenant-1")
    r = env["http"].post("/v1/events", headers=H(env["keys"]["org2"]), content=orjson.dumps([ev]))
    assert r.status_code == 200
    assert r.json()["accepted"] == 0 and r.json()["rejected"][0]["code"] == "forbidden_org"


# ------------------------------------------------------------------------------ campaigns and stats

def test_campaign_list_detail_and_stats_match_offline_replay(env):
    camps = org_camps(env, "org-1")
    r = get(env, "/v1/campaigns")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    listed = r.json()["campaigns"]
    assert [c["campaign_id"] for c in listed] == sorted(camps)
    for c in listed:
        assert set(c) == {"campaign_id", "name", "channel", "kind", "status", "as_of", "live"}
        assert set(c["live"]) == LIVE_KEYS
    for camp in camps:
        d = get(env, f"/v1/campaigns/{camp}").json()
        assert d["org_id"] == "org-1" and d["campaign_id"] == camp
        assert set(d["config"]) >= {"concurrency_limit", "max_attempts", "abandon_ceiling", "abandon_threshold_ms",
                                    "time_window", "config"}
        body = get(env, f"/v1/campaigns/{camp}/stats").json()
        assert set(body) == STATS_KEYS
        assert len(body["contacts"]["by_status"]) == 13
        assert set(body["abandon"]["windows"]) == {"lifetime", "today", "24h", "30d"}
        offline = run_cli(env["redis_url"], "replay", str(env["events_file"]), "--campaign", camp, "--org", "org-1",
                          "--quiet", "--min-sample", "10")
        assert offline.returncode == 0, offline.stderr
        expected = orjson.loads(offline.stdout)
        assert body == expected


def test_contacts_pagination_filter_and_trail(env):
    camp = voice_camp(env)
    stats = get(env, f"/v1/campaigns/{camp}/stats").json()
    r = get(env, f"/v1/campaigns/{camp}/contacts")
    page = r.json()
    assert page["limit"] == 50 and page["offset"] == 0 and page["total"] == stats["contacts"]["total"]
    assert len(page["contacts"]) == min(50, page["total"])
    ids = [c["contact_id"] for c in page["contacts"]]
    assert ids == sorted(ids)
    nxt = get(env, f"/v1/campaigns/{camp}/contacts?limit=20&offset=10").json()["contacts"]
    assert [c["contact_id"] for c in nxt] == ids[10:30]
    n_attempts = 0
    for c in page["contacts"]:
        assert {"contact_id", "status", "retry_number", "batch_id", "attempts"} <= set(c)
        assert "attempt_ids" not in c  # the trail is read into "attempts"
        for a in c["attempts"]:
            assert set(a) == TRAIL_KEYS
            if a["sip_code"] is not None:
                assert isinstance(a["sip_text"], str)
        n_attempts += len(c["attempts"])
    assert n_attempts > 0
    for status in CONTACT_STATUSES:
        got = get(env, f"/v1/campaigns/{camp}/contacts?status={status}&limit=200").json()
        assert got["total"] == stats["contacts"]["by_status"][status], status
        assert all(c["status"] == status for c in got["contacts"])
    for bad, field in (("limit=201", "limit"), ("limit=0", "limit"), ("offset=-1", "offset"),
                       ("status=nope", "status"), ("limit=x", "limit")):
        r = get(env, f"/v1/campaigns/{camp}/contacts?{bad}")
        assert r.status_code == 422, bad
        assert field in r.json()["detail"] and r.json()["errors"][0]["field"] == field


def test_calls_report_and_export(env):
    camp = voice_camp(env)
    stats = get(env, f"/v1/campaigns/{camp}/stats").json()
    first = get(env, f"/v1/campaigns/{camp}/calls?limit=7").json()
    total = first["total"]
    assert total >= stats["attempts"]["total"] > 0 and first["page"] == 1 and len(first["calls"]) == 7
    seen = []
    page = 1
    while True:
        calls = get(env, f"/v1/campaigns/{camp}/calls?page={page}&limit=200").json()["calls"]
        if not calls:
            break
        seen += calls
        page += 1
    assert len(seen) == total == len({c["attempt_id"] for c in seen})
    starts = [c["started_at"] for c in seen if c["started_at"]]
    assert starts == sorted(starts, reverse=True)
    for c in seen:
        assert {"attempt_id", "direction", "from", "to", "result", "started_at", "ended_at", "call_length_ms",
                "transcript", "recording_url", "outcome", "sip_code", "sip_text"} <= set(c)
        assert c["direction"] == "outbound"
        for line in c["transcript"]:
            assert set(line) == {"ts", "role", "content"}
    assert any(c["transcript"] for c in seen)
    assert sum(1 for c in seen if c["outcome"] == "connected") == stats["outcomes"]["connected"]
    # streamed CSV: one row per attempt
    with env["http"].stream("GET", f"/v1/campaigns/{camp}/attempt-report.csv",
                            headers=H(env["keys"]["org1"])) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        text = b"".join(r.iter_bytes()).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == total and {r["attempt_id"] for r in rows} == {c["attempt_id"] for c in seen}
    assert sum(1 for r in rows if r["outcome"] == "abandoned") == stats["outcomes"]["abandoned"]
    # export: every contact once
    js = get(env, f"/v1/campaigns/{camp}/export?format=json").json()
    assert len(js) == stats["contacts"]["total"] == len({c["contact_id"] for c in js})
    text = get(env, f"/v1/campaigns/{camp}/export?format=csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == stats["contacts"]["total"]
    assert get(env, f"/v1/campaigns/{camp}/export?format=xml").status_code == 422


def test_streams_walk_in_chunks_without_loss(env, monkeypatch):
    from api.read_model import campaigns, exports

    camp = voice_camp(env)
    full_csv = get(env, f"/v1/campaigns/{camp}/attempt-report.csv").text
    full_js = get(env, f"/v1/campaigns/{camp}/export?format=json").json()
    for module in (exports, campaigns):  # many chunk boundaries, ties on the score (never-dialed = 0)
        monkeypatch.setattr(module, "CHUNK", 7)
    small_csv = get(env, f"/v1/campaigns/{camp}/attempt-report.csv").text
    assert sorted(small_csv.splitlines()) == sorted(full_csv.splitlines())
    assert len(small_csv.splitlines()) == len(set(small_csv.splitlines()))
    assert get(env, f"/v1/campaigns/{camp}/export?format=json").json() == full_js
    b = get(env, f"/v1/campaigns/{camp}/batches").json()
    assert sum(x["contacts"]["total"] for x in b["batches"]) == len(full_js)


def _offline_fold(env):
    from engine.state.fold import Fold

    fold = Fold(min_sample=10)
    for ev in env["events"]:
        fold.apply(ev)
    return fold


def test_batches_daily_replies(env):
    from datetime import date

    from engine.views.daily import daily_rows
    from engine.views.detail import batch_record

    fold = _offline_fold(env)
    camp = voice_camp(env)
    stats = get(env, f"/v1/campaigns/{camp}/stats").json()
    b = get(env, f"/v1/campaigns/{camp}/batches").json()
    assert b["batch_counts"] == stats["batch_counts"]
    state = fold.campaigns[("org-1", camp)]
    want = [batch_record(k, x) for k, x in sorted(state.batches.items()) if x.exists]
    assert [{k: v for k, v in x.items() if k != "contacts"} for x in b["batches"]] == \
        [{k: v for k, v in x.items() if k != "contacts"} for x in want]
    assert [x["contacts"]["by_status"] for x in b["batches"]] == [x["contacts"]["by_status"] for x in want]
    for x in b["batches"]:
        assert sum(x["contacts"]["buckets"].values()) == x["contacts"]["total"]
    assert get(env, f"/v1/campaigns/{camp}/batches?skip=1000").json()["batches"] == []
    some = b["batches"][0]["status"]
    only = get(env, f"/v1/campaigns/{camp}/batches?status={some}").json()["batches"]
    assert only and all(x["status"] == some for x in only)
    assert get(env, f"/v1/campaigns/{camp}/batches?status=bogus").status_code == 422
    # daily rows: exactly the engine's rows for the same events (local days of the campaign's zone)
    start, end = date(2026, 5, 7), date(2026, 5, 11)
    r = get(env, f"/v1/campaigns/{camp}/stats/daily?start={start}&end={end}")
    assert r.status_code == 200
    assert r.json()["days"] == daily_rows(state, start, end)
    assert sum(d["dials"] for d in r.json()["days"]) == stats["attempts"]["total"]
    # an empty range is schema-valid (OpenAPI cannot say end >= start): no days, not an error
    r = get(env, f"/v1/campaigns/{camp}/stats/daily?start=2026-05-10&end=2026-05-08")
    assert r.status_code == 200 and r.json()["days"] == []
    r = get(env, f"/v1/campaigns/{camp}/stats/daily?start=2000-01-01&end=2026-05-08")
    assert r.status_code == 200 and len(r.json()["days"]) == r.json()["truncated_to_days"] == 3660
    assert get(env, f"/v1/campaigns/{camp}/stats/daily?start=nope&end=2026-05-08").status_code == 422
    # replies: every replied message of every campaign, filtered by sentiment
    total = 0
    for c in org_camps(env, "org-1"):
        body = get(env, f"/v1/campaigns/{c}/stats").json()
        rep = get(env, f"/v1/campaigns/{c}/replies?per_page=200").json()
        assert rep["total"] == body["email"]["replied"]
        pos = get(env, f"/v1/campaigns/{c}/replies?sentiment=positive&per_page=200").json()
        assert pos["total"] == sum(1 for x in rep["replies"] if x["sentiment"] == "positive")
        times = [x["replied_ms"] for x in rep["replies"]]
        assert times == sorted(times, reverse=True)
        total += rep["total"]
    assert total > 0, "the simulated org has an email campaign with replies"
    assert get(env, f"/v1/campaigns/{camp}/replies?sentiment=angry").status_code == 422


def test_usage_benchmarks_alerts_recent(env):
    from engine.views.peer_percentiles import benchmarks

    bodies = [get(env, f"/v1/campaigns/{c}/stats").json() for c in org_camps(env, "org-1")]
    u = get(env, "/v1/usage").json()
    assert u["campaigns"] == len(bodies)
    assert u["totals"]["dials"] == sum(b["attempts"]["total"] for b in bodies)
    assert u["totals"]["contacts"] == sum(b["contacts"]["total"] for b in bodies)
    m = get(env, "/v1/usage?period=2026-05").json()
    assert m["totals"]["dials"] == sum(b["attempts"]["total"] for b in bodies)  # the simulator dials in May 2026
    assert m["totals"]["emails_sent"] == sum(b["email"]["emails_sent"] for b in bodies)
    assert m["totals"]["cost_usd"] == round(sum(b["costs"]["total_usd"] for b in bodies), 6)
    assert get(env, "/v1/usage?period=2026-06").json()["totals"]["dials"] == 0
    assert get(env, "/v1/usage?period=2026-13").status_code == 422
    assert get(env, "/v1/usage?period=yesterday").status_code == 422
    kind = bodies[0]["kind"]
    bm = get(env, f"/v1/benchmarks?kind={kind}").json()
    assert bm["rates"] == benchmarks(bodies, "org-1", kind)
    assert get(env, "/v1/benchmarks").status_code == 422
    alerts = get(env, "/v1/alerts/recent?limit=1000").json()["alerts"]
    assert alerts, "abandon-prob 0.3 must raise alerts"
    assert all(a["org_id"] == "org-1" for a in alerts)
    stream_ids = [a["stream_id"] for a in alerts]
    assert stream_ids == sorted(stream_ids, key=lambda s: tuple(map(int, s.split("-"))), reverse=True)
    one = org_camps(env, "org-1")[0]
    only = get(env, f"/v1/alerts/recent?campaign_id={one}&limit=1000").json()["alerts"]
    assert only == [a for a in alerts if a["campaign_id"] == one]
    assert len(get(env, "/v1/alerts/recent?limit=2").json()["alerts"]) == 2


# ------------------------------------------------------------------------------ ingest

def _stream_total(client) -> int:
    return sum(client.xlen(ingest_stream(p)) for p in range(DEFAULT_PARTITIONS))


def test_post_events_json_ndjson_duplicates_and_rejections(env):
    http, client = env["http"], env["redis"]
    key = env["keys"]["org1"]
    now = int(time.time() * 1000)
    base = {"type": "contact.added", "org_id": "org-1", "campaign_id": "api-post", "ts": now}
    good = [dict(base, event_id=f"post-{i}", contact_id=f"c{i}") for i in range(5)]
    before = _stream_total(client)
    body = good + [
        dict(base, event_id="post-0", contact_id="c0"),  # duplicate inside the batch
        dict(base, event_id="bad-1"),  # missing contact_id
        dict(base, event_id="bad-2", contact_id="c9", ts=now + 3_600_000),  # future (live mode)
        dict(base, event_id="bad-3", contact_id="c9", org_id="org-2"),  # another org
        "not an object",
    ]
    r = http.post("/v1/events", headers=H(key), content=orjson.dumps(body))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 5 and out["duplicates"] == 1
    rej = {x["index"]: x for x in out["rejected"]}
    assert set(rej) == {6, 7, 8, 9}
    assert rej[6]["code"] == "missing_field" and rej[6]["field"] == "contact_id"
    assert rej[7]["code"] == "future" and rej[8]["code"] == "forbidden_org" and rej[9]["code"] == "malformed"
    assert _stream_total(client) == before + 6  # 5 events and the duplicate's marker (docs/streams.md)
    # NDJSON, with a blank line; the earlier ids are now duplicates (same seen markers as `callpulse ingest`)
    nd = b"\n".join(orjson.dumps(e) for e in good[:2]) + b"\n\n" + orjson.dumps(dict(base, event_id="post-new", contact_id="x")) + b"\n{oops\n"
    out = http.post("/v1/events", headers=H(key, **{"Content-Type": "application/x-ndjson"}), content=nd).json()
    assert out["accepted"] == 1 and out["duplicates"] == 2 and [x["code"] for x in out["rejected"]] == ["malformed"]
    entries = []
    for p in range(DEFAULT_PARTITIONS):
        entries += [orjson.loads(f[INGEST_FIELD]) for _id, f in client.xrange(ingest_stream(p))
                    if INGEST_FIELD in f]
    assert {e["event_id"] for e in entries if e.get("campaign_id") == "api-post"} == {f"post-{i}" for i in range(5)} | {"post-new"}
    # `callpulse ingest` sees the same ids as duplicates
    f = env["events_file"].parent / "posted.ndjson"
    f.write_bytes(orjson.dumps(good[0]) + b"\n")
    r = run_cli(env["redis_url"], "ingest", str(f))
    assert orjson.loads(r.stdout)["duplicate"] == 1
    # empty body
    assert http.post("/v1/events", headers=H(key), content=b"").json() == {"accepted": 0, "duplicates": 0,
                                                                           "rejected": [], "late": []}


def test_ndjson_body_with_a_json_array_first_line_rejects_that_line_only(env):
    """Reliability #6: with Content-Type application/x-ndjson a first line that is a JSON array is one
    rejected line (index 0), not a 400 for the whole body."""
    http, key = env["http"], env["keys"]["org1"]
    now = int(time.time() * 1000)
    good = [{"type": "contact.added", "org_id": "org-1", "campaign_id": "nd-first", "ts": now,
             "event_id": f"nd-first-{i}", "contact_id": f"c{i}"} for i in range(3)]
    body = b'[{"type": "contact.added"}, 1\n' + b"\n".join(orjson.dumps(e) for e in good) + b"\n"
    r = http.post("/v1/events", headers=H(key, **{"Content-Type": "application/x-ndjson"}), content=body)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3 and [(x["index"], x["code"]) for x in r.json()["rejected"]] == [(0, "malformed")]
    r = http.post("/v1/events", headers=H(key, **{"Content-Type": "application/json"}), content=body)
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]  # sent as JSON it is one broken document


def test_post_events_limits_413(env):
    http, key = env["http"], env["keys"]["org1"]
    too_many = b"\n".join(b'{"x":%d}' % i for i in range(MAX_BATCH_EVENTS + 1))
    r = http.post("/v1/events", headers=H(key), content=too_many)
    assert r.status_code == 413 and str(MAX_BATCH_EVENTS) in r.json()["detail"]
    big = b"[" + b" " * (MAX_BODY_BYTES + 10) + b"]"
    r = http.post("/v1/events", headers=H(key), content=big)
    assert r.status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536
    r = http.post("/v1/events", headers=H(key), content=chunks())
    assert r.status_code == 413


# ------------------------------------------------------------------------------ ops

def test_health_ready_metrics_docs(env):
    http, client = env["http"], env["redis"]
    assert http.get("/healthz").json() == {"status": "ok"}
    client.hset(flow_status_key(), mapping={"tick_ms": int(time.time() * 1000), "write_ms": int(time.time() * 1000)})
    r = http.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready" and r.json()["redis"] is True
    client.hset(flow_status_key(), mapping={"tick_ms": 1, "write_ms": 1})
    r = http.get("/readyz")
    assert r.status_code == 503 and "lag" in r.json()["reason"]
    client.delete(flow_status_key())
    assert http.get("/readyz").status_code == 503
    get(env, "/v1/campaigns")
    text = http.get("/metrics").text
    assert 'callpulse_api_requests_total{method="GET",route="/v1/campaigns",status="200"}' in text
    assert "callpulse_api_request_seconds_bucket" in text and "callpulse_api_sse_subscribers" in text
    assert "callpulse_api_sse_frames_sent_total" in text
    assert http.get("/docs").status_code == 200
    page = http.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "/live" in page.text
    spec = http.get("/openapi.json").json()
    for path in ("/v1/events", "/v1/campaigns", "/v1/campaigns/{campaign_id}/stats",
                 "/v1/campaigns/{campaign_id}/live", "/v1/alerts", "/v1/benchmarks", "/readyz"):
        assert path in spec["paths"], path
    assert "StatsBody" in spec["components"]["schemas"]


# ------------------------------------------------------------------------------ fuzz: never a 5xx

text = st.one_of(st.text(max_size=12), st.integers(-10**12, 10**12).map(str), st.sampled_from(
    ["", "0", "-1", "200", "201", "1e3", "null", "csv", "json", "pending", "2026-05-08", "2026-02-30", "%00",
     "../..", "'; DROP", "\u00e9"]))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(suffix=st.sampled_from(["", "/stats", "/contacts", "/calls", "/batches", "/stats/daily", "/replies",
                               "/export", "/attempt-report.csv"]),
       camp=st.one_of(st.just("REAL"), st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                                                max_size=20)),
       params=st.dictionaries(st.sampled_from(["limit", "offset", "status", "page", "skip", "start", "end",
                                               "sentiment", "per_page", "format", "order"]), text, max_size=4))
def test_fuzz_campaign_queries_never_5xx(env, suffix, camp, params):
    if camp == "REAL":
        camp = org_camps(env, "org-1")[0]
    camp = camp.replace("/", "_").replace("?", "_").replace("#", "_").replace("%", "_").strip(".") or "x"
    r = env["http"].get(f"/v1/campaigns/{camp}{suffix}",
                        params=params, headers=H(env["keys"]["org1"]))
    assert r.status_code < 500, (r.status_code, r.text)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(
    st.binary(max_size=300),
    st.lists(st.dictionaries(st.sampled_from(["event_id", "type", "ts", "org_id", "campaign_id", "contact_id",
                                              "attempt_id", "status", "usd", "category"]),
                             st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                                       st.text(max_size=10), st.sampled_from(["org-1", "contact.added",
                                                                              "call.dialed", "cost.incurred"])),
                             max_size=8), max_size=5).map(lambda v: json.dumps(v).encode())),
       path=st.sampled_from(["/v1/events", "/v1/usage", "/v1/benchmarks", "/v1/alerts/recent"]),
       params=st.dictionaries(st.sampled_from(["period", "kind", "limit", "campaign_id"]), text, max_size=3))
@example(body=b"[", path="/v1/events", params={})
@example(body=b"\n\n{}\nnot json\n", path="/v1/events", params={})
def test_fuzz_bodies_and_org_queries_never_5xx(env, body, path, params):
    if path == "/v1/events":
        r = env["http"].post(path, content=body, headers=H(env["keys"]["org1"]))
        if r.status_code == 400:  # a body that opens a JSON array but is not valid JSON is refused whole
            assert body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"[", r.text
            assert "not valid JSON" in r.json()["detail"] and "byte offset" in r.json()["detail"]
            return
        assert r.status_code == 200, r.text
        out = r.json()
        # every item of the body is accounted for, once
        assert out["accepted"] + out["duplicates"] + len(out["rejected"]) == len(split_body(body))
    else:
        r = env["http"].get(path, params=params, headers=H(env["keys"]["org1"]))
        assert r.status_code < 500, (r.status_code, r.text)
