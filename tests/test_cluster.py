"""The whole product on a real Redis Cluster (3 masters, 3 replicas of Debian's redis-server; scale-out #1, #2, #7).

`CALLPULSE_REDIS_URL` names one node; every command and process detects the cluster and uses redis-py's
cluster clients. Ingest (CLI and `POST /v1/events`), the flow (2 processes, recovery on) and the API's
reads end with every campaign's `/stats` equal to `callpulse replay` of everything sent; tenants stay
apart; bad input still gets a clear error and changes nothing. A master killed mid-ingest (the chaos test
at the end) loses no acknowledged event and no process dies; an acknowledgement waits for a replica.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from engine.storage.keys import followups_key, history_key, message_details_key, stats_key
from tests.support import ServerThread, run_cli, wait_until

pytestmark = pytest.mark.e2e

T_BASE = 1_778_245_200_000


def _cli_ok(url: str, *args: str, input: bytes | None = None):
    r = run_cli(url, *args, input=input)
    assert r.returncode == 0, (args, r.stderr.decode()[-2000:])
    return r


def test_ingest_flow_and_api_on_a_cluster_equal_replay(tmp_path, cluster_url, monkeypatch):
    monkeypatch.setenv("CALLPULSE_METRICS_MAX_CAMPAIGNS", "200")  # the per-campaign gauges (off by default)
    key = _cli_ok(cluster_url, "keys", "create", "--org", "org-1", "--scopes",
                  "campaigns:read,events:write").stdout.decode().split()[0]
    other = _cli_ok(cluster_url, "keys", "create", "--org", "org-2", "--scopes", "campaigns:read").stdout.decode().split()[0]
    sim = tmp_path / "sim.ndjson"
    _cli_ok(cluster_url, "simulate", "--orgs", "1", "--campaigns", "3", "--contacts", "120", "--channel", "mixed",
            "--duplicate-pct", "2", "--abandon-prob", "0.2", "--agents", "3", "--out", str(sim))
    counts = orjson.loads(_cli_ok(cluster_url, "ingest", str(sim), "--replay").stdout)
    assert counts["accepted"] > 0 and counts["rejected"] == 0

    posted = [{"event_id": f"api-{i}", "type": "contact.added", "ts": T_BASE + i, "org_id": "org-1",
               "campaign_id": f"posted-{i % 4}", "contact_id": f"p{i}"} for i in range(60)]
    bad = [{"event_id": "bad", "type": "contact.added", "ts": T_BASE, "org_id": "org-1", "campaign_id": "posted-0"}]
    server = ServerThread(create_app(cluster_url)).start()
    try:
        h = {"Authorization": f"Bearer {key}"}
        r = httpx.post(f"{server.url}/v1/events", content=orjson.dumps(posted + bad + posted[:3]), headers=h,
                       timeout=20)
        assert r.status_code == 200, r.text
        assert (r.json()["accepted"], r.json()["duplicates"]) == (60, 3)
        assert [x["code"] for x in r.json()["rejected"]] == ["missing_field"]

        r = run_cli(cluster_url, "flow", "--replay", "--until-drained", "-p", "2", "--recovery-dir",
                    str(tmp_path / "rec"), "--min-sample", "10", timeout=240)
        assert r.returncode == 0, r.stderr.decode()[-3000:]

        log = tmp_path / "all.ndjson"
        log.write_bytes(sim.read_bytes() + b"".join(orjson.dumps(e) + b"\n" for e in posted + posted[:3]))
        want = {b["campaign_id"]: b for b in orjson.loads(_cli_ok(cluster_url, "replay", "--quiet", "--min-sample",
                                                                  "10", str(log)).stdout)}
        listed = httpx.get(f"{server.url}/v1/campaigns", headers=h, timeout=20)
        assert listed.status_code == 200, listed.text
        assert sorted(c["campaign_id"] for c in listed.json()["campaigns"]) == sorted(want)
        cluster = redis.RedisCluster.from_url(cluster_url)
        for camp, body in want.items():
            got = httpx.get(f"{server.url}/v1/campaigns/{camp}/stats", headers=h, timeout=20)
            assert got.status_code == 200, got.text
            assert got.json() == body, camp
            # the minute points and follow-ups, written in the campaign's slot (issue 24)
            hist = httpx.get(f"{server.url}/v1/campaigns/{camp}/history", headers=h, timeout=20).json()
            assert hist["points"] and hist["points"][-1]["pending"] == body["live"]["pending"], camp
            fu = httpx.get(f"{server.url}/v1/campaigns/{camp}/followups", headers=h, timeout=20).json()
            assert fu["retrying"]["count"] == body["contacts"]["by_status"]["retrying"], camp
            assert cluster.exists(followups_key("org-1", camp)), "the flow's view, not the fallback"
            # the email message list, from records in the campaign's slot
            pages, page = [], 1
            while not pages or len(pages[-1]["messages"]) == 200:
                pages.append(httpx.get(f"{server.url}/v1/campaigns/{camp}/messages?limit=200&page={page}",
                                       headers=h, timeout=20).json())
                page += 1
            listed_msgs = [m for pg in pages for m in pg["messages"]]
            assert pages[0]["total"] == len(listed_msgs) == body["email"]["emails_sent"], camp
            assert sum(m["opened_at"] is not None for m in listed_msgs) == body["email"]["opened"], camp
            if body["channel"] == "email":
                assert listed_msgs
            # the agents (issue 27): the endpoint pages what the body holds, read in the campaign's slot
            agents = httpx.get(f"{server.url}/v1/campaigns/{camp}/agents", headers=h, timeout=20).json()
            assert agents["agents"] == body["agents"]["list"] and agents["by_state"] == body["agents"]["by_state"]
            if body["outcomes"]["connected"]:
                assert body["agents"]["list"], camp  # the simulated floor (--agents 3) took its calls
        cluster.close()
        # tenants stay apart on a cluster too
        assert httpx.get(f"{server.url}/v1/campaigns/posted-0/stats", timeout=20,
                         headers={"Authorization": f"Bearer {other}"}).status_code == 404
        wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200, timeout=20,
                   what="/readyz on the cluster")
        # /metrics scans every master for the orgs' campaign sets: every campaign has its gauges
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{server.url}/metrics", timeout=20).text
        known = [s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                 if s.name == "callpulse_campaigns" and s.labels.get("state") == "known"]
        assert known == [len(want)]
    finally:
        server.stop()


def test_a_database_other_than_0_on_a_cluster_is_a_clear_error(cluster_url):
    r = run_cli(cluster_url.rsplit("/", 1)[0] + "/1", "keys", "create", "--org", "org-1")
    assert r.returncode != 0 and b"only database 0" in r.stderr, r.stderr


def test_the_client_follows_the_slot_map(cluster_url, redis_cluster):
    """Any node's URL works, and keys of one campaign share a slot (one Lua script, one pipeline)."""
    from flows.redis_connect import connect

    for port in redis_cluster.master_ports():
        client = connect(f"redis://127.0.0.1:{port}/0")
        assert isinstance(client, redis.RedisCluster)
        client.set(stats_key("o", f"c{port}"), b"x")
        assert client.get(stats_key("o", f"c{port}")) == b"x"
        client.close()


