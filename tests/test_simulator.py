"""The dialer simulator: deterministic, valid, realistic, and faulty exactly as asked."""

from __future__ import annotations

from collections import Counter, defaultdict

import orjson
import pytest

from callpulse.simulator import SimConfig, Simulator, generate
from callpulse.simulator.call_window import CallWindow, parse_window
from callpulse.simulator.pacing import paced, parse_speed
from engine.localtime import TimeWindow
from engine.validation.events import FINAL_CONTACT_STATUSES, EventRejected, validate_event

pytestmark = pytest.mark.unit

SMALL = dict(orgs=2, campaigns=2, contacts=120)


def events(**kw) -> list:
    return list(generate(SimConfig(**kw)))


def by_campaign(evs) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for e in evs:
        out[e["campaign_id"]].append(e)
    return out


def dumps(evs) -> bytes:
    return b"\n".join(e.encode() if isinstance(e, str) else orjson.dumps(e) for e in evs)


# -- determinism -------------------------------------------------------------------


def test_same_seed_same_stream_different_seed_different():
    kw = dict(SMALL, channel="mixed", duplicate_pct=3, jitter_ms=2000, malformed_pct=3)
    a, b = dumps(events(seed=7, **kw)), dumps(events(seed=7, **kw))
    assert a == b
    assert dumps(events(seed=8, **kw)) != a


def test_faults_leave_the_clean_events_untouched():
    clean = events(seed=3, **SMALL)
    faulty = events(seed=3, duplicate_pct=5, jitter_ms=5000, malformed_pct=5, **SMALL)
    good, seen = [], set()
    for item in faulty:
        try:
            validate_event(item)
        except EventRejected:
            continue
        if item["event_id"] not in seen:
            seen.add(item["event_id"])
            good.append(item)
    key = lambda e: (e["ts"], e["event_id"])  # noqa: E731
    assert sorted(good, key=key) == clean


# -- validity and order ------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["voice", "email", "mixed"])
def test_no_faults_means_all_valid_sorted_and_unique(channel):
    evs = events(seed=11, channel=channel, pause=True, **SMALL)
    assert len(evs) > 1000
    for e in evs:
        assert validate_event(e) is not None  # raises on an invalid event
        assert type(e["ts"]) is int
    keys = [(e["ts"], e["event_id"]) for e in evs]
    assert keys == sorted(keys)
    assert len({e["event_id"] for e in evs}) == len(evs)
    types = Counter(e["type"] for e in evs)
    if channel != "email":
        for t in ("call.dialed", "call.answered", "call.amd", "call.bridged", "call.ended",
                  "call.transcript", "conversation.evaluated", "pass.started", "cost.incurred"):
            assert types[t] > 0, t
    if channel != "voice":
        for t in ("email.sent", "email.delivered", "email.opened", "email.clicked", "email.replied"):
            assert types[t] > 0, t


# -- realism ---------------------------------------------------------------------------


def check_voice_campaign(es: list[dict]) -> dict:
    created = es[0]
    assert created["type"] == "campaign.created"
    limit = created.get("concurrency_limit", 10)
    max_attempts = created.get("max_attempts", 3)
    tw = created.get("time_window")
    window = TimeWindow.from_event(tw) if tw else None  # the engine's definition of "open"
    live, dialed, ended = set(), {}, {}
    per_contact = Counter()
    peak = 0
    last_status = {}
    campaign_status = "draft"
    run = 1  # retries count per run: a restart gives each re-queued contact max_attempts more
    for e in sorted(es, key=lambda e: (e["ts"], e["event_id"])):
        t = e["type"]
        if t == "campaign.status":
            campaign_status = e["status"]
        elif t == "campaign.run_started":
            run = e["run"]
        elif t == "campaign.run_cancelled":
            run = 1 if e["run"] == 2 else run
        elif t == "call.dialed":
            assert campaign_status == "active", f"dialed while {campaign_status}"
            assert e["attempt_id"] not in dialed
            if window is not None:
                assert window.is_open(e["ts"]), "dialed outside the calling window"
            dialed[e["attempt_id"]] = e["ts"]
            live.add(e["attempt_id"])
            peak = max(peak, len(live))
            assert len(live) <= limit, "concurrency limit exceeded"
            per_contact[run, e["contact_id"]] += 1
        elif t == "call.ended":
            assert e["attempt_id"] in dialed and dialed[e["attempt_id"]] <= e["ts"]
            ended[e["attempt_id"]] = e["ts"]
            live.discard(e["attempt_id"])
        elif t.startswith("call.") or t == "conversation.evaluated":
            assert e["attempt_id"] in dialed, f"{t} before call.dialed"
        elif t == "contact.status":
            last_status[e["contact_id"]] = e["status"]
    assert set(dialed) == set(ended), "every attempt ends"
    assert max(per_contact.values(), default=0) <= max_attempts
    added = {e["contact_id"] for e in es if e["type"] == "contact.added"}
    assert set(last_status) == added
    assert all(s in FINAL_CONTACT_STATUSES for s in last_status.values()), "every contact ends final"
    return {"peak": peak, "limit": limit, "final": Counter(last_status.values())}


