"""Per-campaign gauges on the API's /metrics (api/campaign_metrics.py), the sample Prometheus rules and
the Grafana dashboard (docs/). Real Redis, the real flow (CLI), real HTTP; the exposition is read with
prometheus_client's own parser.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from api.campaign_metrics import build_families
from engine.storage.keys import flow_status_key, stats_key
from engine.validation.events import parse_time

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parent.parent / "docs"
LEVELS = {"ok": 0, "warning": 1, "breach": 2}


@pytest.fixture(scope="module")
def prom_env(stack):
    s = stack(["--orgs", "2", "--campaigns", "2", "--contacts", "80", "--channel", "voice", "--abandon-prob", "0.3",
               "--tz-mix", "us", "--off-hours-pct", "10", "--redial-abandoned-pct", "100"],
              # one email campaign (org-1) with spam complaints, for the complaint gauges
              ["--channel", "email", "--contacts", "200", "--complaint-pct", "5", "--tag", "em"],
              min_sample=10, apps=())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CALLPULSE_METRICS_CACHE_S", "1")
        mp.setenv("CALLPULSE_METRICS_MAX_CAMPAIGNS", "200")  # off by default (tenancy): on for this test
        full = s.serve()
        mp.setenv("CALLPULSE_METRICS_MAX_CAMPAIGNS", "3")
        capped = s.serve()
        mp.delenv("CALLPULSE_METRICS_MAX_CAMPAIGNS")  # the default: per-campaign gauges off
        off = s.serve()
    return {"redis": s.redis, "full": full.url, "capped": capped.url, "off": off.url}


def scrape(url: str) -> dict:
    """{metric name: {frozenset(labels): value}} of one /metrics scrape."""
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200
    out: dict = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def sample(m: dict, name: str, **labels):
    return m.get(name, {}).get(frozenset(labels.items()))


def stored(client) -> list[dict]:
    from engine.storage.keys import org_campaigns_key
    out = []
    for org in ("org-1", "org-2"):
        for camp in sorted(c.decode() for c in client.smembers(org_campaigns_key(org))):
            out.append(orjson.loads(client.get(stats_key(org, camp))))
    return out


def test_every_campaign_gauge_is_what_the_flow_stored(prom_env):
    m = scrape(prom_env["full"])
    camps = stored(prom_env["redis"])
    assert len(camps) == 5
    assert sample(m, "callpulse_campaigns", state="known") == 5
    assert sample(m, "callpulse_campaigns", state="exported") == 5
    breaches = 0
    for b in camps:
        c = {"org_id": b["org_id"], "campaign_id": b["campaign_id"]}
        assert_guard_gauges(m, b, c)
        if b["channel"] == "email":
            continue
        ab = b["abandon"]
        for w, win in ab["windows"].items():
            assert sample(m, "callpulse_campaign_abandon_level", **c, window=w) == LEVELS[win["level"]]
            assert sample(m, "callpulse_campaign_abandon_rate", **c, window=w) == pytest.approx(win["rate"])
            assert sample(m, "callpulse_campaign_abandoned", **c, window=w) == win["abandoned"]
            assert sample(m, "callpulse_campaign_human_answered", **c, window=w) == win["human_answered"]
            breaches += win["level"] == "breach"
        for w in ("today", "30d"):
            want = ab["forecast"][w]["breach_in_s"]
            got = sample(m, "callpulse_abandon_breach_in_seconds", **c, window=w)
            assert got == (pytest.approx(want) if want is not None else None)
        assert sample(m, "callpulse_campaign_abandon_budget", **c) == ab["budget"]
        assert sample(m, "callpulse_campaign_abandon_ceiling", **c) == pytest.approx(ab["ceiling"])
        assert sample(m, "callpulse_campaign_active_calls", **c) == b["active_calls"]
        assert sample(m, "callpulse_campaign_dials_per_second", **c) == pytest.approx(b["live"]["dials_per_sec"])
        assert sample(m, "callpulse_campaign_watermark_timestamp_seconds", **c) == \
            pytest.approx(parse_time(b["as_of"], "as_of") / 1000)
    assert breaches > 0  # abandon-prob 0.3, min_sample 10: the level gauges are not all zero
    marks = [int(x) for x in prom_env["redis"].hmget(flow_status_key(), "tick_ms", "write_ms") if x]
    lag = sample(m, "callpulse_flow_lag_seconds")
    assert lag == pytest.approx(time.time() - max(marks) / 1000, abs=5)


def assert_guard_gauges(m: dict, b: dict, c: dict) -> None:
    """Compliance violations per kind, waiting calls and (email) the complaint windows, as stored."""
    for kind, guard in b["compliance"].items():
        assert sample(m, "callpulse_campaign_compliance_violations", **c, kind=kind) == guard["violations"]
        last = guard["last_violation_at"]
        got = sample(m, "callpulse_campaign_compliance_last_violation_timestamp_seconds", **c, kind=kind)
        assert got == (pytest.approx(parse_time(last, "at") / 1000) if last else None)
    assert sample(m, "callpulse_campaign_waiting_for_agent", **c) == b["live"]["waiting_for_agent"]
    oldest = b["live"]["oldest_wait_ms"]
    assert sample(m, "callpulse_campaign_oldest_wait_seconds", **c) == (oldest / 1000 if oldest is not None else None)
    if b["channel"] != "email":
        assert sample(m, "callpulse_campaign_complaint_rate", **c, window="lifetime") is None
        return
    comp = b["email"]["complaints"]
    for w, win in comp["windows"].items():
        assert sample(m, "callpulse_campaign_complaint_rate", **c, window=w) == pytest.approx(win["rate"])
        assert sample(m, "callpulse_campaign_complaint_level", **c, window=w) == LEVELS[win["level"]]
        assert sample(m, "callpulse_campaign_complained", **c, window=w) == win["complained"]
        assert sample(m, "callpulse_campaign_delivered", **c, window=w) == win["delivered"]
    assert sample(m, "callpulse_campaign_complaint_ceiling", **c) == pytest.approx(comp["ceiling"])
    assert sample(m, "callpulse_campaign_complaint_warning", **c) == pytest.approx(comp["warning"])


def test_compliance_and_complaint_gauges_are_not_all_zero(prom_env):
    m = scrape(prom_env["full"])
    for kind in ("calling_hours", "abandon_redial"):
        assert sum(v for k, v in m["callpulse_campaign_compliance_violations"].items()
                   if dict(k)["kind"] == kind) > 0, kind
    assert max(m["callpulse_campaign_complained"].values()) > 0
    assert max(m["callpulse_campaign_complaint_level"].values()) == 2  # 5 % of the delivered, campaign completed


def test_waiting_calls_are_exported_with_the_oldest_wait():
    body = {"org_id": "o", "campaign_id": "c", "channel": "voice", "as_of": "2026-05-08T13:00:00Z",
            "live": {"waiting_for_agent": 3, "oldest_wait_ms": 4200},
            "compliance": {"calling_hours": {"violations": 2, "last_violation_at": "2026-05-08T12:00:00Z"},
                           "abandon_redial": {"hours": 72, "violations": 0, "last_violation_at": None}}}
    fams = {f.name: {tuple(s.labels.values()): s.value for s in f.samples}
            for f in build_families([body], 1, [], 0.0)}
    assert fams["callpulse_campaign_waiting_for_agent"] == {("o", "c"): 3}
    assert fams["callpulse_campaign_oldest_wait_seconds"] == {("o", "c"): 4.2}
    assert fams["callpulse_campaign_compliance_violations"] == {("o", "c", "calling_hours"): 2,
                                                               ("o", "c", "abandon_redial"): 0}
    assert fams["callpulse_campaign_compliance_last_violation_timestamp_seconds"] == \
        {("o", "c", "calling_hours"): 1_778_241_600.0}
    assert fams["callpulse_campaign_complaint_rate"] == {}  # a voice campaign has no complaints
    body["live"] = {"waiting_for_agent": 0, "oldest_wait_ms": None}
    fams = {f.name: f.samples for f in build_families([body], 1, [], 0.0)}
    assert fams["callpulse_campaign_oldest_wait_seconds"] == []  # absent while nobody waits
    assert fams["callpulse_campaign_agents"] == []  # a campaign without agents exports none


def test_agents_are_exported_by_state():
    body = {"org_id": "o", "campaign_id": "c", "channel": "voice", "as_of": "2026-05-08T13:00:00Z",
            "agents": {"by_state": {"ready": 2, "on_call": 5, "wrap": 1, "paused": 0, "offline": 3}, "list": []}}
    fams = {f.name: {tuple(s.labels.values()): s.value for s in f.samples}
            for f in build_families([body], 1, [], 0.0)}
    assert fams["callpulse_campaign_agents"] == {("o", "c", "ready"): 2, ("o", "c", "on_call"): 5,
                                                 ("o", "c", "wrap"): 1, ("o", "c", "paused"): 0,
                                                 ("o", "c", "offline"): 3}


def test_the_number_of_campaigns_exported_is_capped(prom_env):
    m = scrape(prom_env["capped"])
    assert sample(m, "callpulse_campaigns", state="known") == 5
    assert sample(m, "callpulse_campaigns", state="exported") == 3
    exported = {dict(k)["campaign_id"] for k in m["callpulse_campaign_active_calls"]}
    first3 = sorted((b["org_id"], b["campaign_id"]) for b in stored(prom_env["redis"]))[:3]
    assert exported == {c for _o, c in first3}  # (org, campaign) order


def test_campaigns_are_counted_with_the_gauges_off(prom_env):
    m = scrape(prom_env["off"])
    assert sample(m, "callpulse_campaigns", state="known") == 5  # not 0: counted, nothing else read
    assert sample(m, "callpulse_campaigns", state="exported") == 0
    assert not m.get("callpulse_campaign_active_calls") and not m.get("callpulse_campaign_abandon_rate")


def test_reads_are_cached_for_a_second(prom_env):
    client = prom_env["redis"]
    b = stored(client)[0]
    c = {"org_id": b["org_id"], "campaign_id": b["campaign_id"]}
    key = stats_key(b["org_id"], b["campaign_id"])
    original = client.get(key)
    try:
        scrape(prom_env["full"])
        client.set(key, orjson.dumps({**b, "active_calls": 4242}))
        t0 = time.monotonic()
        m = scrape(prom_env["full"])
        if time.monotonic() - t0 < 0.8:  # still within the 1 s cache: the previous read
            assert sample(m, "callpulse_campaign_active_calls", **c) == b["active_calls"]
        time.sleep(1.1)
        assert sample(scrape(prom_env["full"]), "callpulse_campaign_active_calls", **c) == 4242
    finally:
        client.set(key, original)


# ------------------------------------------------------------------ the sample rules and dashboard

def exported_names(prom_env) -> set[str]:
    """Every metric /metrics declares (HELP/TYPE), samples or not: a gauge such as the oldest wait for an
    agent is absent while nobody waits, yet a rule may name it."""
    r = httpx.get(prom_env["full"] + "/metrics", timeout=10)
    return set(scrape(prom_env["full"])) | {fam.name for fam in text_string_to_metric_families(r.text)}


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bcallpulse_[a-z0-9_]+", expr))


def test_prometheus_rules_parse_and_reference_exported_metrics(prom_env):
    doc = yaml.safe_load((DOCS / "prometheus-rules.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"CallpulseAbandonBreach", "CallpulseAbandonBreachForecast", "CallpulseFlowLagging",
            "CallpulseCallingHoursViolation", "CallpulseAbandonRedialViolation", "CallpulseCallersWaitingForAgent",
            "CallpulseSpamComplaintBreach", "CallpulseSpamComplaintWarning"} <= names
    exported = exported_names(prom_env)
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, r
        assert r["labels"]["severity"] in {"critical", "warning", "info"}
        used = metric_names(r["expr"])
        assert used and used <= exported, (r["alert"], used - exported)
    forecast = next(r for r in rules if r["alert"] == "CallpulseAbandonBreachForecast")
    assert "callpulse_abandon_breach_in_seconds" in forecast["expr"] and "900" in forecast["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules():
    r = subprocess.run(["promtool", "check", "rules", str(DOCS / "prometheus-rules.yml")], capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_grafana_dashboard_is_importable_and_queries_exported_metrics(prom_env):
    dash = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dash["title"] and dash["uid"] and isinstance(dash["schemaVersion"], int)
    assert "id" not in dash or dash["id"] is None  # an import must not collide with an existing dashboard id
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"  # no hard-coded data source uid
    exported = exported_names(prom_env)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    used = set()
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${datasource}"
        for t in p["targets"]:
            used |= metric_names(t["expr"])
    for v in variables.values():
        if v["type"] == "query":
            used |= metric_names(v["query"]["query"])
    assert used <= exported, used - exported
    assert {"callpulse_campaign_abandon_rate", "callpulse_campaign_abandon_level", "callpulse_abandon_breach_in_seconds",
            "callpulse_campaign_abandon_budget", "callpulse_campaign_active_calls",
            "callpulse_campaign_dials_per_second", "callpulse_flow_lag_seconds"} <= used
