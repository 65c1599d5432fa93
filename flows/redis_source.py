"""Bytewax source over the partitioned Redis ingest streams (docs/streams.md, docs/flow.md).

One Bytewax partition per ingest stream `engine.storage.keys.ingest_stream(p)`, so a
campaign (which always lands in one stream) is read by exactly one worker, in
stream order. The resume state of a partition is the id of the last entry it
read; on resume it reads the entries after it (`XREAD ... STREAMS key <id>`
returns ids strictly greater), so a restored flow continues exactly where
its last recovery snapshot was taken.

`next_batch` never blocks: one `XREAD COUNT n` without `BLOCK` (redis-py's
``block=0`` would block forever); when nothing is new it returns `[]` and
`next_awake` backs off `idle_ms` (default 50 ms) before the next poll. While
Redis is unreachable it returns `[]` and polls again every second.

Each read is grouped by campaign (`flows.routing.grouped`): items ``(route,
CampaignBatch(route, [(ref, raw), ...]))`` (`flows.messages`) with the route from the entry's ``k`` field (or
a decode when it has none), ``ref`` = ``"<partition>:<stream entry id>"`` (a
stream id alone is not unique across streams), ``raw`` = the entry's ``e``
field (the event's JSON bytes), `flows.messages.DUPLICATE_MARK` for a duplicate
marker (no ``e``, ``d`` = ``1``: a repeat the ingest path dropped, counted by
the campaign step), or ``None`` when the entry has neither (dead-lettered as
malformed downstream).

Every second a partition also records its position in the flow status hash
(`engine.storage.keys.flow_status_key`) for `/readyz`: ``p<N>`` = last id read,
``p<N>_ms`` and ``tick_ms`` = when (wall ms).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from engine.storage.keys import (
    DEFAULT_PARTITIONS,
    DUPLICATE_FIELD,
    INGEST_FIELD,
    REPEAT_FIELD,
    ROUTE_FIELD,
    flow_status_key,
    ingest_stream,
)
from flows.lifecycle import STOP
from flows.messages import DUPLICATE_MARK, Repeat, Routed
from flows.patience import TRANSIENT
from flows.redis_connect import connect
from flows.routing import grouped, route_of_raw

DEFAULT_COUNT = 1000
DEFAULT_IDLE_MS = 50
START_ID = "0-0"
STATUS_EVERY_S = 1.0
TRIM_EVERY_S = 60.0
RETRY_AFTER = timedelta(seconds=1)


def as_parsed(response, **_options):
    """XREAD's reply as hiredis parsed it. redis-py's own reply callback rebuilds every entry's field list
    as a dict in Python, ~5 % of the flow's time; `reply_entries` reads the lists directly."""
    return response


def reply_entries(reply) -> list:
    """The ``[id, [field, value, ...]]`` entries of a one-stream XREAD reply (RESP3: a map by stream name;
    RESP2: a list of [name, entries] pairs)."""
    return next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]


def entry_fields(flat: list) -> tuple:
    """(raw event, route) of an entry's field list: ``e`` and ``k`` as the ingest path writes them, or a
    duplicate marker (``d`` = 1), or (None, None) when it has neither."""
    if isinstance(flat, dict):  # a cluster client's reply, parsed by redis-py's own callback
        fields = flat
    elif len(flat) == 4 and flat[0] == INGEST_FIELD and flat[2] == ROUTE_FIELD:  # what the ingest path writes
        return flat[1], flat[3]
    else:
        fields = dict(zip(flat[0::2], flat[1::2]))
    raw = fields.get(INGEST_FIELD)
    if raw is None and fields.get(DUPLICATE_FIELD) == b"1":
        repeat = fields.get(REPEAT_FIELD)
        raw = DUPLICATE_MARK if repeat is None else Repeat(repeat)
    return raw, fields.get(ROUTE_FIELD)


