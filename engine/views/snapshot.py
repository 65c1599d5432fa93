"""The `/stats` body of SPEC §3.1, built from a `CampaignState` as of its watermark."""

from __future__ import annotations

from engine.compliance.forecast import breach_at, breach_in_s, pacing, span_ms
from engine.compliance.guards import PERIOD_MS
from engine.compliance.levels import abandon_budget
from engine.state.campaign import CampaignState
from engine.timefmt import format_time
from engine.views.agents import agents_block
from engine.vocab import BATCH_STATUSES, CONTACT_STATUSES, EXHAUSTED_CONTACT_STATUSES, OUTCOMES


def _ratio(n, d) -> float:
    return n / d if d else 0.0


def _mean(total, n):
    return total / n if n else None


def _fmt(ms):
    return None if ms is None else format_time(ms)


def _rate_divisor_s(state: CampaignState, window_s: int, first_dial) -> float:
    """min(W, max(1 s, now − first_dial_ts)) in seconds (1 s before any dial)."""
    if first_dial is None:
        return 1.0
    return min(float(window_s), max(1.0, (state.now - first_dial) / 1000))


def build_snapshot(state: CampaignState) -> dict:
    """The body, one section per helper below (key order as SPEC §3.1 lists them)."""
    state.refresh_extremes()
    state.refresh_guard_times()
    cfg = state.config.current
    email = cfg.channel == "email"
    contacts = _contacts(state)
    by_status = contacts["by_status"]
    total = contacts["total"]
    retries_left = _retries_left(state, cfg.max_attempts)
    ended = state.ended
    outcomes = {o: state.outcomes[o] for o in OUTCOMES}
    # For an email campaign a send counts as a dial.
    if email:
        first_dial = _min(state.first_dial, state.first_send)
        last_dial = _max(state.last_dial.value, state.last_send.value)
    else:
        first_dial, last_dial = state.first_dial, state.last_dial.value
    return {
        "campaign_id": state.campaign_id,
        "org_id": state.org_id,
        "name": cfg.name,
        "channel": cfg.channel,
        "kind": cfg.kind,
        "status": state.status,
        "as_of": _fmt(state.now),
        "config": cfg.as_json(),
        "contacts": contacts,
        "retry_breakdown": {f"retry_{n}": c for n, c in sorted(state.retry.items()) if c},
        "retries_left": retries_left,
        "batch_counts": _batch_counts(state),
        "attempts": {
            "total": state.attempts_total,
            "average_per_contact": round(state.attempts_total / total, 2) if total and state.attempts_total else 0.0,
            "follow_up": state.follow_up,
        },
        "outcomes": outcomes,
        "answered": state.answered,
        "human_answered": state.human,
        "active_calls": state.active,
        "ringing": state.ringing,
        "in_progress": state.in_progress,
        "concurrency_limit": cfg.concurrency_limit,
        "rates": {
            "answer_rate": _ratio(state.answered, ended),
            "connect_rate": _ratio(outcomes["connected"], ended),
            "completion_rate": _ratio(by_status["completed"], total),
        },
        "aht_ms": state.aht.value,
        "avg_ring_ms": state.ring.value,
        "abandon": _abandon(state, cfg, retries_left),
        "compliance": _compliance(state, cfg),
        "live": _live(state, cfg, email, contacts, first_dial, last_dial),
        "performance": _performance(state, first_dial, outcomes["connected"]),
        "passes": [_pass_row(n, p) for n, p in sorted(state.passes.items())
                   if p.attempted or p.eligible_key is not None],
        **state.runs.body(state.attempts, state.sealed),  # run, runs, previous_run_stats (engine.state.runs)
        "agents": agents_block(state.agents, _now(state)),
        "callbacks": _callbacks(state.callbacks),
        "email": _email(state, cfg),
        "costs": {
            "total_usd": state.cost_micros / 1_000_000,
            "breakdown": {k: v / 1_000_000 for k, v in sorted(state.cost_by_category.items())},
        },
        "diagnostics": {
            "late": state.late,
            "duplicates": state.duplicates,
            "orphaned": state.orphan_attempts + state.orphan_messages + state.callbacks.unmatched,
        },
    }


