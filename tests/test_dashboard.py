"""The live dashboard (issue #6) in a real browser against the real stack.

Debian's Chromium (``/usr/bin/chromium``, headless) driven by Playwright; real Redis (conftest),
the real flow in **live mode** (`callpulse flow --no-recovery --min-sample 5`), real uvicorn
(`ServerThread(create_app(...))`). Events are appended straight to the ingest streams with
``flows.ingest_writer.StreamAppender``, stamped near the wall clock. Every wait has a timeout.

Screenshots go to ``tmp_path`` and, when ``CALLPULSE_ARTIFACTS`` is set, are also copied into that
directory (created if missing).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis

from api.app import create_app
from api.auth import create_key
from engine.storage.keys import stats_key
from flows.ingest_writer import StreamAppender
from tests.support import CALLPULSE, ROOT, ServerThread, env_for, stop_process, wait_until

try:
    from playwright.sync_api import expect
except ImportError:  # reported by the fixture as a failure, not a skip
    expect = None

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ORG = "org-1"
LIVE = "cmp-dash-live"
BREACH = "cmp-dash-breach"
EMAIL = "cmp-dash-email"
T = 15_000  # ms: the longest any single browser wait may take

_ids = itertools.count()


def now_ms() -> int:
    return int(time.time() * 1000)


def ev(type_: str, camp: str, ts: int | None = None, **fields) -> dict:
    return {"event_id": f"dash-{next(_ids)}", "type": type_, "ts": ts if ts is not None else now_ms(),
            "org_id": ORG, "campaign_id": camp, **fields}


def campaign(camp: str, name: str, contacts: int) -> list[dict]:
    t = now_ms() - 5_000
    out = [ev("campaign.created", camp, t, name=name, channel="voice", max_attempts=3, abandon_ceiling=0.03),
           ev("campaign.status", camp, t + 1, status="active")]
    out += [ev("contact.added", camp, t + 2, contact_id=f"{camp}-c{i}", phone_number=f"+1555000{i:04d}")
            for i in range(contacts)]
    return out


def email_campaign(camp: str) -> list[dict]:
    """A small email campaign, already completed: 4 sends, 3 delivered, 2 opened, 1 reply, costs."""
    t = now_ms() - 60_000
    out = [ev("campaign.created", camp, t, name="Mail <b>run</b>", channel="email"),
           ev("campaign.status", camp, t + 1, status="active")]
    for i in range(4):
        c, m = f"{camp}-c{i}", f"{camp}-m{i}"
        out += [ev("contact.added", camp, t + 2, contact_id=c, email=f"c{i}@example.com"),
                ev("email.sent", camp, t + 1000 + i, contact_id=c, message_id=m),
                ev("contact.status", camp, t + 5000, contact_id=c, status="completed")]
        if i < 3:
            out.append(ev("email.delivered", camp, t + 2000, message_id=m))
        if i < 2:
            out.append(ev("email.opened", camp, t + 3000, message_id=m))
    out += [ev("email.replied", camp, t + 4000, message_id=f"{camp}-m0", sentiment="positive"),
            ev("cost.incurred", camp, t + 4000, category="email_sending", usd=0.25),
            ev("campaign.status", camp, t + 6000, status="completed")]
    return out


def abandoned_calls(camp: str, k: int, first: int) -> list[dict]:
    """k calls answered by a human and never bridged: each one is an abandon."""
    t = now_ms() - 3_000
    out = []
    for i in range(first, first + k):
        c, a = f"{camp}-c{i}", f"{camp}-a{i}"
        out += [ev("call.dialed", camp, t, contact_id=c, attempt_id=a),
                ev("call.answered", camp, t + 500, attempt_id=a),
                ev("call.ended", camp, t + 1500, attempt_id=a, sip_code=200)]
    return out


@pytest.fixture(scope="module")
def stack(redis_server, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing: {CHROMIUM} not found. Install it with "
                    "`apt-get install -y chromium chromium-driver` (scripts/setup.sh does it with "
                    "CALLPULSE_TEST_EXTRAS=1). Never `playwright install`.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `.venv/bin/pip install 'playwright>=1.40'` (test extras)")

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    flow = subprocess.Popen(CALLPULSE + ["flow", "--no-recovery", "--min-sample", "5"], cwd=ROOT,
                            env=env_for(redis_server), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    key = create_key(client, org=ORG, scopes=["campaigns:read"])[1]

    def append(events: list[dict]) -> None:
        with StreamAppender(client) as app:
            app.add_many(events)
            app.flush()

    pw = browser = None
    server = None
    try:
        append(campaign(LIVE, "Live floor", 20) + campaign(BREACH, "Breach floor", 12) + email_campaign(EMAIL))
        wait_until(lambda: all(client.exists(stats_key(ORG, c)) for c in (LIVE, BREACH, EMAIL)),
                   timeout=30, what="the flow to write the campaigns")
        server = ServerThread(create_app(redis_server, heartbeat_s=1.0)).start()
        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000)
        env = {"client": client, "url": redis_server, "key": key, "append": append, "browser": browser,
               "server": server, "make_server": lambda port: ServerThread(
                   create_app(redis_server, heartbeat_s=1.0), port=port).start()}
        yield env
    finally:
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
        if server is not None:
            server.stop()
        srv = locals().get("env", {}).get("server")
        if srv is not None and srv is not server:
            srv.stop()
        stop_process(flow)
        client.close()


@pytest.fixture
def page(stack):
    ctx = stack["browser"].new_context(timezone_id="UTC", viewport={"width": 1400, "height": 1000},
                                       accept_downloads=True)
    ctx.set_default_timeout(T)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def base(stack) -> str:
    return stack["server"].url


def text(pg, metric: str) -> str:
    return pg.locator(f'[data-m="{metric}"]').inner_text()


def wait_text(pg, metric: str, expected: str, timeout: int = T) -> None:
    # expect() polls without eval(): the page's Content-Security-Policy (no 'unsafe-eval') stays on
    expect(pg.locator(f'[data-m="{metric}"]')).to_have_text(expected, timeout=timeout)


def wait_live(pg, timeout: int = T) -> None:
    pg.wait_for_selector('#conn[data-state="live"]', timeout=timeout)


def save_screenshot(pg, tmp_path: Path, name: str, full_page: bool = True) -> Path:
    out = tmp_path / name
    pg.screenshot(path=str(out), full_page=full_page)
    assert out.stat().st_size > 10_000
    dest = os.environ.get("CALLPULSE_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(dest) / name)
    return out


# ------------------------------------------------------------------------------------------ tests

def test_list_then_campaign_view(stack, page):
    page.goto(f"{base(stack)}/?key={stack['key']}")
    rows = page.locator("#campaigns tbody tr")
    rows.first.wait_for()
    # worst first, then by name: nothing alerts and nothing is live yet (idle, completed), so by name
    assert [r.get_attribute("data-id") for r in rows.all()] == [BREACH, LIVE, EMAIL]
    assert "Mail <b>run</b>" in page.locator("#campaigns").inner_text()  # names are text, not markup
    expect(page.locator('#org-totals [data-t="live"]')).to_have_text("0 of 3live")
    assert "key=" not in page.url  # the key left the address bar (kept in sessionStorage)
    page.locator(f'#campaigns tr[data-id="{LIVE}"]').click()
    page.wait_for_url(f"**/campaigns/{LIVE}")
    wait_live(page)
    # the first frame may still be the page's /stats read: wait for the stream's banner (2 cores under load)
    expect(page.locator("#banner")).to_have_text(re.compile(r"^(Live|Idle — no dial in 30 s)$"))
    wait_text(page, "total", "20")
    # the name in the titles, the id beside it; the times say their zone (no window: UTC)
    expect(page.locator("#camp-title")).to_have_text(f"Live floor {LIVE}")
    assert page.locator("#camp-label").inner_text() == "/ Live floor" and "Live floor" in page.title()
    assert "times in UTC" in page.locator("#camp-sub").inner_text()
    assert page.locator("#calls thead th").first.inner_text() == "Started (UTC)"
    # every metric tile carries its definition as hover help ...
    titles = page.locator(".tile").evaluate_all("els => els.map(e => e.title)")
    assert len(titles) >= 40 and all(t.strip() for t in titles)
    # ... and behind a "?" button that the keyboard reaches: focus, Enter shows it, Tab goes to the next one
    bridged = page.locator('[data-m="connected_per_hour"]').locator("xpath=..")
    bridged.locator(".help").focus()
    page.keyboard.press("Enter")
    expect(bridged.locator(".def")).to_be_visible()
    expect(bridged.locator(".def")).to_contain_text("Calls bridged to an agent per hour")
    assert bridged.evaluate("e => e.contains(document.activeElement)")
    page.keyboard.press("Tab")
    page.keyboard.press(" ")
    expect(page.locator('[data-m="avg_ring_ms"]').locator("xpath=..").locator(".def")).to_be_visible()
    bridged.locator(".help").click()  # a tap (touch) is a click: it closes it again
    expect(bridged.locator(".def")).to_be_hidden()
    assert page.locator("#f-chips").inner_text() == ""  # the "?" of a drill-down tile does not drill
    assert page.locator("#csv").get_attribute("href") == f"/v1/campaigns/{LIVE}/attempt-report.csv"


def test_unknown_campaign_says_not_found(stack, page):
    page.goto(f"{base(stack)}/campaigns/cmp-no-such#key={stack['key']}")
    expect(page.locator("#notfound")).to_be_visible()
    expect(page.locator("#notfound")).to_contain_text("No campaign cmp-no-such in this key's org")
    expect(page.locator("#camp-title")).to_have_text("Campaign not found")
    for hidden in ("#live-grid", "#hero-wrap", "#stats-grid", "#calls-wrap", "#banner"):  # no skeleton of "—" tiles
        expect(page.locator(hidden)).to_be_hidden()
    page.locator("#notfound a").click()
    page.wait_for_url(f"{base(stack)}/")
    page.locator("#campaigns tbody tr").first.wait_for()


def test_bad_key_asks_for_a_key(stack, page):
    page.goto(f"{base(stack)}/campaigns/{LIVE}?key=ak_000000000000_wrongwrongwrongwrong")
    page.wait_for_selector("#auth:not([hidden])")
    assert "invalid API key" in page.locator("#auth-err").inner_text()
    page.fill("#key", stack["key"])
    page.click("#auth button[type=submit]")
    wait_live(page)


def test_live_grid_updates_from_the_stream(stack, page):
    page.goto(f"{base(stack)}/campaigns/{LIVE}#key={stack['key']}")  # a fragment works too
    wait_live(page)
    assert "key=" not in page.url
    wait_text(page, "pending", "20")
    seq0 = int(page.evaluate("document.body.dataset.seq"))
    # three more contacts, and two calls ringing right now
    t = now_ms()
    stack["append"]([ev("contact.added", LIVE, t, contact_id=f"{LIVE}-n{i}") for i in range(3)] +
                    [ev("call.dialed", LIVE, t, contact_id=f"{LIVE}-c{i}", attempt_id=f"{LIVE}-r{i}")
                     for i in range(2)])
    wait_text(page, "pending", "23")
    wait_text(page, "ringing", "2")
    wait_text(page, "active_calls", "2")
    wait_text(page, "total", "23")
    assert int(page.evaluate("document.body.dataset.seq")) > seq0
    assert text(page, "last_dial_at") != "—"
    # a call answered and bridged: In Progress moves, then connected after the end
    t = now_ms()
    stack["append"]([ev("call.answered", LIVE, t, attempt_id=f"{LIVE}-r0"),
                     ev("call.bridged", LIVE, t + 100, attempt_id=f"{LIVE}-r0")])
    wait_text(page, "in_progress", "1")
    wait_text(page, "ringing", "1")
    stack["append"]([ev("call.ended", LIVE, now_ms(), attempt_id=f"{LIVE}-r0", sip_code=200, wrap_ms=0),
                     ev("call.ended", LIVE, now_ms(), attempt_id=f"{LIVE}-r1", sip_code=486)])
    wait_text(page, "connected", "1")
    wait_text(page, "answer_rate", "50.0%")
    # today's totals (GET /stats/daily for the local date) follow the stream, re-read at most every 5 s
    wait_text(page, "t_dials", "2")
    wait_text(page, "t_connected", "1")
    wait_text(page, "t_ended", "2")
    # the chart opened with the API's history when it has one (the flow keeps a point a minute)
    with httpx.Client(base_url=base(stack), headers={"Authorization": f"Bearer {stack['key']}"}) as http:
        hist = http.get(f"/v1/campaigns/{LIVE}/history", params={"minutes": 60})
    if hist.status_code == 200 and hist.json()["points"]:
        assert int(page.locator("#spark").get_attribute("data-history")) >= 1
        expect(page.locator("#spark-range")).to_contain_text("1-min history")
    # the call table follows (page 1 refreshes when attempts change) with SIP friendly text
    expect(page.locator("#calls tbody")).to_contain_text("486 Line busy", timeout=T)
    assert page.locator("#calls tbody tr[data-i]").count() == 2


def test_breach_banner_and_alert(stack, page, tmp_path):
    page.goto(f"{base(stack)}/campaigns/{BREACH}?key={stack['key']}")
    wait_live(page)
    assert not page.locator("#alert-banner").is_visible()
    stack["append"](abandoned_calls(BREACH, 8, 0))  # 8 abandons of 8 human answers, min_sample 5
    page.wait_for_selector("#alert-banner.breach", state="visible", timeout=T)
    banner = page.locator("#alert-banner").inner_text()
    assert "BREACH" in banner and "100.00%" in banner and "ceiling 3.0%" in banner
    # the alert events themselves arrive on the stream too
    page.locator("#alert-list li", has_text="breach").first.wait_for(timeout=T)
    # the frames agree (the alert event may arrive a moment before the frame that carries it)
    expect(page.locator('[data-m="abandon_rate"]')).to_have_class("v lvl-breach", timeout=T)
    wait_text(page, "abandons", "8")
    assert text(page, "budget") == "0"
    # the disposition roll-up and today's totals agree with the tiles
    expect(page.locator('#dispo tr[data-outcome="abandoned"] td').nth(1)).to_have_text("8")
    expect(page.locator('#dispo tr[data-outcome="abandoned"] td').nth(2)).to_have_text("100.0%")
    expect(page.locator('#cstatus tr[data-status="pending"] td').nth(1)).to_have_text("12")
    wait_text(page, "t_abandoned", "8")
    # the attempt report CSV downloads with the key (a plain link could not send it)
    with page.expect_download(timeout=T) as dl:
        page.click("#csv")
    csv_text = Path(dl.value.path()).read_text()
    assert csv_text.count(f"{BREACH}-a") == 8
    save_screenshot(page, tmp_path, "dashboard-breach.png")


def test_resumes_after_api_restart(stack, page, tmp_path):
    page.goto(f"{base(stack)}/campaigns/{LIVE}?key={stack['key']}")
    wait_live(page)
    before = int(text(page, "total"))
    port = stack["server"].port
    stack["server"].stop()
    page.wait_for_selector('#conn[data-state="reconnecting"]', timeout=T)
    # events while the API is down are applied by the flow and shown after the resume
    stack["append"]([ev("contact.added", LIVE, now_ms(), contact_id=f"{LIVE}-down{i}") for i in range(2)])
    stack["server"] = wait_until(lambda: _try_start(stack, port), timeout=15, interval=0.3, what="API restart")
    wait_live(page)
    wait_text(page, "total", str(before + 2))
    # and the stream keeps updating afterwards
    stack["append"]([ev("contact.added", LIVE, now_ms(), contact_id=f"{LIVE}-up{i}") for i in range(4)])
    wait_text(page, "total", str(before + 6))
    assert page.locator("#conn").inner_text() == "live"
    save_screenshot(page, tmp_path, "dashboard-live.png")


def _try_start(stack, port):
    try:
        return stack["make_server"](port)
    except (RuntimeError, OSError, SystemExit):
        return None


def test_completed_email_campaign(stack, page):
    page.goto(f"{base(stack)}/campaigns/{EMAIL}?key={stack['key']}")
    wait_live(page)
    expect(page.locator("#banner")).to_have_text("Completed", timeout=T)
    expect(page.locator("#perf-wrap")).to_be_hidden()  # dials/connected over a call span: voice only
    expect(page.locator("#email-wrap")).to_be_visible()
    wait_text(page, "emails_sent", "4")
    wait_text(page, "delivery_rate", "75.0%")
    wait_text(page, "open_rate", "66.7%")
    wait_text(page, "reply_rate", "33.3%")
    wait_text(page, "completed", "4")
    wait_text(page, "cost_total", "$0.25")
    assert page.locator('[data-m="dials_per_sec"]').locator("xpath=..").locator(".k").inner_text() == "Sends/sec"
    assert "Mail <b>run</b>" in page.locator("#camp-title").inner_text()
    # a finished campaign shows no live rate (its figures are final) and no ETA
    expect(page.locator('[data-m="dials_per_sec"]')).to_be_hidden()
    assert page.locator('[data-s="eta"]').inner_text() == "campaign completed"
    # the message list (email's twin of the call list) with its CSV, when the API has one
    with httpx.Client(base_url=base(stack), headers={"Authorization": f"Bearer {stack['key']}"}) as http:
        listed = http.get(f"/v1/campaigns/{EMAIL}/messages", params={"limit": 50})
    if listed.status_code == 200:
        expect(page.locator("#messages tbody tr[data-i]")).to_have_count(listed.json()["total"])
        expect(page.locator("#m-info")).to_contain_text("4 messages")
        assert page.locator("#msgs-csv").get_attribute("href") == f"/v1/campaigns/{EMAIL}/messages.csv"
        with page.expect_download(timeout=T) as dl:
            page.click("#msgs-csv")
        assert Path(dl.value.path()).read_text().count(f"{EMAIL}-m") == 4
        page.select_option("#m-status", "replied")
        expect(page.locator("#m-info")).to_contain_text("1 matching message")
        expect(page.locator("#messages tbody tr[data-i]")).to_have_count(1)
        assert page.locator("#msgs-csv").get_attribute("href").endswith("messages.csv?status=replied")
    else:
        expect(page.locator("#msgs-wrap")).to_be_hidden()
