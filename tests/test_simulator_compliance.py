"""The simulator's compliance knobs (docs/simulator.md *Compliance*): contacts in several zones
(`tz_mix`), dials outside the called person's calling hours (`off_hours_pct`), redials of abandoned
numbers within the redial guard (`redial_abandoned_pct`) and spam complaints (`complaint_pct`) — what
the engine's guards (SPEC *Compliance guards*, *Spam complaints*) then count — plus `--past`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from callpulse.commands.simulate import parse_duration_ms
from callpulse.simulator import SimConfig, generate
from callpulse.simulator.campaign_base import TZ_PRESETS
from callpulse.simulator.generator import DEFAULT_START_MS
from engine.state.fold import Fold
from engine.validation.events import validate_event

pytestmark = pytest.mark.e2e

CALLPULSE = str(Path(sys.executable).with_name("callpulse"))
HOUR = 3_600_000
GUARD_MS = 72 * HOUR


def events(**kw) -> list[dict]:
    return list(generate(SimConfig(**kw)))


def fold(evs) -> dict[str, dict]:
    f = Fold()
    for ev in evs:
        f.apply(validate_event(ev))
    return {b["campaign_id"]: b for b in f.snapshots()}


def per_campaign(evs) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for e in evs:
        out[e["campaign_id"]].append(e)
    return out


def outside_hours(ts: int, tz: str) -> bool:
    """SPEC: the dial's local time of day before 08:00 or at/after 21:00 (the default calling_hours)."""
    local = datetime.fromtimestamp(ts / 1000, ZoneInfo(tz))
    return not 8 <= local.hour < 21


def calling_hours_facts(evs) -> tuple[dict, dict]:
    """Per campaign: {attempt: outside hours?} of every dial, and {contact: tz}."""
    dials, zones, camp_tz = defaultdict(dict), {}, {}
    for e in evs:
        c = e["campaign_id"]
        if e["type"] == "campaign.created":
            camp_tz[c] = (e.get("time_window") or {}).get("tz") or "UTC"
        elif e["type"] == "contact.added":
            zones[c, e["contact_id"]] = e.get("tz")
        elif e["type"] == "call.dialed":
            tz = zones[c, e["contact_id"]] or camp_tz[c]
            dials[c][e["attempt_id"]] = outside_hours(e["ts"], tz)
    return dials, zones


# -- determinism, and nothing changes while the knobs are off ------------------------------------

KNOBS = dict(tz_mix="us", off_hours_pct=15, redial_abandoned_pct=50, complaint_pct=2)


def test_the_knobs_are_deterministic_per_seed():
    cfg = dict(seed=5, orgs=2, campaigns=3, contacts=80, channel="mixed", abandon_prob=0.2,
               **{**KNOBS, "complaint_pct": 10})
    a, b = events(**cfg), events(**cfg)
    assert a == b
    assert events(**{**cfg, "seed": 6}) != a
    types = {e["type"] for e in a}
    assert "email.complained" in types
    voice = {e["campaign_id"] for e in a if e["type"] == "campaign.created" and e["channel"] == "voice"}
    assert voice and all("tz" in e for e in a if e["type"] == "contact.added" and e["campaign_id"] in voice)


def test_off_by_default_and_a_zone_mix_only_adds_the_tz_field():
    base = events(seed=7, campaigns=2, contacts=100)
    assert base == events(seed=7, campaigns=2, contacts=100, off_hours_pct=0, complaint_pct=0)
    assert not any("tz" in e for e in base)
    mixed = events(seed=7, campaigns=2, contacts=100, tz_mix="Europe/London,Asia/Tokyo")
    added = [e for e in mixed if e["type"] == "contact.added"]
    assert {e["tz"] for e in added} == {"Europe/London", "Asia/Tokyo"}
    assert [{k: v for k, v in e.items() if k != "tz"} for e in mixed] == base  # the rest is untouched
    for e in mixed:
        validate_event(e)


def test_a_bad_zone_mix_is_refused():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        SimConfig(tz_mix="Europe/London,Mars/Olympus").check()
    with pytest.raises(ValueError):
        SimConfig(redial_abandoned_pct=101).check()
    with pytest.raises(ValueError):
        SimConfig(complaint_pct=-1).check()
    assert SimConfig(tz_mix="world").check() is None and len(TZ_PRESETS["world"]) > 5


