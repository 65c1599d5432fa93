"""Late notices against a *live* flow: the notice judges with the flow's event-time watermark.

In live mode a quiet campaign's `/stats` ``as_of`` follows the wall clock, but the flow's lateness gate
(engine/state/gate.py) follows the largest applied event ts. Events two days old sent through
POST /v1/events after a quiet spell were listed late although the flow applied them all; the notice
now reads the watermark the flow writes with each frame (engine.storage.keys.watermark_key), also for a
campaign that has been retired to its archive. Real Redis, the real flow (CLI, live mode), real HTTP.
"""

from __future__ import annotations

import itertools
import subprocess
import time

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from api.auth import create_key
from api.late_notice import LateCheck
from engine.storage.keys import DEAD_LETTER_STREAM, archive_key, campaign_tag, flow_status_key, stats_key, watermark_key
from engine.validation.events import format_time, parse_time
from tests.support import CALLPULSE, ROOT, ServerThread, env_for, stop_process, wait_until

pytestmark = pytest.mark.e2e

ORG = "org-late-live"
BOUND = 10_000  # the flow's --lateness-ms
OLD = int(time.time() * 1000) - 48 * 3_600_000  # two days ago: far behind the wall clock
ids = itertools.count()


def ev(camp: str, ts: int, typ: str = "contact.added", **fields) -> dict:
    n = next(ids)
    if typ == "contact.added":
        fields.setdefault("contact_id", f"c-{n}")
    return {"event_id": f"live-{n}", "type": typ, "ts": ts, "org_id": ORG, "campaign_id": camp, **fields}


@pytest.fixture(scope="module")
def live_env(redis_server, tmp_path_factory):
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    log = (tmp_path_factory.mktemp("flow") / "flow.log").open("wb")
    # live mode (no --replay): a quiet campaign's as_of moves to the wall clock after 1 s without events
    flow = subprocess.Popen(CALLPULSE + ["flow", "--no-recovery", "--lateness-ms", str(BOUND), "--heartbeat-ms",
                                         "200", "--retire-after-ms", "1500"],
                            cwd=ROOT, env=env_for(redis_server), stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: client.hget(flow_status_key(), "lateness_ms"), what="the flow's start record")
    key = create_key(client, org=ORG, scopes=["campaigns:read", "events:write"])[1]
    server = ServerThread(create_app(redis_server)).start()
    http = httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"})
    try:
        yield {"redis": client, "http": http}
    finally:
        http.close()
        server.stop()
        stop_process(flow)
        log.close()
        client.close()


def stats(env, camp) -> dict:
    raw = env["redis"].get(stats_key(ORG, camp))
    return orjson.loads(raw) if raw else {}


def post(env, events: list[dict]) -> dict:
    r = env["http"].post("/v1/events", content=orjson.dumps(events))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == len(events) and out["rejected"] == [], out
    return out


def wait_applied(env, camp, contacts: int, late: int) -> dict:
    return wait_until(lambda: (s := stats(env, camp)) and s["contacts"]["total"] == contacts
                      and s["diagnostics"]["late"] == late and s, what=f"{contacts} contacts, {late} late")


def wait_quiet(env, camp, wm: int) -> None:
    """The live flow moved the stored as_of with the wall clock, past the watermark by more than the bound."""
    wait_until(lambda: (s := stats(env, camp)) and parse_time(s["as_of"], "as_of") > wm + BOUND,
               what="as_of past the event-time watermark")


def dead_late_ids(env) -> set[str]:
    return {f[b"event_id"].decode() for _sid, f in env["redis"].xrange(DEAD_LETTER_STREAM)
            if f.get(b"code") == b"late"}


def test_old_events_after_a_quiet_spell_are_judged_by_the_event_time_watermark(live_env):
    env, camp = live_env, "camp-quiet"
    wm = OLD + 100_000
    assert post(env, [ev(camp, OLD), ev(camp, wm)])["late"] == []
    wait_applied(env, camp, 2, 0)
    wait_quiet(env, camp, wm)

    # within the bound of the event-time watermark: applied by the flow, so not listed
    body = [ev(camp, wm - BOUND), ev(camp, wm - 5_000), ev(camp, wm + 2_000), ev(camp, wm + 2_000 - BOUND)]
    assert post(env, body)["late"] == []
    wait_applied(env, camp, 6, 0)  # all four applied: diagnostics.late stays 0

    # really behind the event-time watermark (now wm + 2 s) by more than the bound: listed and counted
    body = [ev(camp, wm + 2_000 - BOUND - 1), ev(camp, wm + 1_000)]
    out = post(env, body)
    assert [x["index"] for x in out["late"]] == [0]
    assert f"{BOUND + 1} ms behind the campaign's watermark {wm + 2_000}" in out["late"][0]["reason"]
    wait_applied(env, camp, 7, 1)
    wait_until(lambda: body[0]["event_id"] in dead_late_ids(env), what="the late event dead-lettered")
    assert body[1]["event_id"] not in dead_late_ids(env)


def test_a_retired_campaign_keeps_its_event_time_watermark(live_env):
    env, camp = live_env, "camp-done"
    wm = OLD + 60_000
    post(env, [ev(camp, OLD, "campaign.created", name="done"), ev(camp, OLD, "campaign.status", status="active"),
               ev(camp, OLD + 1), ev(camp, wm, "campaign.status", status="completed")])
    wait_until(lambda: env["redis"].exists(archive_key(ORG, camp)), what="the campaign retired")
    assert parse_time(stats(env, camp)["as_of"], "as_of") > wm + BOUND  # moved with the wall clock first
    assert env["redis"].get(watermark_key(ORG, camp)) == b"%d" % wm  # the gate's, kept when it retired

    body = [ev(camp, wm - 5_000), ev(camp, wm - BOUND - 1)]
    assert [x["index"] for x in post(env, body)["late"]] == [1]
    wait_applied(env, camp, 2, 1)  # revived from its archive: the first applied, the second late
    assert body[0]["event_id"] not in dead_late_ids(env)


def test_the_notice_falls_back_to_as_of_without_a_stored_watermark(live_env):
    """Data written by a flow that did not store the watermark yet: the body's as_of is the watermark."""
    r, camp = live_env["redis"], "camp-older-flow"
    r.set(stats_key(ORG, camp), orjson.dumps({"as_of": format_time(OLD + 50_000)}))
    check = LateCheck(r)
    check.read([ev(camp, OLD)])
    assert check.watermarks == {(ORG, camp): OLD + 50_000}
    r.set(watermark_key(ORG, camp), OLD + 20_000)  # present: it wins over a later as_of
    check = LateCheck(r)
    check.read([ev(camp, OLD)])
    assert check.watermarks == {(ORG, camp): OLD + 20_000}
    key = watermark_key(ORG, camp)
    assert key[key.index("{"):key.index("}") + 1] == campaign_tag(ORG, camp)  # the campaign's cluster slot
