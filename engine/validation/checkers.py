"""Field checkers of the event validator: ``(value, field) -> normalised value``, or raise
`EventRejected` with the field's dotted path. The value is never None here (None means absent).

`api/event_schema.py` derives the OpenAPI event schema from these: the fixed checkers by identity and
the factories (`int_checker`, `enum_checker`, `string_checker`) from their closures (``lo``, ``hi``,
``listing``, ``limit``, ``nonempty``), so keep those names. Holds the bounded caches of ids and time
zones already seen valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from engine.timefmt import parse_time
from engine.validation.limits import (
    MAX_ID_CHARS,
    MAX_INT,
    MAX_RESULT_KEY_CHARS,
    MAX_RESULT_VALUE_CHARS,
    MAX_RESULTS,
    MAX_TIME_MS,
    MAX_TZ_CHARS,
    MAX_USD,
    MAX_VARIABLE_KEY_CHARS,
    MAX_VARIABLE_VALUE_CHARS,
    MAX_VARIABLES,
    STRING_LIMITS,
)
from engine.validation.rejection import bad_type, bad_value, missing_field, show_value, too_large

ID_OK = re.compile(r"[A-Za-z0-9_.:\-]{1,128}").fullmatch


def check_id(value: Any, field: str) -> str:
    if type(value) is str:
        if ID_OK(value) is not None:
            return value
    elif not isinstance(value, str):
        raise bad_type(field, "a string id", value)
    elif ID_OK(value) is not None:
        return str(value)
    if not value:
        raise bad_value(field, "must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise bad_value(field, f"must be at most {MAX_ID_CHARS} characters, got {len(value)}")
    raise bad_value(field, f"must use only the characters [A-Za-z0-9_.:-], got {show_value(value)}")


# Ids already seen valid (org, campaign, contact, attempt ... ids recur across
# events): a set lookup is cheaper than the regex. Bounded: cleared when full.
# event_id is unique per event and is not cached.
SEEN_IDS: set[str] = set()
_SEEN_IDS_MAX = 200_000


def check_id_cached(value: Any, field: str) -> str:
    value = check_id(value, field)
    if len(SEEN_IDS) >= _SEEN_IDS_MAX:
        SEEN_IDS.clear()
    SEEN_IDS.add(value)
    return value


def check_time(value: Any, field: str) -> int:
    if type(value) is int and 0 <= value <= MAX_TIME_MS:
        return value
    return parse_time(value, field)


def made_by(check: Callable, factory: str, **params: Any) -> Any:
    """Label a checker with the factory and parameters that made it (``check.made_by``): the OpenAPI event
    schemas are derived from them (api/event_schema.py), whether this module runs compiled or not."""
    check.made_by = (factory, params)  # type: ignore[attr-defined]
    return check


def int_checker(lo: int, hi: int = MAX_INT) -> Callable[[Any, str], int]:
    def check(value: Any, field: str) -> int:
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad_type(field, "an integer", value)
            value = int(value)
        if lo <= value <= hi:
            return value
        if hi == MAX_INT:
            raise bad_value(field, f"must be an integer >= {lo}, got {value}")
        raise bad_value(field, f"must be an integer in {lo}..{hi}, got {value}")

    return made_by(check, "int_checker", lo=lo, hi=hi)


def check_number(value: Any, field: str) -> int | float:
    t = type(value)
    if t is int:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        raise bad_value(field, "must be a finite number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_type(field, "a number", value)
    return check_number(int(value) if isinstance(value, int) else float(value), field)


def check_ceiling(value: Any, field: str) -> int | float:
    value = check_number(value, field)
    if 0 <= value < 1:
        return value
    raise bad_value(field, f"must be a number with 0 <= value < 1, got {value!r}")


def check_unit_open(value: Any, field: str) -> int | float:
    """A number strictly between 0 and 1 (the spam-complaint ceiling and warning rates)."""
    value = check_number(value, field)
    if 0 < value < 1:
        return value
    raise bad_value(field, f"must be a number with 0 < value < 1, got {value!r}")


def check_usd(value: Any, field: str) -> int | float:
    value = check_number(value, field)
    if 0 <= value <= MAX_USD:
        return value
    if value < 0:
        raise bad_value(field, f"must be a number >= 0, got {value!r}")
    raise bad_value(field, f"must be at most {MAX_USD}, got {value!r}")


def check_bool(value: Any, field: str) -> bool:
    if value is True or value is False:
        return value
    raise bad_type(field, "a boolean", value)


def enum_checker(allowed: tuple[str, ...]) -> Callable[[Any, str], str]:
    allowed_set = frozenset(allowed)
    listing = "|".join(allowed)

    def check(value: Any, field: str) -> str:
        if type(value) is str and value in allowed_set:
            return value
        if not isinstance(value, str):
            raise bad_type(field, f"a string ({listing})", value)
        if value in allowed_set:
            return str(value)
        raise bad_value(field, f"must be one of {listing}, got {show_value(value)}")

    return made_by(check, "enum_checker", listing=listing)


def string_checker(limit: int, *, nonempty: bool = False) -> Callable[[Any, str], str]:
    def check(value: Any, field: str) -> str:
        if type(value) is not str:
            if not isinstance(value, str):
                raise bad_type(field, "a string", value)
            value = str(value)
        n = len(value)
        if n > limit:
            raise too_large(field, f"must be at most {limit} characters, got {n}")
        if nonempty and n == 0:
            raise bad_value(field, "must not be empty")
        return value

    return made_by(check, "string_checker", limit=limit, nonempty=nonempty)


_check_email_len = string_checker(STRING_LIMITS["email"])


def check_email(value: Any, field: str) -> str:
    value = _check_email_len(value, field)
    at = value.find("@")
    if at <= 0 or at == len(value) - 1 or value.find("@", at + 1) != -1:
        raise bad_value(field, "must be an e-mail address with one '@' and text on both sides, "
                               f"got {show_value(value)}")
    return value


def check_config(value: Any, field: str) -> dict:
    if isinstance(value, dict):
        return value
    raise bad_type(field, "an object", value)


HHMM = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]").fullmatch

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


def _check_hhmm(value: dict, field: str, part: str, matches=HHMM, what: str = "HH 00-23 and MM 00-59") -> str:
    """``value[part]``: a present "HH:MM" string that ``matches`` (a time of day of a window or of calling hours)."""
    sub = f"{field}.{part}"
    v = value.get(part)
    if v is None:
        raise missing_field(sub)
    if not isinstance(v, str):
        raise bad_type(sub, 'a string "HH:MM"', v)
    if matches(v) is None:
        raise bad_value(sub, f'must be "HH:MM" with {what}, got {show_value(v)}')
    return str(v)


def check_time_window(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise bad_type(field, 'an object {"start":"HH:MM","end":"HH:MM","tz"?}', value)
    out = {part: _check_hhmm(value, field, part) for part in ("start", "end")}
    if out["start"] == out["end"]:
        raise bad_value(f"{field}.end", "must differ from start (start = end is not a valid window)")
    tz = value.get("tz")
    if tz is not None:
        out["tz"] = check_tz(tz, f"{field}.tz")
    return out


HHMM_END = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00").fullmatch
CALLING_HOURS_KEYS = ("start", "end")


def check_calling_hours(value: Any, field: str) -> dict:
    """``{start:"HH:MM", end:"HH:MM"}``, exactly these two keys; ``end`` may be ``24:00``; start < end
    (the hours of one local day: no span over midnight). Checked: start, end, then any other key (in code
    point order, so the reported field does not depend on the JSON's key order), then start < end."""
    if not isinstance(value, dict):
        raise bad_type(field, 'an object {"start":"HH:MM","end":"HH:MM"}', value)
    out = {"start": _check_hhmm(value, field, "start"),
           "end": _check_hhmm(value, field, "end", HHMM_END, "HH 00-23 and MM 00-59, or 24:00")}
    extra = sorted(str(k) for k in value if k not in CALLING_HOURS_KEYS)
    if extra:
        raise bad_value(f"{field}.{extra[0]}", f"is not allowed: {field} takes exactly the keys start and end")
    if out["start"] >= out["end"]:
        raise bad_value(f"{field}.end", f"must be later than start ({out['start']}): calling hours lie within "
                                         "one local day and do not span midnight")
    return out


def check_tz(value: Any, field: str) -> str:
    """An IANA time zone name the zone database knows (at most MAX_TZ_CHARS characters)."""
    if not isinstance(value, str):
        raise bad_type(field, "a string (IANA time zone name)", value)
    if len(value) > MAX_TZ_CHARS:
        raise too_large(field, f"must be at most {MAX_TZ_CHARS} characters, got {len(value)}")
    if not _tz_valid(value):
        raise bad_value(field, f"must be an IANA time zone name the zone database knows, got {show_value(value)}")
    return str(value)


def _check_scalar(v: Any, sub: str, max_chars: int) -> None:
    """Slow path for a flat-object value: raise unless ``v`` is a scalar."""
    if isinstance(v, str):
        if len(v) > max_chars:
            raise too_large(sub, f"must be at most {max_chars} characters, got {len(v)}")
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise bad_value(sub, "must be a finite number")
    elif not (v is None or isinstance(v, int)):  # int covers bool
        raise bad_type(sub, "a string, number, boolean or null", v)


def check_variables(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise bad_type(field, "an object", value)
    if len(value) > MAX_VARIABLES:
        raise too_large(field, f"must have at most {MAX_VARIABLES} keys, got {len(value)}")
    for k, v in value.items():
        if type(k) is not str or not 0 < len(k) <= MAX_VARIABLE_KEY_CHARS:
            sub = f"{field}.{k}"
            if not isinstance(k, str):
                raise bad_type(sub, "keyed by strings", k)
            if not k:
                raise bad_value(sub, "has an empty key")
            if len(k) > MAX_VARIABLE_KEY_CHARS:
                raise too_large(sub, f"key must be at most {MAX_VARIABLE_KEY_CHARS} characters, got {len(k)}")
        t = type(v)
        if t is str:
            if len(v) <= MAX_VARIABLE_VALUE_CHARS:
                continue
        elif t is int or t is bool or v is None or (t is float and v - v == 0.0):
            continue
        _check_scalar(v, f"{field}.{k}", MAX_VARIABLE_VALUE_CHARS)
    return value


def check_results(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise bad_type(field, 'an object {"<metric>.<criterion>": scalar}', value)
    if len(value) > MAX_RESULTS:
        raise too_large(field, f"must have at most {MAX_RESULTS} keys, got {len(value)}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise bad_type(f"{field}.{k}", "keyed by strings", k)
        dot = k.find(".")
        if dot <= 0 or dot == len(k) - 1 or len(k) > MAX_RESULT_KEY_CHARS:
            sub = f"{field}.{k}"
            if len(k) > MAX_RESULT_KEY_CHARS:
                raise too_large(sub, f"key must be at most {MAX_RESULT_KEY_CHARS} characters, got {len(k)}")
            raise bad_value(sub, 'key must look like "<metric>.<criterion>"')
        t = type(v)
        if t is str:
            if len(v) <= MAX_RESULT_VALUE_CHARS:
                continue
        elif t is int or t is bool or v is None or (t is float and v - v == 0.0):
            continue
        _check_scalar(v, f"{field}.{k}", MAX_RESULT_VALUE_CHARS)
    return value


def clear_checker_caches() -> None:
    """Forget the ids and time zones seen valid."""
    SEEN_IDS.clear()
    _TZ_CACHE.clear()