def _contacts(state: CampaignState) -> dict:
    by_status = {s: state.by_status[s] for s in CONTACT_STATUSES}
    buckets = {
        "pending": by_status["pending"] + by_status["retrying"] + by_status["followup_scheduled"],
        "in_progress": by_status["dispatched"] + by_status["in_progress"],
        "completed": by_status["completed"],
        "exhausted": sum(by_status[s] for s in EXHAUSTED_CONTACT_STATUSES),
    }
    in_flight = (by_status["dispatched"] + by_status["in_progress"]
                 + by_status["retrying"] + by_status["followup_scheduled"])
    return {"total": len(state.table), "by_status": by_status, "buckets": buckets, "in_flight": in_flight}


def _retries_left(state: CampaignState, max_attempts: int) -> int:
    return sum(n * max(0, max_attempts - d) for d, n in state.nonfinal_by_dialed.items())


def _batch_counts(state: CampaignState) -> dict:
    counts = dict.fromkeys(BATCH_STATUSES, 0)
    for b in state.batches.values():
        if b.exists:
            counts[b.status] += 1
    return counts


def _now(state: CampaignState) -> int:
    """The watermark a body is built at (a body is built only once the state has one)."""
    now = state.now
    assert now is not None, "a /stats body needs the campaign's watermark"
    return now


def _live(state: CampaignState, cfg, email: bool, contacts: dict, first_dial, last_dial) -> dict:
    now = _now(state)
    by_status = contacts["by_status"]
    pending = contacts["buckets"]["pending"]

    def dials_in(window_ms: int) -> int:
        n = state.dials_1s.window_sum(now, window_ms)
        return n + state.sends_1s.window_sum(now, window_ms) if email else n

    dials_60 = dials_in(60_000)
    bridged_3600 = state.bridged_1s.window_sum(now, 3_600_000)
    ended_60 = state.ended_1s.window_sum(now, 60_000)
    ring_sum, ring_n = state.ring_1s.window_sum(now, 900_000)
    dial_rate_300 = dials_in(300_000) / _rate_divisor_s(state, 300, first_dial)
    eta_seconds, eta_at = _eta(state, cfg, pending, dial_rate_300)
    waiting, oldest_wait = state.waiting_for_agent()
    return {
        "banner": _banner(state, cfg, dials_in(30_000)),
        "dials_per_sec": dials_60 / _rate_divisor_s(state, 60, first_dial),
        "connected_per_hour": bridged_3600 / _rate_divisor_s(state, 3600, first_dial) * 3600,
        "calls_per_min": ended_60 / _rate_divisor_s(state, 60, first_dial) * 60,
        "avg_ring_ms": _mean(ring_sum, ring_n),
        "ringing": state.ringing,
        "in_progress": state.in_progress,
        "waiting_for_agent": waiting,
        "oldest_wait_ms": oldest_wait,
        "last_dial_at": _fmt(last_dial),
        "pending": pending,
        "retries_queued": by_status["retrying"] + by_status["followup_scheduled"],
        "eta_seconds": eta_seconds,
        "eta_at": eta_at,
    }


def _performance(state: CampaignState, first_dial, connected: int) -> dict | None:
    """Whole-campaign rates of a finished (completed or stopped) campaign."""
    if state.status not in ("completed", "stopped"):
        return None
    last_end = state.last_end.value
    span = max(1.0, (last_end - first_dial) / 1000) if first_dial is not None and last_end is not None else 1.0
    return {
        "dials_per_sec": state.attempts_total / span,
        "connected_per_hour": connected / span * 3600,
        "calls_per_min": state.ended / span * 60,
        "total_connected": connected,
    }


def _abandon(state: CampaignState, cfg, retries_left: int) -> dict:
    windows = {}
    for name, (a, h) in state.window_counts().items():
        windows[name] = {"abandoned": a, "human_answered": h, "rate": _ratio(a, h),
                         "level": state.trackers[name].level}
    a30, h30 = state.w30d.a, state.w30d.h
    return {
        "ceiling": float(cfg.abandon_ceiling),
        "budget": abandon_budget(a30, h30, cfg.ceiling),
        "windows": windows,
        "forecast": _forecast(state),
        "pacing": pacing(retries_left, state.expected_human_answers(), a30, h30, cfg.ceiling),
        "periods": _periods(state, cfg),
    }


