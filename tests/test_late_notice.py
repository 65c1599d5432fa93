"""Late events: accepted at ingest, dropped by the flow — and the sender is told (api/late_notice.py).

The spec's contract is kept: a late event is appended, the flow counts it in `diagnostics.late` and
dead-letters it with reason `late`. POST /v1/events and `callpulse ingest` list the accepted events
the campaign's watermark already makes late. Real Redis, the real flow (CLI, replay mode, a
non-default `--lateness-ms` to show the API reads the flow's bound), real HTTP.
"""

from __future__ import annotations

import itertools
import json
import time

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from api.auth import create_key
from api.late_notice import LateCheck
from engine.storage.keys import DEAD_LETTER_STREAM, flow_status_key, stats_key
from tests.support import ServerThread, run_cli, start_flow, stop_process, wait_until

pytestmark = pytest.mark.e2e

ORG = "org-late"
BOUND = 10_000  # the flow's --lateness-ms here (the default is 30 000)
T0 = int(time.time() * 1000) - 3_600_000  # an hour ago: never `future`
ids = itertools.count()


def ev(camp: str, ts: int, event_id: str | None = None) -> dict:
    n = next(ids)
    return {"event_id": event_id or f"late-{n}", "type": "contact.added", "ts": ts, "org_id": ORG,
            "campaign_id": camp, "contact_id": f"c-{n}"}


@pytest.fixture(scope="module")
def late_env(redis_server):
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    flow = start_flow(redis_server, "--lateness-ms", str(BOUND))
    wait_until(lambda: client.hget(flow_status_key(), "lateness_ms"), what="the flow's start record")
    key = create_key(client, org=ORG, scopes=["campaigns:read", "events:write"])[1]
    server = ServerThread(create_app(redis_server)).start()
    http = httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"})
    try:
        yield {"redis": client, "http": http, "url": redis_server}
    finally:
        http.close()
        server.stop()
        stop_process(flow)
        client.close()


def stats(env, camp) -> dict | None:
    raw = env["redis"].get(stats_key(ORG, camp))
    return orjson.loads(raw) if raw else None


def wait_as_of(env, camp, ts: int) -> dict:
    """The flow has stored a frame whose watermark is `ts`."""
    from engine.validation.events import format_time
    return wait_until(lambda: (s := stats(env, camp)) and s["as_of"] == format_time(ts) and s,
                      what=f"as_of {ts}")


def dead_late_ids(env) -> set[str]:
    out = set()
    for _sid, f in env["redis"].xrange(DEAD_LETTER_STREAM):
        f = {k.decode(): v.decode(errors="replace") for k, v in f.items()}
        if f.get("code") == "late":
            out.add(f.get("event_id"))
    return out


def test_the_flow_records_its_lateness_bound(late_env):
    assert late_env["redis"].hget(flow_status_key(), "lateness_ms") == str(BOUND).encode()


def test_post_events_lists_what_the_flow_then_drops_as_late(late_env):
    env, camp = late_env, "camp-post"
    wm = T0 + 100_000
    r = env["http"].post("/v1/events", content=orjson.dumps([ev(camp, T0), ev(camp, wm)]))
    assert r.status_code == 200 and r.json()["late"] == [], r.text  # no watermark yet: nothing is late
    wait_as_of(env, camp, wm)

    body = [
        ev(camp, wm - BOUND - 1),                 # 0: late behind the stored watermark
        ev(camp, wm - BOUND),                     # 1: exactly the bound: applied (late is strictly beyond)
        {"event_id": "bad", "type": "contact.added", "org_id": ORG},  # 2: rejected (no ts): judged by nobody
        ev(camp, wm + 60_000),                    # 3: moves the watermark, in body order
        ev(camp, wm + 60_000 - BOUND - 5),        # 4: late behind event 3 of this very body
        ev(camp, wm - BOUND - 50, "late-dup"),    # 5: late (its first copy)
        ev(camp, wm - BOUND - 50, "late-dup"),    # 6: refused as a duplicate, not listed; late again for the flow
    ]
    r = env["http"].post("/v1/events", content=orjson.dumps(body))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["duplicates"], [x["index"] for x in out["rejected"]]) == (5, 1, [2])
    assert [x["index"] for x in out["late"]] == [0, 4, 5]
    assert f"lateness bound {BOUND} ms" in out["late"][0]["reason"]
    assert f"{BOUND + 1} ms behind the campaign's watermark {wm}" in out["late"][0]["reason"]

    # the flow agrees, event for event: counted in diagnostics.late and dead-lettered as late; the repeat of
    # a late event is late again (never "seen"), as `callpulse replay` counts it (docs/streams.md)
    listed = {body[x["index"]]["event_id"] for x in out["late"]}
    wait_until(lambda: (stats(env, camp) or {}).get("diagnostics", {}).get("late") == 4, what="4 late")
    assert stats(env, camp)["diagnostics"]["duplicates"] == 0
    wait_until(lambda: listed <= dead_late_ids(env), what="the late events dead-lettered")
    assert {body[i]["event_id"] for i in (1, 3)}.isdisjoint(dead_late_ids(env))
    assert stats(env, camp)["contacts"]["total"] == 4  # 2 first + events 1 and 3


def test_callpulse_ingest_prints_the_late_events(late_env, tmp_path):
    env, camp = late_env, "camp-cli"
    wm = T0 + 200_000
    r = env["http"].post("/v1/events", content=orjson.dumps([ev(camp, wm)]))
    assert r.status_code == 200
    wait_as_of(env, camp, wm)
    lines = [ev(camp, wm - BOUND - 1), ev(camp, wm), ev(camp, wm + 1)]
    f = tmp_path / "late.ndjson"
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    res = run_cli(env["url"], "ingest", str(f))
    assert res.returncode == 0, res.stderr
    counts = json.loads(res.stdout)
    assert counts["accepted"] == 3
    assert [x["line"] for x in counts["late"]] == [1]  # the file line, as for rejections
    assert "line 1: late ts:" in res.stderr.decode()
    wait_until(lambda: (stats(env, camp) or {}).get("diagnostics", {}).get("late") == 1, what="1 late")


def test_the_bound_defaults_to_30_s_when_the_flow_has_not_recorded_it(late_env):
    env = late_env
    saved = env["redis"].hget(flow_status_key(), "lateness_ms")
    env["redis"].hdel(flow_status_key(), "lateness_ms")
    try:
        check = LateCheck(env["redis"])
        check.read([ev("camp-none", T0)])
        assert check.lateness_ms == 30_000
        assert check.watermarks == {}  # no stats body: no watermark yet
    finally:
        env["redis"].hset(flow_status_key(), "lateness_ms", saved)
