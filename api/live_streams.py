"""The SSE bodies the live routes stream (api/routes/live.py), fed by the live hub (api/live.py).

- ``campaign_events``: ``/v1/campaigns/{id}/live``: the history after the client's cursor
  (Last-Event-ID), then live frames and alerts from the hub, without gap or duplicate;
- ``org_alert_events``: ``/v1/alerts``: every alert of the org, ids being org alert stream ids;
- ``org_summary_events``: ``/v1/live``: a snapshot of the org's campaign summaries, then each change
  (the summaries themselves: api/org_live.py).

All end cleanly on server shutdown (``stop``) and close when the hub drops a slow subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from redis.exceptions import RedisError

from api.live import Cursor, LiveHub, Subscriber, stream_id_tuple, valid_stream_id
from api.org_live import comparable, org_summaries
from engine.storage.keys import ALERT_FIELD, FRAME_FIELD, alerts_stream, frames_stream, org_alerts_stream

log = logging.getLogger("callpulse.api.live")


def sse(event: str, id_: str, data: bytes) -> bytes:
    return b"event: %b\r\nid: %b\r\ndata: %b\r\n\r\n" % (event.encode(), id_.encode(), data)


RETRY_FIELD = b"retry: 1000\r\n"  # the client's reconnect delay (ms)
KEEPALIVE = b": ping\r\n"


class RetryOnce:
    """Sends ``retry:`` once per connection, with whatever goes first: a real event or a keep-alive.

    Never as a block of its own: httpx-sse (0.4) dispatches every block that ends in a blank line,
    even one without data, as a ``message`` (a lone ``retry:`` block; a ``: ping`` block once an
    ``id`` was seen), which breaks a consumer that parses every event's data as JSON. So keep-alives
    are bare comment lines with no blank line after them (they keep proxies awake, every parser
    ignores them), and ``retry:`` is a field line in front of the first of them or of the first
    event: a browser applies it at once, httpx-sse hands it over with the next event."""

    def __init__(self):
        self.pending = True

    def _take(self) -> bytes:
        if self.pending:
            self.pending = False
            return RETRY_FIELD
        return b""

    async def body(self, gen):
        """``gen`` (an SSE body of whole events) with ``retry:`` in front of its first event if still due."""
        try:
            async for chunk in gen:
                yield self._take() + chunk if self.pending else chunk
        finally:
            await gen.aclose()

    def ping(self) -> bytes:
        """sse-starlette's ``ping_message_factory``: bytes pass through as they are."""
        return self._take() + KEEPALIVE


ALERT_HISTORY = 10_000  # the flow caps alert streams at ~10 000 entries


async def _close_on(stop, sub: Subscriber) -> None:
    await stop.wait()
    sub.close("shutdown")


def _watch(stop, sub: Subscriber):
    return None if stop is None else asyncio.get_running_loop().create_task(_close_on(stop, sub))


async def campaign_events(hub: LiveHub, redis, org: str, camp: str, last_event_id: str | None, *,
                          heartbeat_s: float, min_interval_s: float, max_replay: int, metrics=None, stop=None):
    """The SSE body of ``/v1/campaigns/{id}/live``: history after the cursor, then live, no gap, no dup.

    ``stop`` (an event set by sse-starlette on server shutdown) ends the stream cleanly.
    """
    sub = hub.add_campaign(org, camp)  # subscribe first: what is published from now on is buffered
    watcher = _watch(stop, sub)
    if metrics:
        metrics.subscribers.inc()
    try:
        if not await hub.wait_live(org, camp):  # a cluster: its sharded channel not subscribed; the client retries
            return
        try:  # the response has started: a Redis error now must end the stream cleanly, not abort it
            cur, alert_history, history = await _campaign_history(redis, org, camp, last_event_id, max_replay)
        except RedisError as exc:  # the client resumes from its Last-Event-ID
            log.warning("live stream %s/%s: history read failed (%s); closing the stream", org, camp, exc)
            return
        feed = _CampaignFeed(sub, cur, heartbeat_s=heartbeat_s, min_interval_s=min_interval_s, metrics=metrics)
        for event in feed.replay(alert_history, history):
            yield event
        # ---- live (drain what was buffered meanwhile, skipping what history already sent)
        while not sub.closed:
            for event in feed.buffered_alerts():
                yield event
            event, wait = feed.due_frame()
            if event is None:
                await feed.idle(wait)
                continue
            yield event
            feed.frame_sent()
    finally:
        if watcher is not None:
            watcher.cancel()
        hub.remove_campaign(org, camp, sub)
        if metrics:
            metrics.subscribers.dec()


