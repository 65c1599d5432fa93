"""Issue #11: every endpoint's real response matches what /openapi.json declares for it.

Real Redis (conftest), campaigns folded by the real flow (with abandon alerts), a real uvicorn
server, real HTTP. Each response is validated against the schema the document declares for its
status code and media type, made strict here: an object may hold no key its schema does not name
(the published document stays open, so that clients tolerate additions; this test makes sure the
document names them). SSE routes: each event received, as the object {event, id, data} that the route's
`text/event-stream` schema describes (its JSON `data` decoded and checked against the `contentSchema`).
Every operation of the document must be exercised here (a new route without a contract fails).
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import date, timedelta

import httpx
import jsonschema_rs
import pytest

from engine.validation.events import MAX_BODY_BYTES
from tests.support import read_sse

pytestmark = pytest.mark.e2e

SKIP_BODY = {"text/csv", "text/plain", "text/event-stream"}  # checked by media type, not schema


def decoded(node):
    """A copy of a schema in which a JSON string with a ``contentSchema`` (an SSE event's ``data``) is that
    schema: it then validates the event with its data decoded."""
    if isinstance(node, list):
        return [decoded(x) for x in node]
    if not isinstance(node, dict):
        return node
    if node.get("contentMediaType") == "application/json" and "contentSchema" in node:
        return decoded(node["contentSchema"])
    return {k: decoded(v) for k, v in node.items()}


def strict(node):
    """A copy of a schema in which objects with named properties admit no other key."""
    if isinstance(node, list):
        return [strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    if "properties" in out and out.get("additionalProperties", True) is True:
        out["additionalProperties"] = False
    return out


class Contract:
    def __init__(self, doc: dict):
        self.doc = doc
        self.components = strict(decoded(doc["components"]["schemas"]))
        self.seen: set[tuple[str, str]] = set()
        self.failures: list[str] = []  # all of a test's mismatches are reported together

    def check(self, schema: dict, instance, where: str) -> None:
        root = dict(strict(decoded(schema)), components={"schemas": self.components})
        errors = [f"{e.instance_path}: {e.message}"[:300] for e in
                  jsonschema_rs.Draft202012Validator(root).iter_errors(instance)]
        if errors:
            self.failures.append(f"{where}: {errors[:3]}")

    def assert_ok(self) -> None:
        failures, self.failures = self.failures, []
        assert not failures, "\n".join(failures)

    def response(self, method: str, path: str, r: httpx.Response, expect: int | None = None) -> None:
        """Validate a response of operation (method, path-template) against its declared response."""
        self.seen.add((method, path))
        if expect is not None:
            assert r.status_code == expect, (method, path, r.status_code, r.text[:300])
        declared = self.doc["paths"][path][method]["responses"]
        where = f"{method.upper()} {path} -> {r.status_code}"
        assert str(r.status_code) in declared, f"{where}: status not declared"
        if r.status_code == 204:
            assert not r.content, f"{where}: a body on 204"
            return
        content = declared[str(r.status_code)].get("content", {})
        ctype = r.headers.get("content-type", "").split(";")[0].strip()
        assert ctype in content, f"{where}: media type {ctype} not declared ({list(content)})"
        if ctype not in SKIP_BODY:
            self.check(content[ctype]["schema"], r.json(), where)

    def stream_schema(self, path: str) -> dict:
        """The schema of one event of an SSE route, as its 200 declares it."""
        return self.doc["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]

    def events(self, path: str, events: list[dict], where: str) -> None:
        """Validate received SSE events ({event, id, data: decoded JSON}) against the route's event schema."""
        self.seen.add(("get", path))
        for ev in events:
            self.check(self.stream_schema(path), ev, f"{where} {ev['event']}")


@pytest.fixture(scope="module")
def env(stack):
    s = stack(["--orgs", "1", "--campaigns", "2", "--contacts", "80", "--channel", "mixed", "--abandon-prob", "0.3"],
              min_sample=10, apps=[{"heartbeat_s": 1.0}],
              keys={"all": {"org": "org-1", "scopes": ["campaigns:read", "events:write"]},
                    "write": {"org": "org-1", "scopes": ["events:write"]},
                    "manage": {"org": "org-1", "scopes": ["campaigns:read", "campaigns:manage"]}})
    evs = s.events
    by_channel = {e.get("channel", "voice"): e["campaign_id"] for e in evs if e["type"] == "campaign.created"}
    http = s.client("all")
    doc = http.get("/openapi.json").json()
    return {"url": s.url, "http": http, "keys": s.keys, "voice": by_channel["voice"],
            "email": by_channel["email"], "contract": Contract(doc), "events": evs}


def test_every_operation_answers_as_declared(env):
    http, c = env["http"], env["contract"]
    voice, email = env["voice"], env["email"]
    P = "/v1/campaigns/{campaign_id}"
    c.response("get", "/healthz", http.get("/healthz"), 200)
    c.response("get", "/readyz", http.get("/readyz"))
    c.response("get", "/metrics", http.get("/metrics"), 200)
    ev = dict(env["events"][0], event_id="contract-1")
    c.response("post", "/v1/events", http.post("/v1/events", json=[ev, {"type": "nope"}]), 200)
    c.response("get", "/v1/campaigns", http.get("/v1/campaigns"), 200)
    for camp in (voice, email):
        base = f"/v1/campaigns/{camp}"
        c.response("get", P, http.get(base), 200)
        c.response("get", P + "/stats", http.get(base + "/stats"), 200)
        c.response("get", P + "/contacts", http.get(base + "/contacts", params={"limit": 200}), 200)
        c.response("get", P + "/calls", http.get(base + "/calls", params={"limit": 200}), 200)
        c.response("get", P + "/attempt-report.csv", http.get(base + "/attempt-report.csv"), 200)
        c.response("get", P + "/calls", http.get(base + "/calls", params={"violation": "calling_hours"}), 200)
        c.response("get", P + "/compliance", http.get(base + "/compliance"), 200)
        c.response("get", P + "/compliance", http.get(base + "/compliance", params={"format": "csv"}), 200)
        c.response("get", P + "/export", http.get(base + "/export"), 200)
        c.response("get", P + "/export", http.get(base + "/export", params={"format": "csv"}), 200)
        c.response("get", P + "/batches", http.get(base + "/batches"), 200)
        stats = http.get(base + "/stats").json()
        day = date.fromisoformat(stats["as_of"][:10])
        c.response("get", P + "/stats/daily", http.get(base + "/stats/daily", params={
            "start": (day - timedelta(days=3)).isoformat(), "end": day.isoformat()}), 200)
        c.response("get", P + "/stats/daily", http.get(base + "/stats/daily", params={
            "start": "2020-01-01", "end": "2030-01-01"}), 200)  # truncated_to_days
        c.response("get", P + "/replies", http.get(base + "/replies"), 200)
        c.response("get", P + "/history", http.get(base + "/history", params={"minutes": 1440}), 200)
        c.response("get", P + "/followups", http.get(base + "/followups"), 200)
        c.response("get", P + "/agents", http.get(base + "/agents", params={"state": "offline", "limit": 5}), 200)
        c.response("get", P + "/messages", http.get(base + "/messages", params={"limit": 200}), 200)
        c.response("get", P + "/messages.csv", http.get(base + "/messages.csv"), 200)
    kind = http.get(f"/v1/campaigns/{voice}").json()["kind"]
    c.response("get", "/v1/benchmarks", http.get("/v1/benchmarks", params={"kind": kind}), 200)
    for period in ("all", "2026-05", "2026-05-08"):
        c.response("get", "/v1/usage", http.get("/v1/usage", params={"period": period}), 200)
    recent = http.get("/v1/alerts/recent")
    c.response("get", "/v1/alerts/recent", recent, 200)
    assert recent.json()["alerts"], "the data set raises abandon alerts"
    c.response("post", "/v1/stream-tokens", http.post("/v1/stream-tokens", json={"campaign_id": voice}), 201)
    c.response("post", "/v1/stream-tokens", http.post("/v1/stream-tokens"), 201)
    c.response("get", P + "/activity", http.get(f"/v1/campaigns/{voice}/activity", params={"limit": 200}), 200)
    manage = {"Authorization": f"Bearer {env['keys']['manage']}"}
    created = http.post("/v1/webhooks", json={"url": "https://example.com/hook", "kinds": ["forecast"]},
                        headers=manage)
    c.response("post", "/v1/webhooks", created, 201)
    W = "/v1/webhooks/{webhook_id}"
    wid = created.json()["id"]
    c.response("get", "/v1/webhooks", http.get("/v1/webhooks", headers=manage), 200)
    c.response("get", W, http.get(f"/v1/webhooks/{wid}", headers=manage), 200)
    c.response("get", W + "/deliveries", http.get(f"/v1/webhooks/{wid}/deliveries", headers=manage), 200)
    c.response("delete", W, http.delete(f"/v1/webhooks/{wid}", headers=manage), 204)
    c.response("get", W, http.get(f"/v1/webhooks/{wid}", headers=manage), 404)
    c.assert_ok()


def test_error_responses_are_declared(env):
    http, c, camp = env["http"], env["contract"], env["voice"]
    P = "/v1/campaigns/{campaign_id}"
    c.response("get", P + "/stats", httpx.get(env["url"] + f"/v1/campaigns/{camp}/stats"), 401)
    c.response("get", P + "/stats", http.get(f"/v1/campaigns/{camp}/stats",
                                             headers={"Authorization": f"Bearer {env['keys']['write']}"}), 403)
    c.response("get", P + "/stats", http.get("/v1/campaigns/no-such/stats"), 404)
    c.response("get", P + "/contacts", http.get(f"/v1/campaigns/{camp}/contacts", params={"limit": 0}), 422)
    c.response("post", "/v1/events", http.post("/v1/events", content=b"[1,", headers={
        "Content-Type": "application/json"}), 400)
    c.response("post", "/v1/events", http.post("/v1/events", content=b" " * (MAX_BODY_BYTES + 1)), 413)
    c.response("post", "/v1/stream-tokens", http.post("/v1/stream-tokens", json={"ttl_s": 1}), 422)
    c.response("post", "/v1/stream-tokens", http.post("/v1/stream-tokens", json={"campaign_id": "no-such"}), 404)
    c.response("get", P + "/live", http.get("/v1/campaigns/no-such/live"), 404)
    c.response("get", P + "/live", httpx.get(env["url"] + f"/v1/campaigns/{camp}/live",
                                             params={"token": "st_bad"}), 401)
    c.response("get", P + "/live", http.get(f"/v1/campaigns/{camp}/live", params={"token": "st_bad"}), 400)
    c.response("get", "/v1/alerts", http.get("/v1/alerts", params={"token": "st_bad"}), 400)
    c.assert_ok()


async def _sse(url: str, path: str, headers: dict, want: dict[str, int]) -> dict[str, list]:
    """Read an SSE route until it has sent ``want[event]`` events of each kind: each as {event, id, data}."""
    got: dict[str, list] = {k: [] for k in want}
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        async with client.stream("GET", path, headers=headers) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")

            def on(event, id_, data):
                got.setdefault(event, []).append({"event": event, "id": id_, "data": json.loads(data)})
                return all(len(got[k]) >= n for k, n in want.items())
            await asyncio.wait_for(read_sse(r, on), timeout=15)
    return got


def test_sse_events_match_their_schemas(env):
    c, camp = env["contract"], env["voice"]
    auth = {"Authorization": f"Bearer {env['keys']['all']}"}
    P = "/v1/campaigns/{campaign_id}/live"
    n_alerts = len(env["http"].get("/v1/alerts/recent", params={"campaign_id": camp}).json()["alerts"])
    assert n_alerts
    # a cursor before everything replays the campaign's alerts, then frames
    got = asyncio.run(_sse(env["url"], f"/v1/campaigns/{camp}/live", dict(auth, **{"Last-Event-ID": "0.0.0.0.0.0.0"}),
                           {"alert": n_alerts, "frame": 2}))
    assert set(got) == {"frame", "alert"}, "only the events the route declares"
    c.events(P, got["frame"] + got["alert"], "live")
    # a stream token opens it too (the StreamToken security scheme)
    token = env["http"].post("/v1/stream-tokens", json={"campaign_id": camp}).json()["token"]
    got = asyncio.run(_sse(env["url"], f"/v1/campaigns/{camp}/live?token={token}", {}, {"frame": 1}))
    c.events(P, got["frame"], "live (token)")
    got = asyncio.run(_sse(env["url"], "/v1/alerts", dict(auth, **{"Last-Event-ID": "0-0"}), {"alert": 2}))
    assert set(got) == {"alert"}
    c.events("/v1/alerts", got["alert"], "org alerts")
    got = asyncio.run(_sse(env["url"], "/v1/live", auth, {"snapshot": 1}))
    c.events("/v1/live", got["snapshot"], "org live")
    assert {s["campaign_id"] for s in got["snapshot"][0]["data"]["campaigns"]} == {env["voice"], env["email"]}
    c.assert_ok()


def test_an_sse_event_against_the_wrong_schema_fails(env):
    """The event schemas are a union discriminated by `event`: a frame's data sent as an alert does not pass."""
    c = env["contract"]
    frame = {"event": "frame", "id": "1.0.0.0.0.0.0",
             "data": env["http"].get(f"/v1/campaigns/{env['voice']}/stats").json() | {"seq": 1}}
    c.check(c.stream_schema("/v1/campaigns/{campaign_id}/live"), frame, "frame")
    c.assert_ok()
    c.check(c.stream_schema("/v1/campaigns/{campaign_id}/live"), dict(frame, event="alert"), "frame as alert")
    with pytest.raises(AssertionError, match="frame as alert"):
        c.assert_ok()


def test_every_operation_was_exercised(env):
    doc = env["contract"].doc
    ops = {(m, p) for p, item in doc["paths"].items() for m in item}
    missing = ops - env["contract"].seen
    assert not missing, f"operations without a contract check: {sorted(missing)}"


def test_strict_schema_catches_an_undeclared_key(env):
    c = env["contract"]
    body = env["http"].get(f"/v1/campaigns/{env['voice']}/stats").json()
    schema = c.doc["paths"]["/v1/campaigns/{campaign_id}/stats"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    bad = copy.deepcopy(body)
    bad["abandon"]["windows"]["today"]["surprise"] = 1
    c.check(schema, bad, "stats")
    with pytest.raises(AssertionError, match="surprise"):
        c.assert_ok()
