"""Campaign ids ``.`` and ``..`` in a URL path (docs/api.md, *Campaign ids `.` and `..`*).

Both are valid ids (charset ``[A-Za-z0-9_.:-]``) but, written as they are, every URL parser drops
them as dot segments (``/v1/campaigns/../stats`` is ``/v1/stats``). A client that sends a path as
written addresses them as ``%2E`` / ``%2E%2E``: uvicorn decodes the path once and routing sees the
id. A browser cannot: the WHATWG URL parser (fetch, links, the address bar) treats ``%2E`` and
``%2E%2E`` segments as dot segments too. It sends them encoded twice, ``%252E`` / ``%252E%252E``,
which reach the app as the segments ``%2E`` / ``%2E%2E`` (any case); `DotSegments` turns exactly
those whole segments back into ``.`` / ``..`` before routing. This is unambiguous: ``%`` is no id
character and no route has a ``%`` of its own, so such a segment could name nothing else.

The dashboard builds such paths itself (api/dashboard.html, ``idSeg``).
"""

from __future__ import annotations

import re

_ESCAPED_DOTS = re.compile(r"(?<=/)(?:%2[eE]){1,2}(?=/|$)")


class DotSegments:
    """Pure ASGI middleware: a whole path segment ``%2E`` / ``%2E%2E`` (as decoded by the server) is ``.`` / ``..``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "%" in scope["path"]:
            path = _ESCAPED_DOTS.sub(lambda m: "." * (len(m.group(0)) // 3), scope["path"])
            if path != scope["path"]:
                scope = dict(scope, path=path)
        return await self.app(scope, receive, send)
