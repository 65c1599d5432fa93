"""Small value objects the campaign state keeps its aggregates in: a latest time that a retraction can
make stale, a mean kept as sum and count, and the callback totals. Slotted and pickled as tuples
(engine.state.entities.Slotted), like the entities, to keep recovery snapshots small."""

from __future__ import annotations

from engine.state.entities import Slotted


class Latest(Slotted):
    """The largest ts of the facts that currently count (``value``; None when none).

    Adding a fact only ever raises it; retracting the fact that set it cannot lower it without
    looking at every other fact, so the retraction marks it ``stale`` and the owner recomputes it
    before it is read (rare: an earlier duplicate of a fact arrived late)."""

    __slots__ = ("value", "stale")

    def __init__(self, value: int | None = None, stale: bool = False):
        self.value = value
        self.stale = stale

    def count(self, ts: int, s: int) -> None:
        """A fact at ``ts`` counted (s > 0) or retracted (s < 0)."""
        if s > 0:
            if self.value is None or ts > self.value:
                self.value = ts
        elif ts == self.value:
            self.stale = True

    def recomputed(self, value: int | None) -> None:
        self.value = value
        self.stale = False


class Mean(Slotted):
    """A mean kept exactly as an integer sum and a count (``value`` is None with no sample)."""

    __slots__ = ("total", "n")

    def __init__(self, total: int = 0, n: int = 0):
        self.total = total
        self.n = n

    def add(self, x: int, s: int) -> None:
        """Count (s = 1) or retract (s = -1) one sample ``x``."""
        self.total += s * x
        self.n += s

    @property
    def value(self) -> float | None:
        return self.total / self.n if self.n else None


class CallbackTotals(Slotted):
    """The campaign's callback totals: the sum over contacts of `engine.state.entities.fold_callbacks`."""

    __slots__ = ("requested", "completed", "cancelled", "delay_sum", "delay_n", "unmatched")

    def __init__(self, requested: int = 0, completed: int = 0, cancelled: int = 0, delay_sum: int = 0,
                 delay_n: int = 0, unmatched: int = 0):
        self.requested = requested
        self.completed = completed
        self.cancelled = cancelled
        self.delay_sum = delay_sum
        self.delay_n = delay_n
        self.unmatched = unmatched

    def replace(self, old: tuple, new: tuple) -> None:
        """One contact's fold changed from ``old`` to ``new`` (fold_callbacks tuples)."""
        self.requested += new[0] - old[0]
        self.completed += new[1] - old[1]
        self.cancelled += new[2] - old[2]
        self.delay_sum += new[3] - old[3]
        self.delay_n += new[4] - old[4]
        self.unmatched += new[5] - old[5]

    @property
    def pending(self) -> int:
        return self.requested - self.completed - self.cancelled

    @property
    def avg_delay_ms(self) -> float | None:
        return self.delay_sum / self.delay_n if self.delay_n else None
