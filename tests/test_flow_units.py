"""The flow's pieces one by one: the campaign step (parse, gate, pacing, heartbeat, alerts, snapshots),
routing, the Redis source and sink (real redis-server), the NDJSON source."""

from __future__ import annotations

import pickle
import threading
import time
from datetime import UTC

import orjson
import pytest

import flows.campaign_step as campaign_step
from engine.storage.keys import (
    ALERT_FIELD,
    DEAD_LETTER_STREAM,
    FRAME_FIELD,
    LIVE_CHANNEL,
    alerts_stream,
    flow_status_key,
    frames_stream,
    ingest_stream,
    org_alerts_stream,
    org_campaigns_key,
    route_key,
    stats_key,
)
from engine.storage.recovery_format import decode
from engine.validation.events import format_time
from engine.views.snapshot import build_snapshot
from flows.campaign_step import CampaignLogic
from flows.config import FlowConfig
from flows.file_source import NdjsonFileSource
from flows.lifecycle import STOP
from flows.messages import Alert, CampaignBatch, DeadLetter, Frame
from flows.redis_sink import RedisSinkPartition
from flows.redis_source import RedisStreamSource
from flows.routing import UNROUTABLE, grouped, route_of_raw

pytestmark = pytest.mark.e2e

T0 = 1_778_245_200_000  # 2026-05-08T13:00:00Z


def ev(eid, etype, ts, org="o1", camp="c1", **fields):
    return {"event_id": eid, "type": etype, "ts": ts, "org_id": org, "campaign_id": camp, **fields}


class Clock:
    def __init__(self, t=T0 / 1000 + 100):  # the wall clock 100 s after T0
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture(autouse=True)
def _session_redis(redis_server, monkeypatch):
    """`FlowConfig()` reads CALLPULSE_REDIS_URL: the campaign step looks for a retired campaign's archive
    there on its first batch, so point it at the test Redis (not whatever listens on localhost:6379)."""
    monkeypatch.setenv("CALLPULSE_REDIS_URL", redis_server)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(campaign_step.time, "time", c)
    return c


def batch(*events, route=None):
    """One campaign's entries as the source hands them over: ``[(route, [(ref, raw), ...])]``."""
    entries = [(f"0:{i}-0", e if isinstance(e, bytes) else orjson.dumps(e)) for i, e in enumerate(events)]
    if route is None:
        first = events[0]
        route = route_key(first["org_id"], first["campaign_id"])
    return [(route, entries)]


def entries_of(items):
    """The (ref, raw) entries of a source's grouped read, in order per campaign."""
    return [e for _route, (_r, group) in items for e in group]


def dead_of(out):
    return [x.record for x in out if type(x) is DeadLetter]


def frames_of(out):
    return [x for x in out if type(x) is Frame]


def body(frame):
    return orjson.loads(frame.body)


# ---------------------------------------------------------------- CampaignLogic

def test_frames_are_coalesced_to_the_interval_and_sent_by_notify(clock):
    logic = CampaignLogic(FlowConfig(replay=True), None)
    assert logic.notify_at() is None  # nothing yet
    out, discard = logic.on_batch(batch(ev("e1", "campaign.status", T0, status="active")))
    assert discard is False
    (f1,) = frames_of(out)
    assert f1[:3] == ("o1", "c1", 1) and body(f1)["status"] == "active"

    clock.t += 0.1  # inside the 250 ms interval: no frame, one is due at its end
    out, _ = logic.on_batch(batch(ev("e2", "contact.added", T0 + 1000, contact_id="k1")))
    assert frames_of(out) == []
    assert logic.notify_at().timestamp() == pytest.approx(clock.t - 0.1 + 0.25)
    assert logic.notify_at().tzinfo == UTC

    clock.t += 0.05  # an early notify sends nothing
    assert logic.on_notify()[0] == []
    clock.t += 0.2
    (f2,) = frames_of(logic.on_notify()[0])
    assert f2.seq == 2 and body(f2)["contacts"]["total"] == 1
    # Nothing changed since: next is the heartbeat, 5 s after the last frame.
    assert logic.notify_at().timestamp() == pytest.approx(clock.t + 5.0)


