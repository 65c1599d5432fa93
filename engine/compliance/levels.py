"""Alert levels with the hysteresis of SPEC §3: the abandon rate's windows and the spam-complaint windows.

Abandon levels judge r = A / max(H, m) while the campaign runs (below the sample size m a breach that is
already certain shows at once, a single early abandon does not) and r = A / H once its status is final
(`completed`, `stopped`, `cancelled`: its figures are final whatever the sample); r = 0 when the divisor
is 0. With ceiling c = p/q and r = A/D every comparison is done on integers (cross-multiplied), so a
rate exactly at a threshold is classified exactly:
  r > c        ⇔ A·q > p·D
  r ≥ 0.8c     ⇔ 5·A·q ≥ 4·p·D
  r < 0.8c − h ⇔ 10·A·q < 7·p·D      (h = c/10)
  r ≤ c − h    ⇔ 10·A·q ≤ 9·p·D

Complaint levels run the same machine with the warning threshold w in place of 0.8c, h = w/10 and
m = 1000 delivered messages (`complaint_level`), in exact fractions.
"""

from __future__ import annotations

from fractions import Fraction

from engine.vocab import WINDOWS  # noqa: F401  (re-exported: engine.compliance.levels.WINDOWS)

OK, WARNING, BREACH = "ok", "warning", "breach"
DEFAULT_MIN_SAMPLE = 50
COMPLAINT_MIN_SAMPLE = 1000  # delivered messages (SPEC §3 *Spam complaints*)
FINAL_STATUSES = frozenset({"completed", "stopped", "cancelled"})


def judged_divisor(count: int, min_sample: int, final: bool) -> int:
    """The divisor of the judged rate: the count once the campaign is final, else max(count, m)."""
    return count if final else max(count, min_sample)


def next_level(level: str, abandoned: int, human: int, ceiling: Fraction, min_sample: int,
               final: bool = False) -> str:
    d = judged_divisor(human, min_sample, final)
    if d == 0:
        abandoned, d = 0, 1  # no answer to judge: the rate is 0
    p, q = ceiling.numerator, ceiling.denominator
    aq, ph = abandoned * q, p * d
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


def next_complaint_level(level: str, complained: int, delivered: int, ceiling: Fraction, warning: Fraction,
                         final: bool = False) -> str:
    """With r = C/D, c = pc/qc, w = pw/qw and h = w/10, cross-multiplied:
    r > c ⇔ C·qc > pc·D;  r ≥ w ⇔ C·qw ≥ pw·D;  r < w − h ⇔ 10·C·qw < 9·pw·D;
    r ≤ c − h ⇔ 10·C·qc·qw ≤ D·(10·pc·qw − pw·qc)."""
    d = judged_divisor(delivered, COMPLAINT_MIN_SAMPLE, final)
    c = complained
    if d == 0:
        c, d = 0, 1  # nothing delivered: the rate is 0
    pc, qc, pw, qw = ceiling.numerator, ceiling.denominator, warning.numerator, warning.denominator
    if level == BREACH:
        if 10 * c * qc * qw <= d * (10 * pc * qw - pw * qc):
            return OK if 10 * c * qw < 9 * pw * d else WARNING
        return BREACH
    if c * qc > pc * d:
        return BREACH
    if c * qw >= pw * d:
        return WARNING
    if level == WARNING and not 10 * c * qw < 9 * pw * d:
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
        self.last_input: tuple | None = None

    def evaluate(self, abandoned: int, human: int, ceiling: Fraction, min_sample: int, final: bool = False):
        """New level; returns (from, to) when it changed, else None."""
        key = (abandoned, human, ceiling, min_sample, final)
        if key == self.last_input:
            return None  # same input from the same level gives the same level
        self.last_input = key
        new = next_level(self.level, abandoned, human, ceiling, min_sample, final)
        return self._move(new)

    def evaluate_complaints(self, complained: int, delivered: int, ceiling: Fraction, warning: Fraction,
                            final: bool):
        key = (complained, delivered, ceiling, warning, final)
        if key == self.last_input:
            return None
        self.last_input = key
        return self._move(next_complaint_level(self.level, complained, delivered, ceiling, warning, final))

    def _move(self, new: str):
        if new == self.level:
            return None
        old, self.level = self.level, new
        self.changes += 1
        return old, new
