"""Issue 24, the integrator surface of /openapi.json: chosen operationIds, the stream-token security scheme and
its 400, typed SSE event schemas, typed config changes. The document of a real app (no server needed: the
document is built from the routes); what the routes really answer is tests/test_api_contract.py's and
tests/test_openapi_conformance.py's business.
"""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from api.app import create_app
from api.models.detail import CONFIG_FIELD_TYPES, ConfigChange
from engine.state.config import FIELDS

pytestmark = pytest.mark.unit

READABLE_ID = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")  # camelCase: getCampaignStats
SSE = {"/v1/campaigns/{campaign_id}/live": {"frame", "alert"}, "/v1/live": {"snapshot", "campaign"},
       "/v1/alerts": {"alert"}}


@pytest.fixture(scope="module")
def doc():
    return create_app("redis://127.0.0.1:1/0").openapi()


def _ops(doc):
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_every_operation_id_is_chosen_readable_and_unique(doc):
    ids = [op["operationId"] for _m, _p, op in _ops(doc)]
    bad = [i for i in ids if not READABLE_ID.match(i)]
    assert not bad, f"operationIds not camelCase (FastAPI's default, or a route function badly named): {bad}"
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    by_route = {(m, p): op["operationId"] for m, p, op in _ops(doc)}
    assert by_route[("get", "/v1/campaigns/{campaign_id}/stats")] == "getCampaignStats"
    assert by_route[("get", "/v1/campaigns/{campaign_id}/live")] == "streamCampaignLive"
    assert by_route[("post", "/v1/events")] == "ingestEvents"


def test_stream_tokens_are_a_security_scheme_of_the_routes_that_take_them(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["StreamToken"] == {"type": "apiKey", "in": "query", "name": "token",
                                      "description": schemes["StreamToken"]["description"]}
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    takes = {p for m, p, op in _ops(doc) if {"StreamToken": []} in op.get("security", [])}
    assert {"/v1/campaigns/{campaign_id}/live", "/v1/alerts"} <= takes <= set(SSE)  # SSE routes only
    for m, p, op in _ops(doc):
        if p in takes:  # either one: two alternatives, each alone
            assert op["security"] == [{"HTTPBearer": []}, {"StreamToken": []}]
            assert "both `Authorization` and `?token=`" in op["responses"]["400"]["description"]
            assert not any(x["name"] == "token" for x in op.get("parameters", [])), "the scheme, not a parameter"
        elif p.startswith("/v1/"):
            assert op["security"] == [{"HTTPBearer": []}], (m, p)


def test_sse_routes_declare_typed_events(doc):
    comps = doc["components"]["schemas"]

    def resolve(node):
        return comps[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node

    for path, events in SSE.items():
        ok = doc["paths"][path]["get"]["responses"]["200"]
        stream = resolve(ok["content"]["text/event-stream"]["schema"])
        variants = [resolve(v) for v in stream["oneOf"]] if "oneOf" in stream else [stream]
        if len(variants) > 1:
            assert stream["discriminator"]["propertyName"] == "event"
            assert set(stream["discriminator"]["mapping"]) == events
        seen = set()
        for v in variants:
            assert v["type"] == "object" and {"event", "id", "data"} <= set(v["required"])
            seen.add(v["properties"]["event"]["const"])
            data = v["properties"]["data"]
            assert data["type"] == "string" and data["contentMediaType"] == "application/json"
            refs = [data["contentSchema"]] if "$ref" in data["contentSchema"] else data["contentSchema"]["oneOf"]
            for ref in refs:
                assert ref["$ref"].rsplit("/", 1)[1] in comps, ref
        assert seen == events, path
        assert set(ok["x-sse-events"]) == events  # the extension stays, for the clients that read it
    live = doc["paths"]["/v1/campaigns/{campaign_id}/live"]["get"]["description"]
    assert "may skip frames at the switch from history to live" in live and "alerts are never skipped" in live


def test_config_changes_are_typed_per_field(doc):
    assert set(CONFIG_FIELD_TYPES) == set(FIELDS), "a config field without its type in api/models/detail.py"
    changes = TypeAdapter(list[ConfigChange])
    ok = [{"field": "max_attempts", "from": 3, "to": 5}, {"field": "name", "from": None, "to": "Spring"},
          {"field": "time_window", "from": None, "to": {"start": "09:00", "end": "17:00", "tz": "UTC"}},
          {"field": "abandon_from", "from": "answer", "to": "greeting_end"}]
    assert len(changes.validate_python(ok)) == 4
    for bad in ({"field": "max_attempts", "from": 3, "to": "five"}, {"field": "abandon_from", "from": None, "to": "x"},
                {"field": "no_such_field", "from": 1, "to": 2}):
        with pytest.raises(ValidationError):
            changes.validate_python([bad])
    comps = doc["components"]["schemas"]
    for name in ("ConfigChangeMaxAttempts", "ConfigChangeTimeWindow", "ConfigChangeCallingHours"):
        assert comps[name]["properties"]["to"], name  # a schema, not {} (Any)
    assert comps["ConfigChangeMaxAttempts"]["properties"]["to"]["type"] == "integer"