def check_email_campaign(es: list[dict]) -> Counter:
    created = es[0]
    tw = created.get("time_window")
    window = TimeWindow.from_event(tw) if tw else None  # the engine's definition of "open"
    campaign_status = "draft"
    last_status = {}
    for e in es:
        t = e["type"]
        if t == "campaign.status":
            campaign_status = e["status"]
        elif t == "email.sent":
            assert campaign_status == "active", f"sent while {campaign_status}"
            assert window is None or window.is_open(e["ts"]), "sent outside the window"
        elif t == "contact.status":
            last_status[e["contact_id"]] = e["status"]
    added = {e["contact_id"] for e in es if e["type"] == "contact.added"}
    assert set(last_status) == added
    assert all(s in FINAL_CONTACT_STATUSES for s in last_status.values()), "every contact ends final"
    return Counter(last_status.values())


def random_configs(n: int, seed: int):
    import random

    rng = random.Random(seed)
    for i in range(n):
        yield SimConfig(
            seed=i, orgs=1, campaigns=rng.randint(1, 3), contacts=rng.choice([0, 1, 2, 5, 20, 80]),
            channel=rng.choice(["voice", "mixed"]), pause=rng.random() < 0.4, stop=rng.random() < 0.4,
            window=rng.choice(["auto", "none", "23:00-01:00@Asia/Tokyo", "09:00-09:10@America/New_York"]),
            window_days=rng.choice([0, 1, 2]), retry_delay_s=rng.choice([30, 900]),
            abandon_prob=rng.random() * 0.1, batch_size=rng.choice([1, 7, 250]),
            restart=rng.random() < 0.3, withdraw_run=rng.random() < 0.3)


def test_invariants_hold_for_random_scenarios():
    for cfg in random_configs(40, seed=0):
        evs = list(generate(cfg))
        keys = [(e["ts"], e["event_id"]) for e in evs]
        assert keys == sorted(keys), cfg
        for es in by_campaign(evs).values():
            check = check_voice_campaign if es[0].get("channel") == "voice" else check_email_campaign
            try:
                check(es)
            except AssertionError as exc:
                raise AssertionError(f"{cfg} {es[0]['campaign_id']}: {exc}") from None


def test_voice_invariants_hold_across_scenarios():
    finals = Counter()
    peaks_at_limit = 0
    evs = events(seed=21, orgs=1, campaigns=4, contacts=400, pause=True)
    evs += events(seed=22, orgs=1, campaigns=2, contacts=300, stop=True)
    evs += events(seed=23, orgs=1, campaigns=2, contacts=600, window="09:00-09:20@America/New_York",
                  window_days=2, retry_delay_s=300)
    for es in by_campaign(evs).values():
        r = check_voice_campaign(es)
        finals += r["final"]
        peaks_at_limit += r["peak"] == r["limit"]
    assert peaks_at_limit >= 4  # the dialer really keeps its lines busy
    for status in ("completed", "failed", "max_retries_reached", "manual_stopped", "window_closed", "skipped"):
        assert finals[status] > 0, status


