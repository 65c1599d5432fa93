"""Abandon forecast and pacing (SPEC §3 *Abandon forecast and pacing*), in exact integer arithmetic.

With ceiling c = p/q, window counts (A, H), the trailing 15-minute trend (a, h) over a span of
T = T_ms/1000 seconds (T_ms an integer: timestamps are whole ms) and min_sample m, the trend is
extrapolated linearly: A(t) = A + a·t/T, H(t) = H + h·t/T. With D = a·q − p·h (the sign of
α − c·η) every comparison is cross-multiplied into integers:

  t₁ = 0 when H ≥ m, else (m − H)·T/h (no t* when h = 0);
  f(t₁) > 0 ⇔ (A·q − p·H)·h + D·(m − H) > 0   (H < m; when H ≥ m: A·q − p·H > 0);
  root  = (c·H − A)/(α − c·η) = (p·H − A·q)·T/D  (when D > 0).

t* is returned in milliseconds as an exact fraction (numerator, denominator), so `breach_in_s` is
one correctly rounded division and `breach_at` = now + ⌈t*_ms⌉ is exact.
"""

from __future__ import annotations

from fractions import Fraction

from engine.vocab import FORECAST_WINDOWS  # noqa: F401  (re-exported: engine.forecast.FORECAST_WINDOWS)

TREND_WINDOW_MS = 900_000  # the trailing window of the trend (1 s grid)
ARM_S = 900  # a forecast alert fires when breach_in_s first becomes ≤ 15 min ...
REARM_S = 1800  # ... and re-arms once it is null or > 30 min
HORIZON_MS = 86_400_000  # `30d`: a breach more than 24 h ahead is not forecast


def span_ms(now: int, first_dial: int | None) -> int:
    """T of the trend in ms: min(900 s, max(1 s, now − first_dial_ts)); 1 s before any dial
    (the same divisor as the live rates, SPEC §2)."""
    if first_dial is None:
        return 1000
    return min(TREND_WINDOW_MS, max(1000, now - first_dial))


def breach_time_ms(in_breach: bool, A: int, H: int, a: int, h: int, t_ms: int,
                   ceiling: Fraction, min_sample: int) -> tuple[int, int] | None:
    """t* in ms as (numerator, denominator > 0), or None when the trend never breaches."""
    if in_breach:
        return 0, 1
    p, q = ceiling.numerator, ceiling.denominator
    over_now = A * q - p * H  # > 0: the rate is above the ceiling now
    slope = a * q - p * h  # D: > 0 when the trend's own rate is above the ceiling
    if min_sample <= H:
        if over_now > 0:
            return 0, 1
    else:
        if h == 0:
            return None  # the sample never reaches min_sample at this trend
        if over_now * h + slope * (min_sample - H) > 0:
            return (min_sample - H) * t_ms, h  # t₁: over the ceiling when the sample is reached
    if slope > 0:
        return -over_now * t_ms, slope
    return None


def within_horizon(window: str, t_star: tuple[int, int] | None, now: int, day_end: int | None):
    """t* when its `breach_at` is inside the window's horizon, else None: `today` ends at the next
    local midnight (``day_end``), `30d` looks 24 h ahead."""
    if t_star is None:
        return None
    at = breach_at(t_star, now)
    if window == "today":
        if day_end is not None and at >= day_end:
            return None
    elif at - now > HORIZON_MS:
        return None
    return t_star


def breach_at(t_star: tuple[int, int], now: int) -> int:
    num, den = t_star
    return now + -(-num // den)


def breach_in_s(t_star: tuple[int, int]) -> float:
    num, den = t_star
    return num / (1000 * den)


def pacing(remaining_dials: int, human_lifetime: int, ended_lifetime: int,
           A: int, H: int, ceiling: Fraction) -> dict:
    """The abandon budget for the rest of the campaign (30-day counts A, H)."""
    expected = remaining_dials * human_lifetime // ended_lifetime if ended_lifetime else 0
    p, q = ceiling.numerator, ceiling.denominator
    allowed = min(expected, max(0, (p * (H + expected) - A * q) // q))
    return {
        "remaining_dials": remaining_dials,
        "expected_human_answers": expected,
        "allowed_abandons": allowed,
        "max_abandon_rate": allowed / expected if expected else None,
    }


class ForecastAlarm:
    """Arming of one window's forecast alert, plus the count of alerts it raised (for stable ids)."""

    __slots__ = ("armed", "fired")

    def __init__(self):
        self.armed = True
        self.fired = 0

    def update(self, t_star: tuple[int, int] | None, in_breach: bool) -> bool:
        """True when this forecast (t* in ms, exact; None: no breach forecast) raises an alert."""
        if t_star is None or t_star[0] > REARM_S * 1000 * t_star[1]:
            self.armed = True
            return False
        if self.armed and t_star[0] <= ARM_S * 1000 * t_star[1] and not in_breach:
            self.armed = False
            self.fired += 1
            return True
        return False

    def __getstate__(self):
        return self.armed, self.fired

    def __setstate__(self, state):
        self.armed, self.fired = state
