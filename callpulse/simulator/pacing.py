"""Emit a simulated stream at (a multiple of) the speed of its own clock.

Kept out of the generator so the generator stays pure and deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator


def parse_speed(text: str) -> float | None:
    """`max` -> None (no pacing), `realtime` -> 1.0, else a positive factor (`10` = 10x)."""
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    factor = float(text)
    if not factor > 0:
        raise ValueError("speed factor must be > 0")
    return factor


def paced(items: Iterable, factor: float, start_ms: int, *,
          before_sleep: Callable[[], None] | None = None,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator:
    """Yield each item once `(ts - start_ms) / factor` has elapsed since the first.

    `before_sleep` runs before every wait (the Redis writer flushes its
    pipeline there, so events never sit in a buffer while time passes).
    Raw-string items (malformed lines) go out with the previous item's time.
    """
    wall0 = clock()
    ts = start_ms
    for item in items:
        if isinstance(item, dict) and type(item.get("ts")) is int:
            ts = item["ts"]
        wait = wall0 + (ts - start_ms) / 1000 / factor - clock()
        if wait > 0.001:
            if before_sleep is not None:
                before_sleep()
            sleep(wait)
        yield item