def _periods(state: CampaignState, cfg) -> list[dict]:
    """Successive 30-day periods from the first dial, 1 to the one that holds now (zeros included)."""
    first, counts = state.periods_now()
    if first is None:
        return []
    p, q = cfg.ceiling.numerator, cfg.ceiling.denominator
    out = []
    for k in range(1, (_now(state) - first) // PERIOD_MS + 2):
        a, h = counts.get(k, (0, 0))
        out.append({"period": k, "start": format_time(first + (k - 1) * PERIOD_MS),
                    "end": format_time(first + k * PERIOD_MS), "abandoned": a, "human_answered": h,
                    "rate": _ratio(a, h), "within_ceiling": a * q <= p * h})
    return out


def _compliance(state: CampaignState, cfg) -> dict:
    return {
        "calling_hours": {"violations": state.ch_violations, "last_violation_at": _fmt(state.ch_last.value)},
        "abandon_redial": {"hours": cfg.abandon_redial_hours, "violations": state.ar_violations,
                           "last_violation_at": _fmt(state.ar_last.value)},
    }


def _callbacks(cb) -> dict:
    return {"requested": cb.requested, "pending": cb.pending, "completed": cb.completed,
            "avg_delay_ms": cb.avg_delay_ms}


def _email(state: CampaignState, cfg) -> dict:
    ec = state.email_counts
    sent, delivered = ec["email.sent"], ec["email.delivered"]
    windows = {}
    for name, (c, d) in state.complaint_counts().items():
        windows[name] = {"complained": c, "delivered": d, "rate": _ratio(c, d),
                         "level": state.complaint_trackers[name].level}
    return {
        "emails_sent": sent,
        "delivered": delivered,
        "bounced": ec["email.bounced"],
        "opened": ec["email.opened"],
        "clicked": ec["email.clicked"],
        "replied": ec["email.replied"],
        "unsubscribed": ec["email.unsubscribed"],
        "complained": ec["email.complained"],
        "meetings_booked": state.meetings,
        "rates": {
            "delivery_rate": _ratio(delivered, sent),
            "open_rate": _ratio(ec["email.opened"], delivered),
            "click_rate": _ratio(ec["email.clicked"], delivered),
            "reply_rate": _ratio(ec["email.replied"], delivered),
            "conversion_rate": _ratio(state.meetings, delivered),
            "complaint_rate": _ratio(ec["email.complained"], delivered),
        },
        "complaints": {"ceiling": float(cfg.complaint_ceiling), "warning": float(cfg.complaint_warning),
                       "windows": windows},
    }


def _forecast(state: CampaignState) -> dict:
    now = _now(state)
    out: dict[str, dict] = {"trend": {"abandoned": state.trend.a, "human_answered": state.trend.h,
                                      "span_s": span_ms(now, state.first_dial_ts()) / 1000}}
    for window, t_star in state.breach_times().items():
        out[window] = ({"breach_in_s": None, "breach_at": None} if t_star is None else
                       {"breach_in_s": breach_in_s(t_star), "breach_at": format_time(breach_at(t_star, now))})
    return out


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _pass_row(n: int, p) -> dict:
    attempted = p.attempted
    connected = p.connected
    duration = (p.ended - p.started) / 1000 if p.started is not None and p.ended is not None else None
    return {
        "pass": n,
        "eligible": p.eligible,
        "attempted": attempted,
        "connected": connected,
        "connect_rate": _ratio(connected, attempted),
        "started_at": _fmt(p.started),
        "ended_at": _fmt(p.ended),
        "duration_s": duration,
    }


def _banner(state: CampaignState, cfg, dials_30s: int) -> str:
    st = state.status
    tw = cfg.time_window
    if st in ("active", "paused") and tw is not None and not tw.is_open(state.now):
        return "paused_outside_window"
    if st == "paused":
        return "paused"
    if st == "active":
        return "idle" if dials_30s == 0 else "live"
    return st


def _eta(state: CampaignState, cfg, remaining: int, rate_per_s: float):
    now = _now(state)
    if remaining == 0:
        return 0.0, format_time(now)
    if rate_per_s == 0:
        return None, None
    seconds = remaining / rate_per_s
    if cfg.time_window is None:
        return seconds, format_time(round(now + seconds * 1000))
    finish = cfg.time_window.finish_after(now, seconds * 1000)
    if finish is None:
        return None, None
    return (finish - now) / 1000, format_time(round(finish))
