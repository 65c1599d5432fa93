"""Issue #12 item 5: alerts delivered to webhooks — signed (Standard Webhooks), retried with backoff,
given up after the horizon, logged, and never lost across a SIGKILL of the delivering `callpulse api`.

Real parts only: redis-server, uvicorn (in a thread, or `callpulse api` as a subprocess), a real HTTP
receiver (tests/webhook_receiver.py). Alerts enter the org's alert stream through the flow sink's
own script (flows.redis_sink.ALERT_SCRIPT), exactly as the flow appends them.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time

import httpx
import orjson
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from api.app import create_app
from api.auth import create_key
from api.webhook_delivery import DeliverySettings
from api.webhook_policy import DestinationDenied, check_url
from api.webhook_store import GROUP, due_key
from callpulse.redis_local import free_port
from engine.storage.keys import alert_id, org_alert_ids_key, org_alerts_stream
from flows.redis_sink import ALERT_SCRIPT
from tests.support import CALLPULSE, ROOT, ServerThread, env_for, run_cli, start_flow, stop_process, wait_until
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

ORG = "org-1"


def append_alert(client, n: int, *, kind: str = "level", camp: str = "c1", org: str = ORG) -> str:
    """Append alert n to the org's alert stream the way the flow's sink does (once per alert_id)."""
    window = "lifetime" if kind == "level" else "forecast"
    rec = {"alert_id": alert_id(org, camp, window, n), "kind": kind, "campaign_id": camp, "org_id": org,
           "window": window, "rate": 0.05, "abandoned": 5, "human_answered": 100, "ceiling": 0.03,
           "at": "2026-01-05T10:00:00Z"}
    if kind == "forecast":
        rec.update(breach_in_s=120, breach_at="2026-01-05T10:02:00Z")
    else:
        rec.update({"from": None, "to": "2026-01-05T10:00:00Z"})
    client.eval(ALERT_SCRIPT, 2, org_alerts_stream(org), org_alert_ids_key(org), rec["alert_id"],
                orjson.dumps(rec), 1000)
    return rec["alert_id"]


def verified(receiver: Receiver, path: str, secret: str) -> list[dict]:
    """Every request on ``path``: its signature verified, its envelope decoded."""
    out = []
    for r in receiver.got(path):
        env = Webhook(secret).verify(r.body, r.headers)
        assert r.headers["webhook-id"] == env["data"]["alert_id"]
        assert env["type"] == f"alert.{env['data'].get('kind') or 'level'}"  # no kind: a level alert
        assert env["timestamp"].endswith("Z")
        out.append(env)
    return out


# ------------------------------------------------------------------ pure parts

def test_backoff_is_exponential_capped_and_jittered():
    s = DeliverySettings(backoff_base_s=5, backoff_cap_s=60)
    rng = random.Random(1)
    for n, full in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)]:
        delays = [s.backoff_s(n, rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 4  # really jittered


def test_url_policy(monkeypatch):
    monkeypatch.delenv("CALLPULSE_WEBHOOK_ALLOW", raising=False)
    assert check_url("https://hooks.example.com/callpulse?x=1") == "https://hooks.example.com/callpulse?x=1"
    for bad in ["ftp://x.example", "https://user:pw@x.example/", "https://x.example/#frag", "x.example",
                "https://x.example:0/", "https://x.example:70000/", "https://x.example/\n"]:
        with pytest.raises(ValueError):
            check_url(bad)
    for denied in ["http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/",
                   "http://192.168.1.1/", "http://0.0.0.0/", "http://localhost:8000/"]:
        with pytest.raises(DestinationDenied):
            check_url(denied)
    allow = "127.0.0.1/32,localhost"  # CALLPULSE_WEBHOOK_ALLOW, as the settings hand it over
    assert check_url("http://127.0.0.1:9/x", allow) and check_url("http://localhost/", allow)
    with pytest.raises(DestinationDenied):
        check_url("http://10.0.0.5/", allow)


def test_numeric_and_ipv6_hosts_are_read_as_a_resolver_reads_them(monkeypatch):
    """A host ending in a number is an IPv4 address in any inet_aton form, judged by the policy; [v6] too."""
    monkeypatch.delenv("CALLPULSE_WEBHOOK_ALLOW", raising=False)
    for url, addr in [("http://0x7f000002/", "127.0.0.2"), ("http://167772161/", "10.0.0.1"),
                      ("http://0177.0.0.1/", "127.0.0.1"), ("http://127.1/", "127.0.0.1"),
                      ("http://0/", "0.0.0.0"), ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
                      ("http://[2002:a9fe:a9fe::]/", "169.254.169.254")]:  # 6to4 of the metadata address
        with pytest.raises(DestinationDenied, match=rf"\(the address {re.escape(addr)}\) is not a public"):
            check_url(url)
    for url in ("http://[::1]:8080/x", "http://[2001:db8::1]/", "http://[fe80::1]/", "http://[fc00::5]/"):
        with pytest.raises(DestinationDenied, match="is not a public address"):
            check_url(url)
    # public ones are accepted, stored in canonical form (what a browser or httpx then connects to)
    assert check_url("http://0x08080808:8080/h?a=1") == "http://8.8.8.8:8080/h?a=1"
    assert check_url("https://134744072/") == "https://8.8.8.8/"
    assert check_url("http://[2606:4700:4700:0:0:0:0:1111]/h") == "http://[2606:4700:4700::1111]/h"
    assert check_url("https://hooks.example.com/") == "https://hooks.example.com/"  # names: checked at delivery
    # no address at all: a clear refusal, not a policy decision
    for url, why in [("http://08.0.0.1/", "ends in a number but is not an IPv4 address"),
                     ("http://example.123/", "ends in a number"), ("http://1.2.3.4.5/", "ends in a number"),
                     ("http://[::::]/", r"\[::::\] is not an IPv6 address")]:
        with pytest.raises(ValueError, match=why) as exc:
            check_url(url)
        assert not isinstance(exc.value, DestinationDenied)
    allow = "127.0.0.0/8,::1/128"  # the allow list sees the address
    assert check_url("http://0x7f000002/", allow) == "http://127.0.0.2/"
    assert check_url("http://[::1]/", allow) == "http://[::1]/"


def test_registration_judges_numeric_and_ipv6_urls(redis_url, redis_client, monkeypatch):
    monkeypatch.delenv("CALLPULSE_WEBHOOK_ALLOW", raising=False)
    manage = {"Authorization": "Bearer " + create_key(redis_client, org=ORG, scopes=["campaigns:manage"])[1]}
    api = ServerThread(create_app(redis_url, webhooks=False)).start()
    try:
        with httpx.Client(base_url=api.url, timeout=10, headers=manage) as http:
            for url in ("http://0x7f000002/", "http://167772161/", "http://0177.0.0.1/", "http://127.1/",
                        "http://[::1]/", "http://[::ffff:127.0.0.1]/"):
                r = http.post("/v1/webhooks", json={"url": url})
                assert r.status_code == 422, (url, r.text)
                err = r.json()["errors"][0]
                assert err["field"] == "url" and "is not a public address" in err["msg"], (url, err)
            r = http.post("/v1/webhooks", json={"url": "http://[::::]/"})
            assert r.status_code == 422 and "is not an IPv6 address" in r.json()["errors"][0]["msg"], r.text
            r = http.post("/v1/webhooks", json={"url": "https://[2606:4700:4700:0::1111]:8443/hook"})
            assert r.status_code == 201, r.text
            assert r.json()["url"] == "https://[2606:4700:4700::1111]:8443/hook"
            r = http.post("/v1/webhooks", json={"url": "http://0x08080808/hook"})
            assert r.status_code == 201 and r.json()["url"] == "http://8.8.8.8/hook", r.text
            assert {w["url"] for w in http.get("/v1/webhooks").json()["webhooks"]} == {
                "https://[2606:4700:4700::1111]:8443/hook", "http://8.8.8.8/hook"}
    finally:
        api.stop()


# ------------------------------------------------------------------ delivery through the API

@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def test_register_deliver_retry_give_up_and_log(redis_url, redis_client, receiver, monkeypatch):
    monkeypatch.setenv("CALLPULSE_WEBHOOK_ALLOW", "127.0.0.1/32")  # read once, when the app is made
    for k, v in {"CALLPULSE_WEBHOOK_BACKOFF_BASE_S": "0.4", "CALLPULSE_WEBHOOK_BACKOFF_CAP_S": "0.8",
                 "CALLPULSE_WEBHOOK_GIVE_UP_S": "2.5", "CALLPULSE_WEBHOOK_POLL_S": "0.05",
                 "CALLPULSE_WEBHOOK_TIMEOUT_S": "2"}.items():
        monkeypatch.setenv(k, v)
    manage = {"Authorization": "Bearer " + create_key(redis_client, org=ORG, scopes=["campaigns:manage"])[1]}
    other = {"Authorization": "Bearer " + create_key(redis_client, org="org-2", scopes=["campaigns:manage"])[1]}
    reader = {"Authorization": "Bearer " + create_key(redis_client, org=ORG)[1]}
    api = ServerThread(create_app(redis_url)).start()
    try:
        with httpx.Client(base_url=api.url, timeout=10) as http:
            url_a = receiver.on("/a", fail_first=2)
            # the policy refuses loopback addresses off the allow list (the receiver's is on it)
            r = http.post("/v1/webhooks", json={"url": url_a.replace("127.0.0.1", "127.0.0.2")}, headers=manage)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url", r.text
            assert http.post("/v1/webhooks", json={"url": url_a}, headers=reader).status_code == 403

            before = append_alert(redis_client, 0)  # appended before any endpoint: never sent
            a = http.post("/v1/webhooks", json={"url": url_a}, headers=manage)
            assert a.status_code == 201, a.text
            a = a.json()
            assert a["secret"].startswith("whsec_") and a["kinds"] == [] and a["org_id"] == ORG
            b = http.post("/v1/webhooks", json={"url": receiver.on("/b", 0), "kinds": ["forecast"]},
                          headers=manage).json()
            c = http.post("/v1/webhooks", json={"url": receiver.on("/c", None)}, headers=manage).json()

            listed = http.get("/v1/webhooks", headers=manage).json()["webhooks"]
            assert [w["id"] for w in listed] == [a["id"], b["id"], c["id"]]
            assert all("secret" not in w for w in listed)
            # another org's endpoint is 404, exactly like a missing one
            assert http.get("/v1/webhooks", headers=other).json() == {"webhooks": []}
            for method in ("GET", "DELETE"):
                assert http.request(method, f"/v1/webhooks/{a['id']}", headers=other).status_code == 404
            assert http.get(f"/v1/webhooks/{a['id']}/deliveries", headers=other).status_code == 404

            ids = [append_alert(redis_client, n) for n in (1, 2, 3)] + [append_alert(redis_client, 1, kind="forecast")]
            wait_until(lambda: len(receiver.delivered_ids("/a")) == 4, timeout=30, what="deliveries to /a")
            assert receiver.delivered_ids("/a") == sorted(ids) and before not in receiver.delivered_ids("/a")
            wait_until(lambda: receiver.delivered_ids("/b") == [ids[3]], what="the forecast alert on /b")

            envs = verified(receiver, "/a", a["secret"])
            assert len(envs) == 12  # 2 x 503 then 200, per alert
            verified(receiver, "/b", b["secret"])
            with pytest.raises(WebhookVerificationError):
                verified(receiver, "/a", c["secret"])  # another endpoint's secret does not verify
            for aid in ids:  # backoff: the second attempt waits >= base/2, the third >= 2*base/2
                times = [r.at for r in receiver.got("/a") if r.headers["webhook-id"] == aid]
                assert times[1] - times[0] >= 0.2 - 0.05 and times[2] - times[1] >= 0.4 - 0.05
                body = {r.body for r in receiver.got("/a") if r.headers["webhook-id"] == aid}
                assert len(body) == 1  # identical body on every attempt
            log = http.get(f"/v1/webhooks/{a['id']}/deliveries", headers=manage).json()
            assert log["pending"] == []
            for aid in ids:
                mine = [x for x in log["attempts"] if x["alert_id"] == aid][::-1]
                assert [(x["attempt"], x["status_code"], x["state"]) for x in mine] == [
                    (1, 503, "retrying"), (2, 503, "retrying"), (3, 200, "delivered")]
                assert mine[0]["next_retry_at"] and mine[2]["next_retry_at"] is None
                assert all(x["latency_ms"] >= 0 and x["error"] is None for x in mine)

            # /c answers 503 forever: each delivery is given up once past the horizon
            def gave_up():
                att = http.get(f"/v1/webhooks/{c['id']}/deliveries", headers=manage).json()["attempts"]
                return sorted(x["alert_id"] for x in att if x["state"] == "gave_up") == sorted(ids)
            wait_until(gave_up, timeout=30, what="give-up on /c")
            log_c = http.get(f"/v1/webhooks/{c['id']}/deliveries", headers=manage).json()
            assert log_c["pending"] == []
            for aid in ids:
                mine = [x for x in log_c["attempts"] if x["alert_id"] == aid][::-1]
                assert len(mine) >= 3 and all(x["status_code"] == 503 for x in mine)
                assert mine[-1]["state"] == "gave_up" and mine[-1]["next_retry_at"] is None
                assert {x["state"] for x in mine[:-1]} == {"retrying"}
                assert mine[-1]["at_ms"] - mine[0]["at_ms"] <= 2500 + 500  # due within the horizon (+ poll lag)
            prom = http.get("/metrics").text
            assert 'callpulse_api_webhook_attempts_total{state="delivered"} 5.0' in prom  # 4 on /a, 1 on /b
            assert 'callpulse_api_webhook_attempts_total{state="gave_up"} 4.0' in prom
            n_c = len(receiver.got("/c"))
            time.sleep(1)
            assert len(receiver.got("/c")) == n_c  # nothing after give-up

            assert http.delete(f"/v1/webhooks/{c['id']}", headers=manage).status_code == 204
            assert http.get(f"/v1/webhooks/{c['id']}", headers=manage).status_code == 404
            assert http.delete(f"/v1/webhooks/{c['id']}", headers=manage).status_code == 404
            assert [w["id"] for w in http.get("/v1/webhooks", headers=manage).json()["webhooks"]] == [a["id"], b["id"]]
    finally:
        api.stop()
    # every delivered alert is acknowledged in the group: nothing left pending
    assert redis_client.xpending(org_alerts_stream(ORG), GROUP)["pending"] == 0


def _start_api(redis_url: str, port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(CALLPULSE + ["api", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    wait_until(up, timeout=30, what="callpulse api")
    return proc


def test_sigkill_of_the_delivering_api_loses_nothing(redis_url, redis_client, receiver):
    env = env_for(redis_url)
    env.update(CALLPULSE_WEBHOOK_ALLOW="127.0.0.1/32", CALLPULSE_WEBHOOK_BACKOFF_BASE_S="3",
               CALLPULSE_WEBHOOK_GIVE_UP_S="120", CALLPULSE_WEBHOOK_POLL_S="0.05",
               CALLPULSE_WEBHOOK_TIMEOUT_S="2", CALLPULSE_WEBHOOK_CLAIM_IDLE_S="1")
    url = receiver.on("/hook", fail_first=1)
    r = subprocess.run(CALLPULSE + ["webhooks", "add", "--org", ORG, "--url", url, "--kinds", "level,forecast",
                                    "--json"], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    hook = orjson.loads(r.stdout)
    listed = run_cli(redis_url, "webhooks", "list", "--org", ORG, "--json")
    assert [w["id"] for w in orjson.loads(listed.stdout)] == [hook["id"]]

    port = free_port()
    api = _start_api(redis_url, port, env)
    try:
        ids = [append_alert(redis_client, n) for n in (1, 2, 3)]
        # each first attempt failed (503): three retries are scheduled, ~1.5-3 s away
        wait_until(lambda: len(receiver.got("/hook")) == 3, timeout=20, what="the first attempts")
        api.send_signal(signal.SIGKILL)
        api.wait(timeout=10)
        assert receiver.delivered_ids("/hook") == []
        assert redis_client.zcard(due_key(ORG)) == 3  # the retries wait in Redis, not in the dead process

        # while no deliverer runs: two more alerts; one is read by a consumer that then dies
        ids += [append_alert(redis_client, 4), append_alert(redis_client, 5, kind="forecast")]
        taken = redis_client.xreadgroup(GROUP, "dead-consumer", {org_alerts_stream(ORG): ">"}, count=1)
        assert len(taken[0][1]) == 1

        api = _start_api(redis_url, port, env)
        wait_until(lambda: len(receiver.delivered_ids("/hook")) == 5, timeout=40, what="every delivery")
        time.sleep(0.5)
        assert receiver.delivered_ids("/hook") == sorted(ids)  # each exactly once, nothing else
        verified(receiver, "/hook", hook["secret"])
        log = run_cli(redis_url, "webhooks", "deliveries", hook["id"])
        assert log.returncode == 0 and log.stdout.decode().count("delivered") == 5
        assert redis_client.xpending(org_alerts_stream(ORG), GROUP)["pending"] == 0
    finally:
        stop_process(api)
    assert run_cli(redis_url, "webhooks", "remove", hook["id"]).returncode == 0
    assert orjson.loads(run_cli(redis_url, "webhooks", "list", "--org", ORG, "--json").stdout) == []


def test_alerts_of_the_real_flow_reach_the_webhook(redis_url, redis_client, receiver, monkeypatch, tmp_path):
    """End to end: simulated calls that breach the abandon ceiling, folded by the real flow; every alert
    id the sink appended to the org's stream arrives at the endpoint, once, signed."""
    real_flow_alerts_reach_the_webhook(redis_url, redis_client, receiver, monkeypatch, tmp_path)


