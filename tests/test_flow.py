"""`callpulse flow` end to end: a real redis-server, real Bytewax, the flow as a subprocess.

(a) a replay through the flow equals `callpulse replay` on the same events, across a graceful
    stop (SIGTERM) and restart; (b) dead letters of malformed, future and late events;
(c) SIGKILL at random points + restarts lose nothing and count nothing twice, alerts once;
(d) 1, 2 threads, 2 processes, 4 threads and the NDJSON file source give the same snapshots;
(e) frame ids strictly increase and the PUBLISHed frames/alerts arrive.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
import redis

from callpulse.simulator import SimConfig, generate
from engine.state.fold import Fold
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
    stats_key,
)
from engine.validation.events import EventRejected, parse_event
from flows.ingest_writer import StreamAppender, encode

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CLI = str(ROOT / ".venv" / "bin" / "callpulse")
if not os.path.exists(CLI):
    CLI = str(Path(sys.executable).with_name("callpulse"))
PARTS = 4
MIN_SAMPLE = "10"  # small, so the simulated campaigns raise alerts


def env(redis_url):
    return dict(os.environ, CALLPULSE_REDIS_URL=redis_url, CALLPULSE_PARTITIONS=str(PARTS))


def start_flow(redis_url, tmp_path, *args, name="flow"):
    log = open(tmp_path / f"{name}.log", "ab")
    return subprocess.Popen([CLI, "flow", "--min-sample", MIN_SAMPLE, *args], env=env(redis_url),
                            stdout=log, stderr=log, start_new_session=True)


def run_flow(redis_url, tmp_path, *args, timeout=120):
    proc = start_flow(redis_url, tmp_path, "--until-drained", *args)
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 0, (tmp_path / "flow.log").read_text()[-3000:]


def write_ndjson(path, items):
    path.write_bytes(b"".join(encode(e) + b"\n" for e in items))


def append(redis_client, items):
    with StreamAppender(redis_client, partitions=PARTS) as app:
        app.add_many(items)


def offline_replay(redis_url, path, tmp_path):
    """`callpulse replay` of the file: {(org, campaign): body} and the alert records in order."""
    alerts_path = tmp_path / "alerts.ndjson"
    r = subprocess.run([CLI, "replay", "--quiet", "--min-sample", MIN_SAMPLE, "--alerts", str(alerts_path),
                        str(path)], env=env(redis_url), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    bodies = {(b["org_id"], b["campaign_id"]): b for b in orjson.loads(r.stdout)}
    alerts = [orjson.loads(x) for x in alerts_path.read_bytes().splitlines()]
    return bodies, alerts


def fold_bodies(items):
    fold = Fold(min_sample=int(MIN_SAMPLE))
    for it in items:
        try:
            fold.apply(parse_event(encode(it)))
        except EventRejected:
            pass
    return {(b["org_id"], b["campaign_id"]): b for b in fold.snapshots()}


def stored_bodies(client, keys):
    out = {}
    for k in keys:
        raw = client.get(stats_key(*k))
        out[k] = orjson.loads(raw) if raw else None
    return out


def wait_for_bodies(client, want, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stored_bodies(client, want) == want:
            return
        time.sleep(0.2)
    got = stored_bodies(client, want)
    bad = [k for k in want if got[k] != want[k]]
    raise AssertionError(f"stats keys never matched for {bad}")


def stream_alerts(client, key):
    return [orjson.loads(f[ALERT_FIELD]) for _id, f in client.xrange(key)]


def check_alerts(client, want_alerts):
    by_campaign = defaultdict(list)
    for a in want_alerts:
        by_campaign[(a["org_id"], a["campaign_id"])].append(a)
    orgs = {a["org_id"] for a in want_alerts}
    for (org, camp), want in by_campaign.items():
        assert stream_alerts(client, alerts_stream(org, camp)) == want
    for org in orgs:
        got = stream_alerts(client, org_alerts_stream(org))
        ids = [a["alert_id"] for a in got]
        assert len(ids) == len(set(ids)), "an alert was written twice"
        assert sorted(ids) == sorted(a["alert_id"] for a in want_alerts if a["org_id"] == org)


def check_frames(client, bodies):
    """Frame ids `<seq>-0` strictly increase, carry their seq, and the last one is the stats body."""
    for (org, camp), body in bodies.items():
        entries = client.xrange(frames_stream(org, camp))
        assert entries, (org, camp)
        seqs = [int(i.split(b"-")[0]) for i, _ in entries]
        assert all(i.endswith(b"-0") for i, _ in entries)
        assert seqs == sorted(set(seqs))
        last = orjson.loads(entries[-1][1][FRAME_FIELD])
        assert last.pop("seq") == seqs[-1]
        assert last == body
        assert camp.encode() in client.smembers(org_campaigns_key(org))


def clear_outputs(client):
    """Everything but the ingest streams (a fresh run over the same input)."""
    keep = {ingest_stream(p).encode() for p in range(PARTS)}
    doomed = [k for k in client.scan_iter(count=1000) if k not in keep]
    if doomed:
        client.delete(*doomed)


class Subscriber:
    """Collects the LIVE_CHANNEL messages in a thread."""

    def __init__(self, redis_url):
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(LIVE_CHANNEL)
        self.messages = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            m = self.pubsub.get_message(timeout=0.1)
            if m and m["type"] == "message":
                self.messages.append(orjson.loads(m["data"]))

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.pubsub.close()
        self.client.close()


# ---------------------------------------------------------------- (a) + (e)

def test_replay_flow_equals_offline_replay_across_a_graceful_restart(tmp_path, redis_url, redis_client):
    cfg = SimConfig(seed=23, orgs=2, campaigns=2, contacts=150, channel="mixed", duplicate_pct=3,
                    jitter_ms=5000, malformed_pct=2, abandon_prob=0.1)
    items = list(generate(cfg))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    cut = len(items) * 3 // 5
    append(redis_client, items[:cut])
    sub = Subscriber(redis_url)
    try:
        rec = str(tmp_path / "recovery")
        proc = start_flow(redis_url, tmp_path, "--replay", "--recovery-dir", rec, "-s", "1")
        try:
            wait_for_bodies(redis_client, fold_bodies(items[:cut]))
        finally:
            proc.send_signal(signal.SIGTERM)  # graceful: last frames and snapshots written, exit 0
            rc = proc.wait(timeout=30)
        assert rc == 0, (tmp_path / "flow.log").read_text()[-3000:]
        assert b"SIGTERM received" in (tmp_path / "flow.log").read_bytes()

        append(redis_client, items[cut:])
        run_flow(redis_url, tmp_path, "--replay", "--recovery-dir", rec)
        want, want_alerts = offline_replay(redis_url, path, tmp_path)
        assert len(want) == 4 and want_alerts
        assert stored_bodies(redis_client, want) == want  # equal outright, diagnostics and alert levels too
        check_alerts(redis_client, want_alerts)
        check_frames(redis_client, want)
        status = redis_client.hgetall(flow_status_key())
        for p in range(PARTS):
            last = redis_client.xrevrange(ingest_stream(p), count=1)
            if last:
                assert status[f"p{p}".encode()] == last[0][0]
        time.sleep(0.3)
    finally:
        sub.close()

    frames = [m for m in sub.messages if m["kind"] == "frame"]
    alerts = [m for m in sub.messages if m["kind"] == "alert"]
    for (org, camp), body in want.items():
        mine = [m for m in frames if (m["org_id"], m["campaign_id"]) == (org, camp)]
        assert mine and all(m["frame"]["seq"] == m["seq"] for m in mine)
        last = max(mine, key=lambda m: m["seq"])
        assert {k: v for k, v in last["frame"].items() if k != "seq"} == body
        assert last["seq"] == int(redis_client.xrevrange(frames_stream(org, camp), count=1)[0][0].split(b"-")[0])
    assert sorted(m["alert"]["alert_id"] for m in alerts) == sorted(a["alert_id"] for a in want_alerts)


# ---------------------------------------------------------------- (b)

def test_dead_letters_for_malformed_future_and_late_events(tmp_path, redis_url, redis_client):
    now = int(time.time() * 1000)
    base = {"org_id": "o1", "campaign_id": "c1"}
    good = [
        {**base, "event_id": "e1", "type": "campaign.created", "ts": now - 120_000, "name": "Spring"},
        {**base, "event_id": "e2", "type": "campaign.status", "ts": now - 100_000, "status": "active"},
        {**base, "event_id": "e3", "type": "contact.added", "ts": now - 10_000, "contact_id": "k1"},
    ]
    late = {**base, "event_id": "e4", "type": "call.dialed", "ts": now - 100_000, "contact_id": "k1",
            "attempt_id": "a1"}
    dup = {**good[0], "name": "retried webhook"}
    future = {**base, "event_id": "e5", "type": "campaign.status", "ts": now + 600_000, "status": "paused"}
    missing = {**base, "event_id": "e6", "type": "call.answered", "ts": now - 5000}
    unknown = {**base, "event_id": "e7", "type": "call.teleported", "ts": now - 5000}
    broken = b'{"event_id": "e8", "type": '
    append(redis_client, [*good, late, dup, future, missing, unknown, broken])
    no_field_id = redis_client.xadd(ingest_stream(0), {"x": "y"}).decode()

    sources = {}  # payload -> "<partition>:<entry id>"
    for p in range(PARTS):
        for eid, fields in redis_client.xrange(ingest_stream(p)):
            sources[fields.get(b"e", b"")] = f"{p}:{eid.decode()}"

    run_flow(redis_url, tmp_path, "--no-recovery")  # live mode: the future check is on
    entries = [f for _id, f in redis_client.xrange(DEAD_LETTER_STREAM)]
    by_code = Counter(f[b"code"].decode() for f in entries)
    assert by_code == {"late": 1, "future": 1, "missing_field": 1, "unknown_type": 1, "malformed": 2}
    for f in entries:
        assert f[b"source"].decode() == sources[f[b"payload"]]  # the original bytes, and where they were
        assert f[b"reason"]
    rec = {f[b"code"].decode(): f for f in entries if f[b"code"] != b"malformed"}
    assert rec["late"][b"payload"] == encode(late) and rec["late"][b"field"] == b"ts"
    assert (rec["late"][b"org_id"], rec["late"][b"campaign_id"], rec["late"][b"event_id"]) == (b"o1", b"c1", b"e4")
    assert b"behind the campaign's watermark" in rec["late"][b"reason"]
    assert rec["future"][b"field"] == b"ts"
    assert rec["missing_field"][b"field"] == b"attempt_id"
    assert rec["unknown_type"][b"payload"] == encode(unknown)
    assert {f[b"payload"] for f in entries if f[b"code"] == b"malformed"} == {broken, b""}
    assert any(f[b"source"].decode() == f"0:{no_field_id}" for f in entries)

    body = orjson.loads(redis_client.get(stats_key("o1", "c1")))
    assert body["diagnostics"] == {"late": 1, "duplicates": 1, "orphaned": 0}
    assert body["name"] == "Spring" and body["contacts"]["total"] == 1 and body["attempts"]["total"] == 0

    # Without recovery a restart re-reads everything: same numbers, no dead letter written twice.
    run_flow(redis_url, tmp_path, "--no-recovery")
    assert redis_client.xlen(DEAD_LETTER_STREAM) == 6
    again = orjson.loads(redis_client.get(stats_key("o1", "c1")))
    assert again["diagnostics"] == body["diagnostics"] and again["contacts"] == body["contacts"]


# ---------------------------------------------------------------- (c)

def _positions(client):
    status = client.hgetall(flow_status_key())
    return {p: status.get(f"p{p}".encode()) for p in range(PARTS)}


def _has_campaign_snapshots(recovery_dir) -> bool:
    import sqlite3

    for part in Path(recovery_dir).glob("part-*.sqlite3"):
        db = sqlite3.connect(part)
        try:
            if db.execute("SELECT 1 FROM snaps WHERE step_id = 'callpulse.campaign' LIMIT 1").fetchone():
                return True
        finally:
            db.close()
    return False


def check_details(client, bodies):
    """Contact/attempt detail in Redis agrees with each final /stats body (engine.views.detail records)."""
    from collections import Counter

    from engine.storage.keys import (
        attempt_details_key,
        attempt_index_key,
        batch_details_key,
        contact_details_key,
        contact_index_key,
        daily_key,
        replies_key,
        transcript_key,
    )

    transcripts = 0
    for (org, camp), body in bodies.items():
        contacts = [orjson.loads(v) for v in client.hvals(contact_details_key(org, camp))]
        assert len(contacts) == body["contacts"]["total"]
        assert Counter(c["status"] for c in contacts) == +Counter(body["contacts"]["by_status"])
        for status, n in body["contacts"]["by_status"].items():
            assert client.zcard(contact_index_key(org, camp, status)) == n, status
        assert client.zcard(contact_index_key(org, camp)) == len(contacts)
        attempts = [orjson.loads(v) for v in client.hvals(attempt_details_key(org, camp))]
        assert sum(1 for a in attempts if a["started_at"]) == body["attempts"]["total"]
        assert Counter(a["outcome"] for a in attempts if a["outcome"]) == +Counter(body["outcomes"])
        assert client.zcard(attempt_index_key(org, camp)) == len(attempts)
        for a in attempts[:20]:
            transcripts += client.hlen(transcript_key(org, camp, a["attempt_id"]))
        batches = [orjson.loads(v) for v in client.hvals(batch_details_key(org, camp))]
        assert Counter(b["status"] for b in batches) == +Counter(body["batch_counts"])
        cells = [orjson.loads(v) for v in client.hvals(daily_key(org, camp))]
        assert sum(c[0] for c in cells) == body["attempts"]["total"]  # daily dials
        assert round(sum(c[8] for c in cells) / 1e6, 6) == round(body["costs"]["total_usd"], 6)
        assert client.hlen(replies_key(org, camp)) == body["email"]["replied"]
    return transcripts


def test_sigkill_and_restart_lose_nothing_and_count_nothing_twice(tmp_path, redis_url, redis_client):
    cfg = SimConfig(seed=31, orgs=2, campaigns=3, contacts=1800, channel="mixed", duplicate_pct=2,
                    jitter_ms=5000, malformed_pct=1, abandon_prob=0.08)
    items = list(generate(cfg))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    append(redis_client, items)
    ends = {p: (redis_client.xrevrange(ingest_stream(p), count=1) or [[None]])[0][0] for p in range(PARTS)}
    rec = str(tmp_path / "recovery")
    rng = random.Random(7)
    midway = snapshotted = 0
    for _ in range(3):
        before = _positions(redis_client)
        # small frozen chunks, so sealed attempts are written to the chunk store and named by snapshots
        proc = start_flow(redis_url, tmp_path, "--replay", "--recovery-dir", rec, "--seal-chunk-rows", "64",
                          "-s", "0.3")  # short epochs: the kills land between committed snapshots
        deadline = time.monotonic() + 60
        while _positions(redis_client) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # until this run has read something
        time.sleep(rng.uniform(0.3, 1.3))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if _positions(redis_client) != ends:
            midway += 1
        snapshotted += _has_campaign_snapshots(rec)
    assert midway >= 2, "the flow finished before it could be killed: make the input longer"
    assert snapshotted >= 2, "restarts should resume from recovery snapshots, not from scratch"

    run_flow(redis_url, tmp_path, "--replay", "--recovery-dir", rec, "--seal-chunk-rows", "64")
    assert len(list(Path(rec, "chunks").glob("*.chunk"))) >= 10
    want, want_alerts = offline_replay(redis_url, path, tmp_path)
    assert stored_bodies(redis_client, want) == want
    assert want_alerts
    check_alerts(redis_client, want_alerts)
    check_frames(redis_client, want)
    assert check_details(redis_client, want) > 0  # contacts, attempts and some transcripts, exactly
    rejected = 0
    for it in items:
        try:
            parse_event(encode(it))
        except EventRejected:
            rejected += 1
    assert redis_client.xlen(DEAD_LETTER_STREAM) == rejected  # each once (no late events here)


# ---------------------------------------------------------------- (d)

@pytest.mark.parametrize("variant", [
    pytest.param(["-w", "1"], id="1-worker"),
    pytest.param(["-w", "2"], id="2-threads"),
    pytest.param(["-p", "2"], id="2-processes"),
    pytest.param(["-w", "4"], id="4-threads"),
    pytest.param(["--file"], id="ndjson-file"),
])
def test_worker_counts_and_sources_give_the_same_snapshots(variant, tmp_path, redis_url, redis_client):
    cfg = SimConfig(seed=41, orgs=3, campaigns=2, contacts=150, channel="mixed", duplicate_pct=3,
                    jitter_ms=5000, malformed_pct=1, abandon_prob=0.1)
    items = list(generate(cfg))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    want, want_alerts = offline_replay(redis_url, path, tmp_path)
    if variant == ["--file"]:
        proc = start_flow(redis_url, tmp_path, "--replay", "--file", str(path), "--recovery-dir",
                          str(tmp_path / "rec"))
        assert proc.wait(timeout=120) == 0, (tmp_path / "flow.log").read_text()[-3000:]
    else:
        append(redis_client, items)
        run_flow(redis_url, tmp_path, "--replay", "--recovery-dir", str(tmp_path / "rec"), *variant)
    assert stored_bodies(redis_client, want) == want
    check_alerts(redis_client, want_alerts)
    check_frames(redis_client, want)
