"""Make the OpenAPI document tell the truth (issue #9 item 8; checked by schemathesis in the tests).

FastAPI documents only 200 and its own 422 shape. This adds what the app really answers:
400 (bad ``X-Org`` use), 401, 403, 404 (campaign routes), 413 and 429 (ingest), 503 (Redis
unreachable, dataset lost), the 422 body our handler writes (``detail`` string + ``errors``),
and the media types of the CSV routes; the typed events of the SSE routes (api/openapi_sse.py) and
the 400 of sending a key and a stream token at once. ``operation_id`` names every operation.
"""

from __future__ import annotations

from api import event_schema, openapi_sse

REF = "#/components/schemas/"

ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
VALIDATION_ERROR = {
    "type": "object", "required": ["detail", "errors"],
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "msg", "type"],
            "properties": {"field": {"type": "string"}, "in": {"type": ["string", "null"]},
                           "msg": {"type": "string"}, "type": {"type": "string"}}}}}}
RATE_LIMITED = {  # api/rate_limit.py
    "type": "object", "required": ["detail", "scope", "limit", "retry_after_s"],
    "properties": {"detail": {"type": "string"},
                   "scope": {"type": "string", "enum": ["requests", "events"]},
                   "limit": {"type": "string", "description": "the limit exceeded, e.g. 100/second"},
                   "retry_after_s": {"type": "integer", "minimum": 1}}}
READY = {"type": "object", "required": ["status", "redis", "flow_lag_ms", "lag_bound_ms"], "properties": {
    "status": {"type": "string", "enum": ["ready", "not_ready"]}, "reason": {"type": "string"},
    "redis": {"type": "boolean", "description": "Redis answered"},
    "flow_lag_ms": {"type": ["integer", "null"], "description": "ms since the flow last reported"},
    "lag_bound_ms": {"type": "integer", "description": "the flow lag over which the API is not ready"},
    "flow_mode": {"type": ["string", "null"], "description": "live or replay"},
    "hub": {"type": "boolean", "description": "the live feed (Redis pub/sub) is connected"}}}
HEALTH = {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}

_REF = {"$ref": "#/components/schemas/ErrorBody"}
_WHY = {
    "400": "X-Org is malformed, or missing for a user token",
    "401": "no key, or an invalid, unknown or revoked key",
    "403": "the key lacks the scope, or X-Org names an org the key may not act for",
    "404": "no such campaign in the caller's org",
    "413": "body or batch too large (also: more events than the key's event rate limit admits per window)",
    "429": "a per-key rate limit (CALLPULSE_INGEST_RATE / CALLPULSE_INGEST_EVENT_RATE) was exceeded; "
           "retry after the Retry-After header's seconds",
    "503": "Redis unreachable, or its dataset was lost (see /readyz)",
}


def _err(code: str) -> dict:
    out = {"description": _WHY[code], "content": {"application/json": {"schema": _REF}}}
    if code == "429":
        out["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/RateLimitedBody"}
        out["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return out


def _add_models(comps: dict) -> None:
    """Schemas only an SSE route names (FastAPI adds only the models of JSON responses)."""
    from api import models

    for model in (models.OrgLiveSnapshot, models.OrgLiveSummary):
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in js.pop("$defs", {}).items():
            comps.setdefault(name, sub)
        comps[model.__name__] = js


def _model_components(comps: dict) -> None:
    """Models no route returns as JSON (SSE data, export rows) into components, referenced by name."""
    from pydantic.json_schema import models_json_schema

    from api import models

    extra = (models.LiveFrame, models.LevelAlert, models.ForecastAlert, models.GuardAlert, models.ComplaintAlert,
             models.Contact)
    _, defs = models_json_schema([(m, "serialization") for m in extra],
                                 ref_template=REF + "{model}")
    for name, schema in defs.get("$defs", {}).items():
        comps.setdefault(name, schema)


def operation_id(route) -> str:
    """A route's operationId: its function's name in camelCase (``get_campaign_stats`` → ``getCampaignStats``),
    instead of FastAPI's ``get_stats_v1_campaigns__campaign_id__stats_get``: what generated clients name their
    methods after. create_app passes it as ``generate_unique_id_function``, so a new route gets one too;
    tests/test_openapi_surface.py checks that they are unique."""
    head, *rest = route.name.strip("_").split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest if w)


SSE_ROUTES = {"/v1/campaigns/{campaign_id}/live": "campaign", "/v1/live": "org_live", "/v1/alerts": "alerts"}
_SSE_200 = {
    "campaign": "a text/event-stream of `frame` and `alert` events (the schema is one event); resume with "
                "`Last-Event-ID`",
    "org_live": "a text/event-stream: `snapshot` first, then `campaign` events (the schema is one event)",
    "alerts": "a text/event-stream of `alert` events (the schema is one event); resume with `Last-Event-ID`",
}
STREAM_TOKEN = "StreamToken"  # the security scheme of `?token=` (api/deps.py)
STREAM_400 = ("X-Org is malformed or missing for a user token, or the request sent both `Authorization` and "
              "`?token=` (a stream token replaces the key: send one of them)")


