"""Campaigns that are over leave the flow (flows/retirement.py) and come back exactly for a later event:
real Redis, the real flow (replay mode, recovery on), `callpulse replay` as the reference."""

from __future__ import annotations

import os
import signal
import time

import orjson
import pytest

from engine.storage.keys import archive_key, followups_key, history_key, stats_key
from engine.views.history import history_point
from tests.test_flow import append, offline_replay, start_flow, wait_for_bodies, write_ndjson

pytestmark = pytest.mark.e2e

T0 = 1_778_245_200_000


def campaign(camp: str, t0: int) -> list[dict]:
    def e(i, typ, dt, **f):
        return {"event_id": f"{camp}-{i}", "type": typ, "ts": t0 + dt, "org_id": "o1", "campaign_id": camp, **f}
    return [e(0, "campaign.created", 0, name=camp), e(1, "campaign.status", 0, status="active"),
            e(2, "contact.added", 1, contact_id="k1"), e(3, "contact.added", 2, contact_id="k2"),
            e(4, "call.dialed", 1000, contact_id="k1", attempt_id="a1"),
            e(5, "call.answered", 4000, attempt_id="a1"), e(6, "call.bridged", 4500, attempt_id="a1"),
            e(7, "call.ended", 60_000, attempt_id="a1", sip_code=200),
            e(8, "contact.status", 61_000, contact_id="k1", status="completed"),
            e(9, "campaign.status", 120_000, status="completed")]


def test_a_finished_campaign_retires_and_a_later_event_brings_it_back_exactly(tmp_path, redis_url, redis_client):
    done, running = campaign("done", T0), campaign("running", T0)
    running = running[:-1]  # never completed: it stays
    late = [{"event_id": "done-late-1", "type": "cost.incurred", "ts": T0 + 130_000, "org_id": "o1",
             "campaign_id": "done", "category": "telephony", "usd": 1.25},
            {"event_id": "done-late-2", "type": "contact.status", "ts": T0 + 121_000, "org_id": "o1",
             "campaign_id": "done", "contact_id": "k2", "status": "no_answer"},
            {"event_id": "done-8", "type": "contact.status", "ts": T0 + 61_000, "org_id": "o1",  # a retried webhook
             "campaign_id": "done", "contact_id": "k1", "status": "completed"}]
    append(redis_client, done + running)
    proc = start_flow(redis_url, tmp_path, "--replay", "--recovery-dir", str(tmp_path / "rec"),
                      "--retire-after-ms", "1500", "--heartbeat-ms", "300")
    try:
        deadline = time.monotonic() + 60
        while not redis_client.exists(archive_key("o1", "done")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert redis_client.exists(archive_key("o1", "done")), (tmp_path / "flow.log").read_text()[-2000:]
        assert not redis_client.exists(archive_key("o1", "running"))
        # Retired: no more heartbeat frames for it, while the running campaign keeps getting them.
        frames = redis_client.xlen("callpulse:frames:{o1:done}")
        running_frames = redis_client.xlen("callpulse:frames:{o1:running}")
        time.sleep(1.5)
        assert redis_client.xlen("callpulse:frames:{o1:done}") == frames
        assert redis_client.xlen("callpulse:frames:{o1:running}") > running_frames
        body_before = orjson.loads(redis_client.get(stats_key("o1", "done")))
        assert body_before["status"] == "completed" and body_before["outcomes"]["connected"] == 1
        # its minute points and follow-ups view stay (issue 24)
        points = redis_client.zrange(history_key("o1", "done"), 0, -1)
        assert orjson.loads(points[-1]) == history_point(body_before)
        view_before = orjson.loads(redis_client.get(followups_key("o1", "done")))

        append(redis_client, late)
        path = tmp_path / "all.ndjson"
        write_ndjson(path, done + running + late)
        want, _alerts = offline_replay(redis_url, path, tmp_path)
        wait_for_bodies(redis_client, {("o1", "done"): want[("o1", "done")]}, timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    log = (tmp_path / "flow.log").read_text()
    assert "campaigns retired, 1 revived" in log and "0 campaigns retired" not in log, log[-1500:]
    got = orjson.loads(redis_client.get(stats_key("o1", "done")))
    assert got["costs"]["total_usd"] == 1.25 and got["diagnostics"]["duplicates"] == 1
    # revived: its view written again (schedule derived from the archive), its last minute's point replaced
    assert orjson.loads(redis_client.get(followups_key("o1", "done")))["as_of"] > view_before["as_of"]
    last = redis_client.zrange(history_key("o1", "done"), -1, -1)
    assert orjson.loads(last[0]) == history_point(got) != history_point(body_before)
    assert redis_client.zcard(history_key("o1", "done")) == len(points)  # the same minute, replaced


def test_retiring_many_campaigns_shares_one_redis_connection_pool(tmp_path, redis_url, redis_client):
    """Each retirement writes an archive; the campaign steps share one client (flows.retirement.archive_for),
    so the connections the flow opens do not grow with the campaigns it retires."""
    camps = [f"c{i:02d}" for i in range(40)]
    append(redis_client, [e for c in camps for e in campaign(c, T0)])
    before = redis_client.info("stats")["total_connections_received"]
    proc = start_flow(redis_url, tmp_path, "--replay", "--recovery-dir", str(tmp_path / "rec"),
                      "--retire-after-ms", "500", "--heartbeat-ms", "300")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(redis_client.exists(archive_key("o1", c)) for c in camps):
            time.sleep(0.1)
        assert all(redis_client.exists(archive_key("o1", c)) for c in camps), (tmp_path / "flow.log").read_text()[-2000:]
        opened = redis_client.info("stats")["total_connections_received"] - before
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert opened < 10, f"the flow opened {opened} Redis connections to retire {len(camps)} campaigns"
