"""Bytewax sink: frames, alerts and dead letters into Redis, idempotently (docs/flow.md).

Each worker writes the items its own steps produced (a `DynamicSink`); a
campaign's frames and alerts all come from the one worker that owns the
campaign, in order. One `write_batch` = one pipelined round trip.

Per frame ``(seq, body)`` of campaign (org, c):
- ``SET watermark_key`` = the gate's event-time watermark the frame carries (ms; the ingest late
  notice judges by it, api/late_notice.py), then ``SET stats_key`` = the `/stats` body (overwrites:
  replaying them is harmless);
- ``XADD frames_stream MAXLEN ~ 1000 <seq>-0 f <body + seq>``: the explicit
  id makes a replayed frame (after a recovery rewinds to the last snapshot)
  fail with "equal or smaller than the target stream top item", which
  means "already written" and is ignored;
- ``SADD org_campaigns_key c``;
- the frame's minute point (issue 24, `engine.views.history`): a script that replaces the minute's member of
  ``history_key`` and trims it to the newest `HISTORY_MINUTES` minutes; and, when the frame carries one,
  ``SET followups_key`` = the follow-ups view (`engine.state.followups`). Both come computed from the step: the
  frame bytes are never decoded here. Replaying them writes the same minute again: harmless;
- ``PUBLISH callpulse:live {"kind":"frame","org_id","campaign_id","seq","frame"}``
  (`flows.live_channel`: the frame bytes last, so the API forwards them undecoded). On a Redis
  Cluster: ``SPUBLISH`` (sharded pub/sub) of the same message on the campaign's channel
  (`engine.storage.keys.live_campaign_channel`, the campaign's slot) and on the org's
  (`live_org_channel`, for `/v1/live`), instead of the global channel.

Per alert: one Lua script per stream, each touching keys of one cluster slot
only: ``SADD`` the alert_id to the stream's id set, and only if it was new
``XADD`` it (``MAXLEN ~``) — and, for the campaign stream,
``PUBLISH {"kind":"alert",...}``. On a cluster the campaign script ``SPUBLISH``es it
on the campaign's channel and the org script on the org's (each channel in its
script's slot). Alert ids are deterministic (engine), so an
alert re-emitted after a recovery is written and published once.

Per `Details` item: its `DetailBatch`'s records by id and in their indexes (flows.detail_writer), the
records of unsealed attempts merged over the stored ones after every other write of the batch.

Per dead letter: a Lua script adds its source ref (stream + entry id, or
file + line) to a capped sorted set and only if new ``XADD``s the record to
``callpulse:deadletter`` (``MAXLEN ~``).

While Redis is unreachable, or out of memory, a write is retried for as long as it takes
(`flows.patience`, capped back-off); any other Redis error raises: the flow
stops, and a restart with recovery rewinds to the last snapshot and writes
again (at-least-once delivery made effectively-once by the idempotence above).

Before its first write, after every reconnect and at least once a second the
sink checks the dataset id (`flows.dataset`): a Redis that lost its data (or
another Redis) is never written to; the flow records why and stops.
"""

from __future__ import annotations

import sys
import time
from typing import NamedTuple

import orjson
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from engine.storage.keys import (
    ALERT_FIELD,
    DEAD_LETTER_STREAM,
    FRAME_FIELD,
    LIVE_CHANNEL,
    alert_ids_key,
    alerts_stream,
    dead_letter_ids_key,
    flow_status_key,
    followups_key,
    frames_stream,
    history_key,
    live_campaign_channel,
    live_org_channel,
    org_alert_ids_key,
    org_alerts_stream,
    org_campaigns_key,
    stats_key,
    watermark_key,
)
from engine.views.history import HISTORY_MINUTES
from flows.config import FlowConfig
from flows.dataset import DATASET_KEY, DatasetLost, current, ensure, lost_message, report_lost
from flows.detail_writer import merge_attempt_patches, write_details
from flows.ingest_writer import execute
from flows.live_channel import alert_message, frame_message
from flows.messages import Alert, CampaignOutput, DeadLetter, Details, Frame
from flows.patience import TRANSIENT, Patience
from flows.redis_connect import connect

