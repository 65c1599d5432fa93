"""Issue #9 items 6 and 7 (the parts done): a broken JSON array body is refused whole with its
position; CORS is off by default and follows the allow-list when set."""

from __future__ import annotations

import httpx

from api.app import create_app
from api.auth import create_key
from tests.support import ServerThread


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
