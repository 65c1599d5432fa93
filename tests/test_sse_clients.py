"""The SSE routes read by a third-party client: httpx-sse, the usual SSE client for httpx.

httpx-sse (0.4) dispatches every block that ends in a blank line, even one without data: a lone
``retry:`` block, or a ``: ping`` comment block once an ``id`` was seen, comes out as an empty
``message``, and a consumer that ``json.loads`` every event crashes. The API folds ``retry:`` into
the first real event (or the first keep-alive) and sends keep-alives as bare comment lines
(api/live_streams.py). Real Redis, the real flow (CLI), real HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import httpx
import orjson
import pytest
from httpx_sse import aconnect_sse

from engine.storage.keys import org_alerts_stream, stats_key
from engine.validation.events import parse_event
from tests.support import wait_until

pytestmark = pytest.mark.e2e

ORG = "org-1"
PING_S = 0.3


@pytest.fixture(scope="module")
def sse_env(stack):
    # pings every 0.3 s and a heartbeat frame every 1 s: a few seconds show every kind of block
    s = stack(["--orgs", "1", "--campaigns", "1", "--contacts", "120", "--channel", "voice", "--abandon-prob", "0.35"],
              live=True, ingest=False, min_sample=10,
              keys={"rw": {"org": ORG, "scopes": ["campaigns:read", "events:write"]},
                    "quiet": {"org": "org-quiet", "scopes": ["campaigns:read"]}},
              apps=[{"heartbeat_s": 1.0, "ping_s": PING_S, "min_frame_interval_s": 0.0}])
    client, server, key, quiet_key = s.redis, s.servers[0], s.keys["rw"], s.keys["quiet"]
    body = s.files[0].read_bytes()
    events = [parse_event(ln) for ln in s.lines]
    camp, max_ts = events[0]["campaign_id"], max(e["ts"] for e in events)
    http = s.client("rw")
    counter = itertools.count()

    def post(payload: bytes) -> None:
        res = http.post("/v1/events", content=payload)
        assert res.status_code == 200 and not res.json()["rejected"], res.text

    def synthetic() -> None:
        """A new contact: an applied event, so a new frame."""
        n = next(counter)
        post(orjson.dumps([{"event_id": f"sse-syn-{n}", "type": "contact.added", "ts": max_ts, "org_id": ORG,
                            "campaign_id": camp, "contact_id": f"sse-syn-{n}"}]))

    post(body)
    wait_until(lambda: client.exists(stats_key(ORG, camp)), what="first frame")
    wait_until(lambda: client.xlen(org_alerts_stream(ORG)) > 0, timeout=60, what="an alert")
    return {"url": server.url, "camp": camp, "key": key, "quiet_key": quiet_key, "synthetic": synthetic}


async def read_events(http: httpx.AsyncClient, path: str, headers: dict, seconds: float, until=None) -> list:
    """Every event httpx-sse yields on ``path`` for ``seconds`` (or until ``until(events)``)."""
    out: list = []

    async def consume():
        async with aconnect_sse(http, "GET", path, headers=headers) as source:
            assert source.response.status_code == 200, await source.response.aread()
            async for sse in source.aiter_sse():
                out.append(sse)
                if until is not None and until(out):
                    return

    try:
        await asyncio.wait_for(consume(), seconds)
    except TimeoutError:
        pass
    return out


def assert_all_json(events: list, kinds: set) -> None:
    assert events, "no event at all"
    for sse in events:
        assert sse.event in kinds, (sse.event, sse.data[:80])
        json.loads(sse.data)  # what an httpx-sse consumer does with every event; must never raise
    assert events[0].retry == 1000, events[0]  # the first event carries the reconnect delay
    assert all(sse.retry is None for sse in events[1:])  # ...and only the first


@pytest.mark.parametrize("path,kinds,resume", [
    ("/v1/campaigns/{camp}/live", {"frame", "alert"}, None),
    ("/v1/alerts", {"alert"}, "0-0"),  # replay the org's alerts: events at once
    ("/v1/live", {"snapshot", "campaign"}, None),
])
def test_every_event_httpx_sse_yields_is_json_and_the_first_carries_retry(sse_env, path, kinds, resume):
    headers = {"Authorization": f"Bearer {sse_env['key']}"}
    if resume:
        headers["Last-Event-ID"] = resume

    async def scenario():
        async with httpx.AsyncClient(base_url=sse_env["url"], timeout=None) as http:
            # 2.5 s: several pings (0.3 s) after events with ids, and heartbeat frames (1 s) on /live
            return await read_events(http, path.format(camp=sse_env["camp"]), headers, 2.5)

    events = asyncio.run(scenario())
    assert_all_json(events, kinds)


def test_reconnect_with_last_event_id_honours_retry(sse_env):
    """A client that reconnects as told: waits `retry` ms, resumes with Last-Event-ID, and the new
    connection's first event carries `retry` again (it is per connection, not per client)."""
    path = f"/v1/campaigns/{sse_env['camp']}/live"
    auth = {"Authorization": f"Bearer {sse_env['key']}"}

    async def scenario():
        async with httpx.AsyncClient(base_url=sse_env["url"], timeout=None) as http:
            first = await read_events(http, path, auth, 10, until=lambda evs: any(e.event == "frame" for e in evs))
            frame = next(e for e in first if e.event == "frame")
            assert first[0].retry == 1000
            t0 = time.monotonic()
            await asyncio.sleep(first[0].retry / 1000)
            sse_env["synthetic"]()  # something new to resume onto
            second = await read_events(http, path, {**auth, "Last-Event-ID": frame.id}, 10,
                                       until=lambda evs: any(e.event == "frame" for e in evs))
            return frame, second, time.monotonic() - t0

    frame, second, waited = asyncio.run(scenario())
    assert waited >= 1.0
    assert_all_json(second, {"frame", "alert"})
    resumed = next(e for e in second if e.event == "frame")
    assert int(resumed.id.split(".")[0]) > int(frame.id.split(".")[0])  # resumed after the cursor, no repeat


def test_a_quiet_stream_sends_retry_with_its_first_keepalive_and_nothing_httpx_sse_would_yield(sse_env):
    """/v1/alerts of an org with no alert: no event for a long time. The first keep-alive line carries
    `retry:`; no blank line is ever sent, so no client dispatches an (empty) event."""
    headers = {"Authorization": f"Bearer {sse_env['quiet_key']}"}

    async def raw_bytes():
        chunks = b""
        async with httpx.AsyncClient(base_url=sse_env["url"], timeout=None) as http:
            async with http.stream("GET", "/v1/alerts", headers=headers) as r:
                assert r.status_code == 200
                t0 = time.monotonic()
                async for chunk in r.aiter_raw():
                    chunks += chunk
                    if time.monotonic() - t0 > PING_S * 4:
                        break
            events = await read_events(http, "/v1/alerts", headers, PING_S * 4)
        return chunks, events

    chunks, events = asyncio.run(raw_bytes())
    assert chunks.startswith(b"retry: 1000\r\n: ping\r\n"), chunks[:80]
    assert chunks.count(b": ping\r\n") >= 2 and chunks.count(b"retry:") == 1
    assert b"\r\n\r\n" not in chunks  # no block ever ends: nothing is dispatched
    assert events == []
