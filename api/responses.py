"""Response classes: JSON bodies are serialised by orjson (the app's default response class)."""

from __future__ import annotations

import orjson
from fastapi.responses import JSONResponse, Response

from api.rate_limit import Denied


class OrjsonResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def raw_json(body: bytes, status_code: int = 200) -> Response:
    """A body already serialised (the stats body the flow stored): served as is, no parse."""
    return Response(body, status_code=status_code, media_type="application/json")


def limited(denied: Denied) -> Response:
    """429 (with Retry-After) or 413 for a request over a per-key ingest limit (api/rate_limit.py)."""
    return OrjsonResponse(denied.body(), status_code=denied.status, headers=denied.headers())
