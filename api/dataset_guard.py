"""Refuse to serve a wiped or replaced dataset (flows/dataset.py): `/readyz` and `/v1` answer 503.

The verdict is cached for a second per process (one pipelined round trip), so the guard costs
nothing measurable per request. Not ready when:
- ``callpulse:dataset`` is missing: Redis lost its data (or nothing was ever set up: no flow
  started, no key created);
- the flow recorded a ``dataset_error`` (it refused to write);
- the flow reports working on a dataset other than the one Redis holds.
"""

from __future__ import annotations

import time

from engine.storage.keys import flow_status_key
from flows.dataset import DATASET_KEY

CACHE_S = 1.0


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


class DatasetGuard:
    def __init__(self):
        self.checked_at = 0.0
        self.reason: str | None = None

    async def problem(self, redis) -> str | None:
        """None when the dataset is whole, else the reason (Redis errors propagate: 503 upstream)."""
        now = time.monotonic()
        if now - self.checked_at < CACHE_S:
            return self.reason
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(DATASET_KEY)
            pipe.hmget(flow_status_key(), "dataset", "dataset_error")
            found, (flow_ds, error) = await pipe.execute()
        found, flow_ds, error = _s(found), _s(flow_ds), _s(error)
        if error:
            reason = f"dataset lost: {error}"
        elif found is None:
            reason = (f"dataset lost: Redis holds no callpulse dataset ({DATASET_KEY} is missing): its data was "
                      f"lost (restarted without persistence?) or nothing was set up yet; see docs/operations.md")
        elif flow_ds and flow_ds != found:
            reason = f"dataset changed: the flow works on {flow_ds}, Redis holds {found}; see docs/operations.md"
        else:
            reason = None
        self.reason, self.checked_at = reason, now
        return reason
