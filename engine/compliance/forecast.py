"""Abandon forecast and pacing (SPEC §3 *Abandon forecast and pacing*), in exact arithmetic.

With ceiling c = p/q, window counts (A, H), the trailing 15-minute trend (a, h) over a span of
T = T_ms/1000 seconds (T_ms an integer: timestamps are whole ms) and min_sample m, the trend is
extrapolated linearly: A(t) = A + a·t/T, H(t) = H + h·t/T, and t* is when the level's own rule first
judges a breach: A(t) > c·max(H(t), m). A window at `breach` gives t* = 0. Otherwise there is no t*
while the campaign is not `active` or the trend holds fewer than 10 human answers. Else, in ms:

  H < m:  t₁ = (m − H)·T/h; t* = max(0, (c·m − A)·T/a) when a > 0 and that is ≤ t₁,
          otherwise (p·H − A·q)·T/D when D = a·q − p·h > 0 (the sign of α − c·η), otherwise none;
  H ≥ m:  t* = (p·H − A·q)·T/D when D > 0, otherwise none;

and none when the trend's answers by then, h·t*/T, exceed pacing's expected human answers E (the
campaign runs out of answers first). t* is returned in milliseconds as an exact fraction (numerator,
denominator), so `breach_in_s` is one correctly rounded division and `breach_at` = now + ⌈t*_ms⌉ is
exact.
"""

from __future__ import annotations

from fractions import Fraction

from engine.vocab import FORECAST_WINDOWS  # noqa: F401  (re-exported: engine.compliance.forecast.FORECAST_WINDOWS)

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


MIN_TREND_ANSWERS = 10  # a trend of fewer human answers is too thin to extrapolate


def breach_time_ms(in_breach: bool, A: int, H: int, a: int, h: int, t_ms: int,
                   ceiling: Fraction, min_sample: int, active: bool = True,
                   expected: int | None = None) -> tuple[int, int] | None:
    """t* in ms as (numerator, denominator > 0), or None when no breach is forecast. ``expected``: pacing's
    E (None: no limit)."""
    if in_breach:
        return 0, 1
    if not active or h < MIN_TREND_ANSWERS:
        return None
    p, q = ceiling.numerator, ceiling.denominator
    slope = a * q - p * h  # D: > 0 when the trend's own rate is above the ceiling
    t = None
    if min_sample > H:
        t1 = Fraction((min_sample - H) * t_ms, h)
        if a > 0:
            x = max(Fraction(0), Fraction((p * min_sample - A * q) * t_ms, q * a))
            if x <= t1:
                t = x
        if t is None and slope > 0:
            t = Fraction((p * H - A * q) * t_ms, slope)
    elif slope > 0:
        t = Fraction((p * H - A * q) * t_ms, slope)
    if t is None:
        return None
    if expected is not None and h * t > expected * t_ms:
        return None  # η·t* > E: the answers run out before the breach
    return t.numerator, t.denominator


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


def expected_answers(open_contacts: int, final_contacts: int, final_human: int) -> int:
    """E = ⌊O × F_h ÷ F⌋: the open contacts times the human answers a finished contact took (0 when no
    contact is final)."""
    return open_contacts * final_human // final_contacts if final_contacts else 0


def pacing(remaining_dials: int, expected: int, A: int, H: int, ceiling: Fraction) -> dict:
    """The abandon budget for the rest of the campaign (30-day counts A, H; E = ``expected``)."""
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
