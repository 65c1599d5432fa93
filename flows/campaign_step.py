"""The dataflow's one stateful step: a campaign's gate, state, frames and alerts (docs/flow.md).

`CampaignLogic` is the Bytewax logic of the ``campaign`` step, one per
campaign (keyed by route). It takes `CampaignBatch` items and emits
`DeadLetter`, `Alert`, `Details` and `Frame` items for the sink
(`flows.messages`); its recovery snapshot is
``(STATE_VERSION, state, seq, dirty, last_frame, last_event, gate)`` in the recovery format
(engine.storage.recovery_format).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from bytewax.operators import StatefulBatchLogic

from engine.state.campaign import CampaignState
from engine.state.fold import apply_verdict, gate_and_apply
from engine.state.followups import followups_view
from engine.state.gate import LATE, OK, EventGate
from engine.storage.keys import route_key, split_route_key
from engine.storage.recovery_format import decode, encode
from engine.validation.events import MAX_EVENT_BYTES, EventRejected, parse_event
from engine.views.history import history_entry
from engine.views.snapshot import build_snapshot
from flows.chunk_store import store_for
from flows.config import FlowConfig
from flows.messages import (
    DUPLICATE_MARK,
    Alert,
    CampaignBatch,
    CampaignOutput,
    DeadLetter,
    Details,
    Frame,
    Repeat,
)
from flows.retirement import RETIRING_STATUSES, archive_for
from flows.step_stats import RETIREMENTS, SNAPSHOT_STATS

# Detail records piled up between two frames are sent ahead of the frame once there are this many: a
# replay or a list upload can change ~25,000 contacts in one 250 ms frame interval, and building, encoding
# and pipelining all of their records at once is the flow's biggest transient allocation.
DETAIL_FLUSH_ROWS = 2000

# 6: the recovery format (engine.storage.recovery_format: records by stable tag, the state by parts; 1 to 5 were
# pickles naming classes by module path, still read);
# 5: a due column in the contact blocks (the follow-up schedule, engine.state.followups; 4 is read with no due
# times known);
# 4: compliance guards (a guard byte a sealed attempt, contact zone and human-answer columns, the guards'
# counts), complaint windows, 30-day periods (3 is read and completed from its attempts: engine.state.campaign);
# 3: compact sealed rows, byte pass counters, callbacks as JSON (2 is read as is: its pieces carry their
# own layouts); 2: columnar contacts, sealed attempts, the campaign's own gate; 1 (release 1) is upgraded
STATE_VERSION = 6


class StateVersionError(RuntimeError):
    """A recovery snapshot or campaign archive written by a newer callpulse than this one."""


def check_state_version(version, what: str) -> int:
    """The version of a state this callpulse reads (1 to STATE_VERSION); else a `StateVersionError` saying
    what to do."""
    if type(version) is not int or not 1 <= version <= STATE_VERSION:
        raise StateVersionError(
            f"{what} has state version {version!r}; this callpulse reads versions 1 to {STATE_VERSION}. "
            f"Run the callpulse release that wrote it, or start over with a fresh recovery directory "
            f"(docs/operations.md)")
    return version


def now_ms() -> int:
    return int(time.time() * 1000)


def dead_letter(ref: str, raw: bytes | None, code: str, field_: str | None, reason: str, **extra) -> dict:
    """A dead-letter record: reason code, field, reason text, the original payload and where it was read."""
    payload = raw if raw is not None else b""
    rec = {"code": code, "field": field_ or "", "reason": reason, "payload": payload[:MAX_EVENT_BYTES],
           "source": ref, "at": now_ms()}
    if len(payload) > MAX_EVENT_BYTES:
        rec["payload_bytes"] = len(payload)  # kept truncated: an oversized event is rejected as too_large
    rec.update(extra)
    return rec


# ---------------------------------------------------------------- campaign (keyed by campaign)

class CampaignLogic(StatefulBatchLogic[CampaignBatch, CampaignOutput, bytes]):
    """One campaign: its event gate, its `CampaignState`, its frame sequence and the frame pacing.

    Input values: `CampaignBatch` ``(route, [(ref, raw), ...])`` (flows.routing). A duplicate marker
    (raw is `DUPLICATE_MARK`: a repeat the ingest path dropped) is counted as a duplicate.
    Each raw event is parsed
    (a rejection is a dead letter), checked against the route (an event naming another
    campaign was misrouted by a raw writer: a dead letter), gated (duplicate: counted; late: counted
    and a dead letter) and applied.

    Output items (keyed by campaign, for the sink; flows.messages):
    - `DeadLetter` for every rejected or late event;
    - `Alert` for every record of `take_alerts()`, at once;
    - `Details`: the detail records changed since the
      previous frame (`take_details()`: contacts, attempts, batches, replies, daily
      cells, transcript lines), just before a frame;
    - `Frame` ``(org, campaign, seq, body_json, watermark)``: the `/stats` body after a change
      (with the gate's event-time watermark, stored beside it for the ingest late notice),
      at most one per ``frame_interval_ms`` (a change inside the interval is
      sent by `on_notify` at its end), and a heartbeat frame after
      ``heartbeat_ms`` without one. In live mode a heartbeat first moves the
      watermark to the wall clock when no event came for ``quiet_ms``, so rates
      decay and the idle banner appears. `on_eof` sends a pending change.
    ``seq`` counts the campaign's frames from 1 and is kept in the snapshot.
    No frame before the campaign has a watermark (it only saw duplicates).
    """

    def __init__(self, cfg: FlowConfig, resume: bytes | None):
        self.live = not cfg.replay
        self.recovery = cfg.recovery
        self.store = store_for(cfg.recovery_dir) if cfg.recovery and cfg.recovery_dir else None
        self.gate = EventGate(lateness_ms=cfg.lateness_ms)
        self.retire_after = cfg.retire_after_ms / 1000
        self.archive = archive_for(cfg, self.store) if cfg.retire_after_ms else None
        self.looked_for_archive = resume is not None
        self.min_sample = cfg.min_sample
        self.lateness_ms = cfg.lateness_ms
        self.seal_chunk_rows = cfg.seal_chunk_rows
        self.interval = cfg.frame_interval_ms / 1000
        self.heartbeat = cfg.heartbeat_ms / 1000
        self.quiet = cfg.quiet_ms / 1000
        self.followups_sent: tuple[int, int, int] | None = None  # what the last follow-ups view sent was built from (not in the snapshot)
        if resume is None:
            self.state: CampaignState | None = None
            self.seq = 0
            self.dirty = False
            self.last_frame = 0.0  # wall time (s) of the last frame
            self.last_event = 0.0  # wall time (s) of the last applied event
        else:
            loads = self.store.loads if self.store is not None else decode
            version, self.state, self.seq, self.dirty, self.last_frame, self.last_event, *gate = loads(resume)
            check_state_version(version, "the recovery snapshot of a campaign")
            if gate:
                self.gate = gate[0]
            # else release 1: its gate was a step of its own (keyed by org); event ids seen before the
            # upgrade are forgotten (facts still count once: only cost, transcript and callback closes
            # rely on event ids alone). docs/flow.md, "Upgrading".
            # Frames a crashed run sent after this snapshot used seqs from here on, maybe more than this run
            # will send. Continue from the wall clock in ms instead: a run sends fewer than one frame per ms
            # (one per frame interval), so its seqs stay below the ms at which it died, and every frame after
            # a resume is newer than anything the stream holds (ids <seq>-0), however many crashes came before.
            self.seq = max(self.seq, now_ms())
            st = self.state
            if version < 2 and st is not None:
                # Release 1 (read into the columnar layout by engine.state.upgrade): its keys may have
                # been dropped by the key-layout migration (flows.key_layout), and the contact profiles
                # and trails now live under new keys, so everything it knows is written again.
                if st.lateness_ms is None:
                    st.lateness_ms = cfg.lateness_ms
                st.mark_all_details_dirty()
                self.dirty = True

    def _held(self) -> CampaignState:
        """The campaign's state: the steps below run only once the campaign has one."""
        st = self.state
        assert st is not None
        return st

    def _alerts(self, out: list[CampaignOutput]) -> None:
        st = self._held()
        for a in st.take_alerts():
            out.append(Alert(st.org_id, st.campaign_id, a))

    def _details(self, out: list[CampaignOutput]) -> None:
        st = self._held()
        details = st.take_details()
        if details.has_records():
            out.append(Details(st.org_id, st.campaign_id, details))

    def _frame(self, wall: float, out: list[CampaignOutput]) -> None:
        """Append the campaign's changed detail records, then its next frame (detail first, so a
        client that sees a frame can already read the contacts/calls it reflects)."""
        self._details(out)
        st = self._held()
        self.seq += 1
        self.dirty = False
        self.last_frame = wall
        body = build_snapshot(st)
        out.append(Frame(st.org_id, st.campaign_id, self.seq, orjson.dumps(body),
                         self.gate.watermark((st.org_id, st.campaign_id)), history_entry(body), self._followups(st)))

    def _followups(self, st: CampaignState) -> bytes | None:
        """The follow-ups view (engine.state.followups) when its schedule or the watermark's minute moved since the
        last one this step sent, else None: built at most once a minute for a campaign whose follow-ups do not
        change. After a restart the first frame sends it again (the sink's SET overwrites)."""
        sched = st.due_schedule
        mark = (id(sched), sched.changes, (st.now or 0) // 60_000)
        if mark == self.followups_sent:
            return None
        self.followups_sent = mark
        return orjson.dumps(followups_view(st))

    def _revive(self, route: str) -> None:
        """A campaign this step does not hold may have been retired: carry on from its archive."""
        self.looked_for_archive = True
        names = split_route_key(route)
        if names is None or self.archive is None:
            return
        archived = self.archive.load(*names)
        if archived is None:
            return
        version, state, seq, gate = archived
        check_state_version(version, "the archive of retired campaign {}/{}".format(*names))
        self.state, self.gate = state, gate
        self.seq = max(seq, now_ms())  # above the frames sent before it retired
        self.last_event = time.time()
        RETIREMENTS.revived += 1

    def _retire_if_over(self, wall: float):
        """DISCARD after archiving a finished, quiet campaign (flows/retirement.py); None to keep it."""
        st = self._held()
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

    def on_batch(self, values: list[CampaignBatch]):
        if self.state is None and not self.looked_for_archive and values:
            self._revive(values[0][0])
        st = self.state
        gate = self.gate
        applied = False
        out: list[CampaignOutput] = []
        wall_ms = None if not self.live else now_ms()
        for route, entries in values:
            for ref, raw in entries:
                if type(raw) is Repeat:
                    # A repeat the ingest path refused, with its payload (docs/streams.md): a duplicate, or
                    # late again when its first copy was late (as `callpulse replay` judges it). Never applied.
                    st = self._repeat(ref, raw.raw, route, st, out)
                    continue
                if raw is DUPLICATE_MARK:
                    # A marker without its repeat (written before markers carried it): a duplicate,
                    # creating the campaign's state if needed, as `callpulse replay` does.
                    names = split_route_key(route)  # None: UNROUTABLE (flows.routing), or a made-up routing field
                    if names is None:
                        out.append(DeadLetter(dead_letter(ref, None, "malformed", None,
                                                          "duplicate marker without a routing field")))
                        continue
                    if st is None:
                        st = self._new_state(*names)
                    st.note_duplicate()
                    continue
                if raw is None:
                    out.append(DeadLetter(dead_letter(ref, None, "malformed", None, "stream entry has no 'e' field")))
                    continue
                try:
                    ev = parse_event(raw, now_ms=wall_ms)
                except EventRejected as err:
                    out.append(DeadLetter(dead_letter(ref, raw, err.code, err.field, err.reason)))
                    continue
                org, camp = ev["org_id"], ev["campaign_id"]
                if route_key(org, camp) != route:
                    out.append(DeadLetter(dead_letter(ref, raw, "misrouted", "campaign_id",
                                                      "the entry's routing key names another campaign")))
                    continue
                if st is None:
                    st = self._new_state(org, camp)
                verdict = gate_and_apply(gate, st, ev)
                if verdict == OK:
                    applied = True
                elif verdict == LATE:
                    out.append(self._late_letter(ref, raw, ev))
        if st is None:  # nothing but rejected entries so far
            return out, StatefulBatchLogic.RETAIN
        wall = time.time()
        if applied:
            self.last_event = wall
        self.dirty = True
        self._alerts(out)
        if st.now is not None and wall - self.last_frame >= self.interval:
            self._frame(wall, out)
        elif st.collect_details and st.pending_details() >= DETAIL_FLUSH_ROWS:
            self._details(out)  # a burst between two frames (e.g. a list upload): written in slices
        return out, StatefulBatchLogic.RETAIN

    def _repeat(self, ref: str, raw: bytes, route: str, st, out: list):
        """Count a repeat the ingest path refused: duplicate or late (`EventGate.check_repeat`); the state."""
        try:
            ev = parse_event(raw)  # ingest validated it; a marker written by hand may still be bad
        except EventRejected as err:
            out.append(DeadLetter(dead_letter(ref, raw, err.code, err.field, err.reason)))
            return st
        org, camp = ev["org_id"], ev["campaign_id"]
        if route_key(org, camp) != route:
            out.append(DeadLetter(dead_letter(ref, raw, "misrouted", "campaign_id",
                                              "the entry's routing key names another campaign")))
            return st
        if st is None:
            st = self._new_state(org, camp)
        verdict = self.gate.check_repeat(ev)  # never ok: a repeat is not applied
        apply_verdict(st, verdict, ev)
        if verdict == LATE:
            out.append(self._late_letter(ref, raw, ev))
        return st

    def _late_letter(self, ref: str, raw: bytes, ev: dict) -> DeadLetter:
        org, camp = ev["org_id"], ev["campaign_id"]
        wm = self.gate.watermark((org, camp))
        return DeadLetter(dead_letter(
            ref, raw, "late", "ts", f"event ts {ev['ts']} is {wm - ev['ts']} ms behind the campaign's watermark "
                                    f"{wm} (lateness bound {self.gate.lateness_ms} ms)",
            org_id=org, campaign_id=camp, event_id=ev["event_id"]))

    def on_notify(self):
        st = self.state
        if st is None or st.now is None:
            return [], StatefulBatchLogic.RETAIN
        wall = time.time()
        since = wall - self.last_frame
        out: list[CampaignOutput] = []
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
        out: list[CampaignOutput] = []
        if self.dirty and st is not None and st.now is not None:
            self._frame(time.time(), out)
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
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
        return datetime.fromtimestamp(at, UTC)

    def snapshot(self) -> bytes | None:  # type: ignore[override]  # None: recovery off, nothing to keep
        if not self.recovery:
            return None
        started = time.perf_counter()
        value = (STATE_VERSION, self.state, self.seq, self.dirty, self.last_frame, self.last_event, self.gate)
        data = self.store.dumps(value) if self.store is not None else encode(value)
        SNAPSHOT_STATS.record(time.perf_counter() - started, len(data))
        return data
