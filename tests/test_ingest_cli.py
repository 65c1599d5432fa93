"""`callpulse simulate` and `callpulse ingest` as subprocesses against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from callpulse.simulator import SimConfig, generate
from engine.storage.keys import (
    DUPLICATE_FIELD,
    INGEST_FIELD,
    ROUTE_FIELD,
    ingest_stream,
    partition_for,
    route_key,
    seen_key,
)
from engine.validation.events import EventRejected, parse_event

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CLI = str(ROOT / ".venv" / "bin" / "callpulse")
if not os.path.exists(CLI):  # e.g. an installed package outside the repo's venv
    CLI = str(Path(sys.executable).with_name("callpulse"))
PARTS = 8
SIM_ARGS = ["--seed", "5", "--orgs", "2", "--campaigns", "2", "--contacts", "60", "--channel", "mixed"]
SIM_CFG = SimConfig(seed=5, orgs=2, campaigns=2, contacts=60, channel="mixed")


def cli(*args, redis_url, stdin=None):
    env = dict(os.environ, CALLPULSE_REDIS_URL=redis_url, CALLPULSE_PARTITIONS=str(PARTS))
    return subprocess.run([CLI, *args], input=stdin, capture_output=True, env=env, timeout=60)


def stream_lengths(client) -> list[int]:
    return [client.xlen(ingest_stream(p)) for p in range(PARTS)]


def event_lengths(client) -> list[int]:
    """Entries holding an event per partition (not the duplicate markers the ingest path leaves)."""
    return [sum(1 for _id, f in client.xrange(ingest_stream(p)) if INGEST_FIELD in f) for p in range(PARTS)]


def marker_count(client) -> int:
    return sum(1 for p in range(PARTS) for _id, f in client.xrange(ingest_stream(p)) if DUPLICATE_FIELD in f)


def expected_lengths(items) -> list[int]:
    out = [0] * PARTS
    for e in items:
        ok = isinstance(e, dict) and type(e.get("org_id")) is str and type(e.get("campaign_id")) is str
        out[partition_for(e["org_id"], e["campaign_id"], PARTS) if ok else 0] += 1
    return out


def test_simulate_to_redis_fills_partitions(redis_url, redis_client):
    r = cli("simulate", *SIM_ARGS, "--malformed-pct", "5", "--duplicate-pct", "3", "--redis",
            redis_url=redis_url)
    assert r.returncode == 0, r.stderr
    items = list(generate(SimConfig(seed=5, orgs=2, campaigns=2, contacts=60, channel="mixed",
                                    malformed_pct=5, duplicate_pct=3)))
    assert stream_lengths(redis_client) == expected_lengths(items)
    assert f"{len(items)} events" in r.stderr.decode()
    summary = json.loads(r.stderr.decode().strip().splitlines()[-1])
    assert sum(summary["types"].values()) == len(items)
    # Entries are the events' JSON, one campaign per stream in order.
    first = redis_client.xrange(ingest_stream(0), count=1)
    if first:
        assert INGEST_FIELD in first[0][1]


def test_simulate_stdout_matches_generator(redis_url):
    r = cli("simulate", *SIM_ARGS, "--jitter-ms", "3000", redis_url=redis_url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    want = list(generate(SimConfig(seed=5, orgs=2, campaigns=2, contacts=60, channel="mixed", jitter_ms=3000)))
    assert [orjson.loads(x) for x in lines] == want


def test_ingest_counts_partitions_and_reingest_is_all_duplicate(tmp_path, redis_url, redis_client):
    path = tmp_path / "events.ndjson"
    r = cli("simulate", *SIM_ARGS, "--duplicate-pct", "5", "--malformed-pct", "4", "--out", str(path),
            redis_url=redis_url)
    assert r.returncode == 0, r.stderr
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(lines[:50] + [b"", b"   "] + lines[50:]) + b"\n")  # blank lines are skipped

    # What POST /v1/events would say about each line.
    expect_rejected = []
    valid_first = {}
    lineno = 0
    for raw in path.read_bytes().split(b"\n"):
        lineno += 1
        if not raw.strip():
            continue
        try:
            ev = parse_event(raw.strip())
        except EventRejected as err:
            expect_rejected.append((lineno, err.code))
            continue
        valid_first.setdefault((ev["org_id"], ev["event_id"]), ev)
    n_valid_lines = len(lines) - len(expect_rejected)

    r = cli("ingest", "--replay", str(path), redis_url=redis_url)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert counts["accepted"] == len(valid_first)
    assert counts["duplicate"] == n_valid_lines - len(valid_first) > 0
    assert counts["rejected"] == len(expect_rejected) > 0
    assert sum(counts["rejected_by_code"].values()) == counts["rejected"]
    reported = [line.split(":")[0:2] for line in r.stderr.decode().splitlines()]
    assert [(int(a.split()[1]), b.split()[0]) for a, b in reported] == expect_rejected

    assert event_lengths(redis_client) == expected_lengths(valid_first.values())
    assert marker_count(redis_client) == counts["duplicate"]  # each repeat still reaches the flow, as a marker
    any_key = next(iter(valid_first))
    assert redis_client.ttl(seen_key(*any_key)) > 3500

    r2 = cli("ingest", "--replay", "--quiet", str(path), redis_url=redis_url)
    again = json.loads(r2.stdout)
    assert again["accepted"] == 0
    assert again["duplicate"] == n_valid_lines
    assert r2.stderr == b""
    assert event_lengths(redis_client) == expected_lengths(valid_first.values())
    assert marker_count(redis_client) == counts["duplicate"] + n_valid_lines


def test_ingest_stream_content_is_normalised_in_order(redis_url, redis_client):
    evs = list(generate(SIM_CFG))[:1500]
    body = b"\n".join(orjson.dumps(e) for e in evs)
    r = cli("ingest", "--replay", "-", redis_url=redis_url, stdin=body)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == len(evs)
    got = []
    for p in range(PARTS):
        got += [orjson.loads(f[INGEST_FIELD]) for _id, f in redis_client.xrange(ingest_stream(p))]
    per_campaign = Counter(e["campaign_id"] for e in got)
    assert sum(per_campaign.values()) == len(evs)
    for cid in per_campaign:
        mine = [e["event_id"] for e in evs if e["campaign_id"] == cid]
        assert [e["event_id"] for e in got if e["campaign_id"] == cid] == mine
    cost = next(e for e in got if e["type"] == "cost.incurred")
    assert "usd_micros" in cost  # what validate_event returned is what was appended


def test_ingest_live_mode_rejects_future_events(redis_url):
    now = int(time.time() * 1000)
    base = {"type": "campaign.status", "org_id": "o1", "campaign_id": "c1", "status": "active"}
    body = b"\n".join(orjson.dumps({**base, "event_id": f"e{i}", "ts": ts})
                      for i, ts in enumerate([now, now + 3_600_000, "2026-05-08T09:00:00+02:00"]))
    r = cli("ingest", "-", redis_url=redis_url, stdin=body)
    assert r.returncode == 0
    assert json.loads(r.stdout)["rejected_by_code"] == {"future": 1}
    assert r.stderr.decode().startswith("line 2: future ts:")
    r = cli("ingest", "--replay", "-", redis_url=redis_url, stdin=body)
    counts = json.loads(r.stdout)
    assert (counts["accepted"], counts["duplicate"], counts["rejected"]) == (1, 2, 0)  # e1 was free


def test_usage_errors_exit_2(tmp_path, redis_url):
    assert cli("ingest", str(tmp_path / "missing.ndjson"), redis_url=redis_url).returncode == 2
    assert cli("ingest", redis_url=redis_url).returncode == 2
    assert cli("simulate", "--speed", "fast", redis_url=redis_url).returncode == 2
    assert cli("simulate", "--window", "9-5", redis_url=redis_url).returncode == 2
    assert cli("simulate", "--channel", "sms", redis_url=redis_url).returncode == 2
    assert cli("simulate", "--window", "09:00-17:00@Mars/Olympus", redis_url=redis_url).returncode == 2
    assert cli("simulate", "--out", str(tmp_path / "no" / "such.ndjson"), redis_url=redis_url).returncode == 2


def test_accept_events_and_appender_in_process(redis_client):
    from flows.ingest_claims import accept_events
    from flows.ingest_writer import StreamAppender

    base = {"type": "campaign.status", "ts": 1, "org_id": "o1", "campaign_id": "c1", "status": "active"}
    evs = [{**base, "event_id": "a"}, {**base, "event_id": "a"}, {**base, "event_id": "b"},
           {**base, "event_id": "a", "org_id": "o2"}]  # ids are unique per org, not globally
    assert accept_events(redis_client, evs, partitions=PARTS) == [True, False, True, True]
    assert accept_events(redis_client, evs[:1], partitions=PARTS) == [False]
    assert sum(event_lengths(redis_client)) == 3
    p = partition_for("o1", "c1", PARTS)
    markers = [f for _id, f in redis_client.xrange(ingest_stream(p)) if DUPLICATE_FIELD in f]
    # a marker carries the repeat (flows.ingest_claims; the flow judges it with EventGate.check_repeat)
    assert markers == [{ROUTE_FIELD: route_key("o1", "c1").encode(), DUPLICATE_FIELD: b"1",
                        b"r": orjson.dumps(evs[0])}] * 2

    with StreamAppender(redis_client, partitions=PARTS, chunk=7) as w:
        w.add_many([{**base, "event_id": f"x{i}"} for i in range(20)] + ["{broken", {"no": "ids"}])
    assert w.appended[p] == 20 + (p == 0) * 2 and w.appended[0] >= 2
    assert redis_client.xrange(ingest_stream(0))[-1][1][INGEST_FIELD] == b'{"no":"ids"}'
