"""Calling-hours window for the simulator: "is dialing allowed at ts, and until when?".

A campaign's `time_window` is local wall-clock time in an IANA zone, so the
open/close instants move with DST. The simulator asks this on every dial, so
the answer is cached as an interval `[valid_from, until)` and only recomputed
when the clock crosses a boundary (zoneinfo conversions are slow).
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.localtime import DAY_MS, TimeWindow


def parse_window(text: str) -> tuple[str, str, str]:
    """``"09:00-20:00@America/New_York"`` -> ``("09:00", "20:00", "America/New_York")``."""
    span, _, tz = text.partition("@")
    start, sep, end = span.partition("-")
    if not sep or len(start) != 5 or len(end) != 5 or start == end:
        raise ValueError(f"bad time window {text!r}: want HH:MM-HH:MM[@Area/City]")
    for hhmm in (start, end):
        time.fromisoformat(hhmm)  # raises ValueError on a bad clock time
    tz = tz or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"bad time window {text!r}: unknown time zone {tz!r}") from None
    return start, end, tz


class CallWindow:
    """Open/closed state of a daily `[start, end)` local window (end < start spans midnight).

    The definition of "open" is the engine's (`engine.localtime.TimeWindow`: the local
    clock decides, DST included), so the simulator never dials when the engine would
    say the window is closed; this class only caches the current interval.
    """

    def __init__(self, start: str, end: str, tz: str):
        self.start, self.end, self.tz = start, end, tz
        self._window = TimeWindow.from_event({"start": start, "end": end, "tz": tz})
        self._lo = self._hi = 0  # cached [lo, hi) interval of constant state
        self._open = False

    def as_event_field(self) -> dict:
        return {"start": self.start, "end": self.end, "tz": self.tz}

    def _openings(self, since: int):
        """Open intervals from ``since`` on, adjacent pieces (split at offset changes) merged."""
        current = None
        for a, b in self._window.open_intervals(since):
            if current is not None and a == current[1]:
                current = (current[0], b)
                continue
            if current is not None:
                yield current
            current = (a, b)

    def state(self, ts_ms: int) -> tuple[bool, int]:
        """(open at ts_ms, instant at which that state ends)."""
        if not (self._lo <= ts_ms < self._hi):
            self._refresh(ts_ms)
        return self._open, self._hi

    def _refresh(self, ts_ms: int) -> None:
        prev_close = ts_ms - DAY_MS
        for lo, hi in self._openings(ts_ms - DAY_MS):
            if hi <= ts_ms:
                prev_close = hi
            elif lo <= ts_ms:
                self._open, self._lo, self._hi = True, lo, hi
                return
            else:
                self._open, self._lo, self._hi = False, prev_close, lo
                return

    def is_open(self, ts_ms: int) -> bool:
        return self.state(ts_ms)[0]

    def next_close_after(self, ts_ms: int) -> int:
        """First closing instant strictly after ts_ms."""
        for _lo, hi in self._openings(ts_ms):
            if hi > ts_ms:
                return hi
        return ts_ms + DAY_MS
