"""Chaos on the whole stack: nothing acknowledged is lost, nothing is counted twice.

A seeded event log is sent through `POST /v1/events` of a real `callpulse api` by a sender that retries
each chunk until it gets a 200 (as the API asks with its 503s). Meanwhile:

- the flow (`callpulse flow --replay`, recovery on) is SIGKILLed three times and restarted;
- the API is SIGKILLed in the middle of a request, between its claim and its append (a TCP proxy
  between API and Redis withholds the append), and restarted;
- Redis is restarted (AOF on: a graceful stop loses nothing it acknowledged).

Then every event of the log is on the ingest streams exactly once (the repeats inside the log as
duplicate markers), and every campaign's stored `/stats` body and alert history equal `callpulse replay`
of the log.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter

import httpx
import orjson
import pytest

from api.auth import create_key
from callpulse.redis_local import free_port
from callpulse.simulator import SimConfig, generate
from flows.dataset import ensure
from tests.redis_faults import RedisProcess
from tests.support import CALLPULSE, ROOT, env_for, wait_until
from tests.tcp_proxy import TcpProxy
from tests.test_flow import PARTS, check_alerts, offline_replay, run_flow, start_flow, stored_bodies, write_ndjson
from tests.test_ingest_claims import stream_contents

pytestmark = pytest.mark.e2e

CHUNK = 150


class Sender(threading.Thread):
    """POSTs the log chunk by chunk, each retried until a 200; counts what it was answered."""

    def __init__(self, url: str, key: str, items: list[dict]):
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
        self.done = 0  # chunks acknowledged
        self.accepted = self.duplicates = self.tries = 0
        self.rejected: list = []
        self.refusals: Counter = Counter()  # what the failed tries got: a status code, or an exception type

    def wait_for(self, fraction: float) -> None:
        """Until that share of the log is acknowledged; the sender must still be sending (the faults land
        mid-stream)."""
        n = len(self.chunks)
        wait_until(lambda: self.done >= fraction * n or not self.is_alive(), timeout=120,
                   what=f"{fraction:.0%} of the log sent")
        assert self.is_alive(), "the log went in before the faults: make it longer"

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        for chunk in self.chunks:
            body = orjson.dumps(chunk)
            while True:
                self.tries += 1
                try:
                    r = httpx.post(f"{self.url}/v1/events", content=body, headers=headers, timeout=15)
                except httpx.HTTPError as exc:
                    self.refusals[type(exc).__name__] += 1
                    time.sleep(0.2)
                    continue
                if r.status_code == 200:
                    break
                self.refusals[r.status_code] += 1
                time.sleep(min(float(r.headers.get("Retry-After", "0.2")), 1.0))
            out = r.json()
            self.accepted += out["accepted"]
            self.duplicates += out["duplicates"]
            self.rejected += out["rejected"]
            self.done += 1
            time.sleep(0.03)  # a dialer's pace, so the faults land mid-stream


def _api(port: int, redis_url: str, log) -> subprocess.Popen:
    env = dict(env_for(redis_url), CALLPULSE_PARTITIONS=str(PARTS))
    return subprocess.Popen(CALLPULSE + ["api", "--port", str(port), "--no-webhooks"], cwd=ROOT, env=env,
                            stdout=log, stderr=log, start_new_session=True)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_chaos_flow_kills_api_kill_mid_request_redis_restart_retrying_sender(tmp_path):
    items = list(generate(SimConfig(seed=77, orgs=1, campaigns=3, contacts=350, channel="mixed",
                                    duplicate_pct=2, jitter_ms=3000, abandon_prob=0.1)))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    org = items[0]["org_id"]
    rng = random.Random(77)

    rp = RedisProcess(tmp_path / "redis").start()
    client = rp.client()
    proxy = TcpProxy(rp.port)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_log = open(tmp_path / "api.log", "ab")
    rec = str(tmp_path / "recovery")
    flow = api = None
    try:
        ensure(client)
        key = create_key(client, org=org, scopes=["events:write"])[1]
        api = _api(port, proxy.url, api_log)
        wait_until(lambda: _up(url), timeout=30, what="the API")
        flow = start_flow(rp.url, tmp_path, "--replay", "--recovery-dir", rec, "-s", "0.5")
        sender = Sender(url, key, items)
        sender.start()
        n = len(sender.chunks)
        at = sender.wait_for

        kills = 0
        for fraction in (0.1, 0.4, 0.75):  # the flow, SIGKILLed three times mid-stream
            at(fraction)
            time.sleep(rng.uniform(0.2, 0.8))
            _kill(flow)
            kills += flow.returncode == -signal.SIGKILL
            flow = start_flow(rp.url, tmp_path, "--replay", "--recovery-dir", rec, "-s", "0.5")
            if fraction == 0.1:  # the API, killed between claim and append
                at(0.25)
                proxy.arm(b"EVALSHA", "hold")
                assert proxy.triggered.wait(20), (tmp_path / "api.log").read_text()[-2000:]
                _kill(api)
                proxy.disarm()
                api = _api(port, proxy.url, api_log)
            if fraction == 0.4:  # Redis restarted (graceful: AOF fsynced)
                at(0.55)
                rp.stop()
                time.sleep(1.0)
                rp.start()
        sender.join(timeout=180)
        assert not sender.is_alive() and sender.done == n
        assert kills == 3
    finally:
        for proc in (flow, api):
            if proc is not None:
                _kill(proc)
        proxy.close()

    try:
        # every event the sender was answered for is stored once; the log's own repeats are markers
        unique = {e["event_id"] for e in items}
        repeats = len(items) - len(unique)
        copies, markers = stream_contents(client, PARTS)
        assert set(copies) == unique and set(copies.values()) == {1}
        assert markers == repeats and sender.accepted == len(unique) and sender.duplicates == repeats
        assert sender.rejected == []
        assert sender.tries > n, "no request was refused: the faults did not reach the sender"

        run_flow(rp.url, tmp_path, "--replay", "--recovery-dir", rec)  # the last restart, until drained
        want, want_alerts = offline_replay(rp.url, path, tmp_path)
        assert stored_bodies(client, want) == want
        check_alerts(client, want_alerts)
    finally:
        client.close()
        rp.stop()