def test_detail_records_piling_up_between_frames_are_sent_ahead_in_slices(clock):
    """A burst inside one frame interval (a list upload): its detail records leave in slices of about
    DETAIL_FLUSH_ROWS, each contact once, and the frame still follows its details."""
    from flows.messages import Details

    logic = CampaignLogic(FlowConfig(replay=True), None)
    logic.on_batch(batch(ev("e1", "campaign.status", T0, status="active")))  # first frame: the interval starts
    n = 3 * campaign_step.DETAIL_FLUSH_ROWS + 7
    sent, outs = [], []
    for lo in range(0, n, 500):  # inside the interval: the clock does not move
        out, _ = logic.on_batch(batch(*[ev(f"a{i}", "contact.added", T0 + 1 + i, contact_id=f"k{i}")
                                        for i in range(lo, min(n, lo + 500))]))
        assert frames_of(out) == []
        outs += out
    for d in (x for x in outs if type(x) is Details):
        assert len(d.details.contacts) <= campaign_step.DETAIL_FLUSH_ROWS + 500
        sent += [c["contact_id"] for c in d.details.contacts]
    assert len(sent) >= 3 * campaign_step.DETAIL_FLUSH_ROWS  # three slices went ahead of the frame
    clock.t += 0.3
    out = logic.on_notify()[0]
    assert [type(x) for x in out] == [Details, Frame]
    sent += [c["contact_id"] for c in out[0].details.contacts]
    assert sorted(sent) == sorted(f"k{i}" for i in range(n))  # every contact once
    assert body(out[1])["contacts"]["total"] == n


def test_heartbeat_replay_keeps_the_watermark_live_advances_it(clock):
    events = batch(ev("e1", "campaign.status", T0, status="active"),
                   ev("e2", "call.dialed", T0 + 500, contact_id="k1", attempt_id="a1"))
    replay = CampaignLogic(FlowConfig(replay=True), None)
    live = CampaignLogic(FlowConfig(replay=False), None)
    for logic in (replay, live):
        logic.on_batch(events)
    clock.t += 4.0
    assert replay.on_notify()[0] == [] and live.on_notify()[0] == []  # not yet 5 s
    clock.t += 1.5
    (hb,) = frames_of(replay.on_notify()[0])
    assert body(hb)["as_of"] == format_time(T0 + 500)  # replay: only events move time
    assert body(hb)["live"]["banner"] == "live"
    (hb,) = frames_of(live.on_notify()[0])
    wall_ms = int(clock.t * 1000)
    assert body(hb)["as_of"] == format_time(wall_ms)  # live: quiet -> watermark = wall clock
    assert body(hb)["live"]["banner"] == "idle"  # no dial in the last 30 s of (wall) time
    assert hb.seq == 2


def test_live_heartbeat_does_not_advance_a_campaign_that_is_not_quiet(clock):
    logic = CampaignLogic(FlowConfig(replay=False, quiet_ms=10_000), None)
    logic.on_batch(batch(ev("e1", "campaign.status", T0, status="active")))
    clock.t += 6
    (hb,) = frames_of(logic.on_notify()[0])
    assert body(hb)["as_of"] == format_time(T0)


def test_no_heartbeat_when_disabled_and_no_frame_without_a_watermark(clock):
    logic = CampaignLogic(FlowConfig(replay=True, heartbeat_ms=0), None)
    out, _ = logic.on_batch(batch(b"{broken", route="o1\x1fc1"))  # only a rejected entry: no state yet
    assert [d["code"] for d in dead_of(out)] == ["malformed"] and frames_of(out) == []
    assert logic.notify_at() is None and logic.on_eof()[0] == []
    first = ev("e2", "campaign.status", T0, status="active")
    out, _ = logic.on_batch(batch(first, first))  # a retried webhook: the campaign's gate counts it
    assert body(frames_of(out)[0])["diagnostics"]["duplicates"] == 1
    assert logic.notify_at() is None


def test_alerts_are_emitted_at_once_frames_still_paced(clock):
    logic = CampaignLogic(FlowConfig(replay=True, min_sample=1), None)
    logic.on_batch(batch(ev("e0", "campaign.created", T0, abandon_ceiling=0.03)))
    calls = [ev("d", "call.dialed", T0 + 1, contact_id="k", attempt_id="a"),
             ev("an", "call.answered", T0 + 2, attempt_id="a"),
             ev("en", "call.ended", T0 + 9000, attempt_id="a")]  # answered, never bridged: abandoned
    out, _ = logic.on_batch(batch(*calls))
    alerts = [x for x in out if type(x) is Alert]
    assert {a.record["window"] for a in alerts} == {"lifetime", "today", "24h", "30d"}
    assert all(a.record["to"] == "breach" and a[:2] == ("o1", "c1") for a in alerts)
    assert frames_of(out) == []  # the previous frame was < 250 ms ago
    clock.t += 1
    (f,) = frames_of(logic.on_notify()[0])
    assert body(f)["abandon"]["windows"]["lifetime"]["level"] == "breach"


