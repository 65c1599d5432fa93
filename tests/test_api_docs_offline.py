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