async def _campaign_history(redis, org: str, camp: str, last_event_id: str | None, max_replay: int):
    """What a campaign stream replays before going live: ``(cursor, alert entries, frame entries newest
    first)``. A fresh start (or a bare frame seq) replays no alert: those in the stream are marked seen."""
    parsed = Cursor.parse(last_event_id)
    fkey, akey = frames_stream(org, camp), alerts_stream(org, camp)
    alert_history = await redis.xrange(akey, "-", "+", count=ALERT_HISTORY)
    if parsed is None or "." not in last_event_id:
        cur = Cursor(parsed.seq if parsed else 0)
        for _sid, fields in alert_history:
            raw = fields.get(ALERT_FIELD)
            if raw:
                with contextlib.suppress(Exception):
                    cur.mark_alert(orjson.loads(raw).get("alert_id", ""))
        alert_history = []
    else:
        cur = parsed
    if parsed is None:
        return cur, alert_history, await redis.xrevrange(fkey, "+", "-", count=1)  # the latest frame only
    history = await redis.xrevrange(fkey, "+", "(%d-0" % cur.seq, count=max_replay)
    if not history:
        top = await redis.xrevrange(fkey, "+", "-", count=1)
        if top and int(top[0][0].decode().partition("-")[0]) < cur.seq:
            # the cursor is ahead of the stream (frames renumbered, e.g. a flow restarted without
            # recovery): start over from the latest frame instead of waiting forever
            cur.seq = 0
            history = top
    return cur, alert_history, history


class _CampaignFeed:
    """One campaign stream's position and pace: the cursor, the latest frame sent and when.

    It decides what to send next (``replay``, ``buffered_alerts``, ``due_frame``) and how long to wait
    (``idle``); `campaign_events` writes the events. A frame goes at most every ``min_interval_s``
    (the latest one wins), and the latest frame again after ``heartbeat_s`` without one."""

    def __init__(self, sub: Subscriber, cur: Cursor, *, heartbeat_s: float, min_interval_s: float, metrics):
        self.sub, self.cur, self.metrics = sub, cur, metrics
        self.heartbeat_s, self.min_interval_s = heartbeat_s, min_interval_s
        self.last_frame: bytes | None = None
        self.last_sent = 0.0

    def _alert(self, aid: str, raw: bytes):
        """The alert's event if the cursor has not seen it (marked seen once sent)."""
        if self.cur.alert_is_new(aid):
            self.cur.mark_alert(aid)
            yield sse("alert", self.cur.text(), raw)
            if self.metrics:
                self.metrics.alerts_sent.inc()

    def replay(self, alert_history, history):
        """The history's events: its alerts not yet seen, then its frames after the cursor, oldest first."""
        for _sid, fields in alert_history:
            raw = fields.get(ALERT_FIELD)
            if not raw:
                continue
            try:
                aid = orjson.loads(raw).get("alert_id", "")
            except orjson.JSONDecodeError:
                continue
            yield from self._alert(aid, raw)
        for sid, fields in reversed(history):
            seq = int(sid.decode().partition("-")[0])
            raw = fields.get(FRAME_FIELD)
            if raw is None or seq <= self.cur.seq:
                continue
            self.cur.seq = seq
            self.last_frame = raw
            yield sse("frame", self.cur.text(), raw)
            self.frame_sent()

    def buffered_alerts(self):
        """The events of the alerts the hub buffered, those the cursor has not seen."""
        while self.sub.alerts:
            aid, raw = self.sub.alerts.popleft()
            yield from self._alert(aid, raw)

    def due_frame(self) -> tuple[bytes | None, float]:
        """``(event, 0)``: a frame to send now (a newer one, or the latest again as a heartbeat); or
        ``(None, seconds)``: nothing before that long (unless the hub wakes the stream)."""
        now = time.monotonic()
        wait = self.heartbeat_s - (now - self.last_sent) if self.last_frame is not None else self.heartbeat_s
        f = self.sub.frame
        if f is not None and f[0] > self.cur.seq:
            gap = self.min_interval_s - (now - self.last_sent)
            if gap <= 0:
                self.cur.seq, self.last_frame = f
                return sse("frame", self.cur.text(), self.last_frame), 0.0
            wait = min(wait, gap)
        elif self.last_frame is not None and wait <= 0:
            return sse("frame", self.cur.text(), self.last_frame), 0.0  # heartbeat: the latest frame again
        return None, wait

    def frame_sent(self) -> None:
        self.last_sent = time.monotonic()
        if self.metrics:
            self.metrics.frames_sent.inc()

    async def idle(self, wait: float) -> None:
        """Wait for the hub (a frame, an alert, a close) at most ``wait`` seconds, unless something is due."""
        sub = self.sub
        sub.wake.clear()
        if sub.alerts or sub.closed or (sub.frame is not None and sub.frame[0] > self.cur.seq and
                                        self.min_interval_s - (time.monotonic() - self.last_sent) <= 0):
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(sub.wake.wait(), timeout=max(wait, 0.001))


