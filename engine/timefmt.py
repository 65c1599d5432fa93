"""Event times: RFC 3339 / epoch-ms parsing to integer epoch milliseconds (`parse_time`) and back
(`format_time`), with the bounded caches that make parsing a stream's repeated minutes cheap."""

from __future__ import annotations

import re
from typing import Any

from engine.validation.limits import MAX_TIME_MS
from engine.validation.rejection import EventRejected, bad_type, bad_value, show_value

RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
).fullmatch

_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant)."""
    if m <= 2:
        y -= 1
        mp = m + 9
    else:
        mp = m - 3
    era = y // 400
    yoe = y - era * 400
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """Inverse of :func:`_days_from_civil`."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (m <= 2), m, d)


_TIME_EXPECTED = "an integer epoch-ms or an RFC 3339 string with offset"


# Caches of validated pieces of RFC 3339 strings, split at character 16:
# the local minute "YYYY-MM-DDTHH:MM" -> its epoch ms (as if UTC), and the
# tail ":SS[.fff...](Z|+HH:MM|-HH:MM)" -> seconds + milliseconds - offset.
# Both pieces have a fixed grammar, so a string whose two pieces are both
# cached is valid without running the regex. Events of one stream share
# minutes and tails, so this skips most of the work. Bounded: cleared when
# full.
_MINUTE_CACHE: dict[str, int] = {}
_TAIL_CACHE: dict[str, int] = {}
_TIME_CACHE_MAX = 100_000


def clear_time_caches() -> None:
    """Forget every cached time piece."""
    _MINUTE_CACHE.clear()
    _TAIL_CACHE.clear()


def _bad_time_str(field: str, value: str) -> EventRejected:
    return bad_value(
        field,
        "must be an RFC 3339 date-time with offset "
        f"(YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)), got {show_value(value)}",
    )


def _minute_ms(prefix: str, field: str) -> int:
    """Epoch ms of a validated local ``YYYY-MM-DDTHH:MM`` (no offset applied)."""
    y = int(prefix[0:4])
    mo = int(prefix[5:7])
    d = int(prefix[8:10])
    h = int(prefix[11:13])
    mi = int(prefix[14:16])
    if not 1 <= mo <= 12:
        raise bad_value(field, f"has month {prefix[5:7]} out of range 01-12")
    dim = _DAYS_IN_MONTH[mo]
    if mo == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        dim = 29
    if not 1 <= d <= dim:
        raise bad_value(field, f"has day {prefix[8:10]} out of range for {prefix[0:7]}")
    if h > 23:
        raise bad_value(field, f"has hour {prefix[11:13]} out of range 00-23")
    if mi > 59:
        raise bad_value(field, f"has minute {prefix[14:16]} out of range 00-59")
    ms = ((_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000
    if len(_MINUTE_CACHE) >= _TIME_CACHE_MAX:
        _MINUTE_CACHE.clear()
    _MINUTE_CACHE[prefix] = ms
    return ms


def _offset_ms(off: str, field: str) -> int:
    """Milliseconds to subtract from local time for ``Z``/``+HH:MM``/``-HH:MM``."""
    if off == "Z" or off == "z":
        return 0
    oh = int(off[1:3])
    om = int(off[4:6])
    if oh > 23:
        raise bad_value(field, f"has offset hour {off[1:3]} out of range 00-23")
    if om > 59:
        raise bad_value(field, f"has offset minute {off[4:6]} out of range 00-59")
    ms = (oh * 60 + om) * 60000
    return -ms if off[0] == "-" else ms


def _parse_time_str(value: str, field: str) -> int:
    # Fast path: both pieces already validated (see _MINUTE_CACHE).
    base = _MINUTE_CACHE.get(value[:16])
    if base is not None:
        rest = _TAIL_CACHE.get(value[16:])
        if rest is not None:
            ms = base + rest
            if 0 <= ms <= MAX_TIME_MS:
                return ms
            raise bad_value(field, "is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")
    m = RFC3339(value)
    if m is None:
        raise _bad_time_str(field, value)
    prefix, sec, frac, off = m.groups()
    base = _MINUTE_CACHE.get(prefix)
    if base is None:
        base = _minute_ms(prefix, field)
    s = int(sec)
    if s > 59:
        raise bad_value(field, f"has second {sec} out of range 00-59 (leap seconds are not accepted)")
    # Digits beyond milliseconds are truncated (floor to the earlier ms).
    rest = s * 1000 + (int((frac + "00")[:3]) if frac else 0) - _offset_ms(off, field)
    if len(_TAIL_CACHE) >= _TIME_CACHE_MAX:
        _TAIL_CACHE.clear()
    _TAIL_CACHE[value[16:]] = rest
    ms = base + rest
    if 0 <= ms <= MAX_TIME_MS:
        return ms
    raise bad_value(field, "is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")


def parse_time(value: Any, field: str) -> int:
    """Parse a time field (``ts``, ``due_at``) to integer epoch milliseconds.

    Accepts a JSON integer in ``0 .. MAX_TIME_MS`` or an RFC 3339 string with
    an offset. Raises :class:`EventRejected` (``invalid_type`` for a float,
    a boolean or any other non-integer/non-string; ``invalid_value`` for a
    bad string or an out-of-range value).
    """
    t = type(value)
    if t is int:
        if 0 <= value <= MAX_TIME_MS:
            return value
        raise bad_value(field, f"must be an epoch-ms integer in 0..{MAX_TIME_MS}, got {value}")
    if t is str:
        return _parse_time_str(value, field)
    if isinstance(value, str):
        return _parse_time_str(str(value), field)
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_time(int(value), field)
    raise bad_type(field, _TIME_EXPECTED, value)


def format_time(ms: int) -> str:
    """Integer epoch ms -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (inverse of :func:`parse_time`)."""
    if type(ms) is not int:
        if isinstance(ms, bool) or not isinstance(ms, int):
            raise TypeError(f"format_time needs an integer epoch-ms, got {type(ms).__name__}")
        ms = int(ms)
    if not 0 <= ms <= MAX_TIME_MS:
        raise ValueError(f"epoch-ms {ms} outside 0..{MAX_TIME_MS}")
    days, rem = divmod(ms, 86_400_000)
    day = _DAY_PREFIX.get(days)
    if day is None:  # detail records format a few days' times over and over: their dates are cached
        if len(_DAY_PREFIX) >= 4096:
            _DAY_PREFIX.clear()
        y, m, d = _civil_from_days(days)
        day = _DAY_PREFIX[days] = f"{y:04d}-{m:02d}-{d:02d}T"
    secs, milli = divmod(rem, 1000)
    hh, secs = divmod(secs, 3600)
    mm, ss = divmod(secs, 60)
    return f"{day}{hh:02d}:{mm:02d}:{ss:02d}.{milli:03d}Z"


_DAY_PREFIX: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DDT"
