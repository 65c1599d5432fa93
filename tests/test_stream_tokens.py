"""Issue #11: stream tokens let a browser `EventSource` open the SSE routes (api/stream_tokens.py).

Real Redis (conftest), campaigns folded by the real flow, a real uvicorn server, real HTTP; and a
plain `new EventSource(url)` in Debian's headless Chromium (Playwright, as tests/test_dashboard.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from api.auth import create_key, revoke_key
from api.stream_tokens import MAX_TTL_S, RedactTokens, token_record_key
from tests.support import read_sse

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def env(stack):
    s = stack(["--orgs", "2", "--campaigns", "2", "--contacts", "20", "--channel", "voice"],
              apps=[{"heartbeat_s": 1.0}],
              keys={"read": {"org": "org-1", "scopes": ["campaigns:read"]},
                    "write": {"org": "org-1", "scopes": ["events:write"]},
                    "org2": {"org": "org-2", "scopes": ["campaigns:read"]}})
    camps = sorted({(e["org_id"], e["campaign_id"]) for e in s.events})
    org1 = [c for o, c in camps if o == "org-1"]
    return {"url": s.url, "http": s.client(), "keys": s.keys, "camps": org1, "redis": s.redis}


def H(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def mint(env, key: str | None = None, **body) -> dict:
    r = env["http"].post("/v1/stream-tokens", headers=H(key or env["keys"]["read"]), json=body or None)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def first_frame(url: str, path: str, token: str, event: str = "frame") -> tuple[int, dict | None]:
    """Open an SSE route with ``?token=``: (status, data of the first `event`) — None when not 200."""
    async def go():
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            async with c.stream("GET", path, params={"token": token}) as r:
                if r.status_code != 200:
                    await r.aread()
                    return r.status_code, r.json()
                got = {}

                def on(ev, _id, data):
                    if ev == event:
                        got["data"] = json.loads(data)
                        return True
                    return False
                await asyncio.wait_for(read_sse(r, on), timeout=15)
                return 200, got["data"]
    return asyncio.run(go())


# ------------------------------------------------------------------ issuing

def test_issue_defaults_and_campaign_scope(env):
    t = mint(env)
    assert t["token"].startswith("st_") and t["org_id"] == "org-1" and t["campaign_id"] is None
    assert t["ttl_s"] == 300
    camp = env["camps"][0]
    t = mint(env, campaign_id=camp, ttl_s=60)
    assert t["campaign_id"] == camp and t["ttl_s"] == 60
    ttl_ms = env["redis"].pttl(token_record_key(t["token"].split("_")[1]))
    assert 50_000 < ttl_ms <= 60_000, "the Redis record expires with the token"


def test_issue_refusals(env):
    http = env["http"]
    assert http.post("/v1/stream-tokens").status_code == 401
    assert http.post("/v1/stream-tokens", headers=H(env["keys"]["write"])).status_code == 403
    assert http.post("/v1/stream-tokens", headers=H(env["keys"]["read"]),
                     json={"campaign_id": "no-such"}).status_code == 404
    for bad in ({"ttl_s": MAX_TTL_S + 1}, {"ttl_s": 0}, {"campaign_id": "a b"}, {"scope": "x"}):
        assert http.post("/v1/stream-tokens", headers=H(env["keys"]["read"]), json=bad).status_code == 422, bad
    # a stream token cannot mint another one
    t = mint(env)["token"]
    assert http.post("/v1/stream-tokens", headers=H(t)).status_code == 401


# ------------------------------------------------------------------ using

def test_token_opens_the_campaign_stream_and_org_alerts(env):
    camp = env["camps"][0]
    status, frame = first_frame(env["url"], f"/v1/campaigns/{camp}/live", mint(env, campaign_id=camp)["token"])
    assert status == 200 and frame["campaign_id"] == camp and frame["seq"] >= 1
    status, frame = first_frame(env["url"], f"/v1/campaigns/{camp}/live", mint(env)["token"])  # org-wide token
    assert status == 200 and frame["campaign_id"] == camp
    async def org_stream_opens():
        async with httpx.AsyncClient(base_url=env["url"], timeout=20) as c:
            async with c.stream("GET", "/v1/alerts", params={"token": mint(env)["token"]}) as r:
                return r.status_code, r.headers["content-type"]
    status, ctype = asyncio.run(org_stream_opens())
    assert status == 200 and ctype.startswith("text/event-stream")


def test_wrong_campaign_and_org_wide_stream_refuse_a_campaign_token(env):
    a, b = env["camps"][:2]
    token = mint(env, campaign_id=a)["token"]
    status, body = first_frame(env["url"], f"/v1/campaigns/{b}/live", token)
    assert status == 403 and a in body["detail"]
    status, _ = first_frame(env["url"], "/v1/alerts", token, event="alert")
    assert status == 403


def test_another_orgs_token_sees_no_campaign(env):
    token = mint(env, key=env["keys"]["org2"])["token"]
    status, _ = first_frame(env["url"], f"/v1/campaigns/{env['camps'][0]}/live", token)
    assert status == 404  # as with a key: another org's campaign does not exist


def test_expired_unknown_and_forged_tokens(env):
    camp = env["camps"][0]
    path = f"/v1/campaigns/{camp}/live"
    token = mint(env, campaign_id=camp)["token"]
    tid = token.split("_")[1]
    env["redis"].hset(token_record_key(tid), "expires_ms", int(time.time() * 1000) - 1)
    status, body = first_frame(env["url"], path, token)
    assert status == 401 and "expired" in body["detail"]
    env["redis"].delete(token_record_key(tid))  # what Redis does at the end of the token's TTL
    assert first_frame(env["url"], path, token)[0] == 401
    live = mint(env)["token"]
    assert first_frame(env["url"], path, live[:-4] + "AAAA")[0] == 401  # right id, wrong secret
    assert first_frame(env["url"], path, "st_nothing")[0] == 401
    status, body = first_frame(env["url"], path, "")  # `?token=` empty: a bad token, not a missing key
    assert status == 401 and body["detail"] == "invalid stream token"


def test_revoking_the_key_ends_its_tokens(env):
    kid, key = create_key(env["redis"], org="org-1", scopes=["campaigns:read"])
    token = mint(env, key=key)["token"]
    path = f"/v1/campaigns/{env['camps'][0]}/live"
    assert first_frame(env["url"], path, token)[0] == 200
    revoke_key(env["redis"], kid)
    status, body = first_frame(env["url"], path, token)
    assert status == 401 and "revoked" in body["detail"]


def test_never_accepted_by_rest_routes(env):
    http, camp = env["http"], env["camps"][0]
    token = mint(env, campaign_id=camp)["token"]
    for path in (f"/v1/campaigns/{camp}/stats", f"/v1/campaigns/{camp}", "/v1/campaigns", "/v1/alerts/recent"):
        r = http.get(path, params={"token": token})
        assert r.status_code == 401 and "stream tokens open only" in r.json()["detail"], path
        r = http.get(path, headers=H(token))
        assert r.status_code == 401, path
    r = http.post("/v1/events", params={"token": token}, content=b"[]")
    assert r.status_code == 401
    # nor as a Bearer on the SSE routes: there a token is a query parameter only
    r = http.get(f"/v1/campaigns/{camp}/live", headers=H(token))
    assert r.status_code == 401


def test_header_and_token_together_are_refused(env):
    camp = env["camps"][0]
    r = env["http"].get(f"/v1/campaigns/{camp}/live", headers=H(env["keys"]["read"]),
                        params={"token": mint(env)["token"]})
    assert r.status_code == 400 and r.json()["detail"] == "send either Authorization or ?token=, not both"
    r = env["http"].get("/v1/alerts", headers=H(env["keys"]["read"]), params={"token": ""})
    assert r.status_code == 400  # whatever either holds


def test_tokens_never_reach_the_access_log():
    logger = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, RedactTokens) for f in logger.filters), "create_app installs the filter"
    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                            ("127.0.0.1:5", "GET", "/v1/alerts?x=1&token=st_0123456789ab_SECRETsecret1234&y=2",
                             "1.1", 200), None)
    RedactTokens().filter(rec)
    line = rec.getMessage()
    assert "SECRET" not in line and "token=[redacted]&y=2" in line


# ------------------------------------------------------------------ a real browser EventSource

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing: {CHROMIUM} (scripts/setup.sh installs it with CALLPULSE_TEST_EXTRAS=1)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


OPEN_EVENT_SOURCE = """async (url) => await new Promise((resolve) => {
    const es = new EventSource(url);
    const done = (out) => { es.close(); resolve(out); };
    es.addEventListener('frame', (e) => done({frame: JSON.parse(e.data), lastEventId: e.lastEventId}));
    es.onerror = () => done({error: true, readyState: es.readyState});
    setTimeout(() => done({timeout: true}), 10000);
})"""


def test_browser_event_source_receives_a_frame(env, browser):
    camp = env["camps"][0]
    page = browser.new_page()
    try:
        page.goto(env["url"] + "/healthz")  # any page of the API's origin
        token = mint(env, campaign_id=camp)["token"]
        got = page.evaluate(OPEN_EVENT_SOURCE, f"/v1/campaigns/{camp}/live?token={token}")
        assert "frame" in got, got
        assert got["frame"]["campaign_id"] == camp and got["lastEventId"]
        # the same EventSource with a wrong campaign's token fails (no endless reconnects: readyState CLOSED)
        got = page.evaluate(OPEN_EVENT_SOURCE, f"/v1/campaigns/{env['camps'][1]}/live?token={token}")
        assert got == {"error": True, "readyState": 2}, got
        got = page.evaluate(OPEN_EVENT_SOURCE, f"/v1/campaigns/{camp}/live?key={env['keys']['read']}")
        assert got == {"error": True, "readyState": 2}, got
    finally:
        page.close()