def test_ingest_is_acknowledged_only_once_a_replica_holds_it(cluster_url, redis_cluster, monkeypatch):
    """WAIT (flows/replica_ack.py): with the replica of the stream's master stopped (SIGSTOP), the append
    is not confirmed in time and the ingest fails (the API answers 503); once the replica is back, the
    retry is accepted and every event is stored once."""
    import signal

    from flows.ingest_claims import accept_events
    from flows.redis_connect import connect
    from flows.replica_ack import AckSettings, ReplicasBehind
    from tests.test_ingest_claims import events, stream_contents

    ack = AckSettings(timeout_ms=300)  # CALLPULSE_ACK_TIMEOUT_MS=300
    client = connect(cluster_url)
    evs = events(30, camps=("only",))
    from engine.storage.keys import ingest_stream, partition_for

    stream = ingest_stream(partition_for("o1", "only", 4))
    master = client.get_node_from_key(stream)
    replica_port = int(client.get_redis_connection(master).info("replication")["slave0"]["port"])
    proc = redis_cluster.procs[replica_port]
    proc.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(ReplicasBehind):
            accept_events(client, evs, partitions=4, ack=ack)
    finally:
        proc.send_signal(signal.SIGCONT)
    assert accept_events(client, evs, partitions=4, ack=ack) == [True] * 30
    copies, markers = stream_contents(client, 4)
    assert len(copies) == 30 and set(copies.values()) == {1} and markers == 0
    redis_cluster.wait_ok()


def test_webhooks_deliver_the_real_flows_alerts_on_a_cluster(cluster_url, monkeypatch, tmp_path):
    """Webhook endpoints, their delivery state and the deliverer's scripts live in the org's slot."""
    from flows.redis_connect import connect
    from tests.test_webhooks import real_flow_alerts_reach_the_webhook
    from tests.webhook_receiver import Receiver

    receiver = Receiver().start()
    client = connect(cluster_url)
    try:
        real_flow_alerts_reach_the_webhook(cluster_url, client, receiver, monkeypatch, tmp_path)
    finally:
        receiver.stop()
        client.close()


