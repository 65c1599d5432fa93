"""Reliability #3: Redis out of memory (`maxmemory` reached, writes refused).

- the flow waits (and says so) instead of crashing, and once memory is freed it ends with exactly the
  bodies of `callpulse replay`;
- ingest (`tests/test_ingest_claims.py` covers the append itself) answers 503 with `Retry-After`, and
  the retry after memory is freed is stored once.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import orjson
import pytest

from api.app import create_app
from api.auth import create_key
from callpulse.simulator import SimConfig, generate
from flows.dataset import ensure
from tests.support import ServerThread
from tests.test_flow import append, offline_replay, start_flow, stored_bodies, write_ndjson
from tests.test_ingest_claims import events, stream_contents

pytestmark = pytest.mark.e2e


def _used(client) -> int:
    return int(client.info("memory")["used_memory"])


def test_flow_waits_out_a_redis_out_of_memory_and_ends_exact(tmp_path, redis_url, redis_client):
    items = list(generate(SimConfig(seed=5, orgs=1, campaigns=2, contacts=400, channel="voice",
                                    abandon_prob=0.1)))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    append(redis_client, items)
    ensure(redis_client)
    redis_client.config_set("maxmemory", _used(redis_client) + 256 * 1024)  # the flow's output will not fit
    proc = start_flow(redis_url, tmp_path, "--replay", "--no-recovery", "--until-drained")
    try:
        deadline = time.monotonic() + 60
        while b"out of memory" not in (tmp_path / "flow.log").read_bytes() and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "flow.log").read_text()[-2000:]
            time.sleep(0.2)
        assert b"out of memory" in (tmp_path / "flow.log").read_bytes(), (tmp_path / "flow.log").read_text()[-2000:]
        time.sleep(2)
        assert proc.poll() is None, "the flow must wait for memory, not exit"
        redis_client.config_set("maxmemory", 0)
        assert proc.wait(timeout=90) == 0, (tmp_path / "flow.log").read_text()[-2000:]
    finally:
        redis_client.config_set("maxmemory", 0)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    want, _alerts = offline_replay(redis_url, path, tmp_path)
    assert stored_bodies(redis_client, want) == want


def test_ingest_answers_out_of_memory_with_503_retry_after_and_the_retry_is_exact(redis_url, redis_client,
                                                                                  monkeypatch):
    monkeypatch.setenv("CALLPULSE_PARTITIONS", "4")
    ensure(redis_client)
    key = create_key(redis_client, org="o1", scopes=["events:write"])[1]
    body = orjson.dumps(events(200))
    server = ServerThread(create_app(redis_url)).start()
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        httpx.get(f"{server.url}/readyz", timeout=10)  # the API's own connections and reads, before the wall
        redis_client.config_set("maxmemory", 1)
        r = httpx.post(f"{server.url}/v1/events", content=body, headers=h, timeout=10)
        redis_client.config_set("maxmemory", 0)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1 and "out of memory" in r.json()["detail"]
        assert stream_contents(redis_client)[0] == {}  # a refused request stored nothing
        r = httpx.post(f"{server.url}/v1/events", content=body, headers=h, timeout=10)
    finally:
        redis_client.config_set("maxmemory", 0)
        server.stop()
    assert r.status_code == 200 and r.json()["accepted"] == 200 and r.json()["duplicates"] == 0, r.text
    copies, markers = stream_contents(redis_client)
    assert len(copies) == 200 and set(copies.values()) == {1} and markers == 0