def patch(schema: dict) -> dict:
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    _model_components(comps)
    comps.update(event_schema.components())
    comps["ErrorBody"] = ERROR
    comps["ValidationErrorBody"] = VALIDATION_ERROR
    comps["RateLimitedBody"] = RATE_LIMITED
    _add_models(comps)
    openapi_sse.add_components(comps)
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "invalid parameters", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorBody"}}}}
            if path.startswith("/v1/"):
                for code in ("400", "401", "403", "503"):
                    responses.setdefault(code, _err(code))
                if "{campaign_id}" in path or path == "/v1/stream-tokens":
                    responses.setdefault("404", _err("404"))
                if "{webhook_id}" in path:
                    responses.setdefault("404", {**_err("404"), "description": "no such webhook in the caller's org"})
                if path == "/v1/events" and method == "post":
                    for code in ("413", "429"):
                        responses[code] = _err(code)
                    responses["400"] = {"description": "the body is not valid JSON (the detail says where), "
                                                       "or X-Org is malformed or missing for a user token",
                                        "content": {"application/json": {"schema": _REF}}}
            if any(STREAM_TOKEN in req for req in op.get("security", [])):  # api/deps.stream_principal
                responses["400"] = {**_err("400"), "description": STREAM_400}
            for param in op.get("parameters", []):
                if path == "/v1/usage" and param.get("name") == "period":
                    # what the handler accepts: a real month or a real date (not just the digit shapes)
                    param["schema"] = {"default": "all", "anyOf": [
                        {"type": "string", "enum": ["all"]},
                        {"type": "string", "pattern": "^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"},
                        {"type": "string", "format": "date"}]}
            if path == "/healthz":
                responses["200"] = {"description": "the process answers", "content": {
                    "application/json": {"schema": HEALTH}}}
            if path == "/readyz":
                responses["200"] = {"description": "ready", "content": {"application/json": {"schema": READY}}}
                responses["503"] = {"description": "not ready (reason)",
                                    "content": {"application/json": {"schema": READY}}}
            if path.endswith("/attempt-report.csv"):
                responses["200"] = {"description": "one CSV row per attempt", "content": {
                    "text/csv": {"schema": {"type": "string"}}}}
            if path in SSE_ROUTES:  # typed events (api/openapi_sse.py), and the cap's 503
                responses["200"] = openapi_sse.response(SSE_ROUTES[path], _SSE_200[SSE_ROUTES[path]])
                responses["503"] = {**_err("503"), "description": _WHY["503"] + "; or this process holds its maximum "
                                    "of SSE connections (CALLPULSE_SSE_MAX_CONNECTIONS): retry after Retry-After, "
                                    "or on another process",
                                    "headers": {"Retry-After": {"description": "seconds to wait",
                                                                "schema": {"type": "integer"}}}}
            if path.endswith("/export"):
                responses["200"] = {"description": "contacts as a JSON array or CSV", "content": {
                    "application/json": {"schema": {"type": "array", "items": {"$ref": REF + "Contact"}}},
                    "text/csv": {"schema": {"type": "string"}}}}
            if path.endswith("/compliance"):
                responses["200"] = {"description": "the compliance record as JSON, or as the auditor's CSV "
                                    "(format=csv)", "content": {
                    "application/json": {"schema": {"$ref": REF + "ComplianceRecord"}},
                    "text/csv": {"schema": {"type": "string"}}}}
            if path == "/metrics":
                responses["200"] = {"description": "Prometheus text", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}
    return schema


def install(app) -> None:
    """Serve the patched document at /openapi.json (built once, like FastAPI's own)."""
    from fastapi.openapi.utils import get_openapi

    def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = patch(get_openapi(title=app.title, version=app.version,
                                                   description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi
    app.add_exception_handler(405, _method_not_allowed)


async def _method_not_allowed(request, exc):
    """A 405 lists every method of the path in ``Allow`` (Starlette lists only those of the first
    route that matched the path, and FastAPI makes one route per method: /v1/webhooks has two)."""
    from fastapi.responses import JSONResponse

    path = request.url.path
    methods = sorted({m for route in _flat_routes(request.app.router.routes)
                      if getattr(route, "methods", None) and route.path_regex.match(path) for m in route.methods})
    return JSONResponse({"detail": exc.detail}, status_code=405, headers={"Allow": ", ".join(methods)})


def _flat_routes(routes):
    """Every route, those of included routers too (FastAPI >= 0.160 keeps an included router as one
    entry holding ``original_router``; the app includes its routers without a prefix, api/routes/)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat_routes(inner.routes)
        else:
            yield route