# -- calling hours ---------------------------------------------------------------------------------

def test_off_hours_contacts_are_dialed_outside_calling_hours_in_their_zone():
    # 13:00 UTC: afternoon in London and Paris; the off-hours contacts live where it is 00:00-05:00
    evs = events(seed=8, campaigns=2, contacts=300, window="none", tz_mix="Europe/London,Europe/Paris",
                 off_hours_pct=20)
    dials, zones = calling_hours_facts(evs)
    bodies = fold(evs)
    for cid, attempts in dials.items():
        night = {ct for (c, ct), tz in zones.items() if c == cid and tz not in ("Europe/London", "Europe/Paris")}
        assert 0.12 * 300 < len(night) < 0.28 * 300  # about 20 % of the contacts
        first = {a: out for a, out in attempts.items() if a.endswith("-a1")}
        # every first dial of an off-hours contact (within 3 h of the start) breaks the calling hours,
        # and no first dial of the others does (pass 1 ends long before 21:00 in London)
        assert {a for a, out in first.items() if out} == {a for a in first if a.rsplit("-a", 1)[0] in night}
        got = bodies[cid]["compliance"]["calling_hours"]
        assert got["violations"] == sum(attempts.values()) > 0.1 * 300  # the engine counts the same dials


def test_without_off_hours_contacts_in_hours_zones_break_nothing():
    evs = events(seed=8, campaigns=1, contacts=200, window="none", tz_mix="Europe/London")
    dials, _ = calling_hours_facts(evs)
    first = [out for a, out in dials[evs[0]["campaign_id"]].items() if a.endswith("-a1")]
    assert first and not any(first)


# -- redials of abandoned numbers -------------------------------------------------------------------

def redial_facts(evs) -> dict[str, set[str]]:
    """Per campaign: the attempts dialed within 72 h after an abandoned call of the same contact."""
    out = defaultdict(set)
    for cid, camp in per_campaign(evs).items():
        out[cid] = _redials(camp)
    return out


def _redials(evs) -> set[str]:
    ended, dialed, contact_of, abandoned = {}, {}, {}, set()
    for e in evs:
        if e["type"] == "call.dialed":
            dialed[e["attempt_id"]] = (e["campaign_id"], e["contact_id"], e["ts"])
            contact_of[e["attempt_id"]] = e["contact_id"]
        elif e["type"] == "call.ended":
            ended[e["attempt_id"]] = e["ts"]
    # abandoned (abandon_from answer): a human (not machine) answer never bridged, or bridged too late
    answered = {e["attempt_id"]: e["ts"] for e in evs if e["type"] == "call.answered"}
    bridged = {e["attempt_id"]: e["ts"] for e in evs if e["type"] == "call.bridged"}
    human = {e["attempt_id"] for e in evs if e["type"] == "call.amd" and e["result"] != "machine"}
    threshold = {e["campaign_id"]: e["abandon_threshold_ms"] for e in evs if e["type"] == "campaign.created"}
    for a, (cid, _ct, _ts) in dialed.items():
        if a in answered and a in human and (a not in bridged or bridged[a] - answered[a] > threshold[cid]):
            abandoned.add(a)
    return {a for a, (_cid, ct, ts) in dialed.items()
            if any(contact_of[b] == ct and b != a and ended[b] < ts <= ended[b] + GUARD_MS for b in abandoned)}


def test_redial_abandoned_pct_redials_within_the_guard_and_the_rest_wait():
    cfg = dict(seed=9, campaigns=3, contacts=150, window="none", abandon_prob=0.3)
    always = events(**cfg, redial_abandoned_pct=100)
    never = events(**cfg, redial_abandoned_pct=0)
    redials, none = redial_facts(always), redial_facts(never)
    bodies_always, bodies_never = fold(always), fold(never)
    total = 0
    for cid, body in bodies_always.items():
        got = body["compliance"]["abandon_redial"]
        assert got["violations"] == len(redials[cid])
        total += got["violations"]
    assert total > 10
    for cid, body in bodies_never.items():
        assert body["compliance"]["abandon_redial"]["violations"] == len(none[cid]) == 0
    # attempts per contact never exceed max_attempts, however soon the redial
    for evs in (always, never):
        max_att = {e["campaign_id"]: e["max_attempts"] for e in evs if e["type"] == "campaign.created"}
        for e in evs:
            if e["type"] == "call.dialed":
                assert int(e["attempt_id"].rsplit("-a", 1)[1]) <= max_att[e["campaign_id"]]


