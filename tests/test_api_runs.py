"""Runs (restarts) end to end: `callpulse simulate --restart --withdraw-run` (jittered), the real flow, the
real API: the /stats keys, the run of each attempt in /calls and the attempt report, and `?run=N`."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

from tests.support import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(stack):
    s = stack(["--orgs", "1", "--campaigns", "1", "--contacts", "60", "--seed", "5", "--channel", "voice",
               "--window", "none", "--restart", "--withdraw-run", "--jitter-ms", "20000"],
              keys={"read": {"org": "org-1", "scopes": ["campaigns:read"]}})
    replay = run_cli(s.redis_url, "replay", str(s.files[0]), "--quiet")
    assert replay.returncode == 0, replay.stderr
    http = s.client("read")
    camp = http.get("/v1/campaigns").json()["campaigns"][0]["campaign_id"]
    return {"http": http, "camp": camp, "replay": json.loads(replay.stdout)}


def get(env, path):
    r = env["http"].get(f"/v1/campaigns/{env['camp']}{path}")
    assert r.status_code == 200, r.text
    return r


def test_stats_carry_the_runs_like_the_offline_replay(env):
    stats = get(env, "/stats").json()
    assert stats["run"] == 2  # run 3 was prepared, then withdrawn: not listed
    run1, run2 = stats["runs"]
    assert (run1["run"], run1["started_at"], run2["run"]) == (1, None, 2) and run2["started_at"]
    assert stats["previous_run_stats"] == run1
    assert run1["attempts"] + run2["attempts"] == stats["attempts"]["total"] and run2["attempts"] > 0
    assert {k: stats[k] for k in ("run", "runs", "previous_run_stats")} == {
        k: env["replay"][0][k] for k in ("run", "runs", "previous_run_stats")}


def _all_calls(env, query: str = "") -> list[dict]:
    calls, page = [], 1
    while True:
        got = get(env, f"/calls?limit=37&page={page}{query}").json()["calls"]
        if not got:
            return calls
        calls += got
        page += 1


def test_calls_carry_their_run_and_filter_by_it(env):
    runs = {r["run"]: r for r in get(env, "/stats").json()["runs"]}
    calls = _all_calls(env)
    assert Counter(c["run"] for c in calls if c["started_at"]) == {n: r["attempts"] for n, r in runs.items()}
    start2 = runs[2]["started_at"]
    assert all((c["run"] == 2) == (c["started_at"] >= start2) for c in calls if c["started_at"])
    for n, r in runs.items():
        first = get(env, f"/calls?run={n}&limit=5").json()
        assert first["total"] == r["attempts"]
        for order in ("desc", "asc"):
            mine = _all_calls(env, f"&run={n}&order={order}")
            assert len(mine) == r["attempts"] and {c["run"] for c in mine} == {n}
            starts = [c["started_at"] for c in mine]
            assert starts == sorted(starts, reverse=order == "desc")
            assert sum(c["outcome"] == "connected" for c in mine) == r["outcomes"]["connected"]
    assert get(env, "/calls?run=3").json() == {"total": 0, "page": 1, "limit": 50, "callback": "all",
                                               "outcome": None, "violation": None, "run": 3,
                                               "calls": []}  # withdrawn
    # the run filter combines with the drill-down filters
    abandoned = get(env, "/calls?run=2&outcome=abandoned&limit=200").json()
    assert abandoned["total"] == runs[2]["outcomes"]["abandoned"]
    assert {(c["run"], c["outcome"]) for c in abandoned["calls"]} <= {(2, "abandoned")}
    assert env["http"].get(f"/v1/campaigns/{env['camp']}/calls?run=0").status_code == 422


def test_attempt_report_has_a_run_column_and_filters_by_run(env):
    runs = {r["run"]: r for r in get(env, "/stats").json()["runs"]}
    rows = list(csv.DictReader(io.StringIO(get(env, "/attempt-report.csv").text)))
    assert Counter(r["run"] for r in rows if r["started_at"]) == {str(n): r["attempts"] for n, r in runs.items()}
    only2 = list(csv.DictReader(io.StringIO(get(env, "/attempt-report.csv?run=2").text)))
    assert len(only2) == runs[2]["attempts"] and {r["run"] for r in only2} == {"2"}
    assert list(csv.DictReader(io.StringIO(get(env, "/attempt-report.csv?run=3").text))) == []