def real_flow_alerts_reach_the_webhook(redis_url, redis_client, receiver, monkeypatch, tmp_path):
    """(also run on a Redis Cluster: tests/test_cluster.py)"""
    monkeypatch.setenv("CALLPULSE_WEBHOOK_ALLOW", "127.0.0.1/32")
    monkeypatch.setenv("CALLPULSE_WEBHOOK_POLL_S", "0.05")
    events = tmp_path / "events.ndjson"
    assert run_cli(redis_url, "simulate", "--orgs", "1", "--campaigns", "1", "--contacts", "150",
                   "--channel", "voice", "--abandon-prob", "0.35", "--out", str(events)).returncode == 0
    api = ServerThread(create_app(redis_url)).start()
    manage = {"Authorization": "Bearer " + create_key(redis_client, org=ORG, scopes=["campaigns:manage"])[1]}
    hook = httpx.post(api.url + "/v1/webhooks", json={"url": receiver.on("/flow", 0)}, headers=manage).json()
    assert run_cli(redis_url, "ingest", str(events)).returncode == 0
    flow = start_flow(redis_url, "--min-sample", "10")
    try:
        def stream_ids():
            return sorted(orjson.loads(f[b"a"])["alert_id"]
                          for _sid, f in redis_client.xrange(org_alerts_stream(ORG)))
        wait_until(lambda: stream_ids(), timeout=60, what="alerts from the flow")
        last = None
        while last != stream_ids():  # the flow has stopped raising alerts for a while
            last = stream_ids()
            time.sleep(2)
        wait_until(lambda: receiver.delivered_ids("/flow") == last, timeout=30, what="every alert delivered")
        envs = verified(receiver, "/flow", hook["secret"])
        assert sorted(e["data"]["alert_id"] for e in envs) == last
        assert httpx.delete(f"{api.url}/v1/webhooks/{hook['id']}", headers=manage).status_code == 204
        assert httpx.get(f"{api.url}/v1/webhooks", headers=manage).json() == {"webhooks": []}
    finally:
        stop_process(flow)
        api.stop()
