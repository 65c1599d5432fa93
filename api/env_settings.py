"""Settings the API reads from the environment at start: a malformed one is a ValueError naming it.

create_app reads them all before it returns (nothing is parsed later, in the server's lifespan, where an error
would be a traceback), so `callpulse api` turns a bad value into one line and exit status 2.
"""

from __future__ import annotations

import math
import os


def env_number(name: str, default: float, *, kind: type = float, minimum: float | None = None,
               what: str = "a number") -> float:
    """The number ``name`` holds (``default`` when unset or blank); ValueError naming the setting otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not {what} (default {default})") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={raw!r}: not {what} (default {default})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={raw!r}: at least {minimum} (default {default})")
    return value


def check_redis_url(url: str) -> None:
    """ValueError for a URL redis-py cannot use (``CALLPULSE_REDIS_URL``): said at start, not on first use."""
    from redis.connection import parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        raise ValueError(f"Redis URL {url!r} (CALLPULSE_REDIS_URL): {exc}") from None