def test_eof_flushes_a_pending_change_only(clock):
    logic = CampaignLogic(FlowConfig(replay=True), None)
    logic.on_batch(batch(ev("e1", "campaign.status", T0, status="active")))
    assert logic.on_eof()[0] == []
    logic.on_batch(batch(ev("e9", "campaign.status", T0 - 60_000, status="paused")))  # late: diagnostics.late
    (f,) = logic.on_eof()[0]
    assert f.seq == 2 and body(f)["diagnostics"]["late"] == 1


def test_snapshot_resumes_state_sequence_and_pacing(clock):
    logic = CampaignLogic(FlowConfig(replay=True), None)
    logic.on_batch(batch(ev("e1", "campaign.status", T0, status="active")))
    clock.t += 0.01
    logic.on_batch(batch(ev("e2", "contact.added", T0 + 5, contact_id="k1")))
    snap = logic.snapshot()
    assert isinstance(snap, bytes)
    assert decode(snap)[0] == 6  # the recovery format (engine.storage.recovery_format), STATE_VERSION 6
    again = CampaignLogic(FlowConfig(replay=True), snap)
    assert build_snapshot(again.state) == build_snapshot(logic.state)
    resumed_at = int(clock.t * 1000)
    assert (again.seq, again.dirty) == (resumed_at, True)  # past any frame a crashed run sent after the snapshot
    clock.t += 1
    assert frames_of(again.on_notify()[0])[0].seq == resumed_at + 1
    assert CampaignLogic(FlowConfig(recovery=False), None).snapshot() is None



def test_a_snapshot_or_archive_of_a_newer_state_version_is_refused_with_what_to_do(redis_url, redis_client, clock):
    from flows.campaign_step import STATE_VERSION, StateVersionError
    from flows.retirement import Archive

    newer = pickle.dumps((STATE_VERSION + 1, None, 3, False, 0.0, 0.0, None))
    with pytest.raises(StateVersionError, match="recovery snapshot.*Run the callpulse release that wrote it"):
        CampaignLogic(FlowConfig(replay=True), newer)
    from engine.storage.keys import archive_key

    Archive(redis_url).save("o1", "c1", (STATE_VERSION + 1, None, 3, None))
    try:
        logic = CampaignLogic(FlowConfig(replay=True, redis_url=redis_url), None)
        with pytest.raises(StateVersionError, match="archive of retired campaign o1/c1"):
            logic.on_batch(batch(ev("e1", "campaign.status", T0, status="active")))
    finally:
        redis_client.delete(archive_key("o1", "c1"))

# ---------------------------------------------------------------- parse, gate, route (in the campaign step)

def test_campaign_step_turns_rejections_into_dead_letters(clock):
    logic = CampaignLogic(FlowConfig(replay=False), None)
    now = int(clock.t * 1000)
    good = ev("e1", "campaign.status", now, status="active")
    future = ev("e2", "campaign.status", now + 3_600_000, status="active")
    other = ev("e3", "campaign.status", now, camp="c2", status="active")  # a raw writer's wrong route
    out, _ = logic.on_batch([("o1\x1fc1", [("3:1-0", orjson.dumps(good)), ("3:1-1", b"{nope"), ("3:1-2", None),
                                            ("3:1-3", orjson.dumps(future)), ("3:1-4", orjson.dumps(other))])])
    dl = dead_of(out)
    assert [(d["code"], d["source"]) for d in dl] == [("malformed", "3:1-1"), ("malformed", "3:1-2"),
                                                     ("future", "3:1-3"), ("misrouted", "3:1-4")]
    assert dl[0]["payload"] == b"{nope" and dl[2]["field"] == "ts"
    assert body(frames_of(out)[0])["status"] == "active"
    # Replay mode has no future check.
    replay = CampaignLogic(FlowConfig(replay=True), None)
    assert dead_of(replay.on_batch(batch(future))[0]) == []