# KEYS: stream, id set. ARGV: alert_id, record JSON, maxlen[, channel, message]
ALERT_SCRIPT = b"""
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'a', ARGV[2])
if ARGV[4] then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1
"""
assert ALERT_FIELD == b"a"
# a Redis Cluster: sharded pub/sub, on a channel of the script's slot (engine.storage.keys.live_campaign_channel / _org_)
SHARDED_ALERT_SCRIPT = ALERT_SCRIPT.replace(b"'PUBLISH'", b"'SPUBLISH'")

# KEYS: dead-letter stream, ref zset. ARGV: ref, now ms, stream maxlen, refs kept, field, value, ...
DEAD_LETTER_SCRIPT = b"""
if redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[4]) - 1)
local args = {KEYS[1], 'MAXLEN', '~', ARGV[3], '*'}
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('XADD', unpack(args))
return 1
"""

# KEYS: a campaign's history zset. ARGV: minute, point JSON, minutes kept. The minute's point replaces the one
# there (the last frame of a minute wins); minutes older than the kept span behind the newest are dropped (a
# replayed old minute is not added back). One key: cluster-safe; atomic: a reader never sees the minute missing.
HISTORY_SCRIPT = b"""
local m = tonumber(ARGV[1])
local newest = m
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
if top and tonumber(top) > m then newest = tonumber(top) end
if m <= newest - tonumber(ARGV[3]) then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], m, m)
redis.call('ZADD', KEYS[1], m, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', newest - tonumber(ARGV[3]))
return 1
"""

ALREADY_WRITTEN = "equal or smaller than the target stream top item"
STATUS_EVERY_S = 1.0
DEAD_LETTER_REFS_KEPT = 200_000
DATASET_CHECK_S = 1.0  # at least this often, and after every reconnect


CAMPAIGN_KEYS_CACHED = 8192  # the encoded keys of this many campaigns are kept (cleared when full)


def _json_id(value: str) -> bytes:
    """An id as a JSON string, copied: orjson hands back short results in a ~4 KB buffer, which a cache
    of thousands of campaigns would keep."""
    return bytes(memoryview(orjson.dumps(value)))


def _b(value) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


class CampaignKeys(NamedTuple):
    """A campaign's output keys and JSON-encoded ids, encoded once per campaign (cached by the sink)."""

    stats: bytes
    frames: bytes
    org_campaigns: bytes
    alerts: bytes
    alert_ids: bytes
    org_alerts: bytes
    org_alert_ids: bytes
    org_json: bytes
    campaign_json: bytes
    watermark: bytes
    live: bytes  # where its frames and alerts are published: LIVE_CHANNEL, or its sharded channel on a cluster
    org_live: bytes | None  # a cluster: the org's sharded channel (frames and alerts again, for the org feeds)


