"""Per-key rate limits on ``POST /v1/events`` (issue #9; docs/operations.md), shared through Redis.

Two limits, each off unless set (`ApiSettings`, api/settings.py: the environment, or
`create_app(ingest_rate=..., ingest_event_rate=...)`):

- ``CALLPULSE_INGEST_RATE``: requests per API key, e.g. ``20/second`` or ``20/second;600/minute``;
- ``CALLPULSE_INGEST_EVENT_RATE``: events per API key (every item of a body counts, valid or not),
  e.g. ``50000/minute``.

The syntax is the `limits` package's (``N/second|minute|hour|day``, ``N per 10 seconds``, several
joined by ``;``). The counters live in Redis (keys ``callpulse:ratelimit:...``), so every API
process behind a load balancer shares them; the strategy is `limits`' sliding window counter (two
counters per key and window, the previous window weighted by its overlap: smooth, no burst at a
window edge, O(1) per request whatever its cost). A denied request consumes nothing of the limit
it failed; it answers 429 with ``Retry-After`` (whole seconds, at least 1) and a JSON body naming
the limit. A body with more events than the event limit allows in a whole window can never pass:
that is a 413 (send smaller batches), not a 429.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

from engine.storage.keys import PREFIX

OFF = ("", "0", "off", "none", "false", "no")


def parse_rate(text: str | None, setting: str = "rate limit") -> list[RateLimitItem]:
    """Parsed limits of a setting; [] when it is unset or off. ValueError naming ``setting`` for a bad string
    (one that `limits` cannot read, or a limit of 0: nothing would ever pass)."""
    if text is None or text.strip().lower() in OFF:
        return []
    try:
        items = parse_many(text.strip())
    except ValueError:
        raise ValueError(f"{setting}={text!r}: not a rate limit (e.g. 20/second, 20/second;600/minute, "
                         f"500 per 10 seconds; 0 or off: no limit)") from None
    for item in items:
        if item.amount < 1:
            raise ValueError(f"{setting}={text!r}: {describe(item)} admits nothing (off: 0, or leave it unset)")
    return items


def storage_uri(redis_url: str) -> str:
    """The `limits` async storage URI for a redis-py URL (password, db, TLS and query kept)."""
    for scheme in ("redis://", "rediss://", "unix://"):
        if redis_url.startswith(scheme):
            return ("async+redis+unix://" + redis_url[len("unix://"):] if scheme == "unix://"
                    else "async+" + redis_url)
    raise ValueError(f"rate limits need a redis://, rediss:// or unix:// URL, not {redis_url!r}")


def describe(item: RateLimitItem) -> str:
    """``100/second``, ``6000/minute``, ``500/10 seconds``: the way the setting is written."""
    mult = item.multiples
    unit = item.GRANULARITY.name
    return f"{item.amount}/{unit}" if mult == 1 else f"{item.amount}/{mult} {unit}s"


@dataclass(frozen=True)
class Denied:
    status: int  # 429, or 413 for a body that no window could ever admit
    scope: str  # "requests" | "events"
    limit: str  # e.g. "100/second"
    retry_after_s: int | None

    def body(self) -> dict:
        if self.status == 413:
            return {"detail": f"this body has more events than the key's event limit ({self.limit}) admits; "
                              f"send smaller batches", "scope": self.scope, "limit": self.limit}
        what = "requests" if self.scope == "requests" else "events"
        return {"detail": f"rate limit exceeded: at most {self.limit} {what} per API key on POST /v1/events; "
                          f"retry after {self.retry_after_s} s",
                "scope": self.scope, "limit": self.limit, "retry_after_s": self.retry_after_s}

    def headers(self) -> dict | None:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else None


class IngestLimits:
    """The two per-key limits of POST /v1/events; `enabled` is False when both are off."""

    def __init__(self, redis_url: str, *, requests: str | None = None, events: str | None = None):
        self.requests = parse_rate(requests, "CALLPULSE_INGEST_RATE")
        self.events = parse_rate(events, "CALLPULSE_INGEST_EVENT_RATE")
        self.enabled = bool(self.requests or self.events)
        self._uri = storage_uri(redis_url) if self.enabled else None
        self._limiter = None

    def bind(self, pool, *, cluster: bool = False) -> None:
        """Use the app's Redis connection pool (made in its lifespan, inside the server's event loop); on a
        Redis Cluster, the `limits` library's own cluster storage (its keys carry hash tags)."""
        if not self.enabled:
            return
        from limits.aio.storage import RedisClusterStorage, RedisStorage
        from limits.aio.strategies import SlidingWindowCounterRateLimiter

        if cluster:
            uri = "async+redis+cluster://" + self._uri.split("://", 1)[1].rsplit("/", 1)[0]
            storage = RedisClusterStorage(uri, implementation="redispy", key_prefix=f"{PREFIX}:ratelimit")
        else:
            storage = RedisStorage(self._uri, implementation="redispy", key_prefix=f"{PREFIX}:ratelimit",
                                   connection_pool=pool)
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def _hit(self, scope: str, items: list[RateLimitItem], key_id: str, cost: int) -> Denied | None:
        limiter = self._limiter
        for item in items:
            if cost > item.amount:
                return Denied(413, scope, describe(item), None)
            if not await limiter.hit(item, scope, key_id, cost=cost):
                stats = await limiter.get_window_stats(item, scope, key_id)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                return Denied(429, scope, describe(item), min(wait, item.get_expiry()))
        return None

    async def check_request(self, key_id: str) -> Denied | None:
        """Count one request of this key; a `Denied` when it is over the request limit."""
        return await self._hit("requests", self.requests, key_id, 1) if self.requests else None

    async def check_events(self, key_id: str, n: int) -> Denied | None:
        """Count ``n`` events of this key (n ≥ 1); a `Denied` when they are over the event limit."""
        return await self._hit("events", self.events, key_id, n) if self.events and n > 0 else None
