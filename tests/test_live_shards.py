"""Live push on a real Redis Cluster: sharded pub/sub (scale-out #3; api/live_shards.py, flows/redis_sink.py).

The flow SPUBLISHes frames and alerts on the campaign's channel and on the org's, never on the global
channel; an API process subscribes only to the channels its clients need (``PUBSUB SHARDNUMSUB`` on the
slot's master says so), lets them go when the clients leave, and rides a master's death out: the clients
of its channels resume from the streams, the hub subscribes again on the new master.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from api.auth import create_key
from callpulse.redis_local import LocalCluster
from engine.storage.keys import (
    FRAME_FIELD,
    LIVE_CHANNEL,
    frames_stream,
    live_campaign_channel,
    live_org_channel,
    stats_key,
)
from engine.validation.events import parse_event
from flows.live_channel import frame_message
from tests.support import ServerThread, read_sse, run_cli, start_flow, stop_process, wait_until

pytestmark = pytest.mark.e2e

ORG = "org-1"


def _shard_subscribers(client: redis.RedisCluster, channel: str) -> int:
    """PUBSUB SHARDNUMSUB on the master that owns the channel's slot."""
    node = client.get_node_from_key(channel)
    reply = client.get_redis_connection(node).execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])


class Reader:
    """One SSE connection read in the background: every (event, id, data)."""

    def __init__(self, http: httpx.AsyncClient, path: str, until):
        self.events: list[tuple[str, str, bytes]] = []
        self.until = until
        self.task = asyncio.get_running_loop().create_task(self._run(http, path))

    async def _run(self, http, path):
        async with http.stream("GET", path) as r:
            assert r.status_code == 200, (path, r.status_code)

            def on_event(ev, eid, data):
                self.events.append((ev, eid, data))
                return self.until(self)
            await read_sse(r, on_event)

    def of(self, kind: str) -> list:
        return [orjson.loads(d) for ev, _i, d in self.events if ev == kind]


def test_a_cluster_pushes_on_sharded_channels_subscribed_only_while_followed(tmp_path, cluster_url):
    client = redis.RedisCluster.from_url(cluster_url)
    key = create_key(client, org=ORG, scopes=["campaigns:read", "events:write"])[1]
    sim = tmp_path / "events.ndjson"
    r = run_cli(cluster_url, "simulate", "--orgs", "1", "--campaigns", "2", "--contacts", "100", "--channel", "voice",
                "--abandon-prob", "0.35", "--out", str(sim))
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in sim.read_bytes().splitlines() if ln.strip()]
    camps = sorted({parse_event(ln)["campaign_id"] for ln in lines})
    followed, other = camps
    first = [ln for c in camps for ln in [ln for ln in lines if parse_event(ln)["campaign_id"] == c][:40]]
    taken = set(first)
    rest = [ln for ln in lines if ln not in taken]

    # a plain subscriber of the global channel, on one node: a cluster copies a PUBLISH to every node
    node = client.get_primaries()[0]
    global_sub = redis.Redis(host=node.host, port=node.port).pubsub(ignore_subscribe_messages=True)
    global_sub.subscribe(LIVE_CHANNEL)

    app = create_app(cluster_url, heartbeat_s=60, min_frame_interval_s=0.0)
    server = ServerThread(app).start()
    flow = start_flow(cluster_url, "--min-sample", "10")
    http_sync = httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"})
    try:
        assert http_sync.post("/v1/events", content=b"\n".join(first)).status_code == 200
        wait_until(lambda: all(client.exists(stats_key(ORG, c)) for c in camps), timeout=60, what="both campaigns")
        hub = app.state.hub
        assert hub.subscribed() == set()  # no client, no subscription

        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(10, read=60),
                                         headers={"Authorization": f"Bearer {key}"}) as http:
                camp = Reader(http, f"/v1/campaigns/{followed}/live",
                              lambda s: len(s.of("alert")) >= 1 and len(s.of("frame")) >= 3)
                summaries = Reader(http, "/v1/live", lambda s: {c["campaign_id"] for c in s.of("campaign")} >= set(camps))
                alerts = Reader(http, "/v1/alerts", lambda s: len(s.of("alert")) >= 1)
                want = {live_campaign_channel(ORG, followed), live_org_channel(ORG)}
                await asyncio.to_thread(wait_until, lambda: hub.subscribed() == want, 10, 0.05, "the two channels")
                # only the followed campaign's shard, and the org's, hold a subscriber
                assert await asyncio.to_thread(_shard_subscribers, client, live_campaign_channel(ORG, followed)) == 1
                assert await asyncio.to_thread(_shard_subscribers, client, live_campaign_channel(ORG, other)) == 0
                assert await asyncio.to_thread(_shard_subscribers, client, live_org_channel(ORG)) == 1
                res = await asyncio.to_thread(http_sync.post, "/v1/events", content=b"\n".join(rest))
                assert res.status_code == 200, res.text
                await asyncio.wait_for(asyncio.gather(camp.task, summaries.task, alerts.task), timeout=90)
                return camp, summaries, alerts

        camp, summaries, alerts = asyncio.run(scenario())
        frames = camp.of("frame")
        assert {f["campaign_id"] for f in frames} == {followed}
        assert [f["seq"] for f in frames] == sorted({f["seq"] for f in frames})  # in order, once each
        assert {a["campaign_id"] for a in camp.of("alert")} == {followed}
        assert alerts.of("alert") and all(a["org_id"] == ORG for a in alerts.of("alert"))
        # the clients are gone: so are the subscriptions
        wait_until(lambda: hub.subscribed() == set(), timeout=10, what="the channels let go")
        wait_until(lambda: _shard_subscribers(client, live_campaign_channel(ORG, followed)) == 0, timeout=10,
                   what="SHARDNUMSUB 0")
        assert _shard_subscribers(client, live_org_channel(ORG)) == 0
        assert global_sub.get_message(timeout=0.5) is None  # nothing went out on the global channel
    finally:
        http_sync.close()
        server.stop()
        stop_process(flow)
        global_sub.close()
        client.close()


