"""`GET /v1/campaigns/{id}/agents` and the `agents` block of `/stats` through the real stack (ingest, the flow,
the API): agent states and the agent of each bridge, as the reference model computes them (issue #27)."""

from __future__ import annotations

import csv
import io

import pytest

from tests.reference_model import reference_stats
from tests.test_agents import floor

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(stack):
    events = floor()  # org o1, campaign c1: agents a1 (paused, lunch), a2 (offline), b9 (bot, bridge only)
    s = stack(extra={"floor.ndjson": events},
              keys={"read": {"org": "o1", "scopes": ["campaigns:read"]}})
    return {"http": s.client("read"), "events": events}


def test_the_stats_body_carries_the_agents_of_the_reference(env):
    body = env["http"].get("/v1/campaigns/c1/stats").json()
    assert body["agents"] == reference_stats(env["events"])[("o1", "c1")]["agents"]
    assert [a["agent_id"] for a in body["agents"]["list"]] == ["a1", "a2", "b9"]


def test_the_agents_endpoint_filters_by_state_and_pages(env):
    http = env["http"]
    every = http.get("/v1/campaigns/c1/agents").json()
    stats = http.get("/v1/campaigns/c1/stats").json()
    assert every["agents"] == stats["agents"]["list"] and every["total"] == 3 and every["state"] is None
    assert every["by_state"] == {"ready": 0, "on_call": 0, "wrap": 0, "paused": 1, "offline": 2}
    offline = http.get("/v1/campaigns/c1/agents", params={"state": "offline"}).json()
    assert [a["agent_id"] for a in offline["agents"]] == ["a2", "b9"] and offline["total"] == 2
    assert offline["by_state"] == every["by_state"]  # the counts are the campaign's, not the page's
    page = http.get("/v1/campaigns/c1/agents", params={"limit": 1, "offset": 1}).json()
    assert [a["agent_id"] for a in page["agents"]] == ["a2"] and page["total"] == 3
    assert http.get("/v1/campaigns/c1/agents", params={"state": "lunch"}).status_code == 422
    assert http.get("/v1/campaigns/nope/agents").status_code == 404


def test_each_attempt_in_a_contacts_trail_names_its_agent_and_handle_time(env):
    contacts = env["http"].get("/v1/campaigns/c1/contacts").json()["contacts"]
    trail = {a["attempt_id"]: a for c in contacts for a in c["attempts"]}
    assert (trail["x1"]["agent_id"], trail["x1"]["handle_ms"]) == ("a1", 39000)
    assert (trail["x2"]["agent_id"], trail["x2"]["handle_ms"]) == ("b9", 19500)


def test_each_call_names_its_agent(env):
    calls = {c["attempt_id"]: c for c in env["http"].get("/v1/campaigns/c1/calls").json()["calls"]}
    assert calls["x1"]["agent_id"] == "a1" and calls["x2"]["agent_id"] == "b9"
    rows = list(csv.DictReader(io.StringIO(env["http"].get("/v1/campaigns/c1/attempt-report.csv").text)))
    assert sorted(row["agent_id"] for row in rows) == ["a1", "b9"]