def test_campaign_gate_verdicts_late_dead_letter_and_resume(clock):
    logic = CampaignLogic(FlowConfig(replay=True), None)
    items = [ev("e1", "campaign.status", T0, status="active"),
             ev("e1", "campaign.status", T0 + 5, status="paused"),  # the same event_id: a duplicate
             ev("e3", "campaign.status", T0 + 60_000, status="paused"),
             ev("e4", "campaign.status", T0 + 10_000, status="active")]  # 50 s behind: late
    out, _ = logic.on_batch(batch(*items))
    (rec,) = dead_of(out)
    assert (rec["code"], rec["field"], rec["payload"], rec["source"], rec["event_id"]) == \
        ("late", "ts", orjson.dumps(items[3]), "0:3-0", "e4")
    assert "50000 ms behind" in rec["reason"]
    st = build_snapshot(logic.state)
    assert st["status"] == "paused" and st["diagnostics"] == {"late": 1, "duplicates": 1, "orphaned": 0}
    resumed = CampaignLogic(FlowConfig(replay=True), logic.snapshot())
    resumed.on_batch(batch(items[0]))  # the gate came back with the state: still a duplicate
    assert build_snapshot(resumed.state)["diagnostics"]["duplicates"] == 2


def test_routing_groups_each_read_by_campaign_in_order():
    raws = [orjson.dumps(ev(f"e{i}", "campaign.status", T0, camp=c, status="active"))
            for i, c in enumerate(["c1", "c2", "c1"])]
    assert route_of_raw(raws[1]) == "o1\x1fc2"
    assert route_of_raw(b"{nope") == route_of_raw(None) == route_of_raw(b'{"org_id": 1}') == UNROUTABLE
    items = grouped([(route_of_raw(r), (f"r{i}", r)) for i, r in enumerate(raws)])
    assert items == [("o1\x1fc1", CampaignBatch("o1\x1fc1", [("r0", raws[0]), ("r2", raws[2])])),
                     ("o1\x1fc2", CampaignBatch("o1\x1fc2", [("r1", raws[1])]))]
    assert all(type(batch) is CampaignBatch for _route, batch in items)


# ---------------------------------------------------------------- Redis source

def test_redis_source_reads_in_order_resumes_after_its_snapshot_and_never_blocks(redis_url, redis_client):
    stream = ingest_stream(2)
    ids = [redis_client.xadd(stream, {"e": f"x{i}"}).decode() for i in range(5)]
    redis_client.xadd(stream, {"other": "y"})
    src = RedisStreamSource(redis_url, partitions=4, count=3)
    assert src.list_parts() == ["0", "1", "2", "3"]
    part = src.build_part("read", "2", None)
    first = part.next_batch()
    assert [route for route, _ in first] == [UNROUTABLE]  # not JSON: no campaign to route to
    assert entries_of(first) == [(f"2:{i}", f"x{n}".encode()) for n, i in enumerate(ids[:3])]
    assert part.next_awake() is None
    snap = part.snapshot()
    assert snap == ids[2]
    resumed = src.build_part("read", "2", snap)
    rest = entries_of(resumed.next_batch())
    assert [r[1] for r in rest] == [b"x3", b"x4", None]  # an entry without `e` -> None (dead letter)
    t = time.monotonic()
    assert resumed.next_batch() == []
    assert time.monotonic() - t < 0.5
    assert resumed.next_awake() is not None
    assert redis_client.hget(flow_status_key(), "p2") is not None
    drained = RedisStreamSource(redis_url, partitions=4, until_drained=True).build_part("read", "2", rest[-1][0][2:])
    with pytest.raises(StopIteration):
        drained.next_batch()
    STOP.set()
    try:
        with pytest.raises(StopIteration):
            src.build_part("read", "2", None).next_batch()
    finally:
        STOP.clear()


def test_file_source_skips_blank_lines_and_resumes(tmp_path):
    path = tmp_path / "ev.ndjson"
    path.write_bytes(b'{"a":1}\n\n  \n{"a":2}\r\n{"a":3}')
    src = NdjsonFileSource([str(path)], count=2)
    (key,) = src.list_parts()
    part = src.build_part("read", key, None)
    first = entries_of(part.next_batch())
    assert [r for _, r in first] == [b'{"a":1}', b'{"a":2}']
    assert first[1][0] == f"file:{path}:4"
    again = src.build_part("read", key, part.snapshot())
    assert entries_of(again.next_batch()) == [(f"file:{path}:5", b'{"a":3}')]
    with pytest.raises(StopIteration):
        again.next_batch()


