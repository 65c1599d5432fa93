"""The production Bytewax dataflow (issue #4): ingest streams -> gate -> campaign state -> Redis.

    read ──> parse ──valid──> gate (keyed by org) ──> route ──campaign──> campaign (keyed by campaign) ──┐
               └──rejected──────────────────────────────┴──late (dead letter)─────────────────────────────┴─> redis

- ``read``: `flows.redis_source.RedisStreamSource` (one partition per ingest
  stream) or, for recorded logs, `flows.file_source.NdjsonFileSource`.
  Items ``(ref, raw)``.
- ``parse``: `engine.events.parse_event` on each item (live mode: the
  ``future`` check against the wall clock; replay: none). A rejection
  becomes a dead letter ``(DL, record)``; a valid event ``(org_id, (ref, raw, ev))``.
- ``gate``: one `engine.gate.EventGate` per org (event_id de-dup is per org,
  SPEC §1; lateness per campaign watermark). Emits the verdict with the event.
- ``route``: re-keys by campaign (``org \\x1f campaign``); a late event also
  yields a dead letter with reason ``late``.
- ``campaign``: one `engine.state.CampaignState` per campaign (`CampaignLogic`):
  ok -> ``apply``, duplicate -> ``note_duplicate``, late -> ``note_late``.
  Emits alerts at once and coalesced frames (see `CampaignLogic`).
- ``redis``: `flows.redis_sink.RedisSink` (idempotent writes).

This is the same two-step engine path as `engine.fold.Fold` (what
`callpulse replay` runs), so a replay of a log through the flow gives the
same bodies. See docs/flow.md for every decision.

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
from engine.state import CampaignState
from flows.chunk_store import store_for

DL = "!dead-letter"  # key of dead-letter items: never an org id or campaign key ('!' is not an id char)
RESUME_SEQ_GAP = 100_000  # frame seqs skipped on a resume: more than ~7 h of frames at 4/s after the last snapshot
SEP = "\x1f"  # campaign key = org_id + SEP + campaign_id (the same separator as the partition hash)
STATE_VERSION = 3  # 3: columnar contacts, sealed attempts, escaped keys; 1 (release 1) is upgraded on resume


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


# ---------------------------------------------------------------- parse

def make_parse(replay: bool):
    def parse_batch(items: list) -> list:
        wall = None if replay else now_ms()
        out = []
        append = out.append
        for ref, raw in items:
            if raw is None:
                append((DL, dead_letter(ref, None, "malformed", None, "stream entry has no 'e' field")))
                continue
            try:
                ev = parse_event(raw, now_ms=wall)
            except EventRejected as err:
                append((DL, dead_letter(ref, raw, err.code, err.field, err.reason)))
            else:
                append((ev["org_id"], (ref, raw, ev)))
        return out

    return parse_batch


def is_valid(item: tuple) -> bool:
    return item[0] != DL


# ---------------------------------------------------------------- gate (keyed by org)

class GateLogic(StatefulBatchLogic):
    """The org's `EventGate`: verdict ok / duplicate / late for each event, in arrival order."""

    def __init__(self, lateness_ms: int, recovery: bool, resume: Optional[bytes]):
        self.recovery = recovery
        self.gate = pickle.loads(resume) if resume is not None else EventGate(lateness_ms=lateness_ms)

    def on_batch(self, values: list):
        gate = self.gate
        out = []
        for ref, raw, ev in values:
            verdict = gate.check(ev)
            org, camp = ev["org_id"], ev["campaign_id"]
            rec = None
            if verdict == LATE:
                wm = gate.watermark((org, camp))
                rec = dead_letter(
                    ref, raw, "late", "ts",
                    f"event ts {ev['ts']} is {wm - ev['ts']} ms behind the campaign's watermark {wm} "
                    f"(lateness bound {gate.lateness_ms} ms)",
                    org_id=org, campaign_id=camp, event_id=ev["event_id"])
            out.append((org + SEP + camp, verdict, ev, rec))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> Optional[bytes]:
        # Bytes, not the live object: Bytewax may pickle the snapshot after later batches ran.
        if not self.recovery:
            return None
        return pickle.dumps(self.gate, protocol=pickle.HIGHEST_PROTOCOL)


def route_batch(items: list) -> list:
    out = []
    append = out.append
    for _org, (ckey, verdict, ev, rec) in items:
        append((ckey, (verdict, ev)))
        if rec is not None:
            append((DL, rec))
    return out


# ---------------------------------------------------------------- campaign (keyed by campaign)

class CampaignLogic(StatefulBatchLogic):
    """One campaign's `CampaignState`, its frame sequence and the frame pacing.

    Output items (keyed by campaign, for the sink):
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
            version, self.state, self.seq, self.dirty, self.last_frame, self.last_event = loads(resume)
            if version > STATE_VERSION:
                raise RuntimeError(f"recovery snapshot of state version {version}, newer than this callpulse "
                                   f"({STATE_VERSION}): run the release that wrote it, or start a fresh recovery dir")
            # Frames sent after that snapshot (before the crash) used seqs from here on: jump past them, so
            # every frame after a resume is newer than anything the stream holds (its ids are <seq>-0).
            self.seq += RESUME_SEQ_GAP
            st = self.state
            if version < 3 and st is not None:
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

    def on_batch(self, values: list):
        st = self.state
        applied = False
        for verdict, ev in values:
            if st is None:
                st = self.state = CampaignState(ev["org_id"], ev["campaign_id"], min_sample=self.min_sample,
                                                collect_details=True, lateness_ms=self.lateness_ms,
                                                seal_chunk_rows=self.seal_chunk_rows)
            if verdict == OK:
                st.apply(ev)
                applied = True
            elif verdict == DUPLICATE:
                st.note_duplicate()
            else:
                st.note_late()
        wall = time.time()
        if applied:
            self.last_event = wall
        self.dirty = True
        out: list = []
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
        else:
            return None
        return datetime.fromtimestamp(at, timezone.utc)

    def snapshot(self) -> Optional[bytes]:
        if not self.recovery:
            return None
        started = time.perf_counter()
        value = (STATE_VERSION, self.state, self.seq, self.dirty, self.last_frame, self.last_event)
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
    raw = op.input("read", flow, source)
    parsed = op.flat_map_batch("parse", raw, make_parse(cfg.replay))
    valid = op.branch("valid", parsed, is_valid)
    gated = op.stateful_batch("gate", valid.trues, lambda resume: GateLogic(cfg.lateness_ms, cfg.recovery, resume))
    routed = op.flat_map_batch("route", gated, route_batch)
    to_campaign = op.branch("late", routed, is_valid)
    frames = op.stateful_batch("campaign", to_campaign.trues, lambda resume: CampaignLogic(cfg, resume))
    writes = op.merge("writes", frames, valid.falses, to_campaign.falses)
    op.output("redis", writes, RedisSink(cfg))
    return flow


def build(redis_url: Optional[str] = None, **kwargs) -> Dataflow:
    """Factory for ``python -m bytewax.run "flows.dataflow:build(replay=True)"``; keywords = `FlowConfig` fields."""
    if redis_url is not None:
        kwargs["redis_url"] = redis_url
    if "files" in kwargs:
        kwargs["files"] = tuple(kwargs["files"])
    return build_flow(FlowConfig(**kwargs))
