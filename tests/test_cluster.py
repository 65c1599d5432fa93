"""The whole product on a real Redis Cluster (3 masters, 3 replicas of Debian's redis-server; scale-out #1, #2, #7).

`CALLPULSE_REDIS_URL` names one node; every command and process detects the cluster and uses redis-py's
cluster clients. Ingest (CLI and `POST /v1/events`), the flow (2 processes, recovery on) and the API's
reads end with every campaign's `/stats` equal to `callpulse replay` of everything sent; tenants stay
apart; bad input still gets a clear error and changes nothing.
"""

from __future__ import annotations

import httpx
import orjson
import redis

from api.app import create_app
from engine.keys import stats_key
from tests.support import ServerThread, run_cli, wait_until

T_BASE = 1_778_245_200_000


def _cli_ok(url: str, *args: str, input: bytes | None = None):
    r = run_cli(url, *args, input=input)
    assert r.returncode == 0, (args, r.stderr.decode()[-2000:])
    return r


def test_ingest_flow_and_api_on_a_cluster_equal_replay(tmp_path, cluster_url):
    key = _cli_ok(cluster_url, "keys", "create", "--org", "org-1", "--scopes",
                  "campaigns:read,events:write").stdout.decode().split()[0]
    other = _cli_ok(cluster_url, "keys", "create", "--org", "org-2", "--scopes", "campaigns:read").stdout.decode().split()[0]
    sim = tmp_path / "sim.ndjson"
    _cli_ok(cluster_url, "simulate", "--orgs", "1", "--campaigns", "3", "--contacts", "120", "--channel", "mixed",
            "--duplicate-pct", "2", "--abandon-prob", "0.2", "--out", str(sim))
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
        for camp, body in want.items():
            got = httpx.get(f"{server.url}/v1/campaigns/{camp}/stats", headers=h, timeout=20)
            assert got.status_code == 200, got.text
            assert got.json() == body, camp
        # tenants stay apart on a cluster too
        assert httpx.get(f"{server.url}/v1/campaigns/posted-0/stats", timeout=20,
                         headers={"Authorization": f"Bearer {other}"}).status_code == 404
        wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200, timeout=20,
                   what="/readyz on the cluster")
        assert httpx.get(f"{server.url}/metrics", timeout=20).status_code == 200
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
