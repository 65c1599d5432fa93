"""Event parsing and validation (SPEC §1).

Pure functions: no Redis, no Bytewax, no HTTP and no wall clock. The caller
passes ``now_ms`` to enable the live-mode ``future`` check.

``validate_event`` returns the *normalised* event: the envelope plus the
fields SPEC §1 defines for the event's type, in SPEC order; unknown fields are
dropped, an optional field given as ``null`` is omitted, ``ts``/``due_at``
become integer epoch milliseconds, and ``cost.incurred`` gains ``usd_micros``.
No defaults are filled in. Anything else fails with :class:`EventRejected`
naming a machine code and the dotted path of the offending field. Fields are
checked in a fixed order (envelope ``event_id, type, ts, org_id,
campaign_id``, then the type's fields in SPEC order), so for a given event
the reported field is deterministic. See ``docs/events.md``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo

import orjson

__all__ = [
    "EventRejected",
    "EVENT_TYPES",
    "CONTACT_STATUSES",
    "FINAL_CONTACT_STATUSES",
    "NONFINAL_CONTACT_STATUSES",
    "CAMPAIGN_STATUSES",
    "BATCH_STATUSES",
    "MAX_EVENT_BYTES",
    "MAX_BATCH_EVENTS",
    "MAX_BODY_BYTES",
    "FUTURE_TOLERANCE_MS",
    "MAX_TIME_MS",
    "decode_event",
    "validate_event",
    "parse_event",
    "split_body",
    "parse_time",
    "format_time",
    "usd_to_micros",
    "clear_caches",
    "EVENT_FIELDS",
]

# --------------------------------------------------------------------------
# Limits and vocabularies
# --------------------------------------------------------------------------

MAX_EVENT_BYTES = 65536
MAX_BATCH_EVENTS = 10000
MAX_BODY_BYTES = 8 * 1024 * 1024
FUTURE_TOLERANCE_MS = 300_000

#: Largest accepted time: 9999-12-31T23:59:59.999Z.
MAX_TIME_MS = 253402300799999
#: Upper bound of every integer field without a SPEC upper bound (int64).
MAX_INT = 2**63 - 1
#: Largest accepted ``usd`` of one ``cost.incurred`` (keeps micro-dollar sums
#: well inside int64).
MAX_USD = 1_000_000_000

MAX_ID_CHARS = 128
MAX_VARIABLES = 200
MAX_VARIABLE_KEY_CHARS = 64
MAX_VARIABLE_VALUE_CHARS = 2048
MAX_RESULTS = 200
MAX_RESULT_KEY_CHARS = 128
MAX_RESULT_VALUE_CHARS = 2048
MAX_TZ_CHARS = 64

#: Per-field string length limits (characters, i.e. ``len(str)``).
STRING_LIMITS: dict[str, int] = {
    "name": 256,
    "company": 256,
    "from_email": 256,
    "kind": 64,
    "category": 64,
    "phone_number": 32,
    "email": 254,
    "recording_url": 2048,
    "preview": 2000,
    "content": 32768,
}

NONFINAL_CONTACT_STATUSES: tuple[str, ...] = (
    "pending",
    "dispatched",
    "in_progress",
    "retrying",
    "followup_scheduled",
)
FINAL_CONTACT_STATUSES: tuple[str, ...] = (
    "completed",
    "failed",
    "busy",
    "no_answer",
    "skipped",
    "max_retries_reached",
    "window_closed",
    "manual_stopped",
)
CONTACT_STATUSES: tuple[str, ...] = NONFINAL_CONTACT_STATUSES + FINAL_CONTACT_STATUSES

CAMPAIGN_STATUSES: tuple[str, ...] = ("draft", "active", "paused", "stopped", "completed", "cancelled")
BATCH_STATUSES: tuple[str, ...] = ("pending", "in_progress", "paused", "completed", "cancelled")
CHANNELS: tuple[str, ...] = ("voice", "email")
ABANDON_FROM: tuple[str, ...] = ("answer", "greeting_end")  # where the abandon threshold is measured from
AMD_RESULTS: tuple[str, ...] = ("human", "machine", "unknown")
TRANSCRIPT_ROLES: tuple[str, ...] = ("assistant", "user")
SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")

# --------------------------------------------------------------------------
# The rejection
# --------------------------------------------------------------------------


class EventRejected(ValueError):
    """An event that fails validation.

    ``code`` is one of ``malformed``, ``missing_field``, ``invalid_type``,
    ``invalid_value``, ``unknown_type``, ``too_large``, ``future``; ``field``
    is the dotted path of the offending field (``None`` for a whole-event
    problem); ``reason`` is a human-readable sentence naming the field.
    """

    __slots__ = ("code", "field", "reason")

    def __init__(self, code: str, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "reason": self.reason}

    def __reduce__(self):  # picklable (e.g. across worker processes)
        return (type(self), (self.code, self.field, self.reason))

    def __repr__(self) -> str:
        return f"EventRejected({self.code!r}, {self.field!r}, {self.reason!r})"


def _jtype(value: object) -> str:
    """JSON-ish name of a value's type, for reasons."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number (float)"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _show(value: object, limit: int = 40) -> str:
    """Short repr of a value for reasons (never echoes a huge value)."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _missing(field: str) -> EventRejected:
    return EventRejected("missing_field", field, f"field '{field}' is required")


def _bad_type(field: str, expected: str, value: object) -> EventRejected:
    return EventRejected(
        "invalid_type", field, f"field '{field}' must be {expected}, got {_jtype(value)}"
    )


def _bad_value(field: str, why: str) -> EventRejected:
    return EventRejected("invalid_value", field, f"field '{field}' {why}")


def _too_large(field: str, why: str) -> EventRejected:
    return EventRejected("too_large", field, f"field '{field}' {why}")


# --------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------

_RFC3339 = re.compile(
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


def clear_caches() -> None:
    """Forget every cached validation result (ids, time pieces, zones)."""
    _MINUTE_CACHE.clear()
    _TAIL_CACHE.clear()
    _SEEN_IDS.clear()
    _TZ_CACHE.clear()


def _bad_time_str(field: str, value: str) -> EventRejected:
    return _bad_value(
        field,
        "must be an RFC 3339 date-time with offset "
        f"(YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)), got {_show(value)}",
    )


def _minute_ms(prefix: str, field: str) -> int:
    """Epoch ms of a validated local ``YYYY-MM-DDTHH:MM`` (no offset applied)."""
    y = int(prefix[0:4])
    mo = int(prefix[5:7])
    d = int(prefix[8:10])
    h = int(prefix[11:13])
    mi = int(prefix[14:16])
    if not 1 <= mo <= 12:
        raise _bad_value(field, f"has month {prefix[5:7]} out of range 01-12")
    dim = _DAYS_IN_MONTH[mo]
    if mo == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        dim = 29
    if not 1 <= d <= dim:
        raise _bad_value(field, f"has day {prefix[8:10]} out of range for {prefix[0:7]}")
    if h > 23:
        raise _bad_value(field, f"has hour {prefix[11:13]} out of range 00-23")
    if mi > 59:
        raise _bad_value(field, f"has minute {prefix[14:16]} out of range 00-59")
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
        raise _bad_value(field, f"has offset hour {off[1:3]} out of range 00-23")
    if om > 59:
        raise _bad_value(field, f"has offset minute {off[4:6]} out of range 00-59")
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
            raise _bad_value(field, "is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")
    m = _RFC3339(value)
    if m is None:
        raise _bad_time_str(field, value)
    prefix, sec, frac, off = m.groups()
    base = _MINUTE_CACHE.get(prefix)
    if base is None:
        base = _minute_ms(prefix, field)
    s = int(sec)
    if s > 59:
        raise _bad_value(field, f"has second {sec} out of range 00-59 (leap seconds are not accepted)")
    # Digits beyond milliseconds are truncated (floor to the earlier ms).
    rest = s * 1000 + (int((frac + "00")[:3]) if frac else 0) - _offset_ms(off, field)
    if len(_TAIL_CACHE) >= _TIME_CACHE_MAX:
        _TAIL_CACHE.clear()
    _TAIL_CACHE[value[16:]] = rest
    ms = base + rest
    if 0 <= ms <= MAX_TIME_MS:
        return ms
    raise _bad_value(field, "is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")


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
        raise _bad_value(field, f"must be an epoch-ms integer in 0..{MAX_TIME_MS}, got {value}")
    if t is str:
        return _parse_time_str(value, field)
    if isinstance(value, str):
        return _parse_time_str(str(value), field)
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_time(int(value), field)
    raise _bad_type(field, _TIME_EXPECTED, value)


def format_time(ms: int) -> str:
    """Integer epoch ms -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (inverse of :func:`parse_time`)."""
    if type(ms) is not int:
        if isinstance(ms, bool) or not isinstance(ms, int):
            raise TypeError(f"format_time needs an integer epoch-ms, got {type(ms).__name__}")
        ms = int(ms)
    if not 0 <= ms <= MAX_TIME_MS:
        raise ValueError(f"epoch-ms {ms} outside 0..{MAX_TIME_MS}")
    days, rem = divmod(ms, 86_400_000)
    y, m, d = _civil_from_days(days)
    secs, milli = divmod(rem, 1000)
    hh, secs = divmod(secs, 3600)
    mm, ss = divmod(secs, 60)
    return f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{milli:03d}Z"


# --------------------------------------------------------------------------
# Field checkers: (value, field) -> normalised value, or raise EventRejected.
# The value is never None here (None means absent).
# --------------------------------------------------------------------------

_ID_OK = re.compile(r"[A-Za-z0-9_.:\-]{1,128}").fullmatch


def _check_id(value: Any, field: str) -> str:
    if type(value) is str:
        if _ID_OK(value) is not None:
            return value
    elif not isinstance(value, str):
        raise _bad_type(field, "a string id", value)
    elif _ID_OK(value) is not None:
        return str(value)
    if not value:
        raise _bad_value(field, "must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise _bad_value(field, f"must be at most {MAX_ID_CHARS} characters, got {len(value)}")
    raise _bad_value(field, f"must use only the characters [A-Za-z0-9_.:-], got {_show(value)}")


# Ids already seen valid (org, campaign, contact, attempt ... ids recur across
# events): a set lookup is cheaper than the regex. Bounded: cleared when full.
# event_id is unique per event and is not cached.
_SEEN_IDS: set[str] = set()
_SEEN_IDS_MAX = 200_000


def _check_id_cached(value: Any, field: str) -> str:
    value = _check_id(value, field)
    if len(_SEEN_IDS) >= _SEEN_IDS_MAX:
        _SEEN_IDS.clear()
    _SEEN_IDS.add(value)
    return value


def _check_time(value: Any, field: str) -> int:
    if type(value) is int and 0 <= value <= MAX_TIME_MS:
        return value
    return parse_time(value, field)


def _int_checker(lo: int, hi: int = MAX_INT) -> Callable[[Any, str], int]:
    def check(value: Any, field: str) -> int:
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad_type(field, "an integer", value)
            value = int(value)
        if lo <= value <= hi:
            return value
        if hi == MAX_INT:
            raise _bad_value(field, f"must be an integer >= {lo}, got {value}")
        raise _bad_value(field, f"must be an integer in {lo}..{hi}, got {value}")

    return check


def _check_number(value: Any, field: str) -> int | float:
    t = type(value)
    if t is int:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        raise _bad_value(field, "must be a finite number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad_type(field, "a number", value)
    return _check_number(int(value) if isinstance(value, int) else float(value), field)


def _check_ceiling(value: Any, field: str) -> int | float:
    value = _check_number(value, field)
    if 0 <= value < 1:
        return value
    raise _bad_value(field, f"must be a number with 0 <= value < 1, got {value!r}")


def _check_usd(value: Any, field: str) -> int | float:
    value = _check_number(value, field)
    if 0 <= value <= MAX_USD:
        return value
    if value < 0:
        raise _bad_value(field, f"must be a number >= 0, got {value!r}")
    raise _bad_value(field, f"must be at most {MAX_USD}, got {value!r}")


def _check_bool(value: Any, field: str) -> bool:
    if value is True or value is False:
        return value
    raise _bad_type(field, "a boolean", value)


def _enum_checker(allowed: tuple[str, ...]) -> Callable[[Any, str], str]:
    allowed_set = frozenset(allowed)
    listing = "|".join(allowed)

    def check(value: Any, field: str) -> str:
        if type(value) is str and value in allowed_set:
            return value
        if not isinstance(value, str):
            raise _bad_type(field, f"a string ({listing})", value)
        if value in allowed_set:
            return str(value)
        raise _bad_value(field, f"must be one of {listing}, got {_show(value)}")

    return check


def _string_checker(limit: int, *, nonempty: bool = False) -> Callable[[Any, str], str]:
    def check(value: Any, field: str) -> str:
        if type(value) is not str:
            if not isinstance(value, str):
                raise _bad_type(field, "a string", value)
            value = str(value)
        n = len(value)
        if n > limit:
            raise _too_large(field, f"must be at most {limit} characters, got {n}")
        if nonempty and n == 0:
            raise _bad_value(field, "must not be empty")
        return value

    return check


_check_email_len = _string_checker(STRING_LIMITS["email"])


def _check_email(value: Any, field: str) -> str:
    value = _check_email_len(value, field)
    at = value.find("@")
    if at <= 0 or at == len(value) - 1 or value.find("@", at + 1) != -1:
        raise _bad_value(field, f"must be an e-mail address with one '@' and text on both sides, got {_show(value)}")
    return value


def _check_config(value: Any, field: str) -> dict:
    if isinstance(value, dict):
        return value
    raise _bad_type(field, "an object", value)


_HHMM = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]").fullmatch

_TZ_CACHE: dict[str, bool] = {}
_TZ_CACHE_MAX = 4096


def _tz_valid(name: str) -> bool:
    ok = _TZ_CACHE.get(name)
    if ok is None:
        try:
            ZoneInfo(name)
            ok = True
        except Exception:  # ZoneInfoNotFoundError, ValueError, OSError, ...
            ok = False
        if ok or len(_TZ_CACHE) < _TZ_CACHE_MAX:
            _TZ_CACHE[name] = ok
    return ok


def _check_time_window(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise _bad_type(field, 'an object {"start":"HH:MM","end":"HH:MM","tz"?}', value)
    out = {}
    for part in ("start", "end"):
        sub = f"{field}.{part}"
        v = value.get(part)
        if v is None:
            raise _missing(sub)
        if not isinstance(v, str):
            raise _bad_type(sub, 'a string "HH:MM"', v)
        if _HHMM(v) is None:
            raise _bad_value(sub, f'must be "HH:MM" with HH 00-23 and MM 00-59, got {_show(v)}')
        out[part] = str(v)
    if out["start"] == out["end"]:
        raise _bad_value(f"{field}.end", "must differ from start (start = end is not a valid window)")
    tz = value.get("tz")
    if tz is not None:
        sub = f"{field}.tz"
        if not isinstance(tz, str):
            raise _bad_type(sub, "a string (IANA time zone name)", tz)
        if len(tz) > MAX_TZ_CHARS:
            raise _too_large(sub, f"must be at most {MAX_TZ_CHARS} characters, got {len(tz)}")
        if not _tz_valid(tz):
            raise _bad_value(sub, f"must be an IANA time zone name, got {_show(tz)}")
        out["tz"] = str(tz)
    return out


def _check_scalar(v: Any, sub: str, max_chars: int) -> None:
    """Slow path for a flat-object value: raise unless ``v`` is a scalar."""
    if isinstance(v, str):
        if len(v) > max_chars:
            raise _too_large(sub, f"must be at most {max_chars} characters, got {len(v)}")
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise _bad_value(sub, "must be a finite number")
    elif not (v is None or isinstance(v, int)):  # int covers bool
        raise _bad_type(sub, "a string, number, boolean or null", v)


def _check_variables(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise _bad_type(field, "an object", value)
    if len(value) > MAX_VARIABLES:
        raise _too_large(field, f"must have at most {MAX_VARIABLES} keys, got {len(value)}")
    for k, v in value.items():
        if type(k) is not str or not 0 < len(k) <= MAX_VARIABLE_KEY_CHARS:
            sub = f"{field}.{k}"
            if not isinstance(k, str):
                raise _bad_type(sub, "keyed by strings", k)
            if not k:
                raise _bad_value(sub, "has an empty key")
            if len(k) > MAX_VARIABLE_KEY_CHARS:
                raise _too_large(sub, f"key must be at most {MAX_VARIABLE_KEY_CHARS} characters, got {len(k)}")
        t = type(v)
        if t is str:
            if len(v) <= MAX_VARIABLE_VALUE_CHARS:
                continue
        elif t is int or t is bool or v is None or (t is float and v - v == 0.0):
            continue
        _check_scalar(v, f"{field}.{k}", MAX_VARIABLE_VALUE_CHARS)
    return value


def _check_results(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise _bad_type(field, 'an object {"<metric>.<criterion>": scalar}', value)
    if len(value) > MAX_RESULTS:
        raise _too_large(field, f"must have at most {MAX_RESULTS} keys, got {len(value)}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise _bad_type(f"{field}.{k}", "keyed by strings", k)
        dot = k.find(".")
        if dot <= 0 or dot == len(k) - 1 or len(k) > MAX_RESULT_KEY_CHARS:
            sub = f"{field}.{k}"
            if len(k) > MAX_RESULT_KEY_CHARS:
                raise _too_large(sub, f"key must be at most {MAX_RESULT_KEY_CHARS} characters, got {len(k)}")
            raise _bad_value(sub, 'key must look like "<metric>.<criterion>"')
        t = type(v)
        if t is str:
            if len(v) <= MAX_RESULT_VALUE_CHARS:
                continue
        elif t is int or t is bool or v is None or (t is float and v - v == 0.0):
            continue
        _check_scalar(v, f"{field}.{k}", MAX_RESULT_VALUE_CHARS)
    return value


# --------------------------------------------------------------------------
# Per-type field tables (built once at import)
# --------------------------------------------------------------------------

# A field: (name, checker(value, name) -> normalised value, required), where
# required is True, False, or a callable(out_so_far) -> bool.
_Spec = tuple[tuple[str, Callable[[Any, str], Any], Any], ...]

_REQ = True
_OPT = False


def _retry_number_required(out: dict) -> bool:
    return out.get("status") == "retrying"


def _s(name: str, **kw) -> Callable[[Any, str], str]:
    return _string_checker(STRING_LIMITS[name], **kw)


_ID = _check_id_cached
_TIME = _check_time

_TYPE_FIELDS: dict[str, _Spec] = {
    "campaign.created": (
        ("name", _s("name"), _OPT),
        ("channel", _enum_checker(CHANNELS), _OPT),
        ("concurrency_limit", _int_checker(1), _OPT),
        ("max_attempts", _int_checker(1), _OPT),
        ("abandon_ceiling", _check_ceiling, _OPT),
        ("abandon_threshold_ms", _int_checker(0), _OPT),
        ("abandon_from", _enum_checker(ABANDON_FROM), _OPT),
        ("time_window", _check_time_window, _OPT),
        ("kind", _s("kind", nonempty=True), _OPT),
        ("config", _check_config, _OPT),
    ),
    "campaign.status": (("status", _enum_checker(CAMPAIGN_STATUSES), _REQ),),
    "campaign.run_started": (("run", _int_checker(2), _REQ),),
    "campaign.run_cancelled": (("run", _int_checker(2), _REQ),),
    "batch.created": (("batch_id", _ID, _REQ),),
    "batch.status": (
        ("batch_id", _ID, _REQ),
        ("status", _enum_checker(BATCH_STATUSES), _REQ),
    ),
    "pass.started": (
        ("pass", _int_checker(1), _REQ),
        ("eligible", _int_checker(0), _REQ),
    ),
    "contact.added": (
        ("contact_id", _ID, _REQ),
        ("batch_id", _ID, _OPT),
        ("phone_number", _s("phone_number"), _OPT),
        ("email", _check_email, _OPT),
        ("variables", _check_variables, _OPT),
    ),
    "contact.status": (
        ("contact_id", _ID, _REQ),
        ("status", _enum_checker(CONTACT_STATUSES), _REQ),
        ("retry_number", _int_checker(1), _retry_number_required),
        ("due_at", _TIME, _OPT),
    ),
    "call.dialed": (
        ("contact_id", _ID, _REQ),
        ("attempt_id", _ID, _REQ),
        ("phone_number", _s("phone_number"), _OPT),
        ("pass", _int_checker(1), _OPT),
        ("follow_up", _check_bool, _OPT),
    ),
    "call.answered": (("attempt_id", _ID, _REQ),),
    "call.amd": (
        ("attempt_id", _ID, _REQ),
        ("result", _enum_checker(AMD_RESULTS), _REQ),
    ),
    "call.bridged": (("attempt_id", _ID, _REQ),),
    "call.ended": (
        ("attempt_id", _ID, _REQ),
        ("sip_code", _int_checker(100, 699), _OPT),
        ("wrap_ms", _int_checker(0), _OPT),
        ("conversation_id", _ID, _OPT),
        ("recording_url", _s("recording_url"), _OPT),
    ),
    "call.transcript": (
        ("attempt_id", _ID, _REQ),
        ("role", _enum_checker(TRANSCRIPT_ROLES), _REQ),
        ("content", _s("content"), _REQ),
    ),
    "conversation.evaluated": (
        ("attempt_id", _ID, _REQ),
        ("conversation_id", _ID, _REQ),
        ("results", _check_results, _REQ),
    ),
    "callback.requested": (
        ("contact_id", _ID, _REQ),
        ("due_at", _TIME, _REQ),
    ),
    "callback.completed": (("contact_id", _ID, _REQ),),
    "callback.cancelled": (("contact_id", _ID, _REQ),),
    "email.sent": (
        ("contact_id", _ID, _REQ),
        ("message_id", _ID, _REQ),
    ),
    "email.delivered": (("message_id", _ID, _REQ),),
    "email.bounced": (("message_id", _ID, _REQ),),
    "email.opened": (("message_id", _ID, _REQ),),
    "email.clicked": (("message_id", _ID, _REQ),),
    "email.unsubscribed": (("message_id", _ID, _REQ),),
    "email.replied": (
        ("message_id", _ID, _REQ),
        ("sentiment", _enum_checker(SENTIMENTS), _REQ),
        ("preview", _s("preview"), _OPT),
        ("name", _s("name"), _OPT),
        ("company", _s("company"), _OPT),
        ("from_email", _s("from_email"), _OPT),
    ),
    "meeting.booked": (("contact_id", _ID, _REQ),),
    "cost.incurred": (
        ("category", _s("category", nonempty=True), _REQ),
        ("usd", _check_usd, _REQ),
    ),
}

EVENT_TYPES: frozenset[str] = frozenset(_TYPE_FIELDS)

#: Field names (envelope + type fields, SPEC order) of each type's normalised event
#: (``cost.incurred`` also carries the derived ``usd_micros``).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    t: ("event_id", "type", "ts", "org_id", "campaign_id")
    + tuple(name for name, _, _ in spec)
    + (("usd_micros",) if t == "cost.incurred" else ())
    for t, spec in _TYPE_FIELDS.items()
}

# type -> ((name, checker, required), ...); required is True, False or a
# callable(out_so_far) -> bool.
_TABLE = _TYPE_FIELDS


# --------------------------------------------------------------------------
# Money
# --------------------------------------------------------------------------


def usd_to_micros(usd: int | float) -> int:
    """Exact integer micro-dollars of ``usd`` as written, rounded half-even.

    A float is read as the shortest decimal that round-trips (``repr``), so
    ``0.1`` is exactly 100000 micro-dollars.
    """
    if type(usd) is int:
        return usd * 1_000_000
    try:
        sign, digits, exp = Decimal(repr(float(usd))).as_tuple()
    except InvalidOperation:  # pragma: no cover - guarded by validation
        raise ValueError(f"not a finite number: {usd!r}") from None
    if not isinstance(exp, int):  # nan/inf
        raise ValueError(f"not a finite number: {usd!r}")
    n = 0
    for dgt in digits:
        n = n * 10 + dgt
    e = exp + 6
    if e >= 0:
        n *= 10**e
    else:
        q, r = divmod(n, 10**-e)
        half = 5 * 10 ** (-e - 1)
        if r > half or (r == half and q & 1):
            q += 1
        n = q
    return -n if sign else n


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


def decode_event(raw: bytes | str) -> object:
    """Decode one raw event with orjson.

    More than :data:`MAX_EVENT_BYTES` bytes -> ``too_large``; invalid JSON
    or invalid UTF-8 -> ``malformed``. Returns whatever JSON value it holds
    (:func:`validate_event` checks that it is an object).
    """
    if isinstance(raw, str):
        n = len(raw)
        if n > MAX_EVENT_BYTES or (n * 4 > MAX_EVENT_BYTES and len(raw.encode("utf-8", "surrogatepass")) > MAX_EVENT_BYTES):
            raise EventRejected(
                "too_large", None, f"event is larger than {MAX_EVENT_BYTES} bytes"
            )
    elif len(raw) > MAX_EVENT_BYTES:
        raise EventRejected(
            "too_large", None, f"event is {len(raw)} bytes, more than {MAX_EVENT_BYTES}"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventRejected("malformed", None, f"event is not valid JSON: {exc}") from None
    except TypeError as exc:  # pragma: no cover - orjson raises JSONDecodeError for bad input types
        raise EventRejected("malformed", None, f"event is not valid JSON: {exc}") from None


def validate_event(obj: object, *, now_ms: int | None = None) -> dict:
    """Validate a decoded event and return its normalised form.

    Raises :class:`EventRejected` on the first failure, checking the
    envelope (``event_id, type, ts, org_id, campaign_id``) and then the
    type's fields in SPEC order. With ``now_ms`` (live mode), an otherwise
    valid event whose ``ts`` is more than :data:`FUTURE_TOLERANCE_MS` ahead of
    ``now_ms`` is rejected with code ``future``.
    """
    if not isinstance(obj, dict):
        raise EventRejected(
            "malformed", None, f"event must be a JSON object, got {_jtype(obj)}"
        )
    get = obj.get

    # -- envelope ------------------------------------------------------
    v = get("event_id")
    if v is None:
        raise _missing("event_id")
    event_id = v if (type(v) is str and _ID_OK(v) is not None) else _check_id(v, "event_id")

    etype = get("type")
    if etype is None:
        raise _missing("type")
    spec = _TABLE.get(etype) if type(etype) is str else None
    if spec is None:
        if not isinstance(etype, str):
            raise _bad_type("type", "a string", etype)
        spec = _TABLE.get(str(etype))
        if spec is None:
            raise EventRejected(
                "unknown_type", "type", f"field 'type' is not a known event type: {_show(etype)}"
            )
        etype = str(etype)

    v = get("ts")
    if v is None:
        raise _missing("ts")
    ts = v if (type(v) is int and 0 <= v <= MAX_TIME_MS) else parse_time(v, "ts")

    v = get("org_id")
    if v is None:
        raise _missing("org_id")
    org_id = v if (type(v) is str and v in _SEEN_IDS) else _check_id_cached(v, "org_id")

    v = get("campaign_id")
    if v is None:
        raise _missing("campaign_id")
    campaign_id = v if (type(v) is str and v in _SEEN_IDS) else _check_id_cached(v, "campaign_id")

    out = {
        "event_id": event_id,
        "type": etype,
        "ts": ts,
        "org_id": org_id,
        "campaign_id": campaign_id,
    }

    # -- type fields -----------------------------------------------------
    seen = _SEEN_IDS
    for name, check, required in spec:
        v = get(name)
        if v is None:
            if required is True or (required is not False and required(out)):
                raise _missing(name)
            continue
        if check is _ID and type(v) is str and v in seen:
            out[name] = v
        else:
            out[name] = check(v, name)

    if etype == "cost.incurred":
        out["usd_micros"] = usd_to_micros(out["usd"])

    # -- live mode -------------------------------------------------------
    if now_ms is not None and ts > now_ms + FUTURE_TOLERANCE_MS:
        raise EventRejected(
            "future",
            "ts",
            f"field 'ts' is {ts - now_ms} ms ahead of the clock "
            f"(more than {FUTURE_TOLERANCE_MS} ms in the future)",
        )
    return out


def parse_event(raw: bytes | str, *, now_ms: int | None = None) -> dict:
    """``validate_event(decode_event(raw), now_ms=now_ms)``."""
    return validate_event(decode_event(raw), now_ms=now_ms)


_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"


def split_body(body: bytes) -> list[bytes | object]:
    """Split an ingest body into events.

    * A body whose first non-blank byte is ``[`` and that parses as JSON is a
      JSON array: the decoded elements are returned (each then goes through
      :func:`validate_event`). An element whose compact JSON is larger than
      :data:`MAX_EVENT_BYTES` is returned re-serialised as ``bytes`` so that
      :func:`decode_event` rejects it as ``too_large``.
    * A body whose first non-blank byte is ``{`` and that parses as one JSON
      value (a pretty-printed single event) is returned as one raw line.
    * Anything else is NDJSON: the raw lines (``bytes``, surrounding
      whitespace stripped), blank lines skipped. A line that is not JSON
      fails on its own as ``malformed`` in :func:`decode_event`.

    A leading UTF-8 byte-order mark is ignored. A body over
    :data:`MAX_BODY_BYTES` or with more than :data:`MAX_BATCH_EVENTS` events
    raises ``EventRejected("too_large", None, ...)``.
    """
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    elif not isinstance(body, bytes):
        body = bytes(body)
    if len(body) > MAX_BODY_BYTES:
        raise EventRejected(
            "too_large", None, f"body is {len(body)} bytes, more than {MAX_BODY_BYTES}"
        )
    if body.startswith(_BOM):
        body = body[3:]
    stripped = body.strip(_WS)
    if not stripped:
        return []
    first = stripped[:1]
    if first == b"[":
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            items = None
        if isinstance(items, list):
            if len(items) > MAX_BATCH_EVENTS:
                raise _too_many(len(items))
            if len(stripped) > MAX_EVENT_BYTES:
                dumps = orjson.dumps
                for i, item in enumerate(items):
                    if isinstance(item, dict):
                        try:
                            enc = dumps(item)
                        except TypeError:  # pragma: no cover - decoded JSON always dumps
                            continue
                        if len(enc) > MAX_EVENT_BYTES:
                            items[i] = enc
            return items
    elif first == b"{" and b"\n" in stripped:
        try:
            orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            return [stripped]
    lines = [line for line in (raw.strip(_WS) for raw in stripped.split(b"\n")) if line]
    if len(lines) > MAX_BATCH_EVENTS:
        raise _too_many(len(lines))
    return lines


def _too_many(n: int) -> EventRejected:
    return EventRejected(
        "too_large", None, f"body holds {n} events, more than {MAX_BATCH_EVENTS}"
    )
