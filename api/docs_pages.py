"""`/redoc`, served so that it fetches nothing from outside the API (create_app calls `install`).

fastapi-offline ships ReDoc's bundle, so the page loads its script from the API; but the bundle itself
draws the "API docs by Redocly" logo from ``https://cdn.redoc.ly/…`` (an ``<img>`` in the side menu). So:

- the bundle is served from ``/docs-assets/redoc.standalone.js`` with every remote ``src:"http(s)://…"``
  of an element blanked (an empty ``src`` fetches nothing; ReDoc then drops the logo);
- the page carries a Content-Security-Policy that lets it load only from the API itself (and the
  ``blob:`` worker of ReDoc's search), so whatever a later bundle might add is not fetched either.

Swagger UI at ``/docs`` (fastapi-offline's page) fetches nothing remote: tests/test_api_docs_offline.py
checks both pages in a real Chromium.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, Response

BUNDLE = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
BUNDLE_URL = "/docs-assets/redoc.standalone.js"
FAVICON_URL = "/static-offline-docs/favicon.png"  # fastapi-offline's static mount
REMOTE_SRC = re.compile(rb'\bsrc:"https?://[^"]*"')
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "worker-src 'self' blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'")


@cache
def offline_bundle() -> bytes:
    """ReDoc's bundle with its remote image sources blanked (read once per process)."""
    return REMOTE_SRC.sub(b'src:""', BUNDLE.read_bytes())


def install(app: FastAPI, path: str = "/redoc") -> None:
    @app.get(path, include_in_schema=False)
    async def redoc_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=app.title + " - ReDoc",
                              redoc_js_url=f"{root}{BUNDLE_URL}", redoc_favicon_url=f"{root}{FAVICON_URL}",
                              with_google_fonts=False)
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get(BUNDLE_URL, include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(offline_bundle(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