class RedisStreamPartition(StatefulSourcePartition[Routed, str]):
    def __init__(self, client, partition: int, last_id: str, *, count: int, idle_ms: int,
                 until_drained: bool, retain_ms: int = 0):
        client.set_response_callback("XREAD", as_parsed)  # the partition's own client: read as hiredis parsed
        self.client = client
        self.partition = partition
        self.stream = ingest_stream(partition)
        self.last_id = last_id
        self.count = count
        self.idle = timedelta(milliseconds=idle_ms)
        self.until_drained = until_drained
        self.awake: datetime | None = None
        self.prefix = f"{partition}:"
        self.status_key = flow_status_key()
        self.reported_at = 0.0
        self.down_since = 0.0
        self.retain_ms = retain_ms  # 0: never trim the stream
        self.trimmed_at = 0.0

    def next_batch(self) -> list:
        if STOP.is_set():
            self._report(force=True)
            raise StopIteration
        try:
            reply = self.client.xread({self.stream: self.last_id}, count=self.count)
        except TRANSIENT as exc:
            # Redis restarting or unreachable, a cluster failing over: wait and poll again (nothing was read).
            if not self.down_since:
                self.down_since = time.time()
                print(f"callpulse flow: partition {self.partition}: Redis unreachable ({exc}); retrying",
                      file=sys.stderr, flush=True)
            self.awake = datetime.now(UTC) + RETRY_AFTER
            return []
        self.down_since = 0.0
        if not reply:
            self._report()
            if self.until_drained:
                raise StopIteration
            self.awake = datetime.now(UTC) + self.idle
            return []
        entries = reply_entries(reply)
        self.awake = None
        prefix = self.prefix
        items = []
        for eid, flat in entries:
            raw, route = entry_fields(flat)
            route = route.decode(errors="replace") if route is not None else route_of_raw(raw)
            items.append((route, (prefix + eid.decode(), raw)))
        self.last_id = entries[-1][0].decode()
        self._report()
        self._trim()
        return grouped(items)

    def next_awake(self) -> datetime | None:
        return self.awake

    def snapshot(self) -> str:
        return self.last_id

    def close(self) -> None:
        self._report(force=True)
        self.client.close()

    def _trim(self) -> None:
        """Drop entries older than ``retain_ms`` behind the read position (by entry-id time).

        Only with recovery on: a restart resumes from the recovered id, at most a snapshot
        interval behind ``last_id``, so entries an hour older are never needed again (and
        ``XTRIM MINID`` never removes an entry after the read position). Runs once a minute."""
        now = time.time()
        if not self.retain_ms or now - self.trimmed_at < TRIM_EVERY_S:
            return
        self.trimmed_at = now
        cutoff = int(self.last_id.split("-")[0]) - self.retain_ms
        if cutoff > 0:
            try:
                self.client.xtrim(self.stream, minid=f"{cutoff}-0", approximate=False)
            except redis.RedisError:  # housekeeping only: retried next minute
                pass

    def _report(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.reported_at < STATUS_EVERY_S:
            return
        self.reported_at = now
        ms = int(now * 1000)
        p = self.partition
        try:
            self.client.hset(self.status_key, mapping={f"p{p}": self.last_id, f"p{p}_ms": ms, "tick_ms": ms})
        except redis.RedisError:  # monitoring only: never stop the flow for it
            pass


class RedisStreamSource(FixedPartitionedSource[Routed, str]):
    """The ingest streams `callpulse:ingest:{0..N-1}` as N Bytewax partitions."""

    def __init__(self, redis_url: str, *, partitions: int = DEFAULT_PARTITIONS, count: int = DEFAULT_COUNT,
                 idle_ms: int = DEFAULT_IDLE_MS, until_drained: bool = False, start_id: str = START_ID,
                 retain_ms: int = 0, cluster: bool | None = None):
        self.redis_url = redis_url
        self.cluster = cluster  # CALLPULSE_REDIS_CLUSTER as the settings read it (None: ask Redis)
        self.retain_ms = retain_ms
        self.partitions = partitions
        self.count = count
        self.idle_ms = idle_ms
        self.until_drained = until_drained
        self.start_id = start_id

    def list_parts(self) -> list[str]:
        # Every worker can reach every stream; Bytewax assigns each partition to one worker.
        return [str(p) for p in range(self.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: str | None) -> RedisStreamPartition:
        client = connect(self.redis_url, cluster=self.cluster)
        last_id = resume_state if resume_state is not None else self.start_id
        return RedisStreamPartition(client, int(for_part), last_id, count=self.count,
                                    idle_ms=self.idle_ms, until_drained=self.until_drained,
                                    retain_ms=self.retain_ms)
