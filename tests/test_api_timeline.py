"""Issue 24 end to end: `GET /v1/campaigns/{id}/history` and `/followups` through the real flow (a
`callpulse flow` process), real Redis, a real uvicorn server and real HTTP; and the sink's history writes
(replace a minute, trim to a day, a replay adds nothing back).

An email campaign arrives in three stages, one minute apart; statuses arrive out of order (an older status
after a newer one), and one is sent twice. Each minute's point must be the body the campaign had at the end
of that minute; the follow-ups must be what the events sorted by (ts, event_id) give (computed here without
the engine's schedule)."""

from __future__ import annotations

import os
import signal

import httpx
import orjson
import pytest

from api.app import create_app
from api.auth import create_key
from engine.storage.keys import followups_key, history_key, stats_key
from engine.timefmt import format_time
from engine.views.history import history_point
from flows.config import FlowConfig
from flows.messages import Frame
from flows.redis_sink import RedisSinkPartition
from tests.support import ServerThread, wait_until
from tests.test_flow import append, start_flow
from tests.test_followups_history import _reference

pytestmark = pytest.mark.e2e

T = 1_700_000_040_000  # 2023-11-14T22:14:00Z, a minute start
MIN, HOUR = 60_000, 3_600_000
ORG, CAMP = "org-1", "em-1"


def _ev(n: int, ts: int, type_: str, **fields) -> dict:
    return {"event_id": f"em-{n}", "type": type_, "ts": ts, "org_id": ORG, "campaign_id": CAMP, **fields}


def _stages() -> list[list[dict]]:
    s0 = [_ev(1, T, "campaign.created", name="Renewals", channel="email"),
          _ev(2, T + 100, "campaign.status", status="active")]
    s0 += [_ev(10 + i, T + 200 + i, "contact.added", contact_id=f"k{i}") for i in range(1, 7)]
    s0 += [_ev(20 + i, T + 1000 + i, "email.sent", contact_id=f"k{i}", message_id=f"m{i}") for i in range(1, 7)]
    s0 += [_ev(31, T + 5000, "contact.status", contact_id="k1", status="followup_scheduled", due_at=T + 3 * HOUR),
           _ev(32, T + 5001, "contact.status", contact_id="k2", status="followup_scheduled",
               due_at=T + 3 * HOUR + 20 * MIN),
           _ev(33, T + 5002, "contact.status", contact_id="k3", status="followup_scheduled", due_at=T + 60 * HOUR),
           _ev(34, T + 5003, "contact.status", contact_id="k4", status="retrying", retry_number=1),
           _ev(35, T + 20_000, "contact.status", contact_id="k5", status="followup_scheduled", due_at=T + 30_000)]
    s1 = [_ev(41, T + MIN + 10_000, "contact.status", contact_id="k1", status="completed"),
          _ev(42, T + MIN + 20_000, "contact.status", contact_id="k6", status="followup_scheduled",
              due_at=T + 2 * HOUR),
          # older than em-42 (within the lateness bound): k6 stays followup_scheduled, due in 2 h
          _ev(43, T + MIN + 5000, "contact.status", contact_id="k6", status="retrying", retry_number=1,
              due_at=T + 5 * MIN)]
    s2 = [_ev(51, T + 2 * MIN + 3000, "contact.status", contact_id="k2", status="followup_scheduled",
              due_at=T + 4 * HOUR),
          _ev(52, T + 2 * MIN + 9000, "email.opened", message_id="m3")]
    return [s0, s1, s1[1:2] + s2]  # em-42 is sent twice


def _body(client) -> dict | None:
    raw = client.get(stats_key(ORG, CAMP))
    return orjson.loads(raw) if raw else None


def _view_as_of(client) -> str:
    raw = client.get(followups_key(ORG, CAMP))
    return orjson.loads(raw)["as_of"] if raw else ""


