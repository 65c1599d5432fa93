"""Seeded, deterministic dialer simulator: `generate(SimConfig) -> Iterator[event]`.

Pure generation — no I/O, no wall clock (pacing lives in `pacing.py`,
writing in `flows/ingest_writer.py`). The same config yields the same stream
byte for byte. Each campaign is simulated on its own (`voice_campaign.py`,
`email_campaign.py`) and the campaigns are merged by (ts, event_id), so
with no faults the stream is sorted by (ts, event_id) and every event is
valid per SPEC §1. Faults (`faults.py`) then reorder, repeat and
corrupt it; yielded items are dicts, except malformed ones of kind
`broken_json` / `not_object`, which are raw `str` lines.

Ids: org `org-<o>`, campaign `cmp-<tag>-<o>-<c>` (tag defaults to
`s<seed>`, so two seeds never collide in one Redis), event
`<campaign>-<n:08d>`, contact `ct-<k:06d>`, batch `b-<b:03d>`, attempt
`<contact>-a<n>`, message `<contact>-m<step>` (the last four are scoped to
their campaign, as SPEC says).
"""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter

from callpulse.simulator.call_window import parse_window
from callpulse.simulator.campaign_base import parse_tz_mix
from callpulse.simulator.email_campaign import EmailCampaign
from callpulse.simulator.faults import inject_faults
from callpulse.simulator.voice_campaign import VoiceCampaign

DEFAULT_START_MS = 1_778_245_200_000  # 2026-05-08T13:00:00Z: 09:00 in New York, 14:00 in London
CHANNELS = ("voice", "email", "mixed")


