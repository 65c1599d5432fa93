"""Campaign configuration resolved from its `campaign.created` events, and its SPEC defaults.

Each field takes its value from the latest `campaign.created` (by key
``(ts, event_id)``) that carries it, else the SPEC default.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction

from engine.localtime import TimeWindow

DEFAULTS = {
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
    ceiling: Fraction = field(default_factory=lambda: exact_decimal(DEFAULTS["abandon_ceiling"]))

    @property
    def tz(self) -> str:
        return self.time_window.tz if self.time_window else "UTC"

    def as_json(self) -> dict:
        return {
            "concurrency_limit": self.concurrency_limit,
            "max_attempts": self.max_attempts,
            "abandon_ceiling": float(self.abandon_ceiling),
            "abandon_threshold_ms": self.abandon_threshold_ms,
            "abandon_from": self.abandon_from,
            "time_window": self.time_window.as_json() if self.time_window else None,
            "config": self.config,
        }


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