# ---------------------------------------------------------------- Redis sink

def test_sink_writes_are_idempotent(redis_url, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe(LIVE_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    sink = RedisSinkPartition(FlowConfig(redis_url=redis_url), 0)
    b1, b2 = orjson.dumps({"status": "active", "n": 1}), orjson.dumps({"status": "active", "n": 2})
    alert = {"alert_id": "o1:c1:30d:1", "window": "30d", "to": "breach"}
    dead = campaign_step.dead_letter("5:1-0", b"{bad", "malformed", None, "not JSON")
    batch = [("k", Frame("o1", "c1", 1, b1)), ("k", Alert("o1", "c1", alert)),
             ("k", Frame("o1", "c1", 2, b2)), ("k", DeadLetter(dead))]
    sink.write_batch(batch)
    sink.write_batch(batch)  # a replay after recovery: nothing is written twice
    assert orjson.loads(redis_client.get(stats_key("o1", "c1"))) == {"status": "active", "n": 2}
    frames = redis_client.xrange(frames_stream("o1", "c1"))
    assert [i for i, _ in frames] == [b"1-0", b"2-0"]
    assert orjson.loads(frames[1][1][FRAME_FIELD]) == {"status": "active", "n": 2, "seq": 2}
    assert redis_client.smembers(org_campaigns_key("o1")) == {b"c1"}
    for key in (alerts_stream("o1", "c1"), org_alerts_stream("o1")):
        (entry,) = redis_client.xrange(key)
        assert orjson.loads(entry[1][ALERT_FIELD]) == alert
    (dl,) = redis_client.xrange(DEAD_LETTER_STREAM)
    assert dl[1][b"code"] == b"malformed" and dl[1][b"payload"] == b"{bad" and dl[1][b"source"] == b"5:1-0"
    assert redis_client.hget(flow_status_key(), "write_ms") is not None

    msgs = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and len(msgs) < 5:
        m = pubsub.get_message(timeout=0.2)
        if m and m["type"] == "message":
            msgs.append(orjson.loads(m["data"]))
    pubsub.close()
    # frames are republished on a replay (subscribers keep the highest seq); the alert only once
    assert [(m["kind"], m.get("seq")) for m in msgs] == [("frame", 1), ("alert", None), ("frame", 2),
                                                        ("frame", 1), ("frame", 2)]
    assert msgs[0]["frame"] == {"status": "active", "n": 1, "seq": 1}
    assert msgs[1]["alert"] == alert and msgs[1]["org_id"] == "o1" and msgs[1]["campaign_id"] == "c1"


def test_sink_raises_other_errors(redis_url, redis_client):
    redis_client.set(frames_stream("o1", "c1"), "not a stream")
    sink = RedisSinkPartition(FlowConfig(redis_url=redis_url), 0)
    with pytest.raises(Exception, match="WRONGTYPE"):
        sink.write_batch([("k", Frame("o1", "c1", 1, b"{}"))])


def test_stop_flag_is_set_by_the_first_signal_only(monkeypatch):
    import signal

    from flows import lifecycle

    monkeypatch.setattr(lifecycle, "STOP", threading.Event())
    lifecycle._handler(signal.SIGTERM, None)
    assert lifecycle.STOP.is_set()
    with pytest.raises(KeyboardInterrupt):
        lifecycle._handler(signal.SIGINT, None)


def test_redis_source_trims_only_entries_older_than_the_retention_behind_the_read_position(redis_url, redis_client):
    stream = ingest_stream(1)
    # entry ids carry their insertion time: 3 h old, 2 h old, then two recent ones
    for i, ms in enumerate((1_000_000_000_000, 1_000_003_600_000, 1_000_010_000_000, 1_000_010_000_500)):
        redis_client.xadd(stream, {"e": f"x{i}"}, id=f"{ms}-0")
    part = RedisStreamSource(redis_url, partitions=2, count=3, retain_ms=3_600_000).build_part("read", "1", None)
    assert len(entries_of(part.next_batch())) == 3  # read position: 1_000_010_000_000-0
    # cutoff = position − 1 h = 1_000_006_400_000: both old entries go, the unread one stays
    ids = [eid.decode() for eid, _ in redis_client.xrange(stream)]
    assert ids == ["1000010000000-0", "1000010000500-0"]
    never = RedisStreamSource(redis_url, partitions=2, count=10, retain_ms=0).build_part("read", "1", None)
    assert len(entries_of(never.next_batch())) == 2 and redis_client.xlen(stream) == 2  # retain 0: no trimming


def test_redis_source_routes_by_the_ingest_key_without_decoding(redis_url, redis_client):
    """The ingest path writes the campaign's route beside each event; the source groups by it."""
    from flows.ingest_claims import accept_events

    evs = [ev(f"r{i}", "campaign.status", T0 + i, camp=c, status="active") for i, c in enumerate(["a", "b", "a"])]
    accept_events(redis_client, evs, partitions=1)
    (entry,) = [f for _i, f in redis_client.xrange(ingest_stream(0), count=1)]
    assert entry[b"k"] == b"o1\x1fa"
    redis_client.xadd(ingest_stream(0), {"e": orjson.dumps(ev("r9", "campaign.status", T0, camp="b",
                                                                status="paused"))})  # raw: no route field
    items = RedisStreamSource(redis_url, partitions=1).build_part("read", "0", None).next_batch()
    assert {route: [orjson.loads(raw)["event_id"] for _ref, raw in group] for route, (_r, group) in items} == \
        {"o1\x1fa": ["r0", "r2"], "o1\x1fb": ["r1", "r9"]}


def test_duplicate_markers_are_read_as_such_and_counted_by_the_campaign_step(redis_url, redis_client, clock):
    """A repeat the ingest path dropped reaches the flow as a marker: counted, nothing applied, no dead letter."""
    from flows.ingest_claims import accept_events
    from flows.messages import DUPLICATE_MARK, Repeat

    first = ev("m1", "campaign.status", T0, camp="a", status="active")
    other = {**first, "campaign_id": "b"}
    assert accept_events(redis_client, [first, first, other], partitions=1) == [True, False, False]
    redis_client.xadd(ingest_stream(0), {"d": "1"})  # a marker without a route: nothing to count it on
    redis_client.xadd(ingest_stream(0), {"k": "o1\x1fb", "d": "1"})  # a marker of an older release: no repeat
    items = RedisStreamSource(redis_url, partitions=1).build_part("read", "0", None).next_batch()
    groups = {route: [raw for _ref, raw in group] for route, (_r, group) in items}
    assert groups == {"o1\x1fa": [orjson.dumps(first), Repeat(orjson.dumps(first))],
                      "o1\x1fb": [Repeat(orjson.dumps(other)), DUPLICATE_MARK], UNROUTABLE: [DUPLICATE_MARK]}
    assert pickle.loads(pickle.dumps(DUPLICATE_MARK)) is DUPLICATE_MARK  # survives the exchange between workers
    assert pickle.loads(pickle.dumps(groups["o1\x1fb"][0])) == Repeat(orjson.dumps(other))

    a = CampaignLogic(FlowConfig(replay=True), None)
    out, _ = a.on_batch([("o1\x1fa", [(f"0:{i}", raw) for i, raw in enumerate(groups["o1\x1fa"])])])
    assert dead_of(out) == [] and body(frames_of(out)[0])["diagnostics"]["duplicates"] == 1
    b = CampaignLogic(FlowConfig(replay=True), None)  # only a marker so far: a state, no frame (no watermark)
    out, _ = b.on_batch([("o1\x1fb", [("0:9", groups["o1\x1fb"][0])])])  # its first copy is campaign a's
    assert out == [] and (b.state.org_id, b.state.campaign_id, b.state.duplicates) == ("o1", "b", 1)
    out, _ = b.on_batch(batch(ev("m2", "campaign.status", T0, camp="b", status="active")))
    assert body(frames_of(out)[0])["diagnostics"]["duplicates"] == 1
    bad = CampaignLogic(FlowConfig(replay=True), None)
    out, _ = bad.on_batch([(UNROUTABLE, [("0:10", DUPLICATE_MARK)])])
    assert [d["code"] for d in dead_of(out)] == ["malformed"] and bad.state is None
    made_up = CampaignLogic(FlowConfig(replay=True), None)  # a routing field a raw writer made up: no campaign
    out, _ = made_up.on_batch([("o1-c1", [("0:11", DUPLICATE_MARK)])])
    assert [d["code"] for d in dead_of(out)] == ["malformed"] and made_up.state is None


def test_a_resent_late_event_is_late_again_as_in_replay_not_a_duplicate(redis_url, redis_client, clock):
    """Reliability #9: one definition on both paths. The first copy was late (never "seen"), so its resend,
    refused by ingest as a duplicate, is late again for the flow, as `callpulse replay` counts it:
    {"late": 2}, not {"late": 1, "duplicates": 1}. A resend of an applied event stays a duplicate."""
    from flows.ingest_claims import accept_events

    head = ev("w1", "campaign.status", T0 + 120_000, camp="a", status="active")
    late = ev("w2", "campaign.status", T0, camp="a", status="paused")  # 120 s behind: past the 30 s bound
    assert accept_events(redis_client, [head, late], partitions=1) == [True, True]
    assert accept_events(redis_client, [late, head], partitions=1) == [False, False]  # both resent
    items = RedisStreamSource(redis_url, partitions=1).build_part("read", "0", None).next_batch()
    logic = CampaignLogic(FlowConfig(replay=True), None)
    out, _ = logic.on_batch([item for _route, item in items])
    got = body(frames_of(out)[-1])["diagnostics"]
    want = replay_diagnostics([head, late, late, head])
    assert (got["late"], got["duplicates"]) == (want["late"], want["duplicates"]) == (2, 1)
    assert [d["code"] for d in dead_of(out)] == ["late", "late"]


def replay_diagnostics(events: list[dict]) -> dict:
    from engine.state.fold import Fold

    fold = Fold()
    for e in events:
        fold.apply(e)
    (only,) = fold.snapshots()
    return only["diagnostics"]


def test_frames_and_recovery_snapshots_carry_the_runs(clock):
    logic = CampaignLogic(FlowConfig(replay=True), None)
    out, _ = logic.on_batch(batch(ev("e1", "call.dialed", T0, contact_id="k1", attempt_id="a1"),
                                  ev("e2", "campaign.run_started", T0 + 1000, run=2),
                                  ev("e3", "call.dialed", T0 + 2000, contact_id="k1", attempt_id="a2")))
    frame = body(frames_of(out)[-1])
    assert frame["run"] == 2 and [(r["run"], r["attempts"]) for r in frame["runs"]] == [(1, 1), (2, 1)]
    assert frame["previous_run_stats"]["run"] == 1
    resumed = CampaignLogic(FlowConfig(replay=True), logic.snapshot())
    resumed.on_batch(batch(ev("e4", "campaign.run_cancelled", T0 + 3000, run=2)))
    st = build_snapshot(resumed.state)
    assert st["run"] == 1 and [(r["run"], r["attempts"]) for r in st["runs"]] == [(1, 2)]


def test_source_reads_entries_as_hiredis_parsed_them_in_either_protocol():
    """flows.redis_source reads XREAD replies without redis-py's per-entry dicts: the ingest path's
    (e, k) entries, duplicate markers, entries with fields in another order, and neither."""
    from flows.messages import DUPLICATE_MARK
    from flows.redis_source import entry_fields, reply_entries

    entries = [[b"1-0", [b"e", b'{"a":1}', b"k", b"o\x1fc"]],
               [b"1-1", [b"k", b"o\x1fc", b"d", b"1"]],
               [b"1-2", [b"k", b"o\x1fc", b"e", b'{"b":2}']],
               [b"1-3", [b"x", b"y"]]]
    assert reply_entries({b"callpulse:ingest:0": entries}) is entries  # RESP3: a map by stream
    assert reply_entries([[b"callpulse:ingest:0", entries]]) is entries  # RESP2
    assert [entry_fields(flat) for _id, flat in entries] == [
        (b'{"a":1}', b"o\x1fc"), (DUPLICATE_MARK, b"o\x1fc"), (b'{"b":2}', b"o\x1fc"), (None, None)]


def test_hiredis_packs_commands_as_the_python_packer_did():
    from flows.ingest_writer import pack, pack_in_python

    for args in [(b"SET", b"k", b"v"), (b"XADD", b"s", b"*", b"e", b'{"x":"a\r\nb"}', b"k", b""),
                 (b"HSET", b"h", *[b"f%d" % i for i in range(50)]),
                 (b"SET", bytearray(b"k"), memoryview(b"v"))]:  # a bytearray: hiredis refuses, Python packs
        assert pack(args) == pack_in_python(args)