@dataclass(frozen=True)
class SimConfig:
    seed: int = 1
    orgs: int = 1
    campaigns: int = 1  # per org
    contacts: int = 200  # per campaign
    channel: str = "voice"  # voice | email | mixed (about 2 voice : 1 email)
    start_ms: int = DEFAULT_START_MS  # first campaign.created
    stagger_s: float = 30.0  # each further campaign starts this much later
    batch_size: int = 250  # contacts per batch
    window: str = "auto"  # auto (half the campaigns get one, open at start) | none | "HH:MM-HH:MM@Area/City"
    window_days: int = 3  # after this many window closings leftovers become window_closed (0 = never)
    abandon_prob: float = 0.01  # P(a human-answered call is abandoned): > 0.03 breaches the ceiling
    abandon_ramp: float | None = None  # voice: P(abandoned) grows linearly to this by the last dispatch
    abandon_from: str = "answer"  # voice campaigns' abandon_from: answer | greeting_end | mixed (either)
    retry_delay_s: float = 900.0  # mean delay before a voice retry (busy: 30 % of it)
    email_step_delay_s: float = 14_400.0  # delay between email sequence steps
    pause: bool = False  # pause each campaign at 30 % dispatched, resume 3-10 min later
    stop: bool = False  # stop each campaign at 60 % dispatched (leftovers manual_stopped)
    restart: bool = False  # voice: once completed, restart as run 2 over contacts last ended busy / no answer
    withdraw_run: bool = False  # voice: once completed, prepare the next run, then withdraw it undialed
    duplicate_pct: float = 0.0  # % of events re-sent (same event_id) up to duplicate_delay_ms later
    duplicate_delay_ms: int = 2000
    jitter_ms: int = 0  # each event arrives at ts + uniform(0, jitter_ms); stream in arrival order
    malformed_pct: float = 0.0  # % of extra invalid items mixed in
    tag: str | None = None  # id tag in campaign ids; default f"s{seed}"
    name_prefix: str | None = None  # put before each campaign's name ("Seeded Sales Outreach #1")
    # Compliance (docs/simulator.md *Compliance*); off by default, and drawn from their own RNG
    tz_mix: str | None = None  # voice: contacts' zones (contact.added tz): a preset (us, eu, world) or "Zone,Zone"
    off_hours_pct: float = 0.0  # voice: % of contacts in a zone where the campaign starts in the small hours
    redial_abandoned_pct: float | None = None  # voice: % of abandoned contacts redialed within the 72 h guard
    complaint_pct: float = 0.0  # email: % of delivered messages reported as spam (email.complained)
    agents: int = 0  # voice: a floor of N human agents and a bot line take the answered calls (agent.state)

    def check(self) -> None:
        """Raise ValueError on a config the simulator cannot honour."""
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}")
        for name in ("orgs", "campaigns", "contacts", "batch_size", "window_days", "start_ms",
                     "stagger_s", "retry_delay_s", "email_step_delay_s", "duplicate_delay_ms", "jitter_ms", "agents"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= self.abandon_prob <= 1:
            raise ValueError("abandon_prob must be within [0, 1]")
        if self.abandon_ramp is not None and not 0 <= self.abandon_ramp <= 1:
            raise ValueError("abandon_ramp must be within [0, 1]")
        if self.abandon_from not in ("answer", "greeting_end", "mixed"):
            raise ValueError("abandon_from must be answer, greeting_end or mixed")
        for name in ("duplicate_pct", "malformed_pct", "off_hours_pct", "complaint_pct"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be within [0, 100]")
        if self.redial_abandoned_pct is not None and not 0 <= self.redial_abandoned_pct <= 100:
            raise ValueError("redial_abandoned_pct must be within [0, 100]")
        if self.tz_mix is not None:
            parse_tz_mix(self.tz_mix)
        if self.window not in ("auto", "none"):
            parse_window(self.window)
        if self.tag is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.tag):
            raise ValueError("tag: 1-64 of A-Z a-z 0-9 _ -")

    @property
    def id_tag(self) -> str:
        return self.tag if self.tag is not None else f"s{self.seed}"

    @property
    def has_faults(self) -> bool:
        return bool(self.duplicate_pct or self.jitter_ms or self.malformed_pct)


class Simulator:
    """Iterable over the event stream; `fault_stats` counts what the fault layer added."""

    def __init__(self, cfg: SimConfig):
        cfg.check()
        self.cfg = cfg
        self.fault_stats = {"duplicates": 0, "malformed": 0}

    def build(self) -> list:
        """Fresh campaign simulators (each holds mutable state, so one per iteration)."""
        cfg = self.cfg
        campaigns = []
        stagger = int(cfg.stagger_s * 1000)
        ordinal = 0
        for o in range(cfg.orgs):
            org = f"org-{o + 1}"
            for c in range(cfg.campaigns):
                cid = f"cmp-{cfg.id_tag}-{o + 1}-{c + 1}"
                channel = cfg.channel
                if channel == "mixed":
                    pick = random.Random(f"{cfg.seed}:channel:{org}:{cid}").random()
                    channel = "voice" if pick < 0.65 else "email"
                cls = VoiceCampaign if channel == "voice" else EmailCampaign
                campaigns.append(cls(cfg, org, cid, cfg.start_ms + ordinal * stagger, ordinal))
                ordinal += 1
        return campaigns

    def clean(self) -> Iterator[dict]:
        """The fault-free stream, sorted by (ts, event_id).

        `heapq.merge` breaks ties between its inputs by input position, so with
        the inputs ordered by `campaign_id + "-"` (the event ids' prefix) an
        integer `ts` key gives (ts, event_id) order without comparing strings.
        """
        campaigns = sorted(self.build(), key=lambda c: c.cid + "-")
        runs = [c.run() for c in campaigns]
        if len(runs) == 1:
            return runs[0]
        return heapq.merge(*runs, key=itemgetter("ts"))

    def __iter__(self) -> Iterator[dict | str]:
        stream = self.clean()
        if self.cfg.has_faults:
            stream = inject_faults(stream, self.cfg, self.fault_stats)
        return iter(stream)


def generate(cfg: SimConfig) -> Iterator[dict | str]:
    """Events in arrival order (see the module docstring for what faults add)."""
    return iter(Simulator(cfg))
