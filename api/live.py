"""Live fan-out: ONE Redis pub/sub subscription per API process, shared by every SSE client.

`LiveHub.run` subscribes to ``LIVE_CHANNEL`` and hands each published frame or alert to the
in-process subscribers of that campaign (and alerts to the org feeds). On a Redis Cluster,
`api.live_shards.ShardedLiveHub` subscribes instead to the sharded channels of the campaigns and
orgs that have local subscribers, and hands their messages to the same fan-out. Per subscriber the
state is bounded: the latest frame only (frames are whole snapshots: a slow client skips to the
newest) and a bounded alert queue (alerts are never dropped: on overflow the subscriber is
closed so that it reconnects and resumes with ``Last-Event-ID``).

SSE ids (docs/api.md):
- campaign stream (``/v1/campaigns/{id}/live``): a cursor ``<seq>.<l>.<t>.<h>.<d>`` — the last
  frame seq sent and, per abandon window (lifetime, today, 24h, 30d), the number ``n`` of the
  last alert sent (alert ids are ``org:campaign:window:n`` with escaped ids, `engine.storage.keys.alert_id`;
  n = 1, 2, … per window). Frames and
  alerts both carry the cursor as it stands after that event, so one ``Last-Event-ID`` resumes both.
- org alert stream (``/v1/alerts``): the entry id of the org alert stream.

The SSE bodies built on the hub are in api/live_streams.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

import orjson

from api.org_live import MinSample, OrgSummaries
from api.settings import ApiSettings
from engine.storage.keys import ALERT_FIELD, ALERT_SERIES, LIVE_CHANNEL, alert_position, org_alerts_stream
from flows.live_channel import split_frame

log = logging.getLogger("callpulse.api.live")

# Each alert series numbers its alerts 1, 2, …: the level alerts of the four windows, then the
# forecast alerts of `today` and `30d` (engine.storage.keys.AlertId, engine.vocab.ALERT_SERIES).
_LEGACY_SERIES = 4  # a cursor written before forecast alerts had four alert counters
_FORECAST_SERIES = 6  # ... and one written before the guard and complaint alerts (issue #23) six


class Cursor:
    """Resume position of a campaign stream: last frame seq and last alert n per window."""

    __slots__ = ("seq", "alerts")

    def __init__(self, seq: int = 0, alerts: list[int] | None = None):
        self.seq = seq
        self.alerts = alerts if alerts is not None else [0] * len(ALERT_SERIES)

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """``"<seq>"`` or ``"<seq>.<l>.<t>.<h>.<d>.<ft>.<fd>"`` (the four-counter form of earlier
        releases too); None when absent or malformed (fresh start)."""
        if not text:
            return None
        parts = text.strip().split(".")
        if not all(p.isdigit() and len(p) <= 18 for p in parts) \
                or len(parts) not in (1, 1 + _LEGACY_SERIES, 1 + _FORECAST_SERIES, 1 + len(ALERT_SERIES)):
            return None
        nums = [int(p) for p in parts]
        if len(nums) == 1:
            return cls(nums[0], None)  # frames only: alerts resume from now
        alerts = nums[1:] + [0] * (len(ALERT_SERIES) - len(nums) + 1)
        return cls(nums[0], alerts)

    def text(self) -> str:
        return ".".join(str(n) for n in (self.seq, *self.alerts))

    def alert_is_new(self, alert_id: str) -> bool:
        pos = alert_position(alert_id)
        return pos is None or pos[1] > self.alerts[pos[0]]

    def mark_alert(self, alert_id: str) -> None:
        pos = alert_position(alert_id)
        if pos is not None and pos[1] > self.alerts[pos[0]]:
            self.alerts[pos[0]] = pos[1]


def stream_id_tuple(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def valid_stream_id(sid: str | None) -> bool:
    if not sid:
        return False
    ms, sep, seq = sid.partition("-")
    return ms.isdigit() and len(ms) <= 20 and (not sep or (seq.isdigit() and len(seq) <= 20))


class Subscriber:
    """One SSE client: latest frame (conflated) + bounded alert queue."""

    __slots__ = ("frame", "alerts", "wake", "closed", "max_alerts", "reason")

    def __init__(self, max_alerts: int):
        self.frame: tuple[int, bytes] | None = None
        self.alerts: deque = deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.reason = ""
        self.max_alerts = max_alerts

    def push_frame(self, seq: int, data: bytes) -> None:
        if self.frame is None or seq > self.frame[0]:
            self.frame = (seq, data)
            self.wake.set()

    def push_alert(self, item) -> None:
        if self.closed:
            return
        if len(self.alerts) >= self.max_alerts:
            self.close("alert queue overflow")
            return
        self.alerts.append(item)
        self.wake.set()

    def close(self, reason: str) -> None:
        self.closed = True
        self.reason = reason
        self.wake.set()


class OrgFeed:
    """Reads an org's alert stream for its in-process subscribers (one reader per org, not per client).

    A published alert pokes the feed, which XRANGEs the org stream after the last id it read
    (the org stream entry is written right after the publish, so it retries briefly until the
    poked alert shows up); a slow poll covers anything missed.
    """

    def __init__(self, hub: LiveHub, org: str):
        self.hub = hub
        self.org = org
        self.key = org_alerts_stream(org)
        self.subs: set[Subscriber] = set()
        self.last_id = "0-0"
        self.ready = asyncio.Event()
        self.poke = asyncio.Event()
        self.wanted: set[str] = set()
        self.recent: dict[str, None] = {}  # alert ids already read from the stream (bounded, insertion order)
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        r = self.hub.redis
        try:
            top = await r.xrevrange(self.key, "+", "-", count=1)
            self.last_id = top[0][0].decode() if top else "0-0"
        except Exception:  # Redis down: start from 0-0 would replay everything; keep "now"
            self.last_id = "%d-0" % int(time.time() * 1000)
        self.ready.set()
        tries = 0
        while True:
            try:
                await asyncio.wait_for(self.poke.wait(), timeout=self.hub.org_poll_s)
            except TimeoutError:
                pass
            self.poke.clear()
            try:
                entries = await r.xrange(self.key, "(" + self.last_id, "+", count=1000)
            except Exception as exc:  # transient: next poke/poll retries
                log.warning("org alert feed %s: %s", self.org, exc)
                await asyncio.sleep(0.5)
                continue
            for sid, fields in entries:
                sid = sid.decode()
                self.last_id = sid
                raw = fields.get(ALERT_FIELD)
                if raw is None:
                    continue
                try:
                    aid = orjson.loads(raw).get("alert_id")
                except orjson.JSONDecodeError:
                    continue
                self.wanted.discard(aid)
                self.recent[aid] = None
                if len(self.recent) > 1000:
                    del self.recent[next(iter(self.recent))]
                for s in list(self.subs):
                    s.push_alert((sid, raw))
            if len(entries) == 1000:
                self.poke.set()
            elif self.wanted:
                tries += 1
                if tries > 100:  # ~2 s: give up on those (the record never reached the org stream)
                    self.wanted.clear()
                    tries = 0
                else:
                    await asyncio.sleep(0.02)
                    self.poke.set()
            else:
                tries = 0


class LiveHub:
    def __init__(self, redis, *, max_alert_queue: int = ApiSettings.max_alert_queue, org_poll_s: float = 2.0,
                 pubsub_redis=None):
        self.redis = redis
        # the subscription must NOT reconnect silently (messages published meanwhile would be lost
        # unnoticed): a client without retries, so a lost subscription closes every stream (see run)
        self.pubsub_redis = pubsub_redis if pubsub_redis is not None else redis
        self.max_alert_queue = max_alert_queue
        self.org_poll_s = org_poll_s
        self.campaign_subs: dict[tuple[str, str], set[Subscriber]] = {}
        self.org_feeds: dict[str, OrgFeed] = {}
        self.min_sample = MinSample()
        self.summaries = OrgSummaries(self.min_sample)  # /v1/live subscribers (api/org_live.py)
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.messages = 0
        self.on_count = None  # callback(n subscribers) for the gauge

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        self.summaries.close_all("shutdown")
        for subs in list(self.campaign_subs.values()):
            for s in list(subs):
                s.close("shutdown")
        for feed in list(self.org_feeds.values()):
            for s in list(feed.subs):
                s.close("shutdown")
            if feed.task:
                feed.task.cancel()
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def run(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.pubsub_redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(LIVE_CHANNEL)
                self.ready.set()
                backoff = 0.1
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None:
                        continue
                    if msg.get("type") == "message":
                        self.dispatch(msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost the subscription: clients must resume from the streams
                log.warning("live subscription lost: %s", exc)
                self.ready.clear()
                self._close_all("live subscription lost")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # ---------------------------------------------------------------- channels (a cluster: api/live_shards.py)
    def _interest(self, org: str, camp: str | None = None) -> None:
        """Called after local subscribers of a campaign (``camp``) or of an org's feeds came or went. The one
        global subscription carries everything: nothing to do here."""

    async def wait_live(self, org: str, camp: str | None = None) -> bool:
        """Whether what is published for the campaign (or, ``camp`` None, the org's feeds) now reaches this
        process; a subscriber added before this returns True misses nothing published after it."""
        return True

    def _close_all(self, reason: str) -> None:
        self.summaries.close_all(reason)
        for subs in self.campaign_subs.values():
            for s in list(subs):
                s.close(reason)
        for feed in self.org_feeds.values():
            for s in list(feed.subs):
                s.close(reason)

    # ---------------------------------------------------------------- fan-out
    def dispatch(self, data: bytes, *, campaign: bool = True, org_wide: bool = True) -> None:
        """One published message to its subscribers: the campaign's (``campaign``) and the org feeds'
        (``org_wide``). The global channel carries both; on a cluster the message came on one of the two."""
        self.messages += 1
        live = split_frame(data)  # the flow's frames: only the header is decoded, the frame is forwarded as is
        if live is not None:
            if org_wide and self.summaries.subs.get(live.org_id):
                with contextlib.suppress(orjson.JSONDecodeError):
                    self.summaries.on_frame(live.org_id, live.campaign_id, orjson.loads(live.frame))
            for s in self.campaign_subs.get((live.org_id, live.campaign_id), ()) if campaign else ():
                s.push_frame(live.seq, live.frame)
            return
        try:
            msg = orjson.loads(data)
            kind, org, camp = msg["kind"], msg["org_id"], msg["campaign_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        subs = self.campaign_subs.get((org, camp)) if campaign else None
        if kind == "frame":
            if org_wide:
                self.summaries.on_frame(org, camp, msg.get("frame"))
            if subs:
                try:
                    seq = int(msg["seq"])
                    frame = orjson.dumps(msg["frame"])
                except (KeyError, TypeError, ValueError):
                    return
                for s in subs:
                    s.push_frame(seq, frame)
        elif kind == "alert":
            alert = msg.get("alert")
            if not isinstance(alert, dict):
                return
            if subs:
                raw = orjson.dumps(alert)
                aid = str(alert.get("alert_id", ""))
                for s in subs:
                    s.push_alert((aid, raw))
            feed = self.org_feeds.get(org) if org_wide else None
            if feed is not None:
                aid = str(alert.get("alert_id", ""))
                if aid not in feed.recent:  # not read yet: poke the reader (it retries until it shows up)
                    feed.wanted.add(aid)
                    feed.poke.set()

    def count(self) -> int:
        return (sum(len(s) for s in self.campaign_subs.values()) + sum(len(f.subs) for f in self.org_feeds.values())
                + self.summaries.count())

    def add_campaign(self, org: str, camp: str) -> Subscriber:
        s = Subscriber(self.max_alert_queue)
        self.campaign_subs.setdefault((org, camp), set()).add(s)
        self._interest(org, camp)
        return s

    def remove_campaign(self, org: str, camp: str, s: Subscriber) -> None:
        subs = self.campaign_subs.get((org, camp))
        if subs is not None:
            subs.discard(s)
            if not subs:
                del self.campaign_subs[(org, camp)]
                self._interest(org, camp)

    def add_summary(self, org: str):
        """A `/v1/live` subscriber (api/org_live.py)."""
        s = self.summaries.add(org)
        self._interest(org)
        return s

    def remove_summary(self, org: str, s) -> None:
        self.summaries.remove(org, s)
        self._interest(org)

    async def add_org(self, org: str) -> Subscriber:
        feed = self.org_feeds.get(org)
        if feed is None:
            feed = self.org_feeds[org] = OrgFeed(self, org)
            feed.task = asyncio.get_running_loop().create_task(feed.run())
        s = Subscriber(self.max_alert_queue)
        feed.subs.add(s)
        self._interest(org)
        await feed.ready.wait()
        return s

    def remove_org(self, org: str, s: Subscriber) -> None:
        feed = self.org_feeds.get(org)
        if feed is None:
            return
        feed.subs.discard(s)
        if not feed.subs:
            del self.org_feeds[org]
            if feed.task:
                feed.task.cancel()
            self._interest(org)
