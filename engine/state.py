"""Per-campaign metric state and its pure, deterministic update.

`CampaignState.apply(event)` takes a validated, normalised event that the
gate (`engine.gate`) let through (not a duplicate event_id, not late).
Every entity touched by an event has its *contribution* to the aggregate
counters retracted, the fact applied, and the contribution added back. The
aggregates therefore always equal what the entities' current facts give,
whatever order the events came in: the result equals the sorted,
de-duplicated fold (SPEC §1 *Order*) without buffering anything.

No I/O and no wall clock: time comes from event `ts` and `advance(now)`.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter

from engine.activity import ACTIVITY_TYPES, activity_source
from engine.alerts import DEFAULT_MIN_SAMPLE, WINDOWS, AlertTracker
from engine.config import ConfigHistory
from engine.contact_table import NO_TS, NONFINAL_CODES, STATUS_CODE, ContactTable
from engine.detail import attempt_patch, attempt_record, batch_record, contact_record, profile_record, reply_record
from engine.entities import OUTCOMES, Attempt, Batch, Message, Pass, fold_callbacks
from engine.events import CONTACT_STATUSES, format_time
from engine.forecast import (FORECAST_WINDOWS, TREND_WINDOW_MS, ForecastAlarm, breach_at, breach_in_s,
                             breach_time_ms, span_ms, within_horizon)
from engine.keys import alert_id
from engine.localtime import day_bounds_of
from engine.measures import CallbackTotals, Latest, Mean
from engine.runs import Runs, runs_of
from engine.sealed import SealedAttempts
from engine.windows import BucketSeries, RollingPair

SECOND, MINUTE, HOUR = 1000, 60_000, 3_600_000
QUARTER_HOUR = 900_000
NEVER = 1 << 62  # a time later than any event's
SEAL_EVERY = MINUTE  # sealing sweeps run when the watermark enters a new minute

# Daily facts are kept per UTC quarter-hour: every current time zone's local
# midnight falls on a quarter-hour, so each bucket lies in one local date of
# whatever zone the campaign uses now (a zone change re-buckets exactly).
DAILY_FIELDS = ("dials", "answered", "connected", "abandoned", "ended",
                "emails_sent", "opened", "replied", "cost_micros")
D_DIALS, D_ANSWERED, D_CONNECTED, D_ABANDONED, D_ENDED, D_SENT, D_OPENED, D_REPLIED, D_COST = range(9)

EMAIL_TYPES = ("email.sent", "email.delivered", "email.bounced", "email.opened",
               "email.clicked", "email.replied", "email.unsubscribed")
ATTEMPT_FACTS = {"call.dialed": "dial", "call.answered": "ans", "call.amd": "amd",
                 "call.bridged": "bridge", "call.ended": "end"}

# Parts of an attempt's contribution, by the facts each one reads (see _attempt_contrib):
P_DIAL = 1  # dial, contact, pass, follow-up: dial counts and series, passes, orphans
P_STATE = 2  # dial, ans, end: active / ringing / in progress
P_ANSWER = 4  # ans, dial: daily answered, ring time
P_BRIDGE = 8  # bridge: connected-per-hour series
P_END = 16  # end and the outcome (decided from ans, amd, bridge, end, threshold), pass connected/ended
P_ALL = 31
SLOT_PARTS = {
    "dial": P_ALL,  # the pass/contact of the end part and the ring time read the dial too
    "ans": P_STATE | P_ANSWER | P_END,
    "amd": P_END,
    "bridge": P_BRIDGE | P_END,
    "end": P_STATE | P_END,
    None: P_ALL,  # re-decide (a threshold change): everything
}


class CampaignState:
    """``lateness_ms``: the gate's lateness bound. When given, the state relies on it (every event it is
    handed is at most that far behind the latest event ts it applied) to seal finished attempts and
    forget tie-breaking event ids (engine.sealed, engine.contact_table); None keeps everything."""

    def __init__(self, org_id: str, campaign_id: str, *, min_sample: int = DEFAULT_MIN_SAMPLE,
                 collect_details: bool = False, lateness_ms: int | None = None, seal_chunk_rows: int = 0):
        self.org_id = org_id
        self.campaign_id = campaign_id
        self.min_sample = min_sample
        self.lateness_ms = lateness_ms
        self.now: int | None = None
        self.max_event_ts: int | None = None  # the gate's watermark (wall-clock ticks move `now` only)
        self.sealed_below = None  # horizon of the last sealing sweep
        self.seal_queue: list[tuple[int, str]] = []  # heap (latest fact ts, attempt_id) of ended attempts
        self.config = ConfigHistory()
        self.status_key = None
        self.status = "draft"

        self.attempts: dict[str, Attempt] = {}  # open attempts (and every attempt without a lateness bound)
        self.sealed = SealedAttempts(seal_chunk_rows)
        self.table = ContactTable()
        self.messages: dict[str, Message] = {}
        self.batches: dict[str, Batch] = {}
        self.batch_ids: list[str] = []  # batch number -> batch_id (the contact table stores numbers)
        self.batch_no: dict[str, int] = {}
        self.passes: dict[int, Pass] = {}
        self.runs = Runs()  # restarts: run table and per-run figures (engine.runs)

        # Aggregates maintained by the contributions.
        self.by_status: Counter = Counter()
        self.retry: Counter = Counter()
        self.nonfinal_by_dialed: Counter = Counter()  # for retries_left
        self.attempts_total = 0
        self.follow_up = 0
        self.active = 0
        self.ringing = 0
        self.in_progress = 0
        self.ended = 0
        self.outcomes: Counter = Counter({o: 0 for o in OUTCOMES})
        self.answered = 0
        self.human = 0
        self.abandoned = 0
        self.ring = Mean()  # ring time (answer - dial) of answered dialed attempts
        self.aht = Mean()  # handle time (end - bridge + wrap) of connected calls
        self.orphan_attempts = 0
        self.orphan_messages = 0
        self.email_counts: Counter = Counter({t: 0 for t in EMAIL_TYPES})
        self.meetings = 0
        self.callbacks = CallbackTotals()
        self.cost_micros = 0
        self.cost_by_category: Counter = Counter()
        self.late = 0
        self.duplicates = 0

        # First/last dial (and send): mins only ever decrease; a latest that a retraction
        # lowers is recomputed from the entities (engine.measures.Latest, refresh_extremes).
        self.first_dial = None
        self.last_dial = Latest()
        self.first_send = None
        self.last_send = Latest()
        self.last_end = Latest()

        # Trailing-window series (1 s grid, kept for the longest 1 s window: 1 h).
        self.dials_1s = BucketSeries(SECOND, 3700)
        self.sends_1s = BucketSeries(SECOND, 3700)
        self.bridged_1s = BucketSeries(SECOND, 3700)
        self.ended_1s = BucketSeries(SECOND, 3700)
        self.ring_1s = BucketSeries(SECOND, 3700, width=2)  # (ring sum, count) by answered ts
        self.daily: dict[int, list[int]] = {}

        # Abandon windows with running totals (alerts are evaluated after every event).
        self.today = RollingPair(MINUTE, None, retain_buckets=26 * 60)
        self.w24h = RollingPair(MINUTE, 24 * 60)
        self.w30d = RollingPair(HOUR, 30 * 24)
        self.day_start = None
        self.day_end = None
        self.day_tz = None
        self.trackers = {w: AlertTracker(w) for w in WINDOWS}
        # (abandoned, human_answered) of the forecast's trend: the trailing 15 min on the 1 s grid
        self.trend = RollingPair(SECOND, TREND_WINDOW_MS // SECOND)
        self.forecast_alarms = {w: ForecastAlarm() for w in FORECAST_WINDOWS}
        # The forecast changes with its inputs (window counts, levels, ceiling, first dial: they mark it
        # stale) and with time alone (the trend's 1 s grid, its span, the `today` horizon): it needs no
        # re-evaluation before `forecast_recheck_at` unless it is stale.
        self.forecast_stale = True
        self.forecast_recheck_at = 0
        self.pending_alerts: list[dict] = []
        self.alerts_dirty = True  # window inputs or the ceiling changed since the last evaluation
        self._minute = None

        # Detail for the contacts/calls endpoints (the flow turns this on and drains it with
        # take_details(); an offline replay leaves it off so nothing accumulates).
        self.collect_details = collect_details
        self.dirty_contacts: set[str] = set()
        self.dirty_attempts: set[str] = set()
        self.dirty_batches: set[str] = set()
        self.dirty_messages: set[str] = set()  # messages with a reply whose record changed
        self.dirty_quarters: set[int] = set()  # daily quarter-hour buckets that changed
        self.transcript_lines: list[dict] = []
        self.profiles: dict[str, dict] = {}  # contact_id -> profile record of its winning contact.added
        self.trail_changes: list[tuple[str, str, int]] = []  # (contact_id, attempt_id, +1 | -1)
        self.sealed_records: list[tuple[bool, dict]] = []  # (is patch, record) of attempts sealed unsent
        self.activity_out: list[dict] = []  # applied campaign/batch events for the activity log (engine.activity)

    def __setstate__(self, d: dict) -> None:
        if "contacts" in d:  # pickled by release 1 (a recovery snapshot from before the contact table)
            from engine.state_upgrade import upgrade

            d = upgrade(d)
        if "ring_sum" in d:  # pickled before the aggregates were value objects (issue #13)
            from engine.state_upgrade import adopt_value_objects

            d = adopt_value_objects(d)
        self.__dict__.update(d)
        if "runs" not in d:  # pickled before runs existed
            runs_of(self)
        if "trend" not in d:  # pickled before the forecast existed
            self.forecast_alarms = {w: ForecastAlarm() for w in FORECAST_WINDOWS}
            self._rebuild_trend()
        self.forecast_stale = True
        self.forecast_recheck_at = 0

    def _rebuild_trend(self) -> None:
        """The trend's buckets from the attempts (open and sealed) that ended in its window."""
        self.trend = RollingPair(SECOND, TREND_WINDOW_MS // SECOND)
        if self.now is None:
            return
        self.trend.advance(self.now)
        lo = self.now - TREND_WINDOW_MS - SECOND
        for a in self.attempts.values():
            if a.end is not None and a.human_at_end and a.end[0] >= lo:
                self.trend.add(a.end[0], 1 if a.outcome == "abandoned" else 0, 1)
        if self.sealed.live:
            from engine.sealed import F_HUMAN, _OUTCOME_CODE

            end, mask, outcome = self.sealed.column("end"), self.sealed.column("mask"), self.sealed.column("outcome")
            rows = self.sealed.live_rows() & (mask & F_HUMAN != 0) & (end >= lo)
            abandoned = _OUTCOME_CODE["abandoned"]
            for ets, o in zip(end[rows].tolist(), outcome[rows].tolist()):
                self.trend.add(ets, 1 if o == abandoned else 0, 1)
        self.__dict__.setdefault("activity_out", [])  # pickled before the activity log

    # ------------------------------------------------------------------ time

    def advance(self, now: int) -> None:
        """Move the watermark forward (events, or live-mode wall-clock ticks) and re-evaluate alerts."""
        self._move_now(now)
        self._evaluate_alerts(now)
        self._evaluate_forecast(now)  # a tick moves the forecast even when no count changed

    def _move_now(self, ts: int) -> None:
        if self.now is not None and ts <= self.now:
            return
        self.now = ts
        if self.trend.advance(ts):
            self.forecast_stale = True  # an end left the trend's window
        minute = ts // MINUTE
        if minute == self._minute:
            return  # windows move on a minute grid at the finest (days and zone offsets are whole minutes)
        self._minute = minute
        self.alerts_dirty = True
        tz = self.config.current.tz
        if self.day_end is None or ts >= self.day_end or tz != self.day_tz:
            self._reset_today(tz)
        self.today.advance(ts)
        self.w24h.advance(ts)
        self.w30d.advance(ts)
        for s in (self.dials_1s, self.sends_1s, self.bridged_1s, self.ended_1s, self.ring_1s):
            s.prune(ts)
        if self.lateness_ms is not None:
            self._seal()

    def _seal(self) -> None:
        """Seal ended attempts whose facts are all behind the horizon (engine.sealed) and forget
        tie-breaking event ids behind it. Changes no figure: only the form the state is kept in."""
        if self.max_event_ts is None:
            return
        horizon = self.max_event_ts - self.lateness_ms
        if self.sealed_below is not None and horizon <= self.sealed_below:
            return
        self.sealed_below = horizon
        dirty = self.dirty_attempts
        index = self.table.index
        queue = self.seal_queue
        while queue and queue[0][0] < horizon:
            ts, aid = heapq.heappop(queue)
            a = self.attempts.get(aid)
            if a is None or a.end is None or a.latest_fact_ts() != ts:
                continue  # sealed already, or a later fact pushed a newer entry
            if aid in dirty:  # its changed record is still owed to the detail sink: build it now
                dirty.discard(aid)
                self.sealed_records.append((a.partial, attempt_patch(aid, a) if a.partial else attempt_record(aid, a)))
            del self.attempts[aid]
            self.sealed.seal(aid, a, index[a.contact] if a.contact is not None else -1)
        self.table.forget_event_ids(horizon)

    def _reset_today(self, tz: str) -> None:
        self.alerts_dirty = True
        self.day_tz = tz
        self.day_start, self.day_end = day_bounds_of(self.now, tz)
        self.today.hi = max(self.today.hi, self.now // MINUTE)
        self.today.set_lo(self.day_start // MINUTE)

    # --------------------------------------------------------------- events

    def apply(self, ev: dict) -> None:
        """Apply one gated event; afterwards re-evaluate alert levels."""
        ts = ev["ts"]
        if self.max_event_ts is None or ts > self.max_event_ts:
            self.max_event_ts = ts
        now = self.now
        if now is None or ts > now:
            if now is not None and ts // MINUTE == self._minute:
                self.now = ts  # same minute: only the 1 s trend window moves (the hot path)
                if self.trend.advance(ts):
                    self.forecast_stale = True
            else:
                self._move_now(ts)
        _HANDLERS[ev["type"]](self, ev, (ts, ev["event_id"]))
        if self.collect_details and ev["type"] in ACTIVITY_TYPES:
            self.activity_out.append(activity_source(ev))  # every applied one: the log is folded at read time
        if self.alerts_dirty:
            self._evaluate_alerts(ts)
            self.forecast_stale = True
        if self.forecast_stale or self.now >= self.forecast_recheck_at:
            self._evaluate_forecast(ts)

    def note_late(self) -> None:
        self.late += 1

    def note_duplicate(self) -> None:
        self.duplicates += 1

    # campaign / batch / pass ------------------------------------------------

    def _campaign_created(self, ev, key):
        self.alerts_dirty = True  # the ceiling may have changed
        old = self.config.current
        self.config.add(key, ev)
        new = self.config.current
        if "abandon_threshold_ms" in ev or "abandon_from" in ev:
            # Outcomes are decided with the rules in effect at each end: redo those after this key.
            for aid, a in self.attempts.items():
                if a.end is not None and a.end > key:
                    self._update_attempt(aid, a, None)  # re-decide only
        if new.tz != old.tz and self.now is not None:
            self._reset_today(new.tz)

    def _campaign_status(self, ev, key):
        if self.status_key is None or key > self.status_key:
            self.status_key, self.status = key, ev["status"]

    def _batch(self, batch_id: str) -> Batch:
        b = self.batches.get(batch_id)
        if b is None:
            b = self.batches[batch_id] = Batch()
            self.batch_no[batch_id] = len(self.batch_ids)
            self.batch_ids.append(batch_id)
        return b

    def _batch_created(self, ev, key):
        self._batch(ev["batch_id"]).exists = True
        if self.collect_details:
            self.dirty_batches.add(ev["batch_id"])

    def _batch_status(self, ev, key):
        b = self._batch(ev["batch_id"])
        if b.status_key is None or key > b.status_key:
            b.status_key, b.status = key, ev["status"]
            if self.collect_details:
                self.dirty_batches.add(ev["batch_id"])

    def _pass(self, n: int) -> Pass:
        p = self.passes.get(n)
        if p is None:
            p = self.passes[n] = Pass()
        return p

    def _pass_started(self, ev, key):
        p = self._pass(ev["pass"])
        if p.eligible_key is None or key > p.eligible_key:
            p.eligible_key, p.eligible = key, ev["eligible"]

    def _run_event(self, ev, key):
        self.runs.apply(ev, key, self.attempts, self.sealed)

    # contacts -----------------------------------------------------------------

    def _contact(self, cid: str) -> int:
        """The contact's row in the table (a new contact is added, status pending)."""
        row = self.table.index.get(cid)
        if row is None:
            row = self.table.add(cid)
            self._contact_contrib(row, 1)
        if self.collect_details:
            self.dirty_contacts.add(cid)
        return row

    def _contact_contrib(self, row: int, s: int) -> None:
        t = self.table
        code = t.status[row]
        st = CONTACT_STATUSES[code]
        self.by_status[st] += s
        bn = t.batch[row]
        b = self.batches[self.batch_ids[bn]] if bn >= 0 else None
        if b is not None:
            b.by_status[st] += s
            if self.collect_details:
                self.dirty_batches.add(self.batch_ids[bn])
        if st == "retrying":
            self.retry[t.retry[row]] += s
            if b is not None:
                b.retry[t.retry[row]] += s
        if code in NONFINAL_CODES:
            self.nonfinal_by_dialed[t.dialed[row]] += s

    def _contact_added(self, ev, key):
        cid = ev["contact_id"]
        row = self._contact(cid)
        t = self.table
        batch_id = ev.get("batch_id")
        if batch_id is not None:
            self._batch(batch_id).exists = True  # named by a contact, even by a superseded fact
            if self.collect_details:
                self.dirty_batches.add(batch_id)
        current = t.added_key(row)
        if current is not None:
            self.duplicates += 1
            if key > current:
                return
        self._contact_contrib(row, -1)
        t.added_ts[row] = key[0]
        t.added_eid[row] = key[1]
        t.batch[row] = self.batch_no[batch_id] if batch_id is not None else -1
        self._contact_contrib(row, 1)
        if self.collect_details:
            self.profiles[cid] = profile_record(ev)

    def _contact_status(self, ev, key):
        row = self._contact(ev["contact_id"])
        t = self.table
        current = t.status_key(row)
        if current is not None and key < current:
            return
        self._contact_contrib(row, -1)
        t.status_ts[row] = key[0]
        t.status_eid[row] = key[1]
        t.status[row] = STATUS_CODE[ev["status"]]
        t.retry[row] = ev.get("retry_number") or 0
        self._contact_contrib(row, 1)

    def _meeting_booked(self, ev, key):
        row = self._contact(ev["contact_id"])
        if self.table.meeting[row]:
            self.duplicates += 1
        else:
            self.table.meeting[row] = 1
            self.meetings += 1

    # callbacks ----------------------------------------------------------------

    def _callback(self, ev, key):
        row = self._contact(ev["contact_id"])
        t = self.table
        kind = ev["type"][9:]  # callback.<kind>
        events = t.callback_events.get(row)
        if events is None:
            events = t.callback_events[row] = []
        due = ev.get("due_at")
        if kind == "requested":
            for i, (k, kd, d) in enumerate(events):
                if kd == "requested" and d == due:  # one fact per (contact, due_at)
                    self.duplicates += 1
                    if key > k:
                        return
                    del events[i]
                    break
        bisect.insort(events, (key, kind, due))
        new = fold_callbacks(events)
        old = t.callback_contrib.get(row, (0, 0, 0, 0, 0, 0))
        t.callback_contrib[row] = new
        self.callbacks.replace(old, new)

    # attempts -----------------------------------------------------------------

    def _attempt_event(self, ev, key):
        aid = ev["attempt_id"]
        a = self.attempts.get(aid)
        fresh = a is None
        t = ev["type"]
        slot = ATTEMPT_FACTS.get(t)
        if t == "call.dialed":
            self._contact(ev["contact_id"])  # naming a contact creates it, even in a superseded fact
        if fresh:
            row = self.sealed.find(aid) if self.sealed.live else None
            if row is not None:
                if t == "call.transcript" or (slot is not None and self.sealed.has_fact(row, slot)):
                    if slot is not None:
                        self.duplicates += 1  # a later copy of a fact it has: a no-op (the earliest counts)
                    elif self.collect_details:
                        self.transcript_lines.append({"attempt_id": aid, "event_id": ev["event_id"],
                                                      "ts": ev["ts"], "role": ev["role"], "content": ev["content"]})
                    return
                a = self.attempts[aid] = self.sealed.unseal(row, self.table.names)
                fresh = False
            else:
                a = self.attempts[aid] = Attempt()
        if slot is not None:
            current = getattr(a, slot)
            if current is not None:
                self.duplicates += 1
                if key > current:
                    return
            self._update_attempt(aid, a, slot, ev, key, fresh=fresh)
            return
        if fresh:
            self.orphan_attempts += 1  # exists (transcript, evaluation) but has no call.dialed yet
        if t == "conversation.evaluated":
            if a.eval_key is None or key > a.eval_key:
                a.eval_key, a.eval_results = key, ev["results"]
                if a.end is not None and self.lateness_ms is not None:
                    heapq.heappush(self.seal_queue, (a.latest_fact_ts(), aid))
                if self.collect_details:
                    self.dirty_attempts.add(aid)
        elif t == "call.transcript" and self.collect_details:
            # Not metric state: passed through once to the detail sink (keyed by event_id there).
            self.transcript_lines.append({"attempt_id": aid, "event_id": ev["event_id"], "ts": ev["ts"],
                                          "role": ev["role"], "content": ev["content"]})

    @staticmethod
    def _set_fact(a: Attempt, slot: str, ev: dict, key: tuple) -> None:
        setattr(a, slot, key)
        if slot == "dial":
            a.contact = ev["contact_id"]
            a.pass_no = ev.get("pass", 1)
            a.follow_up = ev.get("follow_up", False)
            a.phone_number = ev.get("phone_number")
        elif slot == "amd":
            a.amd_result = ev["result"]
        elif slot == "end":
            a.sip = ev.get("sip_code")
            a.wrap = ev.get("wrap_ms", 0)
            a.conversation_id = ev.get("conversation_id")
            a.recording_url = ev.get("recording_url")

    def _update_attempt(self, aid: str, a: Attempt, slot: str | None, ev: dict | None = None, key=None,
                        fresh: bool = False) -> None:
        """Retract the parts of the attempt's contribution that depend on fact ``slot``, set the fact,
        decide the outcome, add those parts back (``slot`` None: re-decide, every part).
        A ``fresh`` attempt has contributed nothing yet, so there is nothing to retract."""
        parts = SLOT_PARTS[slot]
        old_contact = a.contact if a.dial is not None else None
        if not fresh:
            self._attempt_contrib(a, -1, parts)
        elif not parts & P_DIAL:
            self.orphan_attempts += 1  # the dial part of a dial-less attempt: counted as orphaned
        if slot is not None:
            self._set_fact(a, slot, ev, key)
        if parts & P_DIAL:
            new_contact = a.contact if a.dial is not None else None
            if old_contact != new_contact:
                self._move_attempt_between_contacts(aid, old_contact, new_contact)
        if self.collect_details:
            self.dirty_attempts.add(aid)
        if parts & P_END and not a.partial:  # an unsealed attempt keeps the outcome decided at its end
            if a.end is not None:
                a.decide(*self.config.rules_at(a.end))
            else:
                a.decide(0)
        self._attempt_contrib(a, 1, parts)
        if a.end is not None and self.lateness_ms is not None and slot is not None:
            heapq.heappush(self.seal_queue, (a.latest_fact_ts(), aid))

    def _move_attempt_between_contacts(self, aid: str, old_contact, new_contact) -> None:
        t = self.table
        for cid, d in ((old_contact, -1), (new_contact, 1)):
            if cid is None:
                continue
            row = t.index[cid]
            self._contact_contrib(row, -1)
            t.dialed[row] += d
            self._contact_contrib(row, 1)
            if self.collect_details:
                self.dirty_contacts.add(cid)
                self.trail_changes.append((cid, aid, d))

    def _daily(self, ts: int, field: int, s: int) -> None:
        q = ts // QUARTER_HOUR
        cell = self.daily.get(q)
        if cell is None:
            cell = self.daily[q] = [0] * len(DAILY_FIELDS)
        cell[field] += s
        if self.collect_details:
            self.dirty_quarters.add(q)

    def _attempt_contrib(self, a: Attempt, s: int, parts: int = P_ALL) -> None:
        """Add (s=1) or retract (s=-1) the selected parts of an attempt's contribution.

        Each part reads only the facts named in SLOT_PARTS, so setting one fact needs to redo
        only the parts that read it (an AMD result before the end touches nothing)."""
        dial, ans, end = a.dial, a.ans, a.end
        if dial is not None:
            self.runs.contrib(a, s, parts & P_DIAL, parts & P_ANSWER, parts & P_END)
        if parts & P_DIAL:
            if dial is not None:
                dts = dial[0]
                self.attempts_total += s
                if a.follow_up:
                    self.follow_up += s
                self.dials_1s.add1(dts, s)
                self._daily(dts, D_DIALS, s)
                if s > 0:
                    if self.first_dial is None or dts < self.first_dial:
                        self.first_dial = dts
                        self.forecast_stale = True  # the trend's span starts at the first dial
                self.last_dial.count(dts, s)
                p = self._pass(a.pass_no)
                p.add_dial(self.table.index[a.contact], s)
                if s > 0:
                    if p.started is None or dts < p.started:
                        p.started = dts
                elif dts == p.started:
                    p.stale = True
            else:
                self.orphan_attempts += s
        if parts & P_STATE:
            if end is None:
                if dial is not None:
                    self.active += s
                    if ans is None:
                        self.ringing += s
                if ans is not None:
                    self.in_progress += s
        if parts & P_ANSWER and ans is not None:
            ats = ans[0]
            self._daily(ats, D_ANSWERED, s)
            if dial is not None:
                ring = ats - dial[0]
                self.ring.add(ring, s)
                self.ring_1s.add(ats, (s * ring, s))
        if parts & P_BRIDGE and a.bridge is not None:
            self.bridged_1s.add1(a.bridge[0], s)
        if not parts & P_END or end is None:
            return
        ets = end[0]
        o = a.outcome
        self.ended += s
        self.outcomes[o] += s
        self.ended_1s.add1(ets, s)
        self._daily(ets, D_ENDED, s)
        self.last_end.count(ets, s)
        if a.answered_at_end:
            self.answered += s
        if a.human_at_end:
            ab = s if o == "abandoned" else 0
            self.alerts_dirty = True
            self.human += s
            self.abandoned += ab
            self.today.add(ets, ab, s)
            self.w24h.add(ets, ab, s)
            self.w30d.add(ets, ab, s)
            self.trend.add(ets, ab, s)
        if o == "abandoned":
            self._daily(ets, D_ABANDONED, s)
        elif o == "connected":
            self._daily(ets, D_CONNECTED, s)
            self.aht.add(ets - a.bridge[0] + a.wrap, s)
        if dial is not None:
            p = self.passes[a.pass_no]
            if o == "connected":
                p.add_connect(self.table.index[a.contact], s)
            if s > 0:
                if p.ended is None or ets > p.ended:
                    p.ended = ets
            elif ets == p.ended:
                p.stale = True

    # email ---------------------------------------------------------------------

    def _email_event(self, ev, key):
        mid = ev["message_id"]
        m = self.messages.get(mid)
        if m is None:
            m = self.messages[mid] = Message()
        t = ev["type"]
        if t == "email.sent":
            self._contact(ev["contact_id"])
        current = m.keys.get(t)
        if current is not None:
            self.duplicates += 1
            if key > current:
                return
        self._message_contrib(m, -1)
        m.keys[t] = key
        if t == "email.sent":
            m.contact = ev["contact_id"]
        elif t == "email.replied":
            m.reply = {k: ev.get(k) for k in ("sentiment", "preview", "name", "company", "from_email")}
            m.reply["ts"] = key[0]
        self._message_contrib(m, 1)
        if self.collect_details and m.reply is not None:
            self.dirty_messages.add(mid)

    def _message_contrib(self, m: Message, s: int) -> None:
        keys = m.keys
        if not keys:
            return
        for t, k in keys.items():
            self.email_counts[t] += s
        sent = keys.get("email.sent")
        if sent is None:
            self.orphan_messages += s
        else:
            sts = sent[0]
            self.sends_1s.add1(sts, s)
            self._daily(sts, D_SENT, s)
            if s > 0:
                if self.first_send is None or sts < self.first_send:
                    self.first_send = sts
                    self.forecast_stale = True
            self.last_send.count(sts, s)
        opened = keys.get("email.opened")
        if opened is not None:
            self._daily(opened[0], D_OPENED, s)
        replied = keys.get("email.replied")
        if replied is not None:
            self._daily(replied[0], D_REPLIED, s)

    # costs ---------------------------------------------------------------------

    def _cost(self, ev, key):
        micros = ev["usd_micros"]
        self.cost_micros += micros
        self.cost_by_category[ev["category"]] += micros
        self._daily(key[0], D_COST, micros)

    # alerts --------------------------------------------------------------------

    def window_counts(self) -> dict[str, tuple[int, int]]:
        return {
            "lifetime": (self.abandoned, self.human),
            "today": (self.today.a, self.today.h),
            "24h": (self.w24h.a, self.w24h.h),
            "30d": (self.w30d.a, self.w30d.h),
        }

    def _evaluate_alerts(self, at: int) -> None:
        if not self.alerts_dirty:
            return  # same inputs from the same levels give the same levels
        self.alerts_dirty = False
        ceiling = self.config.current.ceiling
        for window, (a, h) in self.window_counts().items():
            tracker = self.trackers[window]
            change = tracker.evaluate(a, h, ceiling, self.min_sample)
            if change is None:
                continue
            self.pending_alerts.append({
                "alert_id": alert_id(self.org_id, self.campaign_id, window, tracker.changes),
                "kind": "level",
                "campaign_id": self.campaign_id,
                "org_id": self.org_id,
                "window": window,
                "from": change[0],
                "to": change[1],
                "rate": a / h if h else 0.0,
                "abandoned": a,
                "human_answered": h,
                "ceiling": float(self.config.current.abandon_ceiling),
                "at": format_time(at),
            })

    def first_dial_ts(self) -> int | None:
        """The campaign's earliest dial (for an email campaign, its earliest dial or send)."""
        if self.config.current.channel == "email" and self.first_send is not None:
            return self.first_send if self.first_dial is None else min(self.first_dial, self.first_send)
        return self.first_dial

    def breach_times(self) -> dict[str, tuple[int, int] | None]:
        """Exact t* (ms) of the forecast per window, None when no breach is forecast within its horizon."""
        now = self.now
        t_ms = span_ms(now, self.first_dial_ts())
        today, w30d, trackers = self.today, self.w30d, self.trackers
        key = (self.trend.a, self.trend.h, t_ms, today.a, today.h, trackers["today"].level,
               w30d.a, w30d.h, trackers["30d"].level, self.config.current.ceiling, self.min_sample)
        cache = self.__dict__.get("_breach_cache")
        if cache is None or cache[0] != key:  # t* depends on these only; the horizon on now too
            a, h, ceiling = key[0], key[1], key[9]
            cache = self._breach_cache = (key, {
                "today": breach_time_ms(key[5] == "breach", key[3], key[4], a, h, t_ms, ceiling, self.min_sample),
                "30d": breach_time_ms(key[8] == "breach", key[6], key[7], a, h, t_ms, ceiling, self.min_sample),
            })
        raw = cache[1]
        return {"today": within_horizon("today", raw["today"], now, self.day_end),
                "30d": within_horizon("30d", raw["30d"], now, self.day_end)}

    def _evaluate_forecast(self, at: int) -> None:
        """Raise a forecast alert when a window's breach first comes within 15 minutes (SPEC §3)."""
        alarms = self.forecast_alarms
        if alarms["today"].armed and alarms["30d"].armed and (
                # No trend: a breach is forecast only for a window breached now (t* = 0, which does
                # not fire); a window under min_sample never reaches it, one above it is not over the
                # ceiling. Both breached: t* = 0 in both. Only a count or level change alters that.
                self.trend.h == 0
                or self.trackers["today"].level == "breach" and self.trackers["30d"].level == "breach"):
            self.forecast_stale = False
            self.forecast_recheck_at = NEVER
            return
        times = self.breach_times()
        self._plan_forecast_recheck()
        for window, t_star in times.items():
            in_breach = self.trackers[window].level == "breach"
            if not alarms[window].update(t_star, in_breach):
                continue
            a, h = (self.today.a, self.today.h) if window == "today" else (self.w30d.a, self.w30d.h)
            self.pending_alerts.append({
                "alert_id": alert_id(self.org_id, self.campaign_id, f"forecast-{window}", alarms[window].fired),
                "kind": "forecast",
                "campaign_id": self.campaign_id,
                "org_id": self.org_id,
                "window": window,
                "breach_in_s": breach_in_s(t_star),
                "breach_at": format_time(breach_at(t_star, self.now)),
                "rate": a / h if h else 0.0,
                "abandoned": a,
                "human_answered": h,
                "ceiling": float(self.config.current.abandon_ceiling),
                "at": format_time(at),
            })

    def _plan_forecast_recheck(self) -> None:
        """When, with no input changed (a change marks the forecast stale, and so does an end leaving
        the trend's window), the forecast can next differ: at the next ms while the trend's span still
        grows (the first 15 minutes of dialing), or when `today`'s breach_at reaches local midnight."""
        now = self.now
        self.forecast_stale = False
        first = self.first_dial_ts()
        if first is not None and now - first < TREND_WINDOW_MS:
            self.forecast_recheck_at = now + 1
            return
        recheck = NEVER
        cache = self.__dict__.get("_breach_cache")
        raw = cache[1]["today"] if cache is not None else None
        if raw is not None and self.day_end is not None:
            recheck = min(recheck, self.day_end - -(-raw[0] // raw[1]))
        self.forecast_recheck_at = max(recheck, now + 1)

    def take_details(self) -> dict:
        """Detail records changed since the last call (see docs/flow.md): contacts, attempts,
        batches, replies, daily quarter-hour cells ``{q: [9 counters]}``, and new transcript lines."""
        t = self.table
        out = {
            "contacts": [contact_record(cid, t, t.index[cid]) for cid in sorted(self.dirty_contacts)],
            "profiles": [self.profiles[cid] for cid in sorted(self.profiles)],
            "trail": self.trail_changes,
            "attempts": [],
            "attempt_patches": [],
            "batches": [batch_record(bid, self.batches[bid]) for bid in sorted(self.dirty_batches)
                        if self.batches[bid].exists],
            "replies": [reply_record(mid, self.messages[mid]) for mid in sorted(self.dirty_messages)],
            "daily": {q: list(self.daily.get(q) or [0] * len(DAILY_FIELDS)) for q in sorted(self.dirty_quarters)},
            "transcripts": self.transcript_lines,
            "activity": self.activity_out,
        }
        for is_patch, rec in self.sealed_records:
            out["attempt_patches" if is_patch else "attempts"].append(rec)
        self.sealed_records = []
        for aid in sorted(self.dirty_attempts):
            a = self.attempts[aid]
            if a.partial:
                out["attempt_patches"].append(attempt_patch(aid, a))
            else:
                out["attempts"].append(attempt_record(aid, a))
        self.transcript_lines = []
        self.activity_out = []
        self.profiles = {}
        self.trail_changes = []
        self.dirty_contacts, self.dirty_attempts, self.dirty_batches = set(), set(), set()
        self.dirty_messages, self.dirty_quarters = set(), set()
        return out

    def mark_all_details_dirty(self) -> None:
        """Make the next `take_details` return every detail record (a rewrite of the derived keys)."""
        if not self.collect_details:
            return
        self.dirty_contacts = set(self.table.index)
        self.dirty_attempts = set(self.attempts)
        self.dirty_batches = set(self.batches)
        self.dirty_messages = {mid for mid, m in self.messages.items() if m.reply is not None}
        self.dirty_quarters = set(self.daily)
        self.activity_out = [activity_source(ev) for ev in self.config.events]  # status history is not kept

    def take_alerts(self) -> list[dict]:
        """Alert records produced since the last call (the caller publishes them)."""
        out, self.pending_alerts = self.pending_alerts, []
        return out

    # stale maxima ------------------------------------------------------------

    def refresh_extremes(self) -> None:
        """Recompute maxima that a retraction lowered (rare: an earlier duplicate fact arrived late)."""
        if self.last_dial.stale:
            dials = [a.dial[0] for a in self.attempts.values() if a.dial is not None]
            self.last_dial.recomputed(_max_with(max(dials, default=None), self._sealed_max("dial")))
        if self.last_send.stale:
            sends = [m.keys["email.sent"][0] for m in self.messages.values() if "email.sent" in m.keys]
            self.last_send.recomputed(max(sends, default=None))
        if self.last_end.stale:
            ends = [a.end[0] for a in self.attempts.values() if a.end is not None]
            self.last_end.recomputed(_max_with(max(ends, default=None), self._sealed_max("end")))
        stale = [n for n, p in self.passes.items() if p.stale]
        if stale:
            for n in stale:
                p = self.passes[n]
                p.started = p.ended = None
                p.stale = False
            for a in self.attempts.values():
                if a.dial is None or a.pass_no not in stale:
                    continue
                p = self.passes[a.pass_no]
                if p.started is None or a.dial[0] < p.started:
                    p.started = a.dial[0]
                if a.end is not None and (p.ended is None or a.end[0] > p.ended):
                    p.ended = a.end[0]
            if self.sealed.live:
                self._refresh_passes_from_sealed(stale)

    def _sealed_max(self, column: str):
        """Largest ts in a column of the live sealed attempts (None when none has that fact)."""
        if not self.sealed.live:
            return None
        col = self.sealed.column(column)[self.sealed.live_rows()]
        col = col[col != NO_TS]
        return int(col.max()) if len(col) else None

    def _refresh_passes_from_sealed(self, stale: list[int]) -> None:
        sealed = self.sealed
        live = sealed.live_rows()
        pass_no, dial, end = sealed.column("pass_no"), sealed.column("dial"), sealed.column("end")
        for n in stale:
            p = self.passes[n]
            rows = live & (pass_no == n) & (dial != NO_TS)
            if rows.any():
                first = int(dial[rows].min())
                if p.started is None or first < p.started:
                    p.started = first
                ends = end[rows]
                ends = ends[ends != NO_TS]
                if len(ends) and (p.ended is None or int(ends.max()) > p.ended):
                    p.ended = int(ends.max())


def _max_with(a, b):
    return b if a is None else a if b is None else max(a, b)


_HANDLERS = {
    "campaign.created": CampaignState._campaign_created,
    "campaign.status": CampaignState._campaign_status,
    "batch.created": CampaignState._batch_created,
    "batch.status": CampaignState._batch_status,
    "pass.started": CampaignState._pass_started,
    "campaign.run_started": CampaignState._run_event,
    "campaign.run_cancelled": CampaignState._run_event,
    "contact.added": CampaignState._contact_added,
    "contact.status": CampaignState._contact_status,
    "meeting.booked": CampaignState._meeting_booked,
    "callback.requested": CampaignState._callback,
    "callback.completed": CampaignState._callback,
    "callback.cancelled": CampaignState._callback,
    "cost.incurred": CampaignState._cost,
}
for _t in ("call.dialed", "call.answered", "call.amd", "call.bridged", "call.ended",
           "call.transcript", "conversation.evaluated"):
    _HANDLERS[_t] = CampaignState._attempt_event
for _t in EMAIL_TYPES:
    _HANDLERS[_t] = CampaignState._email_event
