"""Issue #11: /docs and /redoc work without internet access — their assets come from the API itself.

A real uvicorn server on a real Redis (conftest); the pages are parsed and every script, stylesheet
and icon they load must be a same-origin URL that answers 200 with content.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from api.app import create_app
from tests.support import ServerThread

pytestmark = pytest.mark.e2e


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        if tag == "img" and a.get("src"):
            self.urls.append(a["src"])


@pytest.fixture(scope="module")
def server(redis_server):
    srv = ServerThread(create_app(redis_server)).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_only_local_assets(server, page):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.get(page)
        assert r.status_code == 200
        parser = _Assets()
        parser.feed(r.text)
        assert parser.urls, "the page loads its UI from script/link tags"
        # inline JS may also name URLs (Swagger UI's `url: '/openapi.json'`): no absolute one may appear
        assert not re.findall(r"""["'](?:https?:)?//""", r.text), "the page names a remote URL"
        origin = urlsplit(server.url).netloc
        scripts = 0
        for url in parser.urls:
            full = urljoin(server.url + page, url)
            assert urlsplit(full).netloc == origin, f"{url} is not served by the API"
            asset = http.get(full)
            assert asset.status_code == 200, f"{url}: {asset.status_code}"
            assert len(asset.content) > 100, f"{url} is empty"
            if url.endswith(".js"):
                scripts += 1
                assert "javascript" in asset.headers["content-type"]
        assert scripts >= 1
        assert http.get("/openapi.json").status_code == 200


def test_redoc_bundle_names_no_remote_image():
    """ReDoc's bundle draws the Redocly logo from a CDN; the API serves it with that source blanked."""
    from api.docs_pages import BUNDLE, offline_bundle

    assert re.search(rb'src:"https?://', BUNDLE.read_bytes()), "the shipped bundle has one (else drop the patch)"
    assert not re.search(rb'src:"https?://', offline_bundle())


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.parametrize("page_path, rendered", [("/redoc", "Download OpenAPI specification"),
                                                 ("/docs", "OAS 3.1")])
def test_docs_pages_fetch_nothing_from_outside_in_a_browser(server, page_path, rendered):
    """A real Chromium opens the page: it renders, every request it makes stays on the API's origin (blob: workers
    included), and the page's Content-Security-Policy refuses nothing the page needs."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing: {CHROMIUM} (apt-get install -y chromium; scripts/setup.sh)")
    from playwright.sync_api import sync_playwright

    requests, console = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=30_000,
                                     args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                           "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: console.append(m.text))
            page.goto(server.url + page_path)
            page.get_by_text(rendered).first.wait_for(timeout=20_000)
            page.wait_for_load_state("networkidle", timeout=20_000)
        finally:
            browser.close()
    origin = urlsplit(server.url).netloc
    outside = [u for u in requests if urlsplit(u.removeprefix("blob:")).netloc != origin]
    assert not outside, f"{page_path} fetched from outside the API: {outside}"
    assert any(u.endswith(".js") for u in requests)
    refused = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert not refused, refused
