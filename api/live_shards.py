"""The live hub on a Redis Cluster: sharded pub/sub, subscribed only for what this process's clients follow.

On a cluster the flow ``SPUBLISH``es each frame and alert on its campaign's channel
(`engine.storage.keys.live_campaign_channel`, in the campaign's slot) and again on its org's
(`engine.storage.keys.live_org_channel`, in the org's slot: frames for ``/v1/live``, alerts for ``/v1/alerts``),
so a message goes to one shard, not to every node (flows/redis_sink.py). `ShardedLiveHub` keeps the
fan-out of `api.live.LiveHub` and replaces its one global subscription:

- a channel is ``SSUBSCRIBE``d when the first local subscriber of its campaign (or of its org's feeds)
  arrives, and ``SUNSUBSCRIBE``d once the last has left; one pub/sub connection per master that owns
  such a channel (`_Link`, with a reader task of its own), which never reconnects silently;
- `wait_live` returns once Redis has confirmed the ``SSUBSCRIBE``: the SSE bodies read their history
  only after it (api/live_streams.py), so nothing published in between is missed;
- a lost link (its master died: a failover) or a channel the server unsubscribed (its slot moved)
  closes the subscribers of its channels, as a lost subscription does on a standalone Redis: each
  client reconnects and resumes from the Redis streams with its ``Last-Event-ID``. The slot map is
  then refreshed and what is still wanted is subscribed again on the slot's (new) master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from api.live import LiveHub
from engine.storage.keys import live_campaign_channel, live_org_channel

log = logging.getLogger("callpulse.api.live")

_NODE_ONLY = ("oss_cluster_maint_notifications_handler", "maint_notifications_config")


class _Channel:
    """A sharded channel some local subscriber needs: a campaign's (``camp``) or an org's (``camp`` None)."""

    __slots__ = ("name", "org", "camp", "link", "ready")

    def __init__(self, name: bytes, org: str, camp: str | None):
        self.name, self.org, self.camp = name, org, camp
        self.link: _Link | None = None
        self.ready = asyncio.Event()  # Redis confirmed the SSUBSCRIBE


class _Link:
    """One pub/sub connection to one master, the channels subscribed on it, and its reader."""

    def __init__(self, node):
        kwargs = {k: v for k, v in node.connection_kwargs.items() if k not in _NODE_ONLY}
        # no retry: a broken connection must surface (a silent reconnect would lose messages unnoticed)
        kwargs.update(retry=Retry(NoBackoff(), 0), health_check_interval=30, socket_keepalive=True)
        self.name = node.name
        self.client = aioredis.Redis(connection_pool=aioredis.ConnectionPool(
            connection_class=node.connection_class, max_connections=2, **kwargs))
        self.pubsub = self.client.pubsub()
        self.channels: dict[bytes, _Channel] = {}
        self.confirming: Counter[bytes] = Counter()  # SSUBSCRIBE replies still to come
        self.leaving: Counter[bytes] = Counter()  # SUNSUBSCRIBE replies still to come
        self.task: asyncio.Task | None = None

    async def close(self) -> None:
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()


def _count_down(counts: Counter, name: bytes) -> bool:
    """One expected reply has come: False when none was expected (no zero counts are kept)."""
    n = counts.get(name, 0)
    if n <= 0:
        return False
    if n == 1:
        del counts[name]
    else:
        counts[name] = n - 1
    return True


class ShardedLiveHub(LiveHub):
    """`LiveHub` on a Redis Cluster (``pubsub_redis``: an asyncio `RedisCluster`, for its slot map)."""

    def __init__(self, redis, *, pubsub_redis, join_timeout_s: float = 5.0, **kwargs):
        super().__init__(redis, pubsub_redis=pubsub_redis, **kwargs)
        self.join_timeout_s = join_timeout_s
        self.channels: dict[bytes, _Channel] = {}  # wanted (or still to be unsubscribed)
        self.links: dict[str, _Link] = {}  # node name -> its link
        self.changed = asyncio.Event()
        self.stale_map = False
        self.lost = 0  # channels lost to a failover or a slot move

    # ---------------------------------------------------------------- who needs what
    @staticmethod
    def channel_name(org: str, camp: str | None = None) -> bytes:
        return (live_campaign_channel(org, camp) if camp is not None else live_org_channel(org)).encode()

    def _wanted(self, ch: _Channel) -> bool:
        if ch.camp is not None:
            return (ch.org, ch.camp) in self.campaign_subs
        return ch.org in self.org_feeds or ch.org in self.summaries.subs

    def _interest(self, org: str, camp: str | None = None) -> None:
        name = self.channel_name(org, camp)
        if name not in self.channels:
            ch = _Channel(name, org, camp)
            if not self._wanted(ch):
                return
            self.channels[name] = ch
        self.changed.set()  # subscribe it, or unsubscribe it if nobody needs it any more

    async def wait_live(self, org: str, camp: str | None = None) -> bool:
        ch = self.channels.get(self.channel_name(org, camp))
        if ch is None:
            return False
        try:
            await asyncio.wait_for(ch.ready.wait(), timeout=self.join_timeout_s)
        except TimeoutError:
            log.warning("live: channel %s not subscribed within %.0f s", ch.name.decode(), self.join_timeout_s)
            return False
        return True

    def subscribed(self) -> set[str]:
        """The sharded channels this process holds (confirmed)."""
        return {ch.name.decode() for ch in list(self.channels.values()) if ch.link is not None and ch.ready.is_set()}

    # ---------------------------------------------------------------- lifecycle
    async def run(self) -> None:
        backoff = 0.1
        self.changed.set()
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                if not self.ready.is_set():
                    await self.pubsub_redis.initialize()  # the slot map
                    self.ready.set()
                elif self.stale_map:  # after a failover or a slot move: the slots' masters now
                    await self.pubsub_redis.nodes_manager.initialize()
                self.stale_map = False
                await self._reconcile()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a master down (failover under way), the slot map stale: try again
                log.warning("live: sharded subscriptions not in place (%s); retrying", exc)
                self.stale_map = True
                self.changed.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def stop(self) -> None:
        await super().stop()
        for link in list(self.links.values()):
            await link.close()
        self.links.clear()

    async def _reconcile(self) -> None:
        for name, ch in list(self.channels.items()):
            if self.channels.get(name) is not ch:
                continue
            if not self._wanted(ch):
                del self.channels[name]
                link = ch.link
                if link is not None:
                    ch.link = None
                    ch.ready.clear()
                    link.channels.pop(name, None)
                    link.leaving[name] += 1
                    try:
                        await link.pubsub.sunsubscribe(name)
                    except Exception as exc:
                        await self._drop(link, exc)
            elif ch.link is None:
                node = self.pubsub_redis.get_node_from_key(name)
                link = self.links.get(node.name)
                if link is None:
                    link = self.links[node.name] = _Link(node)
                ch.link = link
                link.channels[name] = ch
                link.confirming[name] += 1
                try:
                    await link.pubsub.ssubscribe(name)
                except Exception as exc:
                    await self._drop(link, exc)
                    raise
                if link.task is None:
                    link.task = asyncio.get_running_loop().create_task(self._read(link))
        for name, link in list(self.links.items()):
            if not link.channels:  # nothing left on that master: the connection goes (and its subscriptions)
                del self.links[name]
                await link.close()

    # ---------------------------------------------------------------- one link's messages
    async def _read(self, link: _Link) -> None:
        try:
            while True:
                msg = await link.pubsub.get_message(timeout=1.0)
                if msg is not None:
                    self._on_message(link, msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._drop(link, exc)

    def _on_message(self, link: _Link, msg: dict) -> None:
        kind, name = msg["type"], msg["channel"]
        if kind == "smessage":
            ch = link.channels.get(name)
            if ch is not None:
                self.dispatch(msg["data"], campaign=ch.camp is not None, org_wide=ch.camp is None)
        elif kind == "ssubscribe":
            _count_down(link.confirming, name)
            ch = link.channels.get(name)
            if ch is not None and name not in link.confirming:
                ch.ready.set()
        elif kind == "sunsubscribe":
            if _count_down(link.leaving, name):  # ours
                return
            ch = link.channels.pop(name, None)  # the server's: the slot moved (a failover, a resharding)
            if ch is not None:
                log.warning("live: %s unsubscribed by %s (its slot moved); its clients resume", name.decode(),
                            link.name)
                self._lose(ch)
                self.stale_map = True
                self.changed.set()

    def _lose(self, ch: _Channel) -> None:
        """What was published on ``ch`` may have been missed: its subscribers resume from the streams."""
        self.lost += 1
        ch.link = None
        ch.ready.clear()
        reason = "live subscription lost"
        if ch.camp is not None:
            for s in list(self.campaign_subs.get((ch.org, ch.camp), ())):
                s.close(reason)
            return
        feed = self.org_feeds.get(ch.org)
        for s in list(feed.subs) if feed is not None else ():
            s.close(reason)
        for s in list(self.summaries.subs.get(ch.org, ())):
            s.close(reason)

    async def _drop(self, link: _Link, exc: Exception) -> None:
        if self.links.get(link.name) is link:
            del self.links[link.name]
        if link.channels:
            log.warning("live: pub/sub link to %s lost (%s); the clients of %d channels resume from the streams",
                        link.name, exc, len(link.channels))
        for ch in list(link.channels.values()):
            self._lose(ch)
        link.channels.clear()
        self.stale_map = True
        self.changed.set()
        await link.close()