CAMP = "c-failover"


def _publish_frame(client: redis.RedisCluster, seq: int) -> None:
    """A frame written as the flow's sink writes it on a cluster (SET, XADD <seq>-0, SPUBLISH)."""
    body = orjson.dumps({"org_id": ORG, "campaign_id": CAMP, "n": seq})
    frame = body[:-1] + b',"seq":%d}' % seq
    for _attempt in range(100):  # a failover under way: the client follows the new slot map after a moment
        try:
            client.set(stats_key(ORG, CAMP), body)
            client.xadd(frames_stream(ORG, CAMP), {FRAME_FIELD: frame}, id=f"{seq}-0")
            break
        except redis.ResponseError as exc:  # written before the failover was seen: fine
            if "equal or smaller" in str(exc):
                break
            raise
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError):
            time.sleep(0.1)
    client.execute_command("SPUBLISH", live_campaign_channel(ORG, CAMP),
                           frame_message(orjson.dumps(ORG), orjson.dumps(CAMP), seq, frame))


async def _follow(base: str, key: str, want_seq: int, deadline: float, *, reconnect: bool = True):
    """Frame seqs read from the campaign stream, reconnecting with Last-Event-ID, until ``want_seq``."""
    seqs: list[int] = []
    last_id, connections = None, 0
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=30)) as http:
        while time.monotonic() < deadline and (not seqs or seqs[-1] < want_seq):
            headers = {"Authorization": f"Bearer {key}", **({"Last-Event-ID": last_id} if last_id else {})}
            try:
                async with http.stream("GET", f"/v1/campaigns/{CAMP}/live", headers=headers) as r:
                    if r.status_code != 200:
                        await asyncio.sleep(0.2)
                        continue
                    connections += 1

                    def on_event(ev, eid, data):
                        nonlocal last_id
                        if ev == "frame":
                            seqs.append(orjson.loads(data)["seq"])
                            last_id = eid
                        return seqs[-1] >= want_seq if seqs else False
                    await read_sse(r, on_event)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError):
                await asyncio.sleep(0.2)
            if not reconnect:
                break
    return seqs, connections


