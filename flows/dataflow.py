"""The production Bytewax dataflow: ingest streams -> one campaign-keyed step -> Redis.

    read (routed by campaign, batched) ──exchange──> campaign (parse, gate, state) ──> redis

- ``read``: `flows.redis_source.RedisStreamSource` (one partition per ingest
  stream) or, for recorded logs, `flows.file_source.NdjsonFileSource`. Each
  read is grouped by campaign (`flows.routing`): items ``(route, (route, [(ref,
  raw), ...]))``, one per campaign per read, so events cross workers once and
  in batches, as raw bytes. The route comes from the entry's ``k`` field
  (written by the ingest path), or from a decode in the source when a raw
  writer left it out.
- ``campaign``: `CampaignLogic`, one per campaign: parses each event
  (`engine.events.parse_event`; live mode: the ``future`` check), runs the
  campaign's `engine.gate.EventGate` (event_id de-dup, lateness) and applies
  it to the campaign's `engine.state.CampaignState`; emits dead letters for
  rejected and late events, alerts at once and coalesced frames.
- ``redis``: `flows.redis_sink.RedisSink` (idempotent writes).

Event ids are unique per org (SPEC §1). The ingest path (`callpulse ingest`,
``POST /v1/events``) de-duplicates them per org before they reach a stream;
the flow's gate de-duplicates per campaign (every retry of an event lands in
its campaign). Only an event_id reused across two campaigns of one org and
appended without the ingest path is counted once per campaign by the flow
(`callpulse replay` counts it once per org). See docs/flow.md.

Run it with ``callpulse flow`` (recovery, signals, workers), or directly:
``python -m bytewax.run "flows.dataflow:build(replay=True)" -w 2``.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

import orjson
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from engine.alerts import DEFAULT_MIN_SAMPLE
from engine.events import MAX_EVENT_BYTES, EventRejected, parse_event
from engine.gate import DEFAULT_LATENESS_MS, DUPLICATE, LATE, OK, EventGate
from engine.snapshot import build_snapshot
from engine.keys import route_key
from engine.state import CampaignState
from flows.chunk_store import store_for
from flows.retirement import RETIRING_STATUSES, Archive
from flows.routing import DUPLICATE_MARK, UNROUTABLE

# 2: columnar contacts, sealed attempts, the campaign's own gate; 1 (release 1) is upgraded on resume
STATE_VERSION = 2


@dataclass(frozen=True)
class FlowConfig:
    redis_url: str = field(default_factory=lambda: os.environ.get("CALLPULSE_REDIS_URL",
                                                                  "redis://localhost:6379/0"))
    replay: bool = False  # watermark moves only with events; no future check
    partitions: Optional[int] = None  # ingest partitions (default CALLPULSE_PARTITIONS or 8)
    files: tuple = ()  # read these NDJSON files instead of the ingest streams
    until_drained: bool = False  # end the input once every stream has been read to its end
    recovery: bool = True  # False: snapshot() returns None (Bytewax asks for snapshots every epoch anyway)
    recovery_dir: Optional[str] = None  # frozen state chunks are written here once (flows/chunk_store.py)
    lateness_ms: int = DEFAULT_LATENESS_MS
    seal_chunk_rows: int = 65_536  # sealed attempts frozen (and written to recovery once) this many at a time
    retire_after_ms: int = 3_600_000  # a finished campaign this long without an event leaves the flow (0: never)
    min_sample: int = DEFAULT_MIN_SAMPLE
    frame_interval_ms: int = 250  # at most 4 frames/s per campaign
    heartbeat_ms: int = 5000  # at least one frame every 5 s (0: no heartbeat frames)
    quiet_ms: int = 1000  # live mode: advance the watermark to the wall clock after this much quiet
    read_count: int = 1000  # XREAD COUNT / lines per batch
    idle_ms: int = 50  # source back-off when a stream has nothing new
    retain_ms: int = 3_600_000  # ingest entries kept behind the read position (trimmed only with recovery on)
    frames_maxlen: int = 1000
    alerts_maxlen: int = 10_000
    dead_letter_maxlen: int = 100_000


class SnapshotStats:
    """Campaign snapshots taken by this process: count, bytes, time (printed when the flow stops)."""

    def __init__(self):
        self.count = self.bytes = 0
        self.seconds = self.max_seconds = 0.0
        self.max_bytes = 0

    def record(self, seconds: float, size: int) -> None:
        self.count += 1
        self.bytes += size
        self.seconds += seconds
        self.max_seconds = max(self.max_seconds, seconds)
        self.max_bytes = max(self.max_bytes, size)

    def summary(self) -> str:
        if not self.count:
            return "no campaign snapshots"
        return (f"{self.count} campaign snapshots, {self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s "
                f"(largest {self.max_bytes / 1e6:.2f} MB, slowest {self.max_seconds * 1000:.1f} ms)")


SNAPSHOT_STATS = SnapshotStats()


class RetirementStats:
    def __init__(self):
        self.retired = self.revived = 0

    def summary(self) -> str:
        return f"{self.retired} campaigns retired, {self.revived} revived"


RETIREMENTS = RetirementStats()


def now_ms() -> int:
    return int(time.time() * 1000)


def dead_letter(ref: str, raw: Optional[bytes], code: str, field_: Optional[str], reason: str, **extra) -> dict:
    """A dead-letter record: reason code, field, reason text, the original payload and where it was read."""
    payload = raw if raw is not None else b""
    rec = {"code": code, "field": field_ or "", "reason": reason, "payload": payload[:MAX_EVENT_BYTES],
           "source": ref, "at": now_ms()}
    if len(payload) > MAX_EVENT_BYTES:
        rec["payload_bytes"] = len(payload)  # kept truncated: an oversized event is rejected as too_large
    rec.update(extra)
    return rec


# ---------------------------------------------------------------- campaign (keyed by campaign)

class CampaignLogic(StatefulBatchLogic):
    """One campaign: its event gate, its `CampaignState`, its frame sequence and the frame pacing.

    Input values ``(route, [(ref, raw), ...])`` (flows.routing). A duplicate marker (raw is
    `flows.routing.DUPLICATE_MARK`: a repeat the ingest path dropped) is counted as a duplicate.
    Each raw event is parsed
    (a rejection is a dead letter), checked against the route (an event naming another
    campaign was misrouted by a raw writer: a dead letter), gated (duplicate: counted; late: counted
    and a dead letter) and applied.

    Output items (keyed by campaign, for the sink):
    - ``("dead", record)`` for every rejected or late event;
    - ``("alert", org, campaign, record)`` for every record of `take_alerts()`, at once;
    - ``("details", org, campaign, details)``: the detail records changed since the
      previous frame (`take_details()`: contacts, attempts, batches, replies, daily
      cells, transcript lines), just before a frame;
    - ``("frame", org, campaign, seq, body_json)``: the `/stats` body after a change,
      at most one per ``frame_interval_ms`` (a change inside the interval is
      sent by `on_notify` at its end), and a heartbeat frame after
      ``heartbeat_ms`` without one. In live mode a heartbeat first moves the
      watermark to the wall clock when no event came for ``quiet_ms``, so rates
      decay and the idle banner appears. `on_eof` sends a pending change.
    ``seq`` counts the campaign's frames from 1 and is kept in the snapshot.
    No frame before the campaign has a watermark (it only saw duplicates).
    """

    def __init__(self, cfg: FlowConfig, resume: Optional[bytes]):
        self.live = not cfg.replay
        self.recovery = cfg.recovery
        self.store = store_for(cfg.recovery_dir) if cfg.recovery and cfg.recovery_dir else None
        self.gate = EventGate(lateness_ms=cfg.lateness_ms)
        self.retire_after = cfg.retire_after_ms / 1000
        self.archive = Archive(cfg.redis_url, self.store) if cfg.retire_after_ms else None
        self.looked_for_archive = resume is not None
        self.min_sample = cfg.min_sample
        self.lateness_ms = cfg.lateness_ms
        self.seal_chunk_rows = cfg.seal_chunk_rows
        self.interval = cfg.frame_interval_ms / 1000
        self.heartbeat = cfg.heartbeat_ms / 1000
        self.quiet = cfg.quiet_ms / 1000
        if resume is None:
            self.state: Optional[CampaignState] = None
            self.seq = 0
            self.dirty = False
            self.last_frame = 0.0  # wall time (s) of the last frame
            self.last_event = 0.0  # wall time (s) of the last applied event
        else:
            loads = self.store.loads if self.store is not None else pickle.loads
            version, self.state, self.seq, self.dirty, self.last_frame, self.last_event, *gate = loads(resume)
            if gate:
                self.gate = gate[0]
            # else release 1: its gate was a step of its own (keyed by org); event ids seen before the
            # upgrade are forgotten (facts still count once: only cost, transcript and callback closes
            # rely on event ids alone). docs/flow.md, "Upgrading".
            if version > STATE_VERSION:
                raise RuntimeError(f"recovery snapshot of state version {version}, newer than this callpulse "
                                   f"({STATE_VERSION}): run the release that wrote it, or start a fresh recovery dir")
            # Frames a crashed run sent after this snapshot used seqs from here on, maybe more than this run
            # will send. Continue from the wall clock in ms instead: a run sends fewer than one frame per ms
            # (one per frame interval), so its seqs stay below the ms at which it died, and every frame after
            # a resume is newer than anything the stream holds (ids <seq>-0), however many crashes came before.
            self.seq = max(self.seq, now_ms())
            st = self.state
            if version < 2 and st is not None:
                # Release 1 (read into the columnar layout by engine.state_upgrade): its keys may have
                # been dropped by the key-layout migration (flows.key_layout), and the contact profiles
                # and trails now live under new keys, so everything it knows is written again.
                if st.lateness_ms is None:
                    st.lateness_ms = cfg.lateness_ms
                st.mark_all_details_dirty()
                self.dirty = True

    def _alerts(self, out: list) -> None:
        st = self.state
        for a in st.take_alerts():
            out.append(("alert", st.org_id, st.campaign_id, a))

    def _frame(self, wall: float, out: list) -> None:
        """Append the campaign's changed detail records, then its next frame (detail first, so a
        client that sees a frame can already read the contacts/calls it reflects)."""
        st = self.state
        details = st.take_details()
        if any(details.values()):
            out.append(("details", st.org_id, st.campaign_id, details))
        self.seq += 1
        self.dirty = False
        self.last_frame = wall
        out.append(("frame", st.org_id, st.campaign_id, self.seq, orjson.dumps(build_snapshot(st))))

    def _revive(self, route: str) -> None:
        """A campaign this step does not hold may have been retired: carry on from its archive."""
        self.looked_for_archive = True
        archived = self.archive.load(route) if self.archive is not None else None
        if archived is None:
            return
        _version, self.state, seq, self.gate = archived
        self.seq = max(seq, now_ms())  # above the frames sent before it retired
        self.last_event = time.time()
        RETIREMENTS.revived += 1

    def _retire_if_over(self, wall: float):
        """DISCARD after archiving a finished, quiet campaign (flows/retirement.py); None to keep it."""
        st = self.state
        if (self.archive is None or self.dirty or st.status not in RETIRING_STATUSES
                or wall - self.last_event < self.retire_after):
            return None
        if not self.archive.save(st.org_id, st.campaign_id, (STATE_VERSION, st, self.seq, self.gate)):
            return None
        RETIREMENTS.retired += 1
        return [], StatefulBatchLogic.DISCARD

    def _new_state(self, org: str, camp: str) -> CampaignState:
        self.state = CampaignState(org, camp, min_sample=self.min_sample, collect_details=True,
                                   lateness_ms=self.lateness_ms, seal_chunk_rows=self.seal_chunk_rows)
        return self.state

    def on_batch(self, values: list):
        if self.state is None and not self.looked_for_archive and values:
            self._revive(values[0][0])
        st = self.state
        gate = self.gate
        applied = False
        out: list = []
        wall_ms = None if not self.live else now_ms()
        for route, entries in values:
            for ref, raw in entries:
                if raw is DUPLICATE_MARK:
                    # A repeat the ingest path dropped (docs/streams.md): counted like the gate's duplicates,
                    # creating the campaign's state if needed, as `callpulse replay` does.
                    if route == UNROUTABLE:
                        out.append(("dead", dead_letter(ref, None, "malformed", None,
                                                        "duplicate marker without a routing field")))
                        continue
                    if st is None:
                        st = self._new_state(*route.split("\x1f", 1))
                    st.note_duplicate()
                    continue
                if raw is None:
                    out.append(("dead", dead_letter(ref, None, "malformed", None, "stream entry has no 'e' field")))
                    continue
                try:
                    ev = parse_event(raw, now_ms=wall_ms)
                except EventRejected as err:
                    out.append(("dead", dead_letter(ref, raw, err.code, err.field, err.reason)))
                    continue
                org, camp = ev["org_id"], ev["campaign_id"]
                if route_key(org, camp) != route:
                    out.append(("dead", dead_letter(ref, raw, "misrouted", "campaign_id",
                                                    "the entry's routing key names another campaign")))
                    continue
                if st is None:
                    st = self._new_state(org, camp)
                verdict = gate.check(ev)
                if verdict == OK:
                    st.apply(ev)
                    applied = True
                elif verdict == DUPLICATE:
                    st.note_duplicate()
                else:
                    st.note_late()
                    wm = gate.watermark((org, camp))
                    out.append(("dead", dead_letter(
                        ref, raw, "late", "ts",
                        f"event ts {ev['ts']} is {wm - ev['ts']} ms behind the campaign's watermark {wm} "
                        f"(lateness bound {gate.lateness_ms} ms)",
                        org_id=org, campaign_id=camp, event_id=ev["event_id"])))
        if st is None:  # nothing but rejected entries so far
            return out, StatefulBatchLogic.RETAIN
        wall = time.time()
        if applied:
            self.last_event = wall
        self.dirty = True
        self._alerts(out)
        if st.now is not None and wall - self.last_frame >= self.interval:
            self._frame(wall, out)
        return out, StatefulBatchLogic.RETAIN

    def on_notify(self):
        st = self.state
        if st is None or st.now is None:
            return [], StatefulBatchLogic.RETAIN
        wall = time.time()
        since = wall - self.last_frame
        out: list = []
        if self.dirty:
            if since < self.interval:
                return out, StatefulBatchLogic.RETAIN
        else:
            retired = self._retire_if_over(wall)
            if retired is not None:
                return retired
            if not self.heartbeat or since < self.heartbeat:
                return out, StatefulBatchLogic.RETAIN
            if self.live and wall - self.last_event >= self.quiet:
                st.advance(int(wall * 1000))  # no-op unless the wall clock is ahead of the watermark
                self._alerts(out)
        self._frame(wall, out)
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self):
        st = self.state
        out: list = []
        if self.dirty and st is not None and st.now is not None:
            self._frame(time.time(), out)
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> Optional[datetime]:
        st = self.state
        if st is None or st.now is None:
            return None
        if self.dirty:
            at = self.last_frame + self.interval
        elif self.heartbeat:
            at = self.last_frame + self.heartbeat
        elif self.archive is not None and st.status in RETIRING_STATUSES:
            at = self.last_event + self.retire_after
        else:
            return None
        return datetime.fromtimestamp(at, timezone.utc)

    def snapshot(self) -> Optional[bytes]:
        if not self.recovery:
            return None
        started = time.perf_counter()
        value = (STATE_VERSION, self.state, self.seq, self.dirty, self.last_frame, self.last_event, self.gate)
        if self.store is not None:
            data = self.store.dumps(value)
        else:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        SNAPSHOT_STATS.record(time.perf_counter() - started, len(data))
        return data


# ---------------------------------------------------------------- the flow

def build_flow(cfg: FlowConfig) -> Dataflow:
    from flows.file_source import NdjsonFileSource
    from flows.redis_sink import RedisSink
    from flows.redis_source import RedisStreamSource

    if cfg.files:
        source = NdjsonFileSource(list(cfg.files), count=cfg.read_count)
    else:
        source = RedisStreamSource(cfg.redis_url, partitions=cfg.partitions, count=cfg.read_count,
                                   idle_ms=cfg.idle_ms, until_drained=cfg.until_drained,
                                   retain_ms=cfg.retain_ms if cfg.recovery else 0)

    flow = Dataflow("callpulse")
    routed = op.input("read", flow, source)  # (route, (route, [(ref, raw), ...])), flows.routing
    out = op.stateful_batch("campaign", routed, lambda resume: CampaignLogic(cfg, resume))
    op.output("redis", out, RedisSink(cfg))
    return flow


def build(redis_url: Optional[str] = None, **kwargs) -> Dataflow:
    """Factory for ``python -m bytewax.run "flows.dataflow:build(replay=True)"``; keywords = `FlowConfig` fields."""
    if redis_url is not None:
        kwargs["redis_url"] = redis_url
    if "files" in kwargs:
        kwargs["files"] = tuple(kwargs["files"])
    return build_flow(FlowConfig(**kwargs))
