"""The operator dashboard (issue #6; docs/dashboard.md): one static page (no build step) for both routes.

The page itself picks the view from the path and reads the SSE stream with fetch() + Authorization
header, resuming with Last-Event-ID.
"""

from __future__ import annotations

import pathlib

from fastapi import APIRouter, Path
from fastapi.responses import Response

from api.deps import ID_PATTERN

router = APIRouter(tags=["dashboard"])

PAGE = (pathlib.Path(__file__).parent.parent / "dashboard.html").read_bytes()
PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                           "style-src 'unsafe-inline'; img-src 'self' data: blob:; "
                                           "media-src https: http:; frame-ancestors 'none'"}


@router.get("/", response_class=Response, include_in_schema=False)
async def dashboard_page():
    """The live campaign dashboard: campaign list (key typed in the page or given as ?key=)."""
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/campaigns/{campaign_id}", response_class=Response, include_in_schema=False)
async def dashboard_campaign_page(campaign_id: str = Path(..., pattern=ID_PATTERN)):
    """The same page, opened on one campaign's live view."""
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