class RedisSinkPartition(StatelessSinkPartition[tuple[str, CampaignOutput]]):
    def __init__(self, cfg: FlowConfig, worker_index: int):
        # every (re)connection is checked before its first command: a Redis that came back empty
        # after a restart never gets a write
        # a dataset check on every new connection (standalone; a cluster client checks at least once a second)
        self.client = connect(cfg.redis_url, cluster=cfg.redis_cluster, redis_connect_func=self._on_connect)
        self.worker = worker_index
        self.cfg_url = cfg.redis_url
        self.cluster = cfg.redis_cluster
        self.frames_maxlen = _b(cfg.frames_maxlen)
        self.alerts_maxlen = _b(cfg.alerts_maxlen)
        self.dl_maxlen = _b(cfg.dead_letter_maxlen)
        self.dl_kept = _b(DEAD_LETTER_REFS_KEPT)
        self.dl_keys = (DEAD_LETTER_STREAM.encode(), dead_letter_ids_key().encode())
        self.live = LIVE_CHANNEL.encode()
        # a Redis Cluster: sharded pub/sub on channels in the campaign's and the org's slots (docs/api.md)
        self.sharded = isinstance(self.client, redis.RedisCluster)
        self.publish = b"SPUBLISH" if self.sharded else b"PUBLISH"
        self.alert_script = SHARDED_ALERT_SCRIPT if self.sharded else ALERT_SCRIPT
        self.status_key = flow_status_key().encode()
        self.reported_at = 0.0
        self.keys: dict[tuple[str, str], CampaignKeys] = {}
        self.patience = Patience(f"flow sink (worker {worker_index})", cfg.patience)
        # the id `callpulse flow` adopted at start (flows.dataset); bare `bytewax.run`: whatever Redis holds first
        self.dataset = cfg.dataset
        self.checked_at = 0.0

    def _campaign_keys(self, org: str, camp: str) -> CampaignKeys:
        k = self.keys.get((org, camp))
        if k is None:
            if len(self.keys) >= CAMPAIGN_KEYS_CACHED:
                self.keys.clear()
            k = self.keys[(org, camp)] = CampaignKeys(
                stats_key(org, camp).encode(), frames_stream(org, camp).encode(),
                org_campaigns_key(org).encode(), alerts_stream(org, camp).encode(),
                alert_ids_key(org, camp).encode(), org_alerts_stream(org).encode(),
                org_alert_ids_key(org).encode(), _json_id(org), _json_id(camp),
                watermark_key(org, camp).encode(),
                live_campaign_channel(org, camp).encode() if self.sharded else self.live,
                live_org_channel(org).encode() if self.sharded else None)
        return k

    def write_batch(self, items: list[tuple[str, CampaignOutput]]) -> None:
        cmds: list[tuple] = []
        frame_xadds: set[int] = set()  # indexes of frame XADDs (their "already written" error is fine)
        latest: dict[tuple, tuple] = {}  # campaign -> (its keys, its last frame in this batch)
        points: dict[tuple, dict[int, bytes]] = {}  # campaign -> minute -> its last point in this batch
        views: dict[tuple, bytes] = {}  # campaign -> its last follow-ups view in this batch
        for _route, msg in items:
            if type(msg) is DeadLetter:
                self._dead_letter(msg.record, cmds)
                continue
            if type(msg) not in (Frame, Details, Alert):
                raise TypeError(f"the flow's sink got an item it does not know: {msg!r}")
            ks = self._campaign_keys(msg.org_id, msg.campaign_id)
            if type(msg) is Frame:
                seq = msg.seq
                frame = msg.body[:-1] + b',"seq":%d}' % seq
                latest[(msg.org_id, msg.campaign_id)] = (ks, msg)
                if msg.history is not None:
                    points.setdefault((msg.org_id, msg.campaign_id), {})[msg.history[0]] = msg.history[1]
                if msg.followups is not None:
                    views[(msg.org_id, msg.campaign_id)] = msg.followups
                frame_xadds.add(len(cmds))
                cmds.append((b"XADD", ks.frames, b"MAXLEN", b"~", self.frames_maxlen, b"%d-0" % seq, FRAME_FIELD,
                             frame))
                pub = frame_message(ks.org_json, ks.campaign_json, seq, frame)
                cmds.append((self.publish, ks.live, pub))
                if ks.org_live is not None:
                    cmds.append((b"SPUBLISH", ks.org_live, pub))
            elif type(msg) is Details:
                write_details(msg.org_id, msg.campaign_id, msg.details, cmds)
            else:  # Alert
                aid = msg.record["alert_id"].encode()
                js = orjson.dumps(msg.record)
                pub = alert_message(ks.org_json, ks.campaign_json, js)
                cmds.append((b"EVAL", self.alert_script, b"2", ks.alerts, ks.alert_ids, aid, js, self.alerts_maxlen,
                             ks.live, pub))
                cmds.append((b"EVAL", self.alert_script, b"2", ks.org_alerts, ks.org_alert_ids, aid, js,
                             self.alerts_maxlen, *((ks.org_live, pub) if ks.org_live is not None else ())))
        merge_attempt_patches([m for _route, m in items if type(m) is Details], self._execute, cmds)
        for (org, camp), (ks, msg) in latest.items():
            self._history(org, camp, points.get((org, camp)), views.get((org, camp)), cmds)
            # The gate's watermark, not the body's as_of (which follows the wall clock live); before the body,
            # so a reader that sees a body sees a watermark at least as new (the pipeline is no MULTI).
            if msg.watermark is not None:
                cmds.append((b"SET", ks.watermark, b"%d" % msg.watermark))
            cmds.append((b"SET", ks.stats, msg.body))
            cmds.append((b"SADD", ks.org_campaigns, camp.encode()))
        now = time.time()
        if now - self.reported_at >= STATUS_EVERY_S:
            self.reported_at = now
            ms = b"%d" % int(now * 1000)
            status = [b"write_ms", ms, b"w%d_write_ms" % self.worker, ms]
            if self.patience.outages:
                status += [b"outages", b"%d" % self.patience.outages,
                           b"last_outage_ms", b"%d" % self.patience.last_outage_ms]
            cmds.append((b"HSET", self.status_key, *status))
        if not cmds:
            return
        replies = self._execute(cmds)
        for i, r in enumerate(replies):
            if isinstance(r, Exception) and not (i in frame_xadds and ALREADY_WRITTEN in str(r)):
                raise r

    def _execute(self, cmds: list) -> list:
        """One pipelined round trip, retried while Redis is unreachable (every write is idempotent);
        never written to a Redis that does not hold the flow's dataset."""
        return self.patience.call(self._checked_execute, cmds)

    def _checked_execute(self, cmds: list) -> list:
        now = time.monotonic()
        if now - self.checked_at >= DATASET_CHECK_S:  # catches a FLUSHALL without a reconnect (within 1 s)
            self._check_dataset(current(self.client))
        replies = execute(self.client, cmds)
        for r in replies:
            # for the patience around it: wait until Redis takes writes again (out of memory; on a cluster, a
            # slot's master unreachable until its replica has taken over), then write it all again
            if isinstance(r, TRANSIENT):
                raise r
        return replies

    def _on_connect(self, conn) -> None:
        conn.on_connect()
        conn.send_command("GET", DATASET_KEY)
        self._check_dataset(conn.read_response())

    def _check_dataset(self, found) -> None:
        found = found.decode() if isinstance(found, bytes) else found
        if self.dataset is None:  # not started by `callpulse flow` (bare bytewax.run): adopt, or create
            self.dataset = found = found or ensure(connect(self.cfg_url, cluster=self.cluster))
        if found is None or found != self.dataset:
            msg = lost_message(self.dataset or "?", found, "the running flow")
            print(f"callpulse flow: {msg}", file=sys.stderr, flush=True)
            report_lost(connect(self.cfg_url, cluster=self.cluster), msg)
            raise DatasetLost(msg)
        self.checked_at = time.monotonic()

    def _history(self, org: str, camp: str, points: dict[int, bytes] | None, view: bytes | None,
                 cmds: list) -> None:
        """A campaign's minute points (engine.views.history: one script each, replace and trim) and its latest
        follow-ups view (engine.state.followups: overwritten), ahead of its stats body."""
        if points:
            key = history_key(org, camp).encode()
            for minute, point in points.items():
                cmds.append((b"EVAL", HISTORY_SCRIPT, b"1", key, b"%d" % minute, point, b"%d" % HISTORY_MINUTES))
        if view is not None:
            cmds.append((b"SET", followups_key(org, camp).encode(), view))

    def _dead_letter(self, rec: dict, cmds: list) -> None:
        args = [b"EVAL", DEAD_LETTER_SCRIPT, b"2", *self.dl_keys, rec["source"].encode(), _b(rec["at"]),
                self.dl_maxlen, self.dl_kept]
        for k, v in rec.items():
            args.append(k.encode())
            args.append(_b(v))
        cmds.append(tuple(args))

    def close(self) -> None:
        self.client.close()


class RedisSink(DynamicSink[tuple[str, CampaignOutput]]):
    def __init__(self, cfg: FlowConfig):
        self.cfg = cfg

    def build(self, step_id: str, worker_index: int, worker_count: int) -> RedisSinkPartition:
        return RedisSinkPartition(self.cfg, worker_index)
