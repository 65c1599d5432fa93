"""Calling-hours window for the simulator: "is dialing allowed at ts, and until when?".

A campaign's `time_window` is local wall-clock time in an IANA zone, so the
open/close instants move with DST. The simulator asks this on every dial, so
the answer is cached as an interval `[valid_from, until)` and only recomputed
when the clock crosses a boundary (zoneinfo conversions are slow).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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
    """Open/closed state of a daily `[start, end)` local window (end < start spans midnight)."""

    def __init__(self, start: str, end: str, tz: str):
        self.start, self.end, self.tz = start, end, tz
        self._zone = ZoneInfo(tz)
        self._t_start = time.fromisoformat(start)
        self._t_end = time.fromisoformat(end)
        self._lo = self._hi = 0  # cached [lo, hi) interval of constant state
        self._open = False

    def as_event_field(self) -> dict:
        return {"start": self.start, "end": self.end, "tz": self.tz}

    def _intervals(self, ts_ms: int) -> list[tuple[int, int]]:
        """Open intervals (epoch ms) of the local days around ts."""
        day = datetime.fromtimestamp(ts_ms / 1000, self._zone).date()
        out = []
        for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
            end_day = d if self._t_end > self._t_start else d + timedelta(days=1)
            lo = datetime.combine(d, self._t_start, self._zone)
            hi = datetime.combine(end_day, self._t_end, self._zone)
            out.append((int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)))
        return out

    def state(self, ts_ms: int) -> tuple[bool, int]:
        """(open at ts_ms, instant at which that state ends)."""
        if not (self._lo <= ts_ms < self._hi):
            self._refresh(ts_ms)
        return self._open, self._hi

    def _refresh(self, ts_ms: int) -> None:
        prev_close = None
        for lo, hi in self._intervals(ts_ms):
            if lo <= ts_ms < hi:
                self._open, self._lo, self._hi = True, lo, hi
                return
            if ts_ms < lo:
                self._open, self._hi = False, lo
                self._lo = prev_close if prev_close is not None and prev_close <= ts_ms else ts_ms
                return
            prev_close = hi
        # Unreachable for sane windows (tomorrow's opening is always ahead); stay closed an hour.
        self._open, self._lo, self._hi = False, ts_ms, ts_ms + 3_600_000

    def is_open(self, ts_ms: int) -> bool:
        return self.state(ts_ms)[0]

    def next_close_after(self, ts_ms: int) -> int:
        """First closing instant strictly after ts_ms."""
        for _lo, hi in self._intervals(ts_ms) + self._intervals(ts_ms + 86_400_000):
            if hi > ts_ms:
                return hi
        return ts_ms + 86_400_000
