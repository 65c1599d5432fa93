"""Abandon-rate alert levels with the hysteresis of SPEC §3.

With ceiling c = p/q and rate r = A/H, every comparison is done on integers
(cross-multiplied), so a rate exactly at a threshold is classified exactly:
  r > c        ⇔ A·q > p·H
  r ≥ 0.8c     ⇔ 5·A·q ≥ 4·p·H
  r < 0.8c − h ⇔ 10·A·q < 7·p·H      (h = c/10)
  r ≤ c − h    ⇔ 10·A·q ≤ 9·p·H
"""

from __future__ import annotations

from fractions import Fraction

from engine.vocab import WINDOWS  # noqa: F401  (re-exported: engine.alerts.WINDOWS)

OK, WARNING, BREACH = "ok", "warning", "breach"
DEFAULT_MIN_SAMPLE = 50


def next_level(level: str, abandoned: int, human: int, ceiling: Fraction, min_sample: int) -> str:
    if human < min_sample:
        return OK
    p, q = ceiling.numerator, ceiling.denominator
    aq, ph = abandoned * q, p * human
    if level == BREACH:
        if 10 * aq <= 9 * ph:
            return OK if 10 * aq < 7 * ph else WARNING
        return BREACH
    if aq > ph:
        return BREACH
    if 5 * aq >= 4 * ph:
        return WARNING
    if level == WARNING and not 10 * aq < 7 * ph:
        return WARNING
    return OK


def abandon_budget(abandoned: int, human: int, ceiling: Fraction) -> int:
    """Largest k ≥ 0 with (A+k)/(H+k) ≤ c, i.e. max(0, floor((c·H − A)/(1 − c)))."""
    return max(0, int((ceiling * human - abandoned) // (1 - ceiling)))


class AlertTracker:
    """Level of one window plus the count of its changes (for stable alert ids)."""

    __slots__ = ("window", "level", "changes", "last_input")

    def __init__(self, window: str):
        self.window = window
        self.level = OK
        self.changes = 0
        self.last_input = None

    def evaluate(self, abandoned: int, human: int, ceiling: Fraction, min_sample: int):
        """New level; returns (from, to) when it changed, else None."""
        key = (abandoned, human, ceiling, min_sample)
        if key == self.last_input:
            return None  # same input from the same level gives the same level
        self.last_input = key
        new = next_level(self.level, abandoned, human, ceiling, min_sample)
        if new == self.level:
            return None
        old, self.level = self.level, new
        self.changes += 1
        return old, new
