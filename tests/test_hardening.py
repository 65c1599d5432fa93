"""Issue #9 items 6 and 7 (the parts done): a broken JSON array body is refused whole with its
position; CORS is off by default and follows the allow-list when set, and shows a page of another origin
the headers it needs (issue 24). A malformed setting stops `callpulse api` with one line (issue 24)."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from api.app import EXPOSED_HEADERS, create_app
from api.auth import create_key
from tests.support import CALLPULSE, ROOT, ServerThread, env_for

pytestmark = pytest.mark.e2e


def test_json_array_with_nan_or_bad_utf8_is_a_400_that_says_where(redis_url, redis_client):
    key = create_key(redis_client, org="org-1")[1]
    api = ServerThread(create_app(redis_url)).start()
    try:
        h = {"Authorization": f"Bearer {key}"}
        ok = b'{"event_id":"e1","type":"contact.added","ts":1,"org_id":"org-1","campaign_id":"c","contact_id":"k"}'
        for bad, where in ((b"[" + ok + b",\n NaN]", f"byte offset {len(ok) + 4} (line 2"),
                           (b"[" + ok + b',"\xff"]', f"invalid UTF-8 at byte offset {len(ok) + 3} (line 1)")):
            r = httpx.post(api.url + "/v1/events", content=bad, headers=h)
            assert r.status_code == 400, r.text
            detail = r.json()["detail"]
            assert "not valid JSON" in detail and where in detail, detail
        # NDJSON keeps its per-line verdicts
        r = httpx.post(api.url + "/v1/events", content=ok + b"\nNaN\n", headers=h)
        assert r.status_code == 200 and [x["index"] for x in r.json()["rejected"]] == [1]
    finally:
        api.stop()


def test_cors_is_off_by_default_and_follows_the_allow_list(redis_url):
    pre = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"}
    off = ServerThread(create_app(redis_url)).start()
    on = ServerThread(create_app(redis_url, cors_origins="https://dash.example")).start()
    try:
        r = httpx.options(off.url + "/v1/campaigns", headers=pre)
        assert "access-control-allow-origin" not in r.headers
        r = httpx.options(on.url + "/v1/campaigns", headers=pre)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://dash.example"
        r = httpx.options(on.url + "/v1/campaigns", headers=dict(pre, Origin="https://evil.example"))
        assert "access-control-allow-origin" not in r.headers
    finally:
        off.stop()
        on.stop()


def test_cors_exposes_the_response_headers_a_page_reads(redis_url, redis_client):
    """Retry-After (429/503), X-Min-Sample (/live), Content-Disposition (CSV), Allow (405) and WWW-Authenticate
    (401) read as null from another origin unless exposed."""
    key = create_key(redis_client, org="org-1")[1]
    on = ServerThread(create_app(redis_url, cors_origins="https://dash.example")).start()
    try:
        r = httpx.get(on.url + "/v1/campaigns", headers={"Origin": "https://dash.example"})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "https://dash.example"
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert exposed >= {"retry-after", "x-min-sample", "content-disposition", "allow", "www-authenticate"}
        assert exposed == {h.lower() for h in EXPOSED_HEADERS}
        # every non-safelisted header the API sets on an answer a page may read is in the list
        r = httpx.get(on.url + "/v1/campaigns/nope/live", headers={"Origin": "https://dash.example",
                                                                    "Authorization": f"Bearer {key}"})
        assert r.status_code == 404 and "access-control-expose-headers" in r.headers
        pre = {"Origin": "https://dash.example", "Access-Control-Request-Method": "DELETE"}
        assert httpx.options(on.url + "/v1/webhooks/wh_0", headers=pre).status_code == 200  # DELETE is allowed
    finally:
        on.stop()


@pytest.mark.parametrize("setting, value", [
    ("CALLPULSE_INGEST_RATE", "lots"), ("CALLPULSE_INGEST_RATE", "0/second"),
    ("CALLPULSE_INGEST_EVENT_RATE", "10/fortnight"), ("CALLPULSE_WEBHOOK_TIMEOUT_S", "soon"),
    ("CALLPULSE_HEADER_TIMEOUT_S", "x"), ("CALLPULSE_METRICS_MAX_CAMPAIGNS", "all"),
    ("CALLPULSE_SSE_MAX_CONNECTIONS", "0"), ("CALLPULSE_REDIS_URL", "localhost:6379")])
def test_a_malformed_setting_stops_the_api_with_one_line(setting, value):
    env = dict(env_for("redis://127.0.0.1:1/0"), **{setting: value})
    r = subprocess.run(CALLPULSE + ["api", "--port", "1"], cwd=ROOT, env=env, capture_output=True, timeout=60,
                       text=True)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines[0].startswith("callpulse api: ") and setting in lines[0] and repr(value) in lines[0], lines
