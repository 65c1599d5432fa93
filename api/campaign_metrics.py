"""Per-campaign Prometheus gauges on ``GET /metrics``, from what the flow stored (docs/operations.md).

Each scrape exports, for up to ``CALLPULSE_METRICS_MAX_CAMPAIGNS`` campaigns (in (org, campaign)
order; default 0 = off, since they name every org's campaigns on an unauthenticated endpoint), gauges labelled ``org_id``, ``campaign_id`` (and ``window``) read
from the stored ``/stats`` bodies, plus the flow's lag from its status hash. Reads are cached for
``CALLPULSE_METRICS_CACHE_S`` seconds (default 2), so scrapes from several Prometheus servers cost one
read; orgs are found by a SCAN bounded per refresh (``CALLPULSE_METRICS_SCAN_KEYS``, default 100 000
keys; api/read_model/gauges.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

from api.read_model.gauges import OrgDirectory, read_campaigns, read_flow_marks
from engine.validation.events import EventRejected, parse_time

log = logging.getLogger("callpulse.api.metrics")

LEVELS = {"ok": 0, "warning": 1, "breach": 2}
WINDOWS = ("lifetime", "today", "24h", "30d")
FORECAST_WINDOWS = ("today", "30d")
CAMPAIGN = ["org_id", "campaign_id"]
WINDOWED = CAMPAIGN + ["window"]
GUARDED = CAMPAIGN + ["kind"]
GUARDS = ("calling_hours", "abandon_redial")
COMPLAINT_WINDOWS = ("lifetime", "30d")
AGENT_STATES = ("ready", "on_call", "wrap", "paused", "offline")




class CampaignGauges:
    """A prometheus_client collector: ``refresh`` (async, on scrape) reads, ``collect`` (sync) exports."""

    def __init__(self, *, max_campaigns: int, cache_s: float, scan_keys: int):
        """The three settings (``CALLPULSE_METRICS_*``): `ApiSettings.metrics_max_campaigns`, ``_cache_s``,
        ``_scan_keys`` (api/settings.py, their defaults too)."""
        self.max_campaigns = max_campaigns
        self.cache_s = cache_s
        self.orgs = OrgDirectory(scan_keys)
        self.read_at = float("-inf")
        self.families: list = []
        self.lock = asyncio.Lock()

    async def refresh(self, r) -> None:
        """Re-read unless the cache is fresh; a Redis error keeps the last values (and logs)."""
        async with self.lock:  # concurrent scrapes share one read
            if time.monotonic() - self.read_at < self.cache_s:
                return
            try:
                marks = await read_flow_marks(r)
                # the campaigns known are counted even with the gauges off (then nothing else is read)
                known, bodies = await read_campaigns(r, await self.orgs.orgs(r), self.max_campaigns)
            except RedisError as exc:
                log.warning("campaign gauges: Redis read failed (%s); exporting the last values", exc)
                return
            self.families = build_families(bodies, known, marks, time.time())
            self.read_at = time.monotonic()

    def collect(self):
        return list(self.families)


def build_families(bodies: list[dict], known: int, flow_marks: list[int], now_s: float) -> list:
    g = {name: GaugeMetricFamily(name, doc, labels=labels) for name, doc, labels in (
        ("callpulse_campaign_abandon_rate", "abandoned / human_answered of the window (absent while undefined)",
         WINDOWED),
        ("callpulse_campaign_abandon_level", "abandon level of the window: 0 ok, 1 warning, 2 breach", WINDOWED),
        ("callpulse_campaign_abandoned", "abandoned calls in the window", WINDOWED),
        ("callpulse_campaign_human_answered", "human-answered calls in the window", WINDOWED),
        ("callpulse_abandon_breach_in_seconds", "forecast seconds until the window's abandon rate breaches the "
                                                "ceiling at the current trend (absent when no breach is expected)",
         WINDOWED),
        ("callpulse_campaign_abandon_ceiling", "the campaign's abandon-rate ceiling", CAMPAIGN),
        ("callpulse_campaign_abandon_budget", "abandons still allowed under the ceiling (abandon.budget)", CAMPAIGN),
        ("callpulse_campaign_active_calls", "calls in progress", CAMPAIGN),
        ("callpulse_campaign_dials_per_second", "dial rate (live.dials_per_sec)", CAMPAIGN),
        ("callpulse_campaign_watermark_timestamp_seconds", "the campaign's watermark (as_of), epoch seconds",
         CAMPAIGN),
        ("callpulse_campaign_compliance_violations", "dials counted against the campaign by a compliance guard "
                                                     "(compliance.<kind>.violations)", GUARDED),
        ("callpulse_campaign_compliance_last_violation_timestamp_seconds",
         "the latest violating dial of the guard, epoch seconds (absent when none)", GUARDED),
        ("callpulse_campaign_waiting_for_agent", "answered calls waiting for an agent (live.waiting_for_agent)",
         CAMPAIGN),
        ("callpulse_campaign_oldest_wait_seconds", "the longest current wait for an agent (live.oldest_wait_ms / "
                                                   "1000; absent when nobody waits)", CAMPAIGN),
        ("callpulse_campaign_complaint_rate", "email spam complaints / delivered of the window", WINDOWED),
        ("callpulse_campaign_complaint_level", "spam-complaint level of the window: 0 ok, 1 warning, 2 breach",
         WINDOWED),
        ("callpulse_campaign_complained", "messages reported as spam in the window", WINDOWED),
        ("callpulse_campaign_delivered", "messages delivered in the window (the complaint rate's denominator)",
         WINDOWED),
        ("callpulse_campaign_complaint_ceiling", "the campaign's spam-complaint ceiling (email.complaints.ceiling)",
         CAMPAIGN),
        ("callpulse_campaign_complaint_warning", "the campaign's spam-complaint warning threshold", CAMPAIGN),
        ("callpulse_campaign_agents", "agents of the campaign by state (agents.by_state)", CAMPAIGN + ["state"]),
    )}
    for body in bodies:
        camp = [str(body.get("org_id")), str(body.get("campaign_id"))]
        abandon = body.get("abandon") or {}
        for w in WINDOWS:
            win = (abandon.get("windows") or {}).get(w)
            if not win:
                continue
            if win.get("rate") is not None:
                g["callpulse_campaign_abandon_rate"].add_metric(camp + [w], win["rate"])
            if win.get("level") in LEVELS:
                g["callpulse_campaign_abandon_level"].add_metric(camp + [w], LEVELS[win["level"]])
            g["callpulse_campaign_abandoned"].add_metric(camp + [w], win.get("abandoned", 0))
            g["callpulse_campaign_human_answered"].add_metric(camp + [w], win.get("human_answered", 0))
        for w in FORECAST_WINDOWS:
            breach_in = ((abandon.get("forecast") or {}).get(w) or {}).get("breach_in_s")
            if breach_in is not None:
                g["callpulse_abandon_breach_in_seconds"].add_metric(camp + [w], breach_in)
        _add(g["callpulse_campaign_abandon_ceiling"], camp, abandon.get("ceiling"))
        _add(g["callpulse_campaign_abandon_budget"], camp, abandon.get("budget"))
        _add(g["callpulse_campaign_active_calls"], camp, body.get("active_calls"))
        _add(g["callpulse_campaign_dials_per_second"], camp, (body.get("live") or {}).get("dials_per_sec"))
        try:
            as_of_s = parse_time(body.get("as_of"), "as_of") / 1000
        except EventRejected:
            as_of_s = None
        _add(g["callpulse_campaign_watermark_timestamp_seconds"], camp, as_of_s)
        _add_guards(g, camp, body)
        by_state = (body.get("agents") or {}).get("by_state") or {}
        if any(by_state.get(s) for s in AGENT_STATES):  # (a campaign without agents exports none)
            for s in AGENT_STATES:
                g["callpulse_campaign_agents"].add_metric(camp + [s], by_state.get(s, 0))
    out = list(g.values())
    counts = GaugeMetricFamily("callpulse_campaigns", "campaigns the flow has stored, and those exported here "
                                                     "(CALLPULSE_METRICS_MAX_CAMPAIGNS)", labels=["state"])
    counts.add_metric(["known"], known)
    counts.add_metric(["exported"], len(bodies))
    out.append(counts)
    if flow_marks:
        lag = GaugeMetricFamily("callpulse_flow_lag_seconds", "wall time since the flow's last source poll or "
                                                              "sink write (as /readyz's flow_lag_ms)")
        lag.add_metric([], max(0.0, now_s - max(flow_marks) / 1000))
        out.append(lag)
    return out


def _add_guards(g: dict, camp: list[str], body: dict) -> None:
    """Compliance guards, the wait for an agent and (email) the spam complaints of one /stats body."""
    compliance = body.get("compliance") or {}
    for kind in GUARDS:
        guard = compliance.get(kind)
        if not guard:
            continue
        _add(g["callpulse_campaign_compliance_violations"], camp + [kind], guard.get("violations"))
        _add(g["callpulse_campaign_compliance_last_violation_timestamp_seconds"], camp + [kind],
             _epoch_s(guard.get("last_violation_at")))
    live = body.get("live") or {}
    _add(g["callpulse_campaign_waiting_for_agent"], camp, live.get("waiting_for_agent"))
    oldest = live.get("oldest_wait_ms")
    if isinstance(oldest, (int, float)) and not isinstance(oldest, bool):
        g["callpulse_campaign_oldest_wait_seconds"].add_metric(camp, oldest / 1000)
    email = body.get("email")
    if body.get("channel") != "email" or not email:  # a voice campaign has no complaint rate to judge
        return
    complaints = email.get("complaints") or {}
    for w in COMPLAINT_WINDOWS:
        win = (complaints.get("windows") or {}).get(w)
        if not win:
            continue
        _add(g["callpulse_campaign_complaint_rate"], camp + [w], win.get("rate"))
        if win.get("level") in LEVELS:
            g["callpulse_campaign_complaint_level"].add_metric(camp + [w], LEVELS[win["level"]])
        _add(g["callpulse_campaign_complained"], camp + [w], win.get("complained"))
        _add(g["callpulse_campaign_delivered"], camp + [w], win.get("delivered"))
    _add(g["callpulse_campaign_complaint_ceiling"], camp, complaints.get("ceiling"))
    _add(g["callpulse_campaign_complaint_warning"], camp, complaints.get("warning"))


def _epoch_s(text) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text, "at") / 1000
    except EventRejected:
        return None


def _add(family, labels: list[str], value) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        family.add_metric(labels, value)
