"""How a request names its org and its campaign (reliability report items 13 and 10), over real HTTP.

- A malformed ``X-Org`` header is a **400** with a JSON ``detail`` naming the header (it was FastAPI's
  422), on REST, ingest and SSE routes alike.
- Campaign ids ``.`` and ``..`` are valid ids (charset ``[A-Za-z0-9_.:-]``): ingest accepts and the flow
  counts them like any other id, and the API serves them at ``/v1/campaigns/%2E%2E/...`` (uvicorn decodes
  ``%2E`` after the client has sent it as is) and at ``/v1/campaigns/%252E%252E/...`` (what a browser must
  send: the WHATWG URL parser treats a ``%2E``/``%2E%2E`` segment as a dot segment and drops it). The
  dashboard builds that form and opens such a campaign (Chromium).

Data: events written to a file -> `callpulse ingest --replay` -> `callpulse flow --replay --no-recovery
--until-drained`, then a real uvicorn server (tests.support.ServerThread).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from engine.storage.keys import stats_key

pytestmark = pytest.mark.e2e

ORG = "org-1"
CAMPS = (".", "..", "c-plain")  # the same events under each id: the same figures
T0 = 1_767_000_000_000  # 2025-12-29, ms
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def campaign_events(camp: str) -> list[dict]:
    n = iter(range(10**6))

    def ev(type_: str, ts: int, **fields) -> dict:
        return {"event_id": f"{camp}-e{next(n)}", "type": type_, "ts": ts, "org_id": ORG, "campaign_id": camp,
                **fields}

    out = [ev("campaign.created", T0, name="dots", channel="voice", max_attempts=3, abandon_ceiling=0.03),
           ev("campaign.status", T0 + 1, status="active")]
    for i in range(3):
        out.append(ev("contact.added", T0 + 2 + i, contact_id=f"k{i}", phone_number=f"+1555000{i:04d}"))
    for i in range(3):
        t = T0 + 1000 * (i + 1)
        out += [ev("call.dialed", t, contact_id=f"k{i}", attempt_id=f"a{i}"),
                ev("call.answered", t + 300, attempt_id=f"a{i}"),
                ev("call.ended", t + 900, attempt_id=f"a{i}", sip_code=200)]
    return out


@pytest.fixture(scope="module")
def env(stack):
    events = [e for c in CAMPS for e in campaign_events(c)]
    s = stack(extra={"events.ndjson": events}, apps=[{"heartbeat_s": 1.0}],
              keys={"rw": {"org": ORG, "scopes": ["campaigns:read", "events:write"]},
                    "user": {"user": "ann", "orgs": [ORG], "scopes": ["campaigns:read"]}})
    counts = s.ingested[0]
    assert (counts["accepted"], counts["rejected"]) == (len(events), 0), counts
    client = s.redis
    assert all(client.exists(stats_key(ORG, c)) for c in CAMPS), "the flow folds every campaign, dots too"
    return {"url": s.url, "http": s.client("rw"), "key": s.keys["rw"], "user": s.keys["user"], "redis": client}


# ------------------------------------------------------------------ item 13: X-Org

@pytest.mark.parametrize("bad", ["org 1", "org/1", "x" * 129, "org\u00e9"])
def test_a_malformed_x_org_is_a_400_with_a_detail(env, bad):
    http = env["http"]
    header = {"X-Org": bad.encode("latin-1")}
    for method, path, key in (("GET", "/v1/campaigns", env["key"]), ("GET", "/v1/campaigns", env["user"]),
                              ("POST", "/v1/events", env["key"])):
        r = http.request(method, path, headers={"Authorization": f"Bearer {key}", **header},
                         content=b"[]" if method == "POST" else None)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert "X-Org" in r.json()["detail"], r.json()
    # an SSE route answers before any stream starts
    with http.stream("GET", "/v1/alerts", headers=header) as r:
        assert r.status_code == 400
        r.read()
        assert "X-Org" in r.json()["detail"]
    # a valid X-Org is still accepted, a foreign one still 403
    assert http.get("/v1/campaigns", headers={"X-Org": ORG}).status_code == 200
    assert http.get("/v1/campaigns", headers={"X-Org": "org-2"}).status_code == 403


def test_the_openapi_document_lists_the_x_org_400():
    doc = create_app("redis://127.0.0.1:1/0").openapi()
    op = doc["paths"]["/v1/campaigns"]["get"]
    x_org = next(p for p in op["parameters"] if p["name"].lower() == "x-org")
    assert x_org["in"] == "header" and "[A-Za-z0-9_.:-]{1,128}" in json.dumps(x_org)  # the id pattern, documented
    assert "X-Org is malformed" in op["responses"]["400"]["description"]


# ------------------------------------------------------------------ item 10: campaign ids "." and ".."

def test_dot_ids_are_listed_and_counted_like_any_other_id(env):
    r = env["http"].get("/v1/campaigns")
    assert r.status_code == 200
    assert [c["campaign_id"] for c in r.json()["campaigns"]] == sorted(CAMPS)
    plain = env["http"].get("/v1/campaigns/c-plain/stats").json()
    for camp, enc in ((".", "%2E"), ("..", "%2E%2E")):
        body = env["http"].get(f"/v1/campaigns/{enc}/stats").json()
        assert body["campaign_id"] == camp
        for k in ("contacts", "attempts", "outcomes", "answered", "abandon", "diagnostics"):
            assert body[k] == plain[k], (camp, k)


@pytest.mark.parametrize(("camp", "seg"), [(".", "%2E"), (".", "%2e"), ("..", "%2E%2E"), ("..", "%2e%2E"),
                                           (".", "%252E"), ("..", "%252E%252E"), ("..", "%252e%252e")])
def test_dot_ids_are_reachable_percent_encoded(env, camp, seg):
    http = env["http"]
    url = httpx.URL(env["url"] + f"/v1/campaigns/{seg}/stats")
    assert url.raw_path == f"/v1/campaigns/{seg}/stats".encode(), "sent as written, not normalised"
    r = http.get(url)
    assert r.status_code == 200, r.text
    assert r.json()["campaign_id"] == camp
    r = http.get(f"/v1/campaigns/{seg}")
    assert r.status_code == 200 and r.json()["campaign_id"] == camp
    r = http.get(f"/v1/campaigns/{seg}/contacts")
    assert r.status_code == 200 and r.json()["total"] == 3
    r = http.get(f"/v1/campaigns/{seg}/calls")
    assert r.status_code == 200 and r.json()["total"] == 3
    with http.stream("GET", f"/v1/campaigns/{seg}/live", timeout=10) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:"):
                assert json.loads(line[5:])["campaign_id"] == camp
                break
    page = http.get(f"/campaigns/{seg}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_a_literal_dot_segment_sent_as_is_is_not_normalised_by_the_api(env):
    # what curl --path-as-is or python-requests (which decodes %2E back to ".") put on the wire
    import socket

    port = int(env["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /v1/campaigns/../stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {env['key']}\r\n"
                  f"Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(body)["campaign_id"] == ".."


def test_percent_encoded_segments_other_than_dots_stay_invalid(env):
    # only a whole segment %2E / %2E%2E (sent as %252E…) stands for a dot id: "%" is no id character
    for seg in ("%252Ex", "%252E%252E%252E", "a%2525"):
        assert env["http"].get(f"/v1/campaigns/{seg}/stats").status_code == 422, seg
    assert env["http"].get("/v1/campaigns/...").status_code == 404  # a valid id, no such campaign


def test_the_dashboard_opens_dot_campaigns(env, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing: {CHROMIUM} not found (scripts/setup.sh with CALLPULSE_TEST_EXTRAS=1)")
    from playwright.sync_api import expect, sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000)
    errors: list[str] = []
    try:
        pg = browser.new_page()
        pg.set_default_timeout(15_000)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        requested: list[str] = []
        pg.on("request", lambda req: requested.append(req.url))
        # from the list: the link of ".." and of "."
        pg.goto(env["url"] + "/#key=" + env["key"])
        for camp, seg in (("..", "%252E%252E"), (".", "%252E")):
            link = pg.locator(f'a[href="/campaigns/{seg}"]')
            expect(link).to_have_text("dots")  # the campaign's name; its id below it
            expect(link.locator("xpath=following-sibling::div[1]")).to_contain_text(camp)
        pg.locator('a[href="/campaigns/%252E%252E"]').click()
        expect(pg.locator("#camp-title")).to_have_text("dots ..")  # the name, then the id
        expect(pg.locator("#org-label")).to_have_text("org " + ORG)
        expect(pg.locator("#camp-err")).to_have_text("")
        pg.wait_for_selector('#conn[data-state="live"]')
        assert pg.url.endswith("/campaigns/%252E%252E")
        expect(pg.locator("#csv")).to_have_attribute("href", "/v1/campaigns/%252E%252E/attempt-report.csv")
        # opened directly by its address (a reload, a shared link)
        pg.goto(env["url"] + "/campaigns/%252E")
        expect(pg.locator("#camp-title")).to_have_text("dots .")
        expect(pg.locator("#org-label")).to_have_text("org " + ORG)
        expect(pg.locator("#camp-err")).to_have_text("")
        bad = [u for u in requested if "/v1/stats" in u or u.rstrip("/").endswith("/v1/campaigns/stats")]
        assert not bad, f"the page asked for collapsed URLs: {bad}"
    finally:
        browser.close()
        pw.stop()
    assert not errors, f"JavaScript errors on the page: {errors}"
