"""Reliability #1: an event the sender retried until it got 200 is stored exactly once.

The ingest path claims an event_id (org slot) and appends the event (partition slot) in two round trips
(flows/ingest_claims.py). A TCP proxy between the writer and a real redis-server withholds or cuts the
append; then the writer dies (a killed `callpulse api`) or the connection drops (a blip), and the
sender retries. Before the fix the claims stayed for an hour and the retry was answered as duplicates:
0 of 100 events stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter

import httpx
import orjson
import pytest
import redis

from api.app import create_app
from api.auth import create_key
from engine.storage.keys import DUPLICATE_FIELD, INGEST_FIELD, ingest_stream, seen_key
from flows.dataset import ensure
from flows.ingest_claims import accept_events
from tests.support import CALLPULSE, ROOT, ServerThread, env_for, wait_until
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

PARTS = 4
T0 = 1_767_000_000_000


def events(n: int, camps=("c1", "c2", "c3"), prefix="e") -> list[dict]:
    return [{"event_id": f"{prefix}{i}", "type": "contact.added", "ts": T0 + i, "org_id": "o1",
             "campaign_id": camps[i % len(camps)], "contact_id": f"k{i}"} for i in range(n)]


def stream_contents(client, parts: int = PARTS) -> tuple[Counter, int]:
    """(event_id -> copies on the ingest streams, duplicate markers)."""
    copies, markers = Counter(), 0
    for p in range(parts):
        for _id, fields in client.xrange(ingest_stream(p)):
            if INGEST_FIELD in fields:
                copies[orjson.loads(fields[INGEST_FIELD])["event_id"]] += 1
            elif fields.get(DUPLICATE_FIELD) == b"1":
                markers += 1
    return copies, markers


@pytest.fixture
def proxy(redis_url):
    p = TcpProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    yield p
    p.close()


@pytest.mark.parametrize("mode", ["cut_before", "cut_after"])
def test_a_blip_around_the_append_then_the_retry_stores_each_event_once(mode, redis_client, proxy):
    evs = events(100)
    via_proxy = redis.Redis.from_url(proxy.url)
    proxy.arm(b"EVALSHA", mode)
    with pytest.raises(redis.ConnectionError):
        accept_events(via_proxy, evs, partitions=PARTS)
    assert proxy.triggered.is_set()
    copies, _ = stream_contents(redis_client)
    assert sum(copies.values()) == (100 if mode == "cut_after" else 0)  # the cut came before / after Redis ran it

    assert accept_events(redis_client, evs, partitions=PARTS) == [True] * 100  # the retry: accepted, not duplicates
    copies, markers = stream_contents(redis_client)
    assert copies == Counter({ev["event_id"]: 1 for ev in evs}) and markers == 0
    assert {redis_client.get(seen_key("o1", ev["event_id"])) for ev in evs} == {b"1"}  # claims now final

    assert accept_events(redis_client, evs[:10], partitions=PARTS) == [False] * 10  # after the 200: duplicates
    copies, markers = stream_contents(redis_client)
    assert sum(copies.values()) == 100 and markers == 10


def test_claims_refused_by_a_redis_out_of_memory_leave_nothing_and_the_retry_is_exact(redis_client):
    evs = events(50)
    redis_client.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            accept_events(redis_client, evs, partitions=PARTS)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert stream_contents(redis_client) == (Counter(), 0)
    assert accept_events(redis_client, evs, partitions=PARTS) == [True] * 50
    assert sum(stream_contents(redis_client)[0].values()) == 50


def test_a_pending_claim_of_another_event_and_a_repeat_inside_one_call_are_duplicates(redis_client, proxy):
    first = events(1)
    via_proxy = redis.Redis.from_url(proxy.url)
    proxy.arm(b"EVALSHA", "cut_before")
    with pytest.raises(redis.ConnectionError):
        accept_events(via_proxy, first, partitions=PARTS)
    other = [{**first[0], "contact_id": "someone-else"}]  # same event_id, another event: not a retry of it
    assert accept_events(redis_client, other, partitions=PARTS) == [False]
    assert accept_events(redis_client, first + first, partitions=PARTS) == [True, False]  # the retry; its repeat
    copies, markers = stream_contents(redis_client)
    assert copies == Counter({"e0": 1}) and markers == 2
    assert orjson.loads(next(f for _i, f in redis_client.xrange(ingest_stream(_part(first[0])))
                             if INGEST_FIELD in f)[INGEST_FIELD])["contact_id"] == "k0"


def _part(ev) -> int:
    from engine.storage.keys import partition_for

    return partition_for(ev["org_id"], ev["campaign_id"], PARTS)


def _post(url: str, key: str, body: bytes, timeout: float = 10) -> httpx.Response:
    return httpx.post(f"{url}/v1/events", content=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})


def test_api_killed_between_claim_and_append_then_the_senders_retry_stores_every_event_once(
        tmp_path, redis_url, redis_client, proxy):
    ensure(redis_client)
    key = create_key(redis_client, org="o1", scopes=["events:write"])[1]
    body = orjson.dumps(events(100))
    from callpulse.redis_local import free_port

    port = free_port()
    env = dict(env_for(proxy.url), CALLPULSE_PARTITIONS=str(PARTS))
    log = open(tmp_path / "api.log", "wb")
    api = subprocess.Popen(CALLPULSE + ["api", "--port", str(port), "--no-webhooks"], cwd=ROOT, env=env,
                           stdout=log, stderr=log, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url), timeout=30, what="the API")
        proxy.arm(b"EVALSHA", "hold")  # the append never reaches Redis ...
        sent = threading.Thread(target=lambda: _swallow(_post, url, key, body), daemon=True)
        sent.start()
        assert proxy.triggered.wait(20), (tmp_path / "api.log").read_text()[-2000:]
        os.killpg(api.pid, signal.SIGKILL)  # ... and the API dies holding the claims
        api.wait(10)
    finally:
        if api.poll() is None:
            os.killpg(api.pid, signal.SIGKILL)
    assert sum(stream_contents(redis_client)[0].values()) == 0

    server = ServerThread(create_app(redis_url, partitions=PARTS)).start()  # the sender retries, on a fresh API
    try:
        r = _post(server.url, key, body)
    finally:
        server.stop()
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 100 and r.json()["duplicates"] == 0
    copies, markers = stream_contents(redis_client)
    assert len(copies) == 100 and set(copies.values()) == {1} and markers == 0


def test_api_answers_a_redis_blip_with_503_and_retry_after_and_the_retry_is_exact(redis_url, redis_client, proxy,
                                                                                  monkeypatch):
    monkeypatch.setenv("CALLPULSE_PARTITIONS", str(PARTS))
    ensure(redis_client)
    key = create_key(redis_client, org="o1", scopes=["events:write"])[1]
    body = orjson.dumps(events(100))
    server = ServerThread(create_app(proxy.url)).start()
    try:
        assert _post(server.url, key, orjson.dumps(events(1, prefix="warm"))).status_code == 200
        proxy.arm(b"EVALSHA", "cut_after")  # Redis appends, the API never hears back
        r = _post(server.url, key, body)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, r.text
        r = _post(server.url, key, body)
    finally:
        server.stop()
    assert r.status_code == 200 and r.json()["accepted"] == 100 and r.json()["duplicates"] == 0, r.text
    copies, markers = stream_contents(redis_client)
    assert len(copies) == 101 and set(copies.values()) == {1} and markers == 0


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _swallow(fn, *args):
    try:
        fn(*args, timeout=60)
    except httpx.HTTPError:
        pass
