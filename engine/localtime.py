"""Campaign-local calendar and dialing-window arithmetic (time zones, DST).

All instants are integer epoch milliseconds; local wall times are resolved
with ``zoneinfo`` so DST changes give 23- and 25-hour days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000
ETA_MAX_DAYS = 36_600  # beyond ~100 years of window openings an ETA is reported as unknown


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_datetime(ms: int, tz: str) -> datetime:
    return datetime.fromtimestamp(ms / 1000, zone(tz))


def local_date(ms: int, tz: str) -> date:
    return local_datetime(ms, tz).date()


def local_wall_to_ms(d: date, minute_of_day: int, tz: str) -> int:
    """Instant of local wall time ``d`` + ``minute_of_day`` (earlier instant when ambiguous)."""
    naive = datetime(d.year, d.month, d.day) + timedelta(minutes=minute_of_day)
    aware = naive.replace(tzinfo=zone(tz), fold=0)
    return int(aware.timestamp() * 1000)


@lru_cache(maxsize=4096)
def day_bounds(d: date, tz: str) -> tuple[int, int]:
    """[start, end) instants of local calendar day ``d``."""
    return local_wall_to_ms(d, 0, tz), local_wall_to_ms(d + timedelta(days=1), 0, tz)


def day_bounds_of(ms: int, tz: str) -> tuple[int, int]:
    return day_bounds(local_date(ms, tz), tz)


def utc_date(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


@dataclass(frozen=True)
class TimeWindow:
    """Daily dialing window ``[start, end)`` in local time; spans midnight when end < start."""

    start_min: int
    end_min: int
    tz: str

    @classmethod
    def from_event(cls, obj: dict) -> TimeWindow:
        def minutes(hhmm: str) -> int:
            return int(hhmm[:2]) * 60 + int(hhmm[3:5])

        return cls(minutes(obj["start"]), minutes(obj["end"]), obj.get("tz") or "UTC")

    def as_json(self) -> dict:
        return {
            "start": f"{self.start_min // 60:02d}:{self.start_min % 60:02d}",
            "end": f"{self.end_min // 60:02d}:{self.end_min % 60:02d}",
            "tz": self.tz,
        }

    def _open_tod(self, tod_ms: int) -> bool:
        start, end = self.start_min * 60_000, self.end_min * 60_000
        if start < end:
            return start <= tod_ms < end
        return tod_ms >= start or tod_ms < end

    def is_open(self, ms: int) -> bool:
        """Open when the local time of day of ``ms`` is in the window (the local clock decides,
        so a DST fall-back hour can close and re-open a window)."""
        return self._open_tod((ms + offset_ms(ms, self.tz)) % DAY_MS)

    def open_intervals(self, since: int):
        """Open instants from ``since`` on, as increasing [a, b) intervals.

        Between UTC-offset changes local wall time is instant + offset, so the open set is the
        window's daily [start, end) in wall time, shifted back by the offset.
        """
        start, end = self.start_min * 60_000, self.end_min * 60_000
        if end <= start:
            end += DAY_MS  # spans midnight: [start, end + 1 day) of each wall day
        t = since
        while True:
            off = offset_ms(t, self.tz)
            piece_end = t + DAY_MS
            if offset_ms(piece_end, self.tz) != off:
                piece_end = _next_offset_change(t, piece_end, off, self.tz)
            lo, hi = t + off, piece_end + off  # wall-clock range of this piece
            day = lo // DAY_MS - 1
            while day * DAY_MS + start < hi:
                a = max(lo, day * DAY_MS + start)
                b = min(hi, day * DAY_MS + end)
                if a < b:
                    yield a - off, b - off
                day += 1
            t = piece_end

    def finish_after(self, now: int, work_ms: float) -> float | None:
        """Instant at which ``work_ms`` of dialing, done only while open, ends when starting at ``now``."""
        need = work_ms
        horizon = now + ETA_MAX_DAYS * DAY_MS
        for a, b in self.open_intervals(now):
            if a >= horizon:
                return None
            if need <= b - a:
                return a + need
            need -= b - a
        return None


def offset_ms(ms: int, tz: str) -> int:
    """UTC offset of zone ``tz`` at instant ``ms``, in milliseconds."""
    off = local_datetime(ms, tz).utcoffset()
    assert off is not None  # (an aware datetime: local_datetime gives one)
    return (off.days * 86_400 + off.seconds) * 1000 + off.microseconds // 1000


_TOD_SLOT = 900_000  # 15 minutes: no zone changes its offset twice within one
_TOD_OFFSETS: dict[tuple[str, int], int | None] = {}


def local_tod_ms(ms: int, tz: str) -> int:
    """The local time of day of instant ``ms`` in zone ``tz``, in ms since local midnight (the wall
    clock: in a fall-back hour it runs twice). The offset is cached per zone and 15-minute slot when
    it is the same at both ends of the slot (else computed for the instant)."""
    key = (tz, ms // _TOD_SLOT)
    off = _TOD_OFFSETS.get(key)
    if off is None:
        lo = key[1] * _TOD_SLOT
        off = offset_ms(lo, tz)
        if offset_ms(lo + _TOD_SLOT - 1, tz) != off:
            off = -1  # an offset change inside the slot
        if len(_TOD_OFFSETS) >= 65_536:
            _TOD_OFFSETS.clear()
        _TOD_OFFSETS[key] = off
    if off == -1:
        off = offset_ms(ms, tz)
    return (ms + off) % DAY_MS


def _next_offset_change(lo: int, hi: int, off: int, tz: str) -> int:
    """First instant in (lo, hi] whose offset differs from ``off`` (binary search, ms precision)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset_ms(mid, tz) == off:
            lo = mid
        else:
            hi = mid
    return hi
