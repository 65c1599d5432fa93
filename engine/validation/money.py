"""Money: exact integer micro-dollars of a ``usd`` amount as written."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


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
