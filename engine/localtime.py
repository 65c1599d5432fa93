"""Campaign-local calendar and dialing-window arithmetic (time zones, DST).

All instants are integer epoch milliseconds; local wall times are resolved
with ``zoneinfo`` so DST changes give 23- and 25-hour days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
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
    return datetime.fromtimestamp(ms / 1000, timezone.utc).date()


@dataclass(frozen=True)
class TimeWindow:
    """Daily dialing window ``[start, end)`` in local time; spans midnight when end < start."""

    start_min: int
    end_min: int
    tz: str

    @classmethod
    def from_event(cls, obj: dict) -> "TimeWindow":
        def minutes(hhmm: str) -> int:
            return int(hhmm[:2]) * 60 + int(hhmm[3:5])

        return cls(minutes(obj["start"]), minutes(obj["end"]), obj.get("tz") or "UTC")

    def as_json(self) -> dict:
        return {
            "start": f"{self.start_min // 60:02d}:{self.start_min % 60:02d}",
            "end": f"{self.end_min // 60:02d}:{self.end_min % 60:02d}",
            "tz": self.tz,
        }

    def is_open(self, ms: int) -> bool:
        t = local_datetime(ms, self.tz)
        tod = t.hour * 60 + t.minute  # minute resolution: HH:MM bounds
        if self.start_min < self.end_min:
            return self.start_min <= tod < self.end_min
        return tod >= self.start_min or tod < self.end_min

    def _opening(self, d: date) -> tuple[int, int]:
        """The opening that starts on local date ``d``: [start, end) instants."""
        start = local_wall_to_ms(d, self.start_min, self.tz)
        end_day = d if self.end_min > self.start_min else d + timedelta(days=1)
        return start, local_wall_to_ms(end_day, self.end_min, self.tz)

    def finish_after(self, now: int, work_ms: float) -> float | None:
        """Instant at which ``work_ms`` of dialing, done only while open, ends when starting at ``now``."""
        d = local_date(now, self.tz) - timedelta(days=1)  # yesterday's opening may span midnight
        need = work_ms
        for _ in range(ETA_MAX_DAYS):
            start, end = self._opening(d)
            d += timedelta(days=1)
            if end <= now:
                continue
            begin = max(start, now)
            available = end - begin
            if need <= available:
                return begin + need
            need -= available
        return None