def test_live_push_rides_out_the_death_of_the_channels_master(tmp_path):
    cluster = LocalCluster(tmp_path / "cluster").start()
    server = None
    try:
        probe = redis.RedisCluster.from_url(cluster.url)
        victim = probe.get_node_from_key(live_campaign_channel(ORG, CAMP)).port
        url = f"redis://127.0.0.1:{next(p for p in cluster.master_ports() if p != victim)}/0"
        probe.close()
        client = redis.RedisCluster.from_url(url)
        key = create_key(client, org=ORG)[1]
        for seq in (1, 2, 3):
            _publish_frame(client, seq)
        redis.Redis(port=victim).execute_command("WAIT", 1, 2000)  # frames 1-3 on the replica too
        app = create_app(url, heartbeat_s=60, min_frame_interval_s=0.0)
        server = ServerThread(app).start()

        async def scenario():
            deadline = time.monotonic() + 60
            tasks = [asyncio.create_task(_follow(server.url, key, 8, deadline)) for _ in range(3)]
            await asyncio.to_thread(wait_until, lambda: app.state.hub.subscribed(), 10, 0.05, "subscribed")
            await asyncio.sleep(0.3)
            await asyncio.to_thread(cluster.kill, victim)  # SIGKILL: the channel's master is gone
            await asyncio.to_thread(cluster.wait_ok, 30)  # its replica took over
            for seq in (4, 5, 6, 7, 8):
                await asyncio.to_thread(_publish_frame, client, seq)
                await asyncio.sleep(0.2)
            return await asyncio.gather(*tasks)

        results = asyncio.run(scenario())
        for seqs, _connections in results:
            assert seqs == [3, 4, 5, 6, 7, 8]  # the latest frame, then every frame once, in order
        assert all(connections >= 2 for _s, connections in results)  # their channel was lost: they resumed
        assert app.state.hub.lost >= 1

        async def live_again():  # one connection, no reconnect: frame 9 must come live, on the new master
            task = asyncio.create_task(_follow(server.url, key, 9, time.monotonic() + 20, reconnect=False))
            await asyncio.to_thread(wait_until, lambda: app.state.hub.subscribed(), 15, 0.05, "subscribed again")
            await asyncio.to_thread(_publish_frame, client, 9)
            return await task
        assert asyncio.run(live_again()) == ([8, 9], 1)
        wait_until(lambda: _shard_subscribers(client, live_campaign_channel(ORG, CAMP)) == 0, timeout=10,
                   what="the channel let go once its client left")
        client.close()
    finally:
        if server is not None:
            server.stop()
        cluster.stop()


def test_a_campaign_left_and_followed_again_at_once_gets_its_frames_live(cluster_url):
    """SUNSUBSCRIBE and SSUBSCRIBE of one channel in quick turns: the last follower still gets frames live."""
    client = redis.RedisCluster.from_url(cluster_url)
    key = create_key(client, org=ORG)[1]
    _publish_frame(client, 1)
    app = create_app(cluster_url, heartbeat_s=60, min_frame_interval_s=0.0)
    server = ServerThread(app).start()

    async def scenario():
        for _ in range(6):  # each: subscribe, read the latest frame, leave (unsubscribe)
            assert await _follow(server.url, key, 1, time.monotonic() + 10, reconnect=False) == ([1], 1)
        await asyncio.to_thread(wait_until, lambda: not app.state.hub.subscribed(), 10, 0.02, "let go")
        task = asyncio.create_task(_follow(server.url, key, 2, time.monotonic() + 15, reconnect=False))
        await asyncio.to_thread(wait_until, lambda: app.state.hub.subscribed(), 10, 0.02, "subscribed")
        await asyncio.to_thread(_publish_frame, client, 2)
        return await task

    try:
        assert asyncio.run(scenario()) == ([1, 2], 1)
        wait_until(lambda: app.state.hub.subscribed() == set(), timeout=10, what="let go")
    finally:
        server.stop()
        client.close()
