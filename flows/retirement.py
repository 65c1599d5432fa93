"""Campaigns that are over leave the flow: their compact state goes to Redis, and comes back on demand.

A campaign whose status is completed, stopped or cancelled and which has had
no event for ``--retire-after-ms`` (wall clock) is *retired* by its step
(`flows.campaign_step.CampaignLogic`): its final body and detail records
(contacts, attempts, email messages and their indexes, engine/storage/keys.py) are
already in Redis — a campaign with changes not yet written is not retired —
and stay there; its state (with its gate and frame sequence) is written to
``callpulse:archive:{org:campaign}`` — synchronously, before the step forgets
the campaign — and the step then discards it, so it leaves memory, every later
recovery snapshot and the heartbeat schedule. An event that arrives for it
later finds no state in its step; the step then reads the archive and carries
on from it exactly as if the campaign had never left (the archive is kept:
until the revived state is in a committed snapshot it is the only copy).

The archive is written like a recovery snapshot, in the recovery format (frozen chunks are named, and
live in the recovery directory's chunk store), so it belongs to the recovery
directory and the Redis dataset together (docs/operations.md).

A retired campaign also keeps its minute history (``callpulse:history:{org:campaign}``: its last day of
points, trimmed by minutes of event time, not by the wall clock) and its last follow-ups view
(``callpulse:followups:{org:campaign}``). Neither is in the archive: a revived campaign derives its
follow-up schedule from the archived contact columns (engine.state.followups) and writes the view and the
point of its minute with its first frame.
"""

from __future__ import annotations

import sys

import redis

from engine.storage.keys import archive_key
from engine.storage.recovery_format import decode, encode
from flows.patience import Patience, PatienceSettings
from flows.redis_connect import connect

RETIRING_STATUSES = frozenset({"completed", "stopped", "cancelled"})


_ARCHIVES: dict[tuple[str, object], Archive] = {}


def archive_for(cfg, store=None) -> Archive:
    """One archive (and so one Redis connection pool) per Redis URL and chunk store per process: every
    campaign step shares it (a client per campaign would open a connection per campaign ever retired
    or revived). ``cfg``: the flow's `FlowConfig` (its Redis URL, cluster setting and patience)."""
    key = (cfg.redis_url, store)
    if key not in _ARCHIVES:
        _ARCHIVES[key] = Archive(cfg.redis_url, store, cluster=cfg.redis_cluster, patience=cfg.patience)
    return _ARCHIVES[key]


class Archive:
    def __init__(self, redis_url: str, store=None, *, cluster: bool | None = None,
                 patience: PatienceSettings = PatienceSettings()):
        self.redis_url = redis_url
        self.cluster = cluster  # CALLPULSE_REDIS_CLUSTER as the flow's settings read it (None: ask Redis)
        self.store = store  # flows.chunk_store.ChunkStore, or None (pieces written inline)
        self._client = None
        self.patience = Patience("campaign archive", patience)

    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.redis_url, cluster=self.cluster)
        return self._client

    def save(self, org: str, camp: str, value: tuple) -> bool:
        """Write the archive; False (and the campaign stays) when Redis cannot take it now."""
        data = self.store.dumps(value) if self.store is not None else encode(value)
        try:
            self.client.set(archive_key(org, camp), data)
            return True
        except redis.RedisError as exc:
            print(f"callpulse flow: could not archive campaign {org}/{camp} ({exc}); keeping it",
                  file=sys.stderr, flush=True)
            return False

    def load(self, org: str, camp: str):
        """The archived value of a campaign, or None. While Redis is unreachable it waits
        (flows/patience.py): the step must not start a campaign from nothing while its archive may exist."""
        data = self.patience.call(self.client.get, archive_key(org, camp))
        if data is None:
            return None
        return self.store.loads(data) if self.store is not None else decode(data)
