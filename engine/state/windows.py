"""Fixed-grid bucketed counters for the trailing windows of SPEC §2.

A window of length W at resolution r holds the facts with
``floor(now/r) − W/r < floor(ts/r) ≤ floor(now/r)``. Keeping one counter per
grid bucket makes every window *exact* (not an approximation): a fact is in
the window iff its bucket is, so a window sum is a sum of whole buckets.
Facts are added and retracted (negative deltas) when late events change an
entity's contribution, which is why these are counters, not event lists.
"""

from __future__ import annotations

from typing import Any


class BucketSeries:
    """Counts per bucket of ``resolution_ms``, keeping at least ``keep_buckets`` behind now.

    Values are lists of ``width`` numbers so one series can carry several
    related counters (e.g. ring-time sum and count).
    """

    __slots__ = ("resolution", "keep", "width", "buckets", "_pruned_below")

    def __init__(self, resolution_ms: int, keep_buckets: int, width: int = 1):
        self.resolution = resolution_ms
        self.keep = keep_buckets
        self.width = width
        self.buckets: dict[int, Any] = {}  # a list of `width` counters (a plain int when width is 1: add1)
        self._pruned_below = 0

    def add(self, ts: int, deltas: tuple) -> None:
        """Add to a multi-counter series (``width`` > 1)."""
        b = ts // self.resolution
        cell = self.buckets.get(b)
        if cell is None:
            cell = self.buckets[b] = [0] * self.width
        for i, d in enumerate(deltas):
            cell[i] += d
        if not any(cell):
            del self.buckets[b]

    def add1(self, ts: int, delta: int) -> None:
        """Add to a single-counter series (``width`` == 1): cells are plain ints."""
        b = ts // self.resolution
        v = self.buckets.get(b, 0) + delta
        if v:
            self.buckets[b] = v
        else:
            self.buckets.pop(b, None)

    def window_sum(self, now: int, window_ms: int):
        """Sum over the grid window of length ``window_ms`` ending at ``now``."""
        hi = now // self.resolution
        lo = hi - window_ms // self.resolution  # exclusive
        if hi - lo <= len(self.buckets):
            get = self.buckets.get
            cells = [c for c in (get(b) for b in range(lo + 1, hi + 1)) if c is not None]
        else:
            cells = [c for b, c in self.buckets.items() if lo < b <= hi]
        if self.width == 1:
            return sum(cells)
        total = [0] * self.width
        for cell in cells:
            for i, x in enumerate(cell):
                total[i] += x
        return total

    def prune(self, now: int) -> None:
        """Drop buckets older than ``keep`` buckets behind now; amortised (runs every keep/4 buckets)."""
        floor = now // self.resolution - self.keep
        if floor - self._pruned_below < max(1, self.keep // 4):
            return
        self._pruned_below = floor
        for b in [b for b in self.buckets if b < floor]:
            del self.buckets[b]


class RollingPair:
    """(abandoned, human_answered) over a sliding grid window with an O(1) running total.

    Alert levels are re-evaluated after every applied event, so the window
    totals must not be recomputed by summing buckets each time.
    ``lo_bucket`` is the first bucket inside the window; it moves forward as
    now advances (buckets leaving the window are subtracted) and can be reset
    arbitrarily (the calendar-day window jumps at local midnight).
    """

    __slots__ = ("resolution", "length", "retain", "buckets", "lo", "hi", "a", "h")

    def __init__(self, resolution_ms: int, length_buckets: int | None, retain_buckets: int = 0):
        self.resolution = resolution_ms
        self.length = length_buckets  # None: the caller moves `lo` itself (calendar day)
        self.retain = retain_buckets  # buckets kept below `lo` so `lo` can move back (time-zone change)
        self.buckets: dict[int, list[int]] = {}
        self.lo = 0
        self.hi = -1
        self.a = 0
        self.h = 0

    def add(self, ts: int, da: int, dh: int) -> None:
        b = ts // self.resolution
        cell = self.buckets.get(b)
        if cell is None:
            cell = self.buckets[b] = [0, 0]
        cell[0] += da
        cell[1] += dh
        if self.lo <= b <= self.hi:
            self.a += da
            self.h += dh

    def advance(self, now: int) -> bool:
        """Move the window's high edge to ``now``; True when that changed the totals."""
        hi = now // self.resolution
        if hi <= self.hi:
            return False
        self.hi = hi
        # Buckets between the old hi and the new hi can already hold facts only if
        # they were added ahead of now, which never happens (ts ≤ now), so only the
        # low edge moves the totals.
        if self.length is not None:
            a, h = self.a, self.h
            self.set_lo(hi - self.length + 1)
            return a != self.a or h != self.h
        return False

    def set_lo(self, lo: int) -> None:
        if lo == self.lo:
            return
        if lo > self.lo and lo - self.lo <= len(self.buckets):
            get = self.buckets.get
            for b in range(self.lo, lo):
                cell = get(b)
                if cell is not None:
                    self.a -= cell[0]
                    self.h -= cell[1]
        else:
            # Large jump or a move backwards: recompute from the retained buckets.
            self.a = sum(c[0] for b, c in self.buckets.items() if lo <= b <= self.hi)
            self.h = sum(c[1] for b, c in self.buckets.items() if lo <= b <= self.hi)
        crossed = (lo >> 6) != (self.lo >> 6)
        self.lo = lo
        # Prune when lo enters a new block of 64 buckets, not on every move (min() is O(buckets))
        if crossed and self.buckets and min(self.buckets) < lo - self.retain - 64:
            for b in [b for b in self.buckets if b < lo - self.retain]:
                del self.buckets[b]