def test_restart_redials_busy_and_unanswered_contacts_as_run_2_and_withdraws_run_3():
    evs = events(seed=4, orgs=1, campaigns=2, contacts=80, window="none", restart=True, withdraw_run=True)
    for es in by_campaign(evs).values():
        check_voice_campaign(es)
        runs = [e for e in es if e["type"].startswith("campaign.run")]
        assert [(e["type"], e["run"]) for e in runs] == [
            ("campaign.run_started", 2), ("campaign.run_started", 3), ("campaign.run_cancelled", 3)]
        restart, prepared, withdrawn = (e["ts"] for e in runs)
        completed = [e["ts"] for e in es if e["type"] == "campaign.status" and e["status"] == "completed"]
        assert len(completed) == 2 and completed[0] < restart < completed[1] < prepared < withdrawn
        dials = [e for e in es if e["type"] == "call.dialed"]
        assert not any(prepared <= e["ts"] <= withdrawn for e in dials), "a withdrawn run dials nothing"
        # run 2 dials exactly the contacts whose last run-1 call ended busy or unanswered
        ends = {e["attempt_id"]: e for e in es if e["type"] == "call.ended"}
        answered = {e["attempt_id"] for e in es if e["type"] == "call.answered"}
        last = {}
        for d in dials:
            if d["ts"] < restart:
                sip = ends[d["attempt_id"]].get("sip_code")
                last[d["contact_id"]] = d["attempt_id"] not in answered and (sip in (None, 408, 480, 487, 486, 600))
        again = {d["contact_id"] for d in dials if d["ts"] > restart}
        assert again and again == {c for c, unreached in last.items() if unreached}
        first_pass_of_run_2 = next(e for e in es if e["type"] == "pass.started" and e["ts"] > restart)
        assert first_pass_of_run_2["eligible"] == len(again)


