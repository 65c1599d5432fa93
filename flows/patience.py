"""Ride out a Redis outage of any length: retry with capped exponential back-off.

Used by the flow's sink (every write is idempotent, so a retried batch is harmless) and by
`callpulse simulate --redis`. Settings (`PatienceSettings`; the environment is read by the process's settings
object, flows/config.py or callpulse/settings.py, which hands them over):

- ``CALLPULSE_RETRY_MAX_DELAY_S`` (default 5): the back-off cap, i.e. how long after Redis is
  back the writer notices at worst;
- ``CALLPULSE_OUTAGE_NOTICE_S`` (default 60): after this long the outage is logged as such
  (the old sink gave up at this point; now it only says so, and keeps waiting);
- ``CALLPULSE_GIVE_UP_S`` (default 0 = never): give up and raise after this long, for
  deployments that prefer a supervisor restart to waiting in place.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

# Redis out of memory (`maxmemory` reached, writes refused) is waited out too: an operator frees memory or
# raises the limit, and the writes (idempotent) go through then. Crashing would only restart into the same wall.
OUT_OF_MEMORY = redis.exceptions.OutOfMemoryError
# A Redis Cluster failing over: slots without a master for a few seconds (CLUSTERDOWN, TRYAGAIN, MASTERDOWN).
FAILOVER = (redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError, redis.exceptions.MasterDownError,
            redis.exceptions.ClusterError)
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError, OUT_OF_MEMORY, *FAILOVER)


@dataclass(frozen=True)
class PatienceSettings:
    max_delay_s: float = 5.0  # CALLPULSE_RETRY_MAX_DELAY_S
    notice_s: float = 60.0  # CALLPULSE_OUTAGE_NOTICE_S
    give_up_s: float = 0.0  # CALLPULSE_GIVE_UP_S (0: never)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> PatienceSettings:
        """The settings an environment (as a mapping, given by the caller) holds; a malformed value is the
        default, as it always was (the writers must keep waiting, not stop on a typo)."""
        d = cls()
        return cls(max_delay_s=_number(env, "CALLPULSE_RETRY_MAX_DELAY_S", d.max_delay_s),
                   notice_s=_number(env, "CALLPULSE_OUTAGE_NOTICE_S", d.notice_s),
                   give_up_s=_number(env, "CALLPULSE_GIVE_UP_S", d.give_up_s))


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        return default


class Patience:
    def __init__(self, who: str, settings: PatienceSettings = PatienceSettings()):
        self.who = who
        self.max_delay_s = settings.max_delay_s
        self.notice_s = settings.notice_s
        self.give_up_s = settings.give_up_s
        self.outages = 0  # outages survived
        self.last_outage_ms = 0  # length of the last one
        self.reconnected = False  # set after an outage; the caller clears it (e.g. to re-check the dataset)

    def call(self, fn, *args):
        """``fn(*args)``, retried while Redis is unreachable."""
        start = 0.0
        delay = 0.1
        noticed = False
        while True:
            try:
                out = fn(*args)
            except TRANSIENT as exc:
                now = time.monotonic()
                if not start:
                    start = now
                    if isinstance(exc, OUT_OF_MEMORY):
                        self._log(f"Redis is out of memory ({exc}); waiting, writes are retried: free memory "
                                  f"or raise maxmemory (docs/operations.md)")
                    else:
                        self._log(f"Redis unreachable ({exc}); retrying")
                waited = now - start
                if self.give_up_s and waited >= self.give_up_s:
                    self._log(f"Redis unreachable for {waited:.0f} s; giving up (CALLPULSE_GIVE_UP_S)")
                    raise
                if not noticed and waited >= self.notice_s:
                    noticed = True
                    self._log(f"Redis outage: unreachable for {waited:.0f} s; waiting for it "
                              f"(retry every {self.max_delay_s:g} s at most)")
                time.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
                continue
            if start:
                self.outages += 1
                self.last_outage_ms = int((time.monotonic() - start) * 1000)
                self.reconnected = True
                self._log(f"Redis reachable again after {self.last_outage_ms / 1000:.1f} s; resuming")
            return out

    def _log(self, text: str) -> None:
        print(f"callpulse: {self.who}: {text}", file=sys.stderr, flush=True)
