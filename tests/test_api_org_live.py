"""`GET /v1/live` (the org-level summary stream, api/org_live.py) end to end, plus unit tests of the summary.

Real Redis (conftest), the real flow in replay mode (`--min-sample 7`), a real uvicorn; events are POSTed
to the API. Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import itertools

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from api.auth import create_key
from api.org_live import comparable, open_alerts, summarize
from engine.storage.keys import stats_key
from tests.support import ServerThread, read_sse, start_flow, stop_process, wait_until

pytestmark = pytest.mark.e2e

ORG = "org-1"
OTHER = "org-2"
T0 = 1_778_230_800_000  # 2026-05-08T09:00:00Z
_ids = itertools.count()


def ev(type_, camp, ts, org=ORG, **fields):
    return {"event_id": f"ol-{next(_ids)}", "type": type_, "ts": ts, "org_id": org, "campaign_id": camp, **fields}


@pytest.fixture(scope="module")
def env(redis_server):
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    flow = start_flow(redis_server, "--min-sample", "7")
    key = create_key(client, org=ORG, scopes=["campaigns:read", "events:write"])[1]
    other_key = create_key(client, org=OTHER, scopes=["campaigns:read", "events:write"])[1]
    server = ServerThread(create_app(redis_server, heartbeat_s=1.0, min_frame_interval_s=0.05)).start()
    http = httpx.Client(base_url=server.url, timeout=30)

    def post(events, k=key):
        r = http.post("/v1/events", content=orjson.dumps(events), headers={"Authorization": f"Bearer {k}"})
        assert r.status_code == 200 and not r.json()["rejected"], r.text

    post([ev("campaign.created", "c-a", T0, name="A", channel="voice", abandon_ceiling=0.03),
          ev("campaign.status", "c-a", T0 + 1, status="active"),
          ev("campaign.created", "c-b", T0, name="B", channel="email"),
          ev("contact.added", "c-a", T0 + 2, contact_id="a1")])
    post([ev("campaign.created", "c-x", T0, org=OTHER, name="X")], k=other_key)
    wait_until(lambda: all(client.exists(stats_key(o, c)) for o, c in ((ORG, "c-a"), (ORG, "c-b"), (OTHER, "c-x"))),
               what="the flow to write the campaigns")
    wait_until(lambda: client.hget("callpulse:flow:status", "min_sample") == b"7", what="flow start record")
    try:
        yield {"server": server, "key": key, "post": post, "client": client}
    finally:
        http.close()
        server.stop()
        stop_process(flow)
        client.close()


async def collect(url, key, until, headers=None, timeout=20.0):
    """Read /v1/live until ``until(events)`` is true; returns (response headers, [(event, id, data)])."""
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
        async with http.stream("GET", "/v1/live", headers={"Authorization": f"Bearer {key}", **(headers or {})}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")

            def on_event(e, i, d):
                out.append((e, i, orjson.loads(d)))
                return until(out)

            await asyncio.wait_for(read_sse(r, on_event), timeout)
            return r.headers, out


def test_snapshot_then_changes_of_the_callers_org_only(env):
    async def scenario():
        async with httpx.AsyncClient(base_url=env["server"].url, timeout=30) as http:
            async with http.stream("GET", "/v1/live", headers={"Authorization": f"Bearer {env['key']}"}) as r:
                events = []
                first = asyncio.Event()

                def on_event(e, i, d):
                    events.append((e, i, orjson.loads(d)))
                    first.set()
                    return any(e == "campaign" and x["campaign_id"] == "c-a" and x["live"]["pending"] == 3
                               for e, _i, x in events)

                reader = asyncio.create_task(read_sse(r, on_event))
                await asyncio.wait_for(first.wait(), 10)
                await asyncio.to_thread(env["post"], [ev("contact.added", "c-a", T0 + 10, contact_id=f"a{i}")
                                                      for i in (2, 3)])
                await asyncio.wait_for(reader, 20)
                return events

    events = asyncio.run(scenario())
    kind, eid, snap = events[0]
    assert kind == "snapshot" and eid
    assert snap["org_id"] == ORG and snap["min_sample"] == 7
    assert [c["campaign_id"] for c in snap["campaigns"]] == ["c-a", "c-b"]  # never another org's
    a = snap["campaigns"][0]
    assert a["live"]["pending"] == 1 and a["abandon"]["min_sample"] == 7
    assert set(a["abandon"]["windows"]) == {"today", "30d"}
    assert a["abandon"]["windows"]["30d"] == {"abandoned": 0, "human_answered": 0, "rate": 0.0, "level": "ok"}
    later = [x for e, _i, x in events[1:]]
    assert all(e == "campaign" for e, _i, _x in events[1:])
    assert all(x["campaign_id"] == "c-a" for x in later)  # c-b did not change: not sent
    assert later[-1]["live"]["pending"] == 3
    ids = [i for _e, i, _x in events]
    assert len(set(ids)) == len(ids)


def test_reconnect_with_last_event_id_starts_with_a_fresh_snapshot(env):
    hdrs, first = asyncio.run(collect(env["server"].url, env["key"], lambda out: len(out) >= 1))
    last_id = first[-1][1]
    _h, again = asyncio.run(collect(env["server"].url, env["key"], lambda out: len(out) >= 1,
                                    headers={"Last-Event-ID": last_id}))
    assert again[0][0] == "snapshot" and again[0][1] != last_id
    assert [c["campaign_id"] for c in again[0][2]["campaigns"]] == ["c-a", "c-b"]


def test_auth(env):
    with httpx.Client(base_url=env["server"].url, timeout=10) as http:
        assert http.get("/v1/live").status_code == 401
        assert http.get("/v1/live", headers={"Authorization": "Bearer ak_000000000000_wrongwrongwrongwrong"}
                        ).status_code == 401
    write_only = create_key(env["client"], org=ORG, scopes=["events:write"])[1]
    with httpx.Client(base_url=env["server"].url, timeout=10) as http:
        assert http.get("/v1/live", headers={"Authorization": f"Bearer {write_only}"}).status_code == 403


def test_campaign_stream_carries_min_sample_header(env):
    async def head():
        async with httpx.AsyncClient(base_url=env["server"].url, timeout=10) as http:
            async with http.stream("GET", "/v1/campaigns/c-a/live",
                                   headers={"Authorization": f"Bearer {env['key']}"}) as r:
                return r.status_code, r.headers.get("x-min-sample")
    assert asyncio.run(head()) == (200, "7")


def test_openapi_types_the_stream(env):
    with httpx.Client(base_url=env["server"].url, timeout=10) as http:
        doc = http.get("/openapi.json").json()
    op = doc["paths"]["/v1/live"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    for name in ("OrgLiveSnapshot", "OrgLiveSummary", "AbandonSummary"):
        assert name in doc["components"]["schemas"]


# ------------------------------------------------------------------------------ unit: the summary

def _body(**abandon):
    return {"campaign_id": "c", "name": "n", "channel": "voice", "kind": None, "status": "active",
            "as_of": "2026-05-08T09:00:00.000Z", "passes": [{"started_at": "2026-05-08T08:59:20.000Z"}],
            "live": {"banner": "live", "dials_per_sec": 1.5, "pending": 3, "retries_queued": 0,
                     "eta_seconds": 2.0, "eta_at": "2026-05-08T09:00:02.000Z", "last_dial_at": None,
                     "ringing": 1},
            "abandon": {"ceiling": 0.03, "budget": 0,
                        "windows": {w: {"abandoned": 0, "human_answered": 0, "rate": 0.0, "level": "ok"}
                                    for w in ("lifetime", "today", "24h", "30d")}, **abandon}}


def test_summary_is_compact_and_defensive():
    s = summarize(_body(), 50)
    assert s["first_dial_at"] == "2026-05-08T08:59:20.000Z"
    assert "ringing" not in s["live"] and "forecast" not in s["abandon"] and s["open_alerts"] == []
    assert summarize({"campaign_id": "c"}, 50)["abandon"]["windows"] == {"today": None, "30d": None}
    # as_of alone is no change
    b = _body()
    b["as_of"] = "2026-05-08T09:00:05.000Z"
    assert comparable(summarize(b, 50)) == comparable(s)


def test_open_alerts_lists_levels_and_near_forecasts():
    b = _body(forecast={"trend": {"abandoned": 1, "human_answered": 5, "span_s": 900},
                        "today": {"breach_in_s": 600.0, "breach_at": "2026-05-08T09:10:00.000Z"},
                        "30d": {"breach_in_s": 5000.0, "breach_at": "2026-05-08T10:23:20.000Z"}})
    b["abandon"]["windows"]["24h"]["level"] = "warning"
    alerts = open_alerts(b["abandon"])
    assert [(a["kind"], a["window"]) for a in alerts] == [("level", "24h"), ("forecast", "today")]
    # a window already in breach has no forecast alert, only its level
    b["abandon"]["windows"]["today"]["level"] = "breach"
    assert [(a["kind"], a["window"]) for a in open_alerts(b["abandon"])] == [("level", "today"), ("level", "24h")]
    assert summarize(b, 50)["abandon"]["forecast"]["today"]["breach_in_s"] == 600.0
