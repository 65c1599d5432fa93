"""Engine vs reference on realistic simulator streams (voice, email, mixed) with faults,
plus the daily rows and cross-campaign benchmarks, and `callpulse replay` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import orjson
import pytest

from callpulse.simulator import SimConfig, generate
from engine.state.fold import Fold
from engine.validation.events import EventRejected, validate_event
from engine.views.daily import daily_rows
from engine.views.peer_percentiles import benchmarks
from tests.reference_model import reference_alerts, reference_benchmarks, reference_daily, reference_stats
from tests.test_engine_vs_reference import assert_same, diff

pytestmark = pytest.mark.e2e

CALLPULSE = str(Path(sys.executable).with_name("callpulse"))


def valid_events(cfg: SimConfig) -> list[dict]:
    out = []
    for raw in generate(cfg):
        try:
            out.append(validate_event(raw if isinstance(raw, dict) else orjson.loads(raw)))
        except (EventRejected, orjson.JSONDecodeError):
            continue
    return out


SCENARIOS = {
    "voice-faulty": SimConfig(seed=11, orgs=1, campaigns=2, contacts=60, channel="voice",
                              jitter_ms=20_000, duplicate_pct=5, abandon_prob=0.08),
    "email": SimConfig(seed=12, orgs=1, campaigns=1, contacts=80, channel="email", duplicate_pct=3),
    "mixed-two-orgs": SimConfig(seed=13, orgs=2, campaigns=1, contacts=40, channel="mixed", jitter_ms=10_000,
                                stop=True),
    "paused-window": SimConfig(seed=14, orgs=1, campaigns=1, contacts=50, pause=True,
                               window="09:00-17:00@America/New_York", malformed_pct=2),
    "greeting-end-rising": SimConfig(seed=16, orgs=1, campaigns=3, contacts=120, window="none",
                                     abandon_from="mixed", abandon_prob=0.0, abandon_ramp=0.2,
                                     jitter_ms=20_000, duplicate_pct=3),
    "restarted-runs": SimConfig(seed=15, orgs=1, campaigns=2, contacts=50, window="none", restart=True,
                                withdraw_run=True, jitter_ms=20_000, duplicate_pct=3),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_engine_equals_reference_on_simulator_streams(name):
    events = valid_events(SCENARIOS[name])
    assert len(events) > 300
    engine = {(b["org_id"], b["campaign_id"]): b for b in _fold(events).snapshots()}
    assert_same(engine, reference_stats(events))


def test_forecast_and_level_alerts_equal_reference_on_a_rising_trend():
    """`abandon_from` greeting_end and a rising abandon trend: the forecast alert comes before the breach."""
    cfg = SimConfig(seed=17, orgs=1, campaigns=2, contacts=300, window="none", abandon_from="greeting_end",
                    abandon_prob=0.0, abandon_ramp=0.25)
    events = sorted({(e["org_id"], e["event_id"]): e for e in valid_events(cfg)}.values(),
                    key=lambda e: (e["ts"], e["event_id"]))
    assert all(e.get("abandon_from") == "greeting_end" for e in events if e["type"] == "campaign.created")
    f = Fold()
    got: dict = {}
    for ev in events:
        f.apply(ev)
        for a in f.take_alerts():
            got.setdefault((a["org_id"], a["campaign_id"]), []).append(a)
    assert got == {k: v for k, v in reference_alerts(events).items() if v}
    for alerts in got.values():
        kinds = [(a["kind"], a["window"], a.get("to")) for a in alerts if a["kind"] in ("level", "forecast")]
        first_forecast = kinds.index(("forecast", "30d", None))
        first_breach = kinds.index(("level", "30d", "breach"))
        assert first_forecast < first_breach  # seen coming


def _fold(events):
    f = Fold()
    for ev in events:
        f.apply(ev)
    return f


def test_daily_rows_equal_reference_across_days():
    events = valid_events(SimConfig(seed=21, contacts=60, window="09:00-17:00@America/New_York",
                                    window_days=3, duplicate_pct=2))
    f = _fold(events)
    (key, state), = f.campaigns.items()
    start, end = date(2026, 5, 6), date(2026, 5, 12)
    mine = daily_rows(state, start, end)
    theirs = reference_daily(events, key[0], key[1], start.isoformat(), end.isoformat())
    assert not diff(mine, theirs)
    assert len(mine) == 7 and sum(r["dials"] for r in mine) == f.snapshot(key)["attempts"]["total"]
    assert sum(1 for r in mine if r["dials"]) >= 2  # the campaign really spans several local days


def test_benchmarks_equal_reference():
    events = valid_events(SimConfig(seed=31, orgs=1, campaigns=5, contacts=30, channel="mixed"))
    bodies = _fold(events).snapshots()
    kinds = {b["kind"] for b in bodies}
    for kind in kinds:
        assert not diff(benchmarks(bodies, bodies[0]["org_id"], kind),
                        reference_benchmarks(bodies, bodies[0]["org_id"], kind))
    assert benchmarks(bodies, "nobody", "x")["answer_rate"]["sample_size"] == 0


def test_replay_command_prints_the_engine_bodies(tmp_path):
    cfg = SimConfig(seed=41, campaigns=2, contacts=30, duplicate_pct=5, malformed_pct=3)
    path = tmp_path / "events.ndjson"
    with path.open("wb") as fh:
        for raw in generate(cfg):
            fh.write((orjson.dumps(raw) if isinstance(raw, dict) else raw.encode()) + b"\n")
    out = subprocess.run([CALLPULSE, "replay", str(path)], capture_output=True, check=True)
    bodies = json.loads(out.stdout)
    assert [b["campaign_id"] for b in bodies] == sorted(b["campaign_id"] for b in bodies)
    assert bodies == [json.loads(orjson.dumps(b)) for b in _fold(valid_events(cfg)).snapshots()]
    assert b"rejected" in out.stderr  # malformed lines are reported, not silently dropped
    # byte-identical on a second run (replay mode: no wall clock)
    again = subprocess.run([CALLPULSE, "replay", str(path)], capture_output=True, check=True)
    assert again.stdout == out.stdout
    one = subprocess.run([CALLPULSE, "replay", str(path), "--campaign", bodies[1]["campaign_id"]],
                         capture_output=True, check=True)
    assert json.loads(one.stdout) == bodies[1]


def test_replay_and_ingest_accept_a_json_array_file(tmp_path, redis_url):
    """SPEC §1: a JSON array is accepted as well as NDJSON — same results either way."""
    import os

    cfg = SimConfig(seed=42, contacts=20, duplicate_pct=5)
    items = [e for e in generate(cfg) if isinstance(e, dict)]
    nd, arr = tmp_path / "events.ndjson", tmp_path / "events.json"
    nd.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in items))
    arr.write_bytes(b"\xef\xbb\xbf  " + orjson.dumps(items + [{"type": "nope"}], option=orjson.OPT_INDENT_2))
    a = subprocess.run([CALLPULSE, "replay", str(nd)], capture_output=True, check=True)
    b = subprocess.run([CALLPULSE, "replay", str(arr)], capture_output=True, check=True)
    assert a.stdout == b.stdout and json.loads(b.stdout)
    assert f"item {len(items) + 1}: rejected".encode() in b.stderr
    env = dict(os.environ, CALLPULSE_REDIS_URL=redis_url)
    out = subprocess.run([CALLPULSE, "ingest", "--replay", str(arr)], capture_output=True, check=True, env=env)
    counts = json.loads(out.stdout)
    assert counts["accepted"] + counts["duplicate"] == len(items) and counts["rejected"] == 1
