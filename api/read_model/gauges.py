"""The Redis reads behind the per-campaign Prometheus gauges (api/campaign_metrics.py), bounded per scrape.

- ``OrgDirectory``: the orgs that have campaigns, found by SCANning for the flow's org campaign sets
  (``org_campaigns_key``) a bounded number of keys per call: there is no org registry, and a full
  pass over a big keyspace (event-id claims live an hour) would be too much for one scrape;
- ``read_campaigns``: the stored ``/stats`` bodies of at most ``cap`` campaigns, in (org, campaign) order;
- ``read_flow_marks``: the flow status hash's ``tick_ms`` / ``write_ms`` (what /readyz's lag uses).
"""

from __future__ import annotations

from urllib.parse import unquote

import orjson

from api.read_model import dec
from engine.storage.keys import PREFIX, flow_status_key, org_campaigns_key, stats_key

_SET_PREFIX = org_campaigns_key("x")[:-len("{x}")]  # "callpulse:campaigns:"
_SCAN_COUNT = 1000


def _org_of(set_key: str) -> str | None:
    """The org id an org campaign set's key names (``key_part`` is %-escaping: reversible), or None."""
    if not (set_key.startswith(_SET_PREFIX + "{") and set_key.endswith("}")):
        return None
    org = unquote(set_key[len(_SET_PREFIX) + 1:-1])
    return org if org_campaigns_key(org) == set_key else None


class OrgDirectory:
    """Org ids with a campaign set, kept across calls; each call SCANs at most ``keys_per_call`` keys.

    An org found stays until a whole SCAN pass ends without it (its campaigns were removed)."""

    def __init__(self, keys_per_call: int = 100_000):
        self.keys_per_call = max(_SCAN_COUNT, keys_per_call)
        self.cursor = 0
        self.node = 0  # on a Redis Cluster: the index of the master being scanned (a pass covers every master)
        self.known: set[str] = set()
        self.this_pass: set[str] = set()

    async def orgs(self, r) -> list[str]:
        masters = r.get_primaries() if hasattr(r, "get_primaries") else [None]  # a cluster: every master
        for _ in range(self.keys_per_call // _SCAN_COUNT):
            node = masters[self.node % len(masters)]
            where = {} if node is None else {"target_nodes": node}
            cursor, keys = await r.scan(self.cursor, match=f"{PREFIX}:campaigns:*", count=_SCAN_COUNT, **where)
            self.cursor = cursor[node.name] if isinstance(cursor, dict) else cursor  # a cluster: by node name
            self.this_pass.update(o for k in keys if (o := _org_of(dec(k))) is not None)
            self.known |= self.this_pass
            if self.cursor == 0:
                self.node += 1
                if self.node >= len(masters):  # a whole pass: forget orgs whose set is gone
                    self.node = 0
                    self.known, self.this_pass = self.this_pass, set()
                    break
        return sorted(self.known)


async def read_campaigns(r, orgs: list[str], cap: int) -> tuple[int, list[dict]]:
    """(campaigns known, stored /stats bodies of the first ``cap`` in (org, campaign) order). With ``cap`` 0
    (the per-campaign gauges off) only the count is read: one SCARD per org."""
    if cap <= 0:
        pipe = r.pipeline(transaction=False)
        for org in orgs:
            pipe.scard(org_campaigns_key(org))
        return (sum(await pipe.execute()) if orgs else 0), []
    pipe = r.pipeline(transaction=False)
    for org in orgs:
        pipe.smembers(org_campaigns_key(org))
    pairs = sorted((org, dec(c)) for org, members in zip(orgs, await pipe.execute()) for c in members)
    if not pairs:
        return 0, []
    pipe = r.pipeline(transaction=False)
    for org, camp in pairs[:cap]:
        pipe.get(stats_key(org, camp))
    bodies = []
    for raw in await pipe.execute():
        if raw is not None:
            try:
                bodies.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
    return len(pairs), bodies


async def read_flow_marks(r) -> list[int]:
    """The flow's last source poll and last sink write (wall ms), those it has reported."""
    raw = await r.hmget(flow_status_key(), "tick_ms", "write_ms")
    return [int(v) for v in (dec(x) for x in raw if x is not None) if v.isdigit()]

