"""Per-key rate limits on POST /v1/events over real HTTP, shared by two API servers through Redis."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from api.app import create_app
from api.auth import create_key
from tests.support import ServerThread

pytestmark = pytest.mark.e2e


def events(n, tag):
    now = int(time.time() * 1000)
    return orjson.dumps([{"event_id": f"{tag}-{i}", "type": "campaign.status", "ts": now, "org_id": "org-1",
                          "campaign_id": "rl", "status": "active"} for i in range(n)])


def post(url, key, body):
    return httpx.post(url + "/v1/events", headers={"Authorization": f"Bearer {key}"}, content=body, timeout=10)


def test_request_limit_is_per_key_shared_across_servers_and_says_when_to_retry(redis_url, redis_client):
    a_id, a = create_key(redis_client, org="org-1")
    _b_id, b = create_key(redis_client, org="org-1")
    one = ServerThread(create_app(redis_url, ingest_rate="3/hour")).start()
    two = ServerThread(create_app(redis_url, ingest_rate="3/hour")).start()
    try:
        codes = [post(srv.url, a, events(1, f"a{i}")).status_code for i, srv in enumerate([one, two, one])]
        assert codes == [200, 200, 200]  # under the limit, counted across both servers
        r = post(two.url, a, events(1, "a-over"))
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 3600
        body = r.json()
        assert (body["scope"], body["limit"], body["retry_after_s"]) == ("requests", "3/hour",
                                                                         int(r.headers["Retry-After"]))
        assert "rate limit exceeded" in body["detail"]
        assert post(one.url, b, events(1, "b0")).status_code == 200  # another key is unaffected
        assert redis_client.keys(f"callpulse:ratelimit:*{a_id}*")  # the counters live in Redis
        # the refused request was not ingested
        assert post(one.url, b, events(1, "a-over")).json()["accepted"] == 1
    finally:
        one.stop()
        two.stop()


def test_event_limit_counts_the_events_of_each_body(redis_url, redis_client):
    _id, a = create_key(redis_client, org="org-1")
    _id2, b = create_key(redis_client, org="org-1")
    srv = ServerThread(create_app(redis_url, ingest_event_rate="10/hour")).start()
    try:
        assert post(srv.url, a, events(6, "x")).json()["accepted"] == 6
        r = post(srv.url, a, events(6, "y"))  # 12 > 10: refused whole, nothing counted
        assert r.status_code == 429 and r.json()["scope"] == "events" and int(r.headers["Retry-After"]) >= 1
        assert post(srv.url, a, events(4, "z")).json()["accepted"] == 4  # exactly up to the limit
        assert post(srv.url, b, events(10, "w")).status_code == 200
        r = post(srv.url, b, events(11, "v"))  # no window could ever admit it
        assert r.status_code == 413 and "smaller batches" in r.json()["detail"]
    finally:
        srv.stop()


def test_limits_are_off_by_default(redis_url, redis_client):
    _id, a = create_key(redis_client, org="org-1")
    srv = ServerThread(create_app(redis_url)).start()
    try:
        assert [post(srv.url, a, events(1, f"d{i}")).status_code for i in range(15)] == [200] * 15
        assert redis_client.keys("callpulse:ratelimit:*") == []
    finally:
        srv.stop()
