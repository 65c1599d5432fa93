"""Repeats dropped by the ingest path are still counted: `callpulse ingest` (twice, with repeats inside
a call and across calls) -> `callpulse flow --replay --until-drained` gives the bodies of `callpulse replay`
of everything that was sent, `diagnostics.duplicates` included (issue #9)."""

from __future__ import annotations

import json
import subprocess

import pytest

from callpulse.simulator import SimConfig, generate
from engine.storage.keys import DUPLICATE_FIELD, INGEST_FIELD, ROUTE_FIELD, ingest_stream, route_key
from flows.ingest_writer import encode
from tests.test_flow import CLI, PARTS, env, offline_replay, run_flow, stored_bodies

pytestmark = pytest.mark.e2e


def ingest(redis_url, path):
    r = subprocess.run([CLI, "ingest", "--replay", "--quiet", str(path)], env=env(redis_url),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_ingest_duplicates_reach_the_flow_as_markers_and_match_replay(tmp_path, redis_url, redis_client):
    items = list(generate(SimConfig(seed=11, orgs=1, campaigns=2, contacts=30, channel="voice",
                                     duplicate_pct=4)))
    org = items[0]["org_id"]
    camps = sorted({e["campaign_id"] for e in items})
    # An event_id of campaign 0 sent again about campaign 1 (ids are unique per org): a duplicate of campaign 1,
    # arriving before any of campaign 1's own events.
    first0 = next(e for e in items if e["campaign_id"] == camps[0])
    reused = {**first0, "campaign_id": camps[1]}
    half = len(items) // 2
    call1 = [first0, reused] + [e for e in items[:half] if e is not first0]
    call2 = items[half - 40:]  # 40 events of the first call sent again
    p1, p2, both = tmp_path / "call1.ndjson", tmp_path / "call2.ndjson", tmp_path / "all.ndjson"
    for path, evs in ((p1, call1), (p2, call2), (both, call1 + call2)):
        path.write_bytes(b"".join(encode(e) + b"\n" for e in evs))

    c1, c2 = ingest(redis_url, p1), ingest(redis_url, p2)
    assert c1["duplicate"] > 1 and c2["duplicate"] >= 40  # the CLI still reports them
    assert c1["rejected"] == c2["rejected"] == 0

    markers = {}
    for p in range(PARTS):
        for _id, f in redis_client.xrange(ingest_stream(p)):
            if DUPLICATE_FIELD in f:
                assert INGEST_FIELD not in f and f[DUPLICATE_FIELD] == b"1"  # no payload
                markers[f[ROUTE_FIELD]] = markers.get(f[ROUTE_FIELD], 0) + 1
    assert sum(markers.values()) == c1["duplicate"] + c2["duplicate"]
    assert markers[route_key(org, camps[1]).encode()] >= 1

    want, _alerts = offline_replay(redis_url, both, tmp_path)
    assert set(want) == {(org, c) for c in camps}
    assert sum(b["diagnostics"]["duplicates"] for b in want.values()) == c1["duplicate"] + c2["duplicate"]
    run_flow(redis_url, tmp_path, "--replay", "--no-recovery")
    got = stored_bodies(redis_client, want)
    for k in want:
        assert got[k]["diagnostics"] == want[k]["diagnostics"], k
    assert got == want