def test_history_and_followups_through_the_flow_and_the_api(tmp_path, redis_url, redis_client):
    stages = _stages()
    proc = start_flow(redis_url, tmp_path, "--replay", "--no-recovery")
    bodies = []
    try:
        for stage in stages:
            append(redis_client, stage)
            last = format_time(max(e["ts"] for e in stage))
            bodies.append(wait_until(lambda last=last: (b := _body(redis_client)) and b["as_of"] == last and b,
                                     timeout=60, what=f"the body as of {last}"))
            # the view is built again when the schedule or the minute moves: one of this minute
            wait_until(lambda last=last: _view_as_of(redis_client)[:16] == last[:16], timeout=30,
                       what="the follow-ups view")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    key = create_key(redis_client, org=ORG, scopes=["campaigns:read"])[1]
    server = ServerThread(create_app(redis_url)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
            r = http.get(f"/v1/campaigns/{CAMP}/history")
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["campaign_id"] == CAMP and got["resolution_s"] == 60
            # one point a minute, ascending, each the campaign's body at the end of its minute
            assert got["points"] == [history_point(b) for b in bodies]
            assert [p["t"] for p in got["points"]] == [format_time(T + i * MIN) for i in range(3)]
            assert got["points"][-1]["pending"] == bodies[-1]["live"]["pending"] > 0
            assert http.get(f"/v1/campaigns/{CAMP}/history", params={"minutes": 2}).json()["points"] == \
                got["points"][1:]
            assert http.get(f"/v1/campaigns/{CAMP}/history", params={"minutes": 1}).json()["points"] == \
                got["points"][2:]
            for bad in (0, 1441):
                assert http.get(f"/v1/campaigns/{CAMP}/history", params={"minutes": bad}).status_code == 422

            everything = [e for s in stages for e in s]
            want = {"campaign_id": CAMP, **_reference(everything)}
            r = http.get(f"/v1/campaigns/{CAMP}/followups")
            assert r.status_code == 200, r.text
            view = r.json()
            # as_of: the watermark the view was built at (its last change), within the last minute
            assert bodies[-1]["as_of"][:16] == view["as_of"][:16] and view["as_of"] <= bodies[-1]["as_of"]
            assert dict(view, as_of=None) == dict(want, as_of=None)
            fs = want["followup_scheduled"]
            assert (fs["count"], fs["due_now"], want["later"]["followup_scheduled"]) == (4, 1, 1)  # k2 k3 k5 k6

            for path in ("history", "followups"):
                r = http.get(f"/v1/campaigns/no-such/{path}")
                assert r.status_code == 404 and r.json()["detail"] == "campaign 'no-such' not found"
                assert httpx.get(f"{server.url}/v1/campaigns/{CAMP}/{path}").status_code == 401
            # a campaign whose flow wrote no view yet: its counts from the body, every one without a due time
            redis_client.delete(followups_key(ORG, CAMP))
            fallback = http.get(f"/v1/campaigns/{CAMP}/followups").json()
            assert fallback["followup_scheduled"] == {"count": 4, "due_now": 0, "without_due": 4,
                                                      "next_due_at": None, "last_due_at": None}
            assert fallback["as_of"] == bodies[-1]["as_of"] and fallback["by_hour"] == []
    finally:
        server.stop()


def _frame(seq: int, minute: int, value: int, view: bytes | None = None) -> tuple:
    point = orjson.dumps({"t": format_time(minute * MIN), "v": value})
    return "k", Frame("o1", "c1", seq, b'{"x":1}', None, (minute, point), view)


def _points(client) -> list[tuple[int, int]]:
    return [(int(s), orjson.loads(m)["v"]) for m, s in client.zrange(history_key("o1", "c1"), 0, -1, withscores=True)]


def test_the_sink_keeps_the_last_point_of_each_minute_for_a_day(redis_url, redis_client):
    sink = RedisSinkPartition(FlowConfig(redis_url=redis_url), 0)
    m = 28_333_334
    try:
        sink.write_batch([_frame(1, m, 1, b'{"as_of":"a"}'), _frame(2, m, 2), _frame(3, m + 1, 3)])
        assert _points(redis_client) == [(m, 2), (m + 1, 3)]
        assert redis_client.get(followups_key("o1", "c1")) == b'{"as_of":"a"}'
        sink.write_batch([_frame(4, m + 1, 4, b'{"as_of":"b"}')])  # a later frame of the same minute replaces it
        assert _points(redis_client) == [(m, 2), (m + 1, 4)]
        assert redis_client.get(followups_key("o1", "c1")) == b'{"as_of":"b"}'
        sink.write_batch([_frame(5, m + 1, 4)])  # a replay: the same
        assert _points(redis_client) == [(m, 2), (m + 1, 4)]
        sink.write_batch([_frame(6, m + 1440, 5)])  # a day on: minute m leaves, m + 1 is the oldest kept
        assert _points(redis_client) == [(m + 1, 4), (m + 1440, 5)]
        sink.write_batch([_frame(7, m, 9)])  # a replayed frame older than the day kept: not added back
        assert _points(redis_client) == [(m + 1, 4), (m + 1440, 5)]
        assert redis_client.get(followups_key("o1", "c1")) == b'{"as_of":"b"}'  # frames without a view keep it
    finally:
        sink.close()