def test_redials_come_minutes_after_the_abandoned_call():
    evs = events(seed=10, campaigns=2, contacts=150, window="none", abandon_prob=0.3, redial_abandoned_pct=100)
    ends = {(e["campaign_id"], e["attempt_id"]): e["ts"] for e in evs if e["type"] == "call.ended"}
    gaps = []
    for e in evs:
        if e["type"] == "call.dialed" and not e["attempt_id"].endswith("-a1"):
            ct, n = e["attempt_id"].rsplit("-a", 1)
            prev = (e["campaign_id"], f"{ct}-a{int(n) - 1}")
            gaps.append(e["ts"] - ends[prev])
    assert gaps and min(gaps) > 0
    assert sum(g <= 11 * 60_000 for g in gaps) > 10  # the redials of abandoned numbers


# -- spam complaints ----------------------------------------------------------------------------------

def test_complaint_pct_reports_a_share_of_delivered_messages():
    evs = events(seed=11, campaigns=1, contacts=1500, channel="email", window="none", complaint_pct=2)
    delivered = {e["message_id"]: e["ts"] for e in evs if e["type"] == "email.delivered"}
    complained = [e for e in evs if e["type"] == "email.complained"]
    assert 0.01 * len(delivered) < len(complained) < 0.03 * len(delivered)
    for e in complained:
        assert 5000 <= e["ts"] - delivered[e["message_id"]] <= 600_000
        validate_event(e)
    (body,) = fold(evs).values()
    assert body["email"]["complained"] == len(complained)
    assert body["email"]["rates"]["complaint_rate"] == pytest.approx(len(complained) / len(delivered))
    assert body["email"]["complaints"]["windows"]["lifetime"]["level"] == "breach"  # 2 % > 0.3 %


# -- the CLI: replay of a simulated log, and a seeded past -----------------------------------------------

def test_replay_of_a_simulated_log_with_the_knobs_shows_violations_and_complaints(tmp_path):
    path = tmp_path / "events.ndjson"
    r = subprocess.run([CALLPULSE, "simulate", "--seed", "12", "--campaigns", "4", "--contacts", "200",
                        "--channel", "mixed", "--window", "none", "--abandon-prob", "0.2", "--tz-mix", "us",
                        "--off-hours-pct", "10", "--redial-abandoned-pct", "50", "--complaint-pct", "3",
                        "--out", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([CALLPULSE, "replay", str(path)], capture_output=True, check=True)
    bodies = json.loads(out.stdout)
    voice = [b for b in bodies if b["channel"] == "voice"]
    email = [b for b in bodies if b["channel"] == "email"]
    assert voice and email
    assert sum(b["compliance"]["calling_hours"]["violations"] for b in voice) > 0
    assert sum(b["compliance"]["abandon_redial"]["violations"] for b in voice) > 0
    assert all(b["compliance"]["calling_hours"]["last_violation_at"] for b in voice)
    assert sum(b["email"]["complained"] for b in email) > 0


def test_a_bad_knob_exits_2(tmp_path):
    r = subprocess.run([CALLPULSE, "simulate", "--tz-mix", "Nowhere/Land", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Nowhere/Land" in r.stderr


def test_past_moves_the_start_back():
    assert parse_duration_ms("90m") == 90 * 60_000
    assert parse_duration_ms("6h") == 6 * HOUR
    assert parse_duration_ms("2d") == 48 * HOUR
    assert parse_duration_ms("30") == 30_000
    with pytest.raises(ValueError):
        parse_duration_ms("soon")
    r = subprocess.run([CALLPULSE, "simulate", "--contacts", "5", "--past", "2h", "--limit", "1"],
                       capture_output=True, check=True)
    assert orjson.loads(r.stdout.splitlines()[0])["ts"] == DEFAULT_START_MS - 2 * HOUR
