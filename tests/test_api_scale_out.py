"""Several API processes on one Redis (scale-out #5; docs/operations.md, *Several API processes*).

- Each process caps its open SSE streams (``--sse-max-connections``, ``CALLPULSE_SSE_MAX_CONNECTIONS``):
  past the cap every SSE route answers 503 with ``Retry-After``; a stream that ends gives its slot back.
- An SSE client that loses its process (SIGKILL) reconnects to another with its ``Last-Event-ID`` and
  resumes exactly: no frame the history holds is skipped, no alert is missed or repeated (the campaign
  stream and ``/v1/alerts``), and frames keep coming while the flow runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from api.auth import create_key
from callpulse.redis_local import free_port
from engine.storage.keys import ALERT_FIELD, alerts_stream, frames_stream, org_alerts_stream, stats_key
from tests.support import (
    CALLPULSE,
    ROOT,
    ServerThread,
    async_wait_until,
    env_for,
    read_sse,
    run_cli,
    start_flow,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.e2e

ORG = "org-1"


def test_each_process_caps_its_sse_connections_with_503_and_retry_after(redis_url):
    client = redis.Redis.from_url(redis_url)
    key = create_key(client, org=ORG)[1]
    client.set(stats_key(ORG, "c1"), b'{"campaign_id":"c1"}')
    app = create_app(redis_url, sse_max_connections=2, heartbeat_s=60)
    server = ServerThread(app).start()
    cap = app.state.sse_cap
    paths = ("/v1/campaigns/c1/live", "/v1/alerts", "/v1/live")

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(10, read=30),
                                     headers={"Authorization": f"Bearer {key}"}) as http, \
                contextlib.AsyncExitStack() as streams:
            held = [await streams.enter_async_context(http.stream("GET", p)) for p in paths[:2]]
            assert [r.status_code for r in held] == [200, 200] and cap.open == 2
            for p in paths:  # the cap holds on every SSE route
                r = await http.get(p)
                assert r.status_code == 503, (p, r.text)
                assert r.headers["Retry-After"] == "5" and "maximum of 2 SSE connections" in r.json()["detail"]
            assert (await http.get("/v1/campaigns")).status_code == 200  # REST is not capped
            assert (await http.get(paths[0], headers={"Authorization": "Bearer nope"})).status_code == 401
            # a stream that ends gives its slot back
            await held[0].aclose()
            await async_wait_until(lambda: cap.open == 1, timeout=10, what="the slot back")
            async with http.stream("GET", "/v1/live") as r:
                assert r.status_code == 200 and cap.open == 2
        await async_wait_until(lambda: cap.open == 0, timeout=10, what="every slot back")

    try:
        asyncio.run(scenario())
        refused = [ln for ln in httpx.get(f"{server.url}/metrics").text.splitlines()
                   if ln.startswith("callpulse_api_sse_refused_total")]
        assert refused == ["callpulse_api_sse_refused_total 3.0"]
    finally:
        server.stop()
        client.close()


# ---------------------------------------------------------------- resume on another process

def _start_api(redis_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(CALLPULSE + ["api", "--port", str(port), "--heartbeat", "60", "--no-webhooks"],
                            cwd=ROOT, env=env_for(redis_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, "callpulse api exited"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    wait_until(up, timeout=30, what="callpulse api up")
    return proc, base


class Follower:
    """An SSE client of one route across connections (to any process), resuming with Last-Event-ID."""

    def __init__(self, path: str, key: str):
        self.path, self.key = path, key
        self.events: list[tuple[str, str, bytes]] = []  # (process, event, data)
        self.last_id: str | None = None
        self.task: asyncio.Task | None = None

    def connect(self, http: httpx.AsyncClient, base: str, process: str) -> None:
        self.task = asyncio.get_running_loop().create_task(self._read(http, base, process))

    async def _read(self, http, base, process):
        headers = {"Authorization": f"Bearer {self.key}", **({"Last-Event-ID": self.last_id} if self.last_id else {})}
        with contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError):  # its process was killed
            async with http.stream("GET", base + self.path, headers=headers) as r:
                assert r.status_code == 200, r.status_code

                def on_event(ev, eid, data):
                    self.events.append((process, ev, data))
                    self.last_id = eid
                    return False
                await read_sse(r, on_event)

    async def end(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def of(self, kind: str, process: str | None = None) -> list[dict]:
        return [orjson.loads(d) for p, ev, d in self.events if ev == kind and process in (None, p)]


def _stream_alert_ids(client, key: str) -> list[str]:
    return [orjson.loads(f[ALERT_FIELD])["alert_id"] for _sid, f in client.xrange(key)]


def _top_seq(client, camp: str) -> int:
    top = client.xrevrange(frames_stream(ORG, camp), count=1)
    return int(top[0][0].decode().partition("-")[0]) if top else 0


@pytest.mark.parametrize("target", ["standalone", "cluster"])
def test_an_sse_client_resumes_exactly_on_another_api_process_after_a_sigkill(tmp_path, target, request):
    """On a standalone Redis and on a Redis Cluster (sharded live channels, api/live_shards.py)."""
    from flows.redis_connect import connect

    redis_url = request.getfixturevalue("redis_url" if target == "standalone" else "cluster_url")
    client = connect(redis_url)
    key = create_key(client, org=ORG, scopes=["campaigns:read", "events:write"])[1]
    sim = tmp_path / "events.ndjson"
    # the abandon rate climbs: breach alerts early on, more once the next day starts
    r = run_cli(redis_url, "simulate", "--orgs", "1", "--campaigns", "1", "--contacts", "150", "--channel", "voice",
                "--abandon-prob", "0.0", "--abandon-ramp", "0.3", "--out", str(sim))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in sim.read_bytes().splitlines() if ln.strip()]
    camp = orjson.loads(lines[0])["campaign_id"]
    r = run_cli(redis_url, "replay", "--quiet", "--min-sample", "10", "--alerts", str(tmp_path / "alerts.ndjson"),
                str(sim))
    assert r.returncode == 0, r.stderr
    total = len((tmp_path / "alerts.ndjson").read_bytes().splitlines())
    chunks = [lines[i:i + 100] for i in range(0, len(lines), 100)]
    flow = start_flow(redis_url, "--min-sample", "10")
    (proc_a, api_a), (proc_b, api_b) = _start_api(redis_url), _start_api(redis_url)
    http_sync = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"})

    def post(base: str, body: list[bytes]) -> None:
        res = http_sync.post(f"{base}/v1/events", content=b"\n".join(body))
        assert res.status_code == 200 and not res.json()["rejected"], res.text

    try:
        post(api_a, chunks[0])
        wait_until(lambda: client.exists(stats_key(ORG, camp)), timeout=30, what="the campaign's first frame")

        async def scenario():
            async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as http:
                live, alerts = Follower(f"/v1/campaigns/{camp}/live", key), Follower("/v1/alerts", key)
                # ---- on process A: frames and the first alerts
                live.connect(http, api_a, "A")
                alerts.connect(http, api_a, "A")
                await async_wait_until(lambda: live.of("frame"), timeout=20, what="a frame from A")
                n = 1
                while not (live.of("alert") and alerts.of("alert") and len(live.of("frame")) >= 2):
                    assert n < len(chunks), "no alert in the whole log"
                    await asyncio.to_thread(post, api_a, chunks[n])
                    n += 1
                    await asyncio.sleep(0.3)
                proc_a.kill()  # SIGKILL: the process is gone mid-stream
                await asyncio.to_thread(proc_a.wait)
                await asyncio.gather(live.task, alerts.task)
                # ---- while the client is away: the rest of the log, with the later alerts
                await asyncio.to_thread(post, api_b, [ln for c in chunks[n:] for ln in c])
                await async_wait_until(lambda: client.xlen(alerts_stream(ORG, camp)) == total
                                       and client.xlen(org_alerts_stream(ORG)) == total, timeout=60,
                                       what="every alert written")
                top_before = _top_seq(client, camp)
                # ---- on process B, with Last-Event-ID
                live.connect(http, api_b, "B")
                alerts.connect(http, api_b, "B")
                for i in range(3):  # the flow goes on: new contacts, new frames
                    await asyncio.to_thread(post, api_b, [orjson.dumps({
                        "event_id": f"late-{i}", "type": "contact.added", "ts": orjson.loads(lines[-1])["ts"],
                        "org_id": ORG, "campaign_id": camp, "contact_id": f"late-{i}"})])
                    await asyncio.sleep(0.4)
                await async_wait_until(lambda: _top_seq(client, camp) > top_before, timeout=20, what="new frames")
                final = await asyncio.to_thread(_settled_top, client, camp)
                await async_wait_until(lambda: live.of("frame", "B") and live.of("frame")[-1]["seq"] >= final
                                       and len(alerts.of("alert")) >= total, timeout=20, what="B caught up")
                await live.end()
                await alerts.end()
                return live, alerts, top_before, final

        live, alerts, top_before, final = asyncio.run(scenario())
        # alerts: every one of the stream, once, in order; some from A, the rest (written while away) from B
        want = _stream_alert_ids(client, alerts_stream(ORG, camp))
        assert len(want) == total and total > len(live.of("alert", "A")) >= 1
        assert [a["alert_id"] for a in live.of("alert")] == want
        assert live.of("alert", "B")
        assert [a["alert_id"] for a in alerts.of("alert")] == _stream_alert_ids(client, org_alerts_stream(ORG))
        assert alerts.of("alert", "A") and alerts.of("alert", "B")
        # frames: in order, once; B starts right after the last frame A sent, with every frame the history held
        seq_a = [f["seq"] for f in live.of("frame", "A")]
        seq_b = [f["seq"] for f in live.of("frame", "B")]
        assert seq_a + seq_b == sorted(set(seq_a + seq_b))
        assert seq_b[0] == seq_a[-1] + 1
        assert set(range(seq_a[-1] + 1, top_before + 1)) <= set(seq_b)
        assert seq_b[-1] == final > top_before  # and frames kept coming from B while the flow ran
    finally:
        http_sync.close()
        for proc in (proc_a, proc_b):
            stop_process(proc)
        stop_process(flow)
        client.close()


def _settled_top(client, camp: str) -> int:
    """The frame stream's top seq once no new frame has come for a second."""
    last, since = _top_seq(client, camp), time.monotonic()
    while time.monotonic() - since < 1.0:
        time.sleep(0.1)
        now = _top_seq(client, camp)
        if now != last:
            last, since = now, time.monotonic()
    return last
