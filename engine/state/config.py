"""Campaign configuration resolved from its `campaign.created` events, and its SPEC defaults.

Each field takes its value from the latest `campaign.created` (by key
``(ts, event_id)``) that carries it, else the SPEC default.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from engine.localtime import TimeWindow

DEFAULTS: dict[str, Any] = {  # (Any: one value type per field, as CampaignConfig declares)
    "name": None,
    "channel": "voice",
    "concurrency_limit": 10,
    "max_attempts": 3,
    "abandon_ceiling": 0.03,
    "abandon_threshold_ms": 2000,
    "abandon_from": "answer",
    "time_window": None,
    "kind": None,
    "config": None,
    "calling_hours": {"start": "08:00", "end": "21:00"},
    "abandon_redial_hours": 72,
    "complaint_ceiling": 0.003,
    "complaint_warning": 0.001,
}
FIELDS = tuple(DEFAULTS)


def exact_decimal(x) -> Fraction:
    """The decimal number as written: floats via their shortest repr (0.03 → 3/100)."""
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


@dataclass
class CampaignConfig:
    """The configuration in effect; every default is the SPEC default in `DEFAULTS` (one definition)."""

    name: str | None = DEFAULTS["name"]
    channel: str = DEFAULTS["channel"]
    concurrency_limit: int = DEFAULTS["concurrency_limit"]
    max_attempts: int = DEFAULTS["max_attempts"]
    abandon_ceiling: float = DEFAULTS["abandon_ceiling"]
    abandon_threshold_ms: int = DEFAULTS["abandon_threshold_ms"]
    abandon_from: str = DEFAULTS["abandon_from"]
    time_window: TimeWindow | None = DEFAULTS["time_window"]
    kind: str | None = DEFAULTS["kind"]
    config: dict | None = DEFAULTS["config"]
    calling_hours: dict = field(default_factory=lambda: dict(DEFAULTS["calling_hours"]))
    abandon_redial_hours: int = DEFAULTS["abandon_redial_hours"]
    complaint_ceiling: float = DEFAULTS["complaint_ceiling"]
    complaint_warning: float = DEFAULTS["complaint_warning"]
    ceiling: Fraction = field(default_factory=lambda: exact_decimal(DEFAULTS["abandon_ceiling"]))
    # Derived once (the hot path reads them): the calling hours as [start, end) ms of the local day (end may
    # be 24:00 = 86 400 000), the redial span in ms, the complaint (ceiling, warning) as the decimals written.
    calling_ms: tuple = (8 * 3_600_000, 21 * 3_600_000)
    redial_ms: int = 72 * 3_600_000
    complaint_limits: tuple = (Fraction(3, 1000), Fraction(1, 1000))

    def __post_init__(self):
        ch = self.calling_hours
        self.calling_ms = (_hhmm_ms(ch["start"]), _hhmm_ms(ch["end"]))
        self.redial_ms = self.abandon_redial_hours * 3_600_000
        self.complaint_limits = (exact_decimal(self.complaint_ceiling), exact_decimal(self.complaint_warning))

    @property
    def tz(self) -> str:
        return self.time_window.tz if self.time_window else "UTC"

    def guard_inputs(self) -> tuple:
        """What the compliance guards read from the configuration (a change re-decides them)."""
        return self.calling_ms, self.redial_ms, self.tz

    def as_json(self) -> dict:
        return {
            "concurrency_limit": self.concurrency_limit,
            "max_attempts": self.max_attempts,
            "abandon_ceiling": float(self.abandon_ceiling),
            "abandon_threshold_ms": self.abandon_threshold_ms,
            "abandon_from": self.abandon_from,
            "time_window": self.time_window.as_json() if self.time_window else None,
            "config": self.config,
            "calling_hours": {"start": self.calling_hours["start"], "end": self.calling_hours["end"]},
            "abandon_redial_hours": self.abandon_redial_hours,
            "complaint_ceiling": float(self.complaint_ceiling),
            "complaint_warning": float(self.complaint_warning),
        }


def _hhmm_ms(hhmm: str) -> int:
    return (int(hhmm[:2]) * 60 + int(hhmm[3:5])) * 60_000


class ConfigHistory:
    """All `campaign.created` events of a campaign, kept sorted by key (there are few)."""

    __slots__ = ("keys", "events", "current")

    def __init__(self):
        self.keys: list[tuple] = []
        self.events: list[dict] = []
        self.current = CampaignConfig()

    def add(self, key: tuple, event: dict) -> None:
        i = bisect.bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.events.insert(i, event)
        self.current = self._resolve(len(self.events))

    def resolve(self) -> CampaignConfig:
        """The configuration in effect after every event (recomputed: e.g. after a load)."""
        return self._resolve(len(self.events))

    def _resolve(self, upto: int) -> CampaignConfig:
        values = dict(DEFAULTS)
        for ev in self.events[:upto]:
            for f in FIELDS:
                if f in ev:
                    values[f] = ev[f]
        tw = values["time_window"]
        return CampaignConfig(
            **{**values, "time_window": TimeWindow.from_event(tw) if tw else None},
            ceiling=exact_decimal(values["abandon_ceiling"]),
        )

    def rules_at(self, key: tuple) -> tuple[int, str]:
        """(`abandon_threshold_ms`, `abandon_from`) in effect at ``key``: outcomes are decided at
        `call.ended`, each field from the latest `campaign.created` before it that carries it."""
        threshold, start = DEFAULTS["abandon_threshold_ms"], DEFAULTS["abandon_from"]
        if not self.events:
            return threshold, start
        i = bisect.bisect_left(self.keys, key)
        have_threshold = have_start = False
        for ev in reversed(self.events[:i]):
            if not have_threshold and "abandon_threshold_ms" in ev:
                threshold, have_threshold = ev["abandon_threshold_ms"], True
            if not have_start and "abandon_from" in ev:
                start, have_start = ev["abandon_from"], True
            if have_threshold and have_start:
                break
        return threshold, start