async def org_alert_events(hub: LiveHub, redis, org: str, last_event_id: str | None, *, max_replay: int,
                           metrics=None, stop=None):
    """The SSE body of ``/v1/alerts``: every alert of the org; ids are org alert stream ids."""
    sub = await hub.add_org(org)
    watcher = _watch(stop, sub)
    if metrics:
        metrics.subscribers.inc()
    try:
        if not await hub.wait_live(org):
            return
        key = org_alerts_stream(org)
        try:  # as in campaign_events: a Redis error after the response started ends the stream cleanly
            if valid_stream_id(last_event_id):
                hist = await redis.xrevrange(key, "+", "(" + last_event_id, count=max_replay)
            else:
                hist = None
                top = await redis.xrevrange(key, "+", "-", count=1)
        except RedisError as exc:
            log.warning("org alert stream %s: history read failed (%s); closing the stream", org, exc)
            return
        if hist is not None:
            last = stream_id_tuple(last_event_id)
            for sid, fields in reversed(hist):
                sid = sid.decode()
                raw = fields.get(ALERT_FIELD)
                last = stream_id_tuple(sid)
                if raw:
                    yield sse("alert", sid, raw)
                    if metrics:
                        metrics.alerts_sent.inc()
        else:
            last = stream_id_tuple(top[0][0].decode()) if top else (0, 0)
        while True:
            if sub.closed:
                return
            while sub.alerts:
                sid, raw = sub.alerts.popleft()
                t = stream_id_tuple(sid)
                if t > last:
                    last = t
                    yield sse("alert", sid, raw)
                    if metrics:
                        metrics.alerts_sent.inc()
            sub.wake.clear()
            if sub.alerts or sub.closed:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(sub.wake.wait(), timeout=30)
    finally:
        if watcher is not None:
            watcher.cancel()
        hub.remove_org(org, sub)
        if metrics:
            metrics.subscribers.dec()


async def org_summary_events(hub, redis, org: str, *, min_interval_s: float, metrics=None, stop=None):
    """The SSE body of ``/v1/live``: a snapshot of the org's campaigns, then each change (coalesced)."""
    sub = hub.add_summary(org)  # first: what is published from now on is buffered
    watcher = _watch(stop, sub)
    if metrics:
        metrics.subscribers.inc()
    n = 0

    def next_id() -> str:
        nonlocal n
        n += 1
        return "%d-%d" % (int(time.time() * 1000), n)

    try:
        if not await hub.wait_live(org):
            return
        try:
            min_sample = await hub.min_sample.get(redis)
            snapshot = await org_summaries(redis, org, min_sample)
        except RedisError as exc:  # the client reconnects and gets a fresh snapshot
            log.warning("org live stream %s: snapshot read failed (%s); closing the stream", org, exc)
            return
        sent = {s["campaign_id"]: comparable(s) for s in snapshot}
        yield sse("snapshot", next_id(), orjson.dumps({"org_id": org, "min_sample": min_sample,
                                                        "campaigns": snapshot}))
        last_sent = time.monotonic()
        while True:
            if sub.closed:
                return
            if sub.pending:
                gap = min_interval_s - (time.monotonic() - last_sent)
                if gap > 0:
                    await asyncio.sleep(gap)  # coalesce: later changes of a campaign replace earlier ones
                    continue
                pending, sub.pending = sub.pending, {}
                for camp, data in sorted(pending.items()):
                    key = comparable(orjson.loads(data))
                    if sent.get(camp) == key:
                        continue  # the snapshot already had it
                    sent[camp] = key
                    yield sse("campaign", next_id(), data)
                    if metrics:
                        metrics.frames_sent.inc()
                last_sent = time.monotonic()
                continue
            sub.wake.clear()
            if sub.pending or sub.closed:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(sub.wake.wait(), timeout=30)
    finally:
        if watcher is not None:
            watcher.cancel()
        hub.remove_summary(org, sub)
        if metrics:
            metrics.subscribers.dec()