def test_window_closed_campaign_resumes_next_day_only_inside_window():
    evs = events(seed=5, orgs=1, campaigns=1, contacts=500, window="09:00-09:15@America/New_York",
                 window_days=2, retry_delay_s=60)
    dial_days = {(e["ts"] - 4 * 3_600_000) // 86_400_000 for e in evs if e["type"] == "call.dialed"}
    assert len(dial_days) == 2  # dialed on two calendar days (New York), nothing in between
    check_voice_campaign(evs)


def test_pause_stop_statuses_in_order():
    evs = events(seed=2, orgs=1, campaigns=1, contacts=200, pause=True, stop=True, window="none")
    statuses = [e["status"] for e in evs if e["type"] == "campaign.status"]
    assert statuses == ["active", "paused", "active", "stopped"]
    paused_at, resumed_at = [e["ts"] for e in evs if e["type"] == "campaign.status"][1:3]
    assert not [e for e in evs if e["type"] == "call.dialed" and paused_at <= e["ts"] < resumed_at]
    stopped_at = [e["ts"] for e in evs if e["type"] == "campaign.status"][-1]
    assert not [e for e in evs if e["type"] == "call.dialed" and e["ts"] >= stopped_at]


def abandon_rate(evs) -> float:
    thresholds = {e["campaign_id"]: e.get("abandon_threshold_ms", 2000)
                  for e in evs if e["type"] == "campaign.created"}
    facts = defaultdict(dict)
    for e in evs:
        if e["type"].startswith("call."):
            facts[(e["campaign_id"], e["attempt_id"])].setdefault(e["type"], e)
    abandoned = human = 0
    for (cid, _), f in facts.items():
        if "call.answered" not in f or f["call.amd"]["result"] == "machine":
            continue
        human += 1
        br = f.get("call.bridged")
        if br is None or br["ts"] - f["call.answered"]["ts"] > thresholds[cid]:
            abandoned += 1
    return abandoned / human


def test_abandon_probability_knob_moves_the_abandon_rate():
    base = dict(orgs=1, campaigns=3, contacts=500, seed=4)
    assert abandon_rate(events(**base)) < 0.03
    assert abandon_rate(events(abandon_prob=0.08, **base)) > 0.05


def test_email_flow_order():
    evs = events(seed=9, channel="email", orgs=1, campaigns=3, contacts=300, pause=True)
    finals = Counter()
    for es in by_campaign(evs).values():
        finals += check_email_campaign(es)
    assert finals["completed"] > 0 and finals["failed"] > 0
    sent, delivered = {}, {}
    for e in evs:
        mid = (e["campaign_id"], e.get("message_id"))
        if e["type"] == "email.sent":
            sent[mid] = e["ts"]
        elif e["type"] in ("email.delivered", "email.bounced"):
            assert sent[mid] <= e["ts"]
            if e["type"] == "email.delivered":
                delivered[mid] = e["ts"]
        elif e["type"] in ("email.opened", "email.clicked", "email.replied", "email.unsubscribed"):
            assert delivered[mid] <= e["ts"]
    assert len(delivered) > 0.9 * len(sent)


# -- faults ---------------------------------------------------------------------------


def test_fault_rates_and_jitter_bound():
    jitter, delay = 4000, 2000
    cfg = SimConfig(seed=13, duplicate_pct=4, malformed_pct=6, jitter_ms=jitter,
                    duplicate_delay_ms=delay, **SMALL)
    sim = Simulator(cfg)
    items = list(sim)
    clean = sum(1 for _ in Simulator(SimConfig(seed=13, **SMALL)))
    rejected = raw = 0
    seen = set()
    dups = 0
    max_ts = None
    out_of_order = 0
    for item in items:
        if isinstance(item, str):
            raw += 1
        try:
            validate_event(item)
        except EventRejected:
            rejected += 1
            continue
        ts = item["ts"]
        is_dup = item["event_id"] in seen
        dups += is_dup
        seen.add(item["event_id"])
        if max_ts is not None:
            behind = max_ts - ts
            out_of_order += behind > 0
            assert behind <= (jitter + delay if is_dup else jitter)
        max_ts = ts if max_ts is None else max(max_ts, ts)
    assert rejected == sim.fault_stats["malformed"] and dups == sim.fault_stats["duplicates"]
    assert 0.045 < rejected / clean < 0.075
    assert 0.03 < dups / clean < 0.05
    assert raw > 0  # broken JSON comes as raw lines
    assert out_of_order > 0.1 * clean


def test_jitter_only_is_still_all_valid():
    items = events(seed=1, jitter_ms=10_000, **SMALL)
    assert all(isinstance(e, dict) for e in items)
    keys = [(e["ts"], e["event_id"]) for e in items]
    assert keys != sorted(keys)
    assert len(set(keys)) == len(keys)


# -- helpers ---------------------------------------------------------------------------


def test_call_window_across_midnight_and_dst():
    w = CallWindow(*parse_window("22:00-06:00@Europe/London"))
    # 2026-03-29 01:30 UTC = 02:30 BST (the night clocks go forward): inside 22:00-06:00.
    assert w.is_open(1774747800000)
    # 2026-05-08 12:00 UTC = 13:00 BST: closed, opens 21:00 UTC.
    is_open, until = w.state(1778241600000)
    assert not is_open and until == 1778274000000
    with pytest.raises(ValueError):
        parse_window("09:00-09:00@UTC")
    with pytest.raises(ValueError):
        parse_window("09:00-17:00@Not/AZone")


def test_paced_sleeps_to_event_time():
    clock = [100.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 3))
        clock[0] += s

    flushed = []
    items = [{"ts": 1000}, "raw", {"ts": 3000}, {"ts": 3000}, {"ts": 7000}]
    out = list(paced(items, 2.0, 1000, clock=lambda: clock[0], sleep=sleep,
                     before_sleep=lambda: flushed.append(1)))
    assert out == items
    assert slept == [1.0, 2.0] and len(flushed) == 2
    assert parse_speed("max") is None and parse_speed("realtime") == 1.0 and parse_speed("4") == 4.0
    with pytest.raises(ValueError):
        parse_speed("0")