def test_chaos_on_a_cluster_flow_and_api_killed_and_a_master_lost(tmp_path):
    """tests/test_chaos.py on a cluster: the flow SIGKILLed twice, the API SIGKILLed mid-stream, a master
    SIGKILLed (its replica takes over); a sender retrying until 200. Every event stored once; bodies and
    alerts equal replay."""
    import random
    import time

    from callpulse.redis_local import LocalCluster, free_port
    from callpulse.simulator import SimConfig, generate
    from tests.test_chaos import Sender, _api, _kill, _up
    from tests.test_flow import PARTS, check_alerts, offline_replay, start_flow, write_ndjson
    from tests.test_ingest_claims import stream_contents

    items = list(generate(SimConfig(seed=78, orgs=1, campaigns=3, contacts=300, channel="mixed",
                                    duplicate_pct=2, jitter_ms=3000, abandon_prob=0.1, agents=3)))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    rng = random.Random(78)
    cluster = LocalCluster(tmp_path / "cluster").start()
    masters = cluster.master_ports()
    url = f"redis://127.0.0.1:{masters[0]}/0"  # a node that stays up
    client = redis.RedisCluster.from_url(url)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    api_log = open(tmp_path / "api.log", "ab")
    rec = str(tmp_path / "recovery")
    flow = api = None
    try:
        key = _cli_ok(url, "keys", "create", "--org", items[0]["org_id"], "--scopes",
                      "events:write").stdout.decode().split()[0]
        api = _api(port, url, api_log)
        wait_until(lambda: _up(api_url), timeout=30, what="the API")
        flow = start_flow(url, tmp_path, "--replay", "--recovery-dir", rec, "-s", "0.5")
        sender = Sender(api_url, key, items)
        sender.start()
        n = len(sender.chunks)
        at = sender.wait_for

        at(0.15)
        time.sleep(rng.uniform(0.2, 0.6))
        _kill(flow)
        flow = start_flow(url, tmp_path, "--replay", "--recovery-dir", rec, "-s", "0.5")
        at(0.35)
        _kill(api)  # mid-stream, wherever its request is
        api = _api(port, url, api_log)
        at(0.55)
        cluster.kill(masters[2])  # a machine gone mid-ingest: its replica takes over
        at(0.75)
        assert api.poll() is None and flow.poll() is None  # neither died of the failover
        _kill(flow)
        flow = start_flow(url, tmp_path, "--replay", "--recovery-dir", rec, "-s", "0.5")
        sender.join(timeout=180)
        assert not sender.is_alive() and sender.done == n
        # no process died of the failover: the API and the flow rode it out
        assert api.poll() is None, (tmp_path / "api.log").read_text()[-2000:]
        assert flow.poll() is None, (tmp_path / "flow.log").read_text()[-2000:]
        _kill(flow)
        flow = None

        unique = {e["event_id"] for e in items}
        copies, markers = stream_contents(client, PARTS)
        assert set(copies) == unique and set(copies.values()) == {1}
        assert markers == len(items) - len(unique) == sender.duplicates and sender.accepted == len(unique)
        r = run_cli(url, "flow", "--replay", "--until-drained", "--recovery-dir", rec, "--min-sample", "10",
                    timeout=240)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        want, want_alerts = offline_replay(url, path, tmp_path)
        assert any(body["agents"]["list"] for body in want.values())  # (agents crossed the crashes too)
        for (org, camp), body in want.items():
            assert orjson.loads(client.get(stats_key(org, camp))) == body, camp
            # the console's records survived the failover too: message records, minute points, follow-ups
            records = [orjson.loads(v) for v in client.hvals(message_details_key(org, camp))]
            e = body["email"]
            for stage, figure in (("sent", "emails_sent"), ("delivered", "delivered"), ("opened", "opened"),
                                  ("complained", "complained")):
                assert sum(f"{stage}_ms" in r for r in records) == e[figure], (camp, stage)
            assert client.zcard(history_key(org, camp)) > 0 and client.exists(followups_key(org, camp)), camp
        check_alerts(client, want_alerts)
    finally:
        for proc in (flow, api):
            if proc is not None:
                _kill(proc)
        cluster.stop()


def test_rate_limits_and_plans_on_a_cluster(cluster_url):
    """The per-key ingest limits keep their counters in the `limits` library's cluster storage; plans and
    key rotation are single-slot writes."""
    from flows.redis_connect import connect

    key = _cli_ok(cluster_url, "keys", "create", "--org", "org-1", "--scopes", "events:write",
                  "--json").stdout
    key = orjson.loads(key)["key"]
    _cli_ok(cluster_url, "orgs", "set-plan", "--org", "org-1", "--name", "pro", "--email-limit", "1000",
            "--price-usd", "99")
    server = ServerThread(create_app(cluster_url, ingest_rate="2/minute")).start()
    try:
        h = {"Authorization": f"Bearer {key}"}
        codes = [httpx.post(f"{server.url}/v1/events", content=b"", headers=h, timeout=20).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429], codes
    finally:
        server.stop()
    client = connect(cluster_url)
    from engine.storage.keys import plan_key

    assert client.hget(plan_key("org-1"), "name") == b"pro"
