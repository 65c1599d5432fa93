"""Server-sent events end to end: events POSTed to the API -> the real flow -> pub/sub -> SSE clients.

Also unit tests of the in-process fan-out (conflation, rate limit, bounded alert queue) and a
graceful-shutdown test of `callpulse api` with clients connected.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import subprocess
import time

import httpx
import orjson
import pytest

from api.app import create_app
from api.auth import DEV_KEY, create_key
from api.live import Cursor, LiveHub
from api.live_streams import campaign_events
from engine.storage.keys import ALERT_FIELD, alerts_stream, frames_stream, org_alerts_stream, stats_key
from engine.validation.events import parse_event
from tests.support import (
    CALLPULSE,
    ROOT,
    async_wait_until,
    env_for,
    read_sse,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.e2e

ORG = "org-1"


@pytest.fixture(scope="module")
def live_env(stack):
    s = stack(["--orgs", "1", "--campaigns", "1", "--contacts", "150", "--channel", "voice", "--abandon-prob", "0.35"],
              live=True, ingest=False, min_sample=10,
              keys={"rw": {"org": ORG, "scopes": ["campaigns:read", "events:write"]}},
              apps=[{"heartbeat_s": 60, "min_frame_interval_s": 0.0}, {"heartbeat_s": 1.0, "ping_s": 0.5}])
    client, lines, key, flow = s.redis, s.lines, s.keys["rw"], s.flow
    events = [parse_event(ln) for ln in lines]
    camp = events[0]["campaign_id"]
    n = 16
    size = len(lines) // n + 1
    chunks = [b"\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]
    exact, default = s.servers
    http = s.client("rw")
    max_ts = max(e["ts"] for e in events)
    counter = itertools.count()

    def post(body: bytes) -> dict:
        r = http.post("/v1/events", content=body)
        assert r.status_code == 200, r.text
        assert not r.json()["rejected"], r.json()["rejected"][:3]
        return r.json()

    def synthetic(k: int = 1) -> None:
        """A few new contacts: any applied event changes the campaign and so makes a frame."""
        evs = [{"event_id": f"syn-{next(counter)}", "type": "contact.added", "ts": max_ts, "org_id": ORG,
                "campaign_id": camp, "contact_id": f"syn-{next(counter)}"} for _ in range(k)]
        post(orjson.dumps(evs))

    return {"redis": client, "url": s.redis_url, "key": key, "camp": camp, "chunks": chunks, "post": post,
            "synthetic": synthetic, "exact": exact, "default": default, "flow": flow}


def ensure_campaign(env) -> None:
    """Tests may run alone: make sure the campaign exists (its first chunk applied by the flow)."""
    if not env["redis"].exists(stats_key(ORG, env["camp"])):
        env["post"](env["chunks"][0])
    wait_until(lambda: env["redis"].exists(stats_key(ORG, env["camp"])), what="first frame")


def top_seq(client, camp) -> int:
    top = client.xrevrange(frames_stream(ORG, camp), "+", "-", count=1)
    return int(top[0][0].decode().split("-")[0]) if top else 0


def settle(client, camp, quiet: float = 0.8, timeout: float = 20) -> int:
    """Wait until the flow has written everything (the frames stream top stops moving)."""
    deadline = time.monotonic() + timeout
    last, since = top_seq(client, camp), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = top_seq(client, camp)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return last
    raise AssertionError("flow did not settle")


class Collector:
    """Reads one SSE stream in the background, keeping (event, id, data)."""

    def __init__(self, http: httpx.AsyncClient, path: str, headers: dict):
        self.events: list[tuple[str, str, str]] = []
        self.http, self.path, self.headers = http, path, headers
        self.status = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        async with self.http.stream("GET", self.path, headers=self.headers) as r:
            self.status = r.status_code
            await read_sse(r, lambda ev, eid, data: self.events.append((ev, eid, data)) and False)

    def frames(self):
        return [(int(eid.split(".")[0]), orjson.loads(d)) for ev, eid, d in self.events if ev == "frame"]

    def alerts(self):
        return [(eid, orjson.loads(d)) for ev, eid, d in self.events if ev == "alert"]

    async def close(self):
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, httpx.HTTPError):
            pass


# ------------------------------------------------------------------------------ resume exactly once

def test_resume_after_forced_disconnect_gets_every_frame_and_alert_once(live_env):
    env = live_env
    client, camp, chunks, post = env["redis"], env["camp"], env["chunks"], env["post"]
    auth = {"Authorization": f"Bearer {env['key']}"}
    post(chunks[0])
    wait_until(lambda: client.exists(stats_key(ORG, camp)), what="first frame")
    settle(client, camp)

    async def scenario():
        async with httpx.AsyncClient(base_url=env["exact"].url, timeout=None) as http:
            alerts_before = client.xrevrange(alerts_stream(ORG, camp), "+", "-", count=1)
            org_before = client.xrevrange(org_alerts_stream(ORG), "+", "-", count=1)
            live1 = Collector(http, f"/v1/campaigns/{camp}/live", auth)
            org1 = Collector(http, "/v1/alerts", auth)
            await async_wait_until(lambda: live1.frames(), what="initial frame")
            first_seq = live1.frames()[0][0]
            assert first_seq == top_seq(client, camp)
            for c in chunks[1:6]:
                post(c)
                await asyncio.sleep(0.3)
            await asyncio.to_thread(settle, client, camp)
            top = top_seq(client, camp)
            await async_wait_until(lambda: live1.frames()[-1][0] == top, what="live frames")
            await asyncio.sleep(0.2)
            # forced disconnect
            last_id = live1.events[-1][1]
            org_last = org1.alerts()[-1][0] if org1.alerts() else None
            await live1.close()
            await org1.close()
            for c in chunks[6:12]:
                post(c)
                await asyncio.sleep(0.1)
            # reconnect while the flow is still writing: history, then live, without gap or duplicate
            live2 = Collector(http, f"/v1/campaigns/{camp}/live", {**auth, "Last-Event-ID": last_id})
            org_headers = {**auth, "Last-Event-ID": org_last} if org_last else {**auth, "Last-Event-ID":
                                                                                  org_before[0][0].decode()
                                                                                  if org_before else "0-0"}
            org2 = Collector(http, "/v1/alerts", org_headers)
            for c in chunks[12:]:
                post(c)
                await asyncio.sleep(0.1)
            await asyncio.to_thread(settle, client, camp)
            top = top_seq(client, camp)
            await async_wait_until(lambda: live2.frames() and live2.frames()[-1][0] == top, what="resumed frames")
            expected_alerts = client.xrange(alerts_stream(ORG, camp),
                                            "(" + alerts_before[0][0].decode() if alerts_before else "-", "+")
            expected_ids = [orjson.loads(f[ALERT_FIELD])["alert_id"] for _sid, f in expected_alerts]
            await async_wait_until(lambda: len(live1.alerts()) + len(live2.alerts()) >= len(expected_ids),
                                   what="alerts")
            org_expected = client.xrange(org_alerts_stream(ORG),
                                         "(" + org_before[0][0].decode() if org_before else "-", "+")
            await async_wait_until(lambda: len(org1.alerts()) + len(org2.alerts()) >= len(org_expected),
                                   what="org alerts")
            await asyncio.sleep(0.5)  # anything extra (a duplicate) would show up now
            await live2.close()
            await org2.close()
            return first_seq, live1, live2, expected_ids, org1, org2, org_expected

    first_seq, live1, live2, expected_ids, org1, org2, org_expected = asyncio.run(scenario())
    seqs = [s for s, _f in live1.frames()] + [s for s, _f in live2.frames()]
    assert seqs == sorted(set(seqs)), "frames out of order or duplicated"
    all_seqs = [int(sid.decode().split("-")[0]) for sid, _f in client.xrange(frames_stream(ORG, camp))]
    assert seqs == [s for s in all_seqs if s >= first_seq], "a frame was missed"
    assert len(live2.frames()) >= 2
    for _s, frame in live1.frames() + live2.frames():
        assert frame["campaign_id"] == camp and "seq" in frame and "as_of" in frame and "live" in frame
    got = [a["alert_id"] for _id, a in live1.alerts()] + [a["alert_id"] for _id, a in live2.alerts()]
    assert expected_ids, "the scenario must raise alerts"
    assert got == expected_ids, "alerts missed or duplicated"
    # every event id is a resumable cursor
    for _ev, eid, _d in live1.events + live2.events:
        assert Cursor.parse(eid) is not None
    org_got = [sid for sid, _a in org1.alerts()] + [sid for sid, _a in org2.alerts()]
    assert org_got == [sid.decode() for sid, _f in org_expected]


# ------------------------------------------------------------------------------ fan-out to 200 clients

def test_200_concurrent_clients_all_receive_frames(live_env):
    env = live_env
    camp = env["camp"]
    ensure_campaign(env)
    auth = {"Authorization": f"Bearer {env['key']}"}
    n = 200

    async def scenario():
        limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
        async with httpx.AsyncClient(base_url=env["default"].url, timeout=None, limits=limits) as http:
            cols = [Collector(http, f"/v1/campaigns/{camp}/live", auth) for _ in range(n)]
            await async_wait_until(lambda: all(c.frames() for c in cols), timeout=30, what="initial frames")
            start = max(c.frames()[0][0] for c in cols)
            metrics = (await http.get("/metrics")).text
            assert f"callpulse_api_sse_subscribers {float(n)}" in metrics
            await asyncio.to_thread(env["synthetic"], 3)
            await async_wait_until(lambda: all(c.frames()[-1][0] > start for c in cols), timeout=30,
                                   what="a new frame on every client")
            for c in cols:
                await c.close()
            await async_wait_until(lambda: env["default"].server.started and
                                   _subscribers(env["default"].url) == 0, timeout=10, what="cleanup")
        return True

    assert asyncio.run(scenario())


def _subscribers(url) -> float:
    text = httpx.get(url + "/metrics").text
    for line in text.splitlines():
        if line.startswith("callpulse_api_sse_subscribers "):
            return float(line.split()[1])
    return -1


def test_heartbeat_and_keepalive_while_quiet(live_env):
    env = live_env
    client, camp = env["redis"], env["camp"]
    ensure_campaign(env)
    settle(client, camp)

    async def scenario():
        async with httpx.AsyncClient(base_url=env["default"].url, timeout=None) as http:
            seen = {"pings": 0, "frames": []}
            t0 = time.monotonic()
            async with http.stream("GET", f"/v1/campaigns/{camp}/live",
                                   headers={"Authorization": f"Bearer {env['key']}"}) as r:
                async for line in r.aiter_lines():
                    if line.startswith(":"):
                        seen["pings"] += 1
                    elif line.startswith("id:"):
                        seen["frames"].append(line)
                    if time.monotonic() - t0 > 2.6:
                        break
            return seen

    seen = asyncio.run(scenario())
    assert len(seen["frames"]) >= 3, seen  # initial + a heartbeat re-send every 1 s
    assert len(set(seen["frames"])) == 1  # nothing changed: the same frame (same id) again
    assert seen["pings"] >= 2


def test_cursor_ahead_of_the_stream_starts_from_the_latest_frame(live_env):
    env = live_env
    ensure_campaign(env)
    settle(env["redis"], env["camp"])
    top = top_seq(env["redis"], env["camp"])

    async def scenario():
        async with httpx.AsyncClient(base_url=env["exact"].url, timeout=None) as http:
            col = Collector(http, f"/v1/campaigns/{env['camp']}/live",
                            {"Authorization": f"Bearer {env['key']}", "Last-Event-ID": f"{top + 1000}.0.0.0.0.0.0"})
            await async_wait_until(lambda: col.frames(), what="a frame")
            await col.close()
            return col.frames()

    first = asyncio.run(scenario())[0][0]
    assert top <= first <= top_seq(env["redis"], env["camp"])  # the latest frame (a heartbeat may have come)


def test_lost_pubsub_closes_streams_and_resubscribes(live_env):
    env = live_env
    ensure_campaign(env)
    client = env["redis"]

    async def scenario():
        async with httpx.AsyncClient(base_url=env["default"].url, timeout=None) as http:
            col = Collector(http, f"/v1/campaigns/{env['camp']}/live", {"Authorization": f"Bearer {env['key']}"})
            await async_wait_until(lambda: col.frames(), what="a frame")
            assert client.client_kill_filter(_type="pubsub") >= 1  # every process's subscription (the flow has none)
            await asyncio.wait_for(col.task, timeout=10)  # the server ends the stream: clients resume from the streams
            last = col.events[-1][1]
            again = Collector(http, f"/v1/campaigns/{env['camp']}/live",
                              {"Authorization": f"Bearer {env['key']}", "Last-Event-ID": last})
            await async_wait_until(lambda: again.status == 200, what="reconnect")
            await asyncio.to_thread(env["synthetic"], 1)
            await async_wait_until(lambda: again.frames(), timeout=15, what="live again after resubscribing")
            await again.close()
            return col.frames()[-1][0], again.frames()[0][0]

    before, after = asyncio.run(scenario())
    assert after > before


def test_live_endpoint_auth_and_404(live_env):
    env = live_env
    url = env["exact"].url
    assert httpx.get(f"{url}/v1/campaigns/{env['camp']}/live").status_code == 401
    r = httpx.get(f"{url}/v1/campaigns/nope/live", headers={"Authorization": f"Bearer {env['key']}"})
    assert r.status_code == 404
    # dev mode is off unless asked for: the demo key is just an invalid key here
    assert httpx.get(f"{url}/v1/campaigns", headers={"Authorization": f"Bearer {DEV_KEY}"}).status_code == 401
    write_only = create_key(env["redis"], org=ORG, scopes=["events:write"])[1]
    assert httpx.get(f"{url}/v1/alerts", headers={"Authorization": f"Bearer {write_only}"}).status_code == 403


# ------------------------------------------------------------------------------ graceful shutdown

def test_callpulse_api_exits_promptly_with_clients_connected(live_env):
    env = live_env
    ensure_campaign(env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(CALLPULSE + ["api", "--port", str(port)], cwd=ROOT, env=env_for(env["url"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _up(port), timeout=20, what="callpulse api")

        async def connect_and_signal():
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=None) as http:
                cols = [Collector(http, f"/v1/campaigns/{env['camp']}/live",
                                  {"Authorization": f"Bearer {env['key']}"}) for _ in range(5)]
                cols.append(Collector(http, "/v1/alerts", {"Authorization": f"Bearer {env['key']}"}))
                await async_wait_until(lambda: all(c.status == 200 for c in cols), what="clients")
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                rc = await asyncio.to_thread(proc.wait, 15)
                elapsed = time.monotonic() - t0
                for c in cols:
                    await c.close()
                return rc, elapsed

        rc, elapsed = asyncio.run(connect_and_signal())
        err = proc.stderr.read().decode()
        assert rc == 0, err[-2000:]
        assert elapsed < 6, elapsed
        assert "ERROR" not in err and "Traceback" not in err, err[-2000:]
    finally:
        stop_process(proc)


def _up(port) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# ------------------------------------------------------------------------------ fan-out units (no Redis)

class _FakeRedis:
    def __init__(self, frames=(), alerts=()):
        self._frames, self._alerts = list(frames), list(alerts)

    async def xrevrange(self, key, *a, count=None):
        src = self._frames if ":frames:" in key else self._alerts
        return list(reversed(src))[:count]

    async def xrange(self, key, *a, count=None):
        return (self._frames if ":frames:" in key else self._alerts)[:count]


def _frame_msg(seq):
    return orjson.dumps({"kind": "frame", "org_id": "o", "campaign_id": "c", "seq": seq,
                         "frame": {"campaign_id": "c", "seq": seq}})


def _alert_msg(n, window="lifetime"):
    return orjson.dumps({"kind": "alert", "org_id": "o", "campaign_id": "c",
                         "alert": {"alert_id": f"o:c:{window}:{n}", "window": window}})


def test_fanout_conflates_and_rate_limits_frames():
    async def scenario():
        hub = LiveHub(_FakeRedis())
        gen = campaign_events(hub, _FakeRedis(), "o", "c", None, heartbeat_s=60, min_interval_s=0.25,
                              max_replay=10)
        sent = []

        async def consume():
            async for chunk in gen:
                sent.append(chunk)
        task = asyncio.get_running_loop().create_task(consume())
        await asyncio.sleep(0.01)
        t0 = time.monotonic()
        seq = 0
        while time.monotonic() - t0 < 1.0:  # 1000 frames/s offered for 1 s
            seq += 1
            hub.dispatch(_frame_msg(seq))
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.3)
        task.cancel()
        return seq, sent, hub

    offered, sent, hub = asyncio.run(scenario())
    frames = [c for c in sent if c.startswith(b"event: frame")]
    assert 2 <= len(frames) <= 6, len(frames)  # <= 4/s (plus the edges), not 1000
    assert frames[-1].split(b"\r\n")[1] == b"id: %d.0.0.0.0.0.0.0.0.0.0" % offered  # conflated to the latest
    assert hub.count() == 0  # cleaned up on cancel


def test_slow_subscriber_is_bounded_and_alert_overflow_closes_it():
    async def scenario():
        hub = LiveHub(_FakeRedis(), max_alert_queue=50)
        slow = hub.add_campaign("o", "c")
        for seq in range(1, 10_001):
            hub.dispatch(_frame_msg(seq))
        assert slow.frame[0] == 10_000 and not slow.closed  # one frame held, whatever the backlog
        for n in range(1, 50):
            hub.dispatch(_alert_msg(n))
        assert len(slow.alerts) == 49 and not slow.closed
        hub.dispatch(_alert_msg(50))
        hub.dispatch(_alert_msg(51))
        assert slow.closed and slow.reason == "alert queue overflow"  # reconnect + Last-Event-ID resumes
        # a closed generator ends by itself (the client reconnects)
        gen = campaign_events(hub, _FakeRedis(), "o", "c", None, heartbeat_s=60, min_interval_s=0, max_replay=10)
        out = [c async for c in _take(gen, 5, timeout=0.3)]
        return out

    out = asyncio.run(scenario())
    assert out == []  # nothing to send: not even a lone `retry:` block (api/live_streams.RetryOnce)


async def _take(gen, n, timeout):
    try:
        for _ in range(n):
            yield await asyncio.wait_for(gen.__anext__(), timeout)
    except (TimeoutError, StopAsyncIteration):
        return


def test_dev_mode_only_when_asked(monkeypatch):
    monkeypatch.delenv("CALLPULSE_DEV", raising=False)
    assert create_app("redis://127.0.0.1:1/0").state.dev_mode is False
    monkeypatch.setenv("CALLPULSE_DEV", "1")
    assert create_app("redis://127.0.0.1:1/0").state.dev_mode is True
    assert create_app("redis://127.0.0.1:1/0", dev_mode=False).state.dev_mode is False


def test_cursor_parsing_and_alert_positions():
    c = Cursor.parse("12.1.0.3.0")  # the four-counter cursor of release 1: forecast series from 0
    assert c.seq == 12 and c.alerts == [1, 0, 3, 0, 0, 0, 0, 0, 0, 0]
    assert c.alert_is_new("org:with:colons:camp:lifetime:2") and not c.alert_is_new("o:c:24h:3")
    c.mark_alert("o:c:30d:7")
    c.mark_alert("o:c:forecast-30d:2")
    c.mark_alert("o:c:abandon_redial:4")
    assert c.text() == "12.1.0.3.7.0.2.0.4.0.0"
    assert not c.alert_is_new("o:c:forecast-30d:2") and c.alert_is_new("o:c:forecast-today:1")
    assert not c.alert_is_new("o:c:abandon_redial:3") and c.alert_is_new("o:c:complaint-30d:1")
    assert Cursor.parse("12.1.0.3.7.0.2").alerts == [1, 0, 3, 7, 0, 2, 0, 0, 0, 0]  # six counters: before #23
    assert Cursor.parse("12.1.0.3.7.0.2.0.4.0.0").alerts == [1, 0, 3, 7, 0, 2, 0, 4, 0, 0]
    assert Cursor.parse("5").seq == 5
    for bad in (None, "", "x", "1.2", "1.2.3.4.5.6", "1.2.3.4.5.6.7.8", "1.2.3.4.5.6.7.8.9.10", "-1", "1.-2.3.4.5",
                "9" * 30):
        assert Cursor.parse(bad) is None, bad
