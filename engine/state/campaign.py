"""Per-campaign metric state and its pure, deterministic update.

`CampaignState.apply(event)` takes a validated, normalised event that the
gate (`engine.state.gate`) let through (not a duplicate event_id, not late).
Every entity touched by an event has its *contribution* to the aggregate
counters retracted, the fact applied, and the contribution added back. The
aggregates therefore always equal what the entities' current facts give,
whatever order the events came in: the result equals the sorted,
de-duplicated fold (SPEC §1 *Order*) without buffering anything.

No I/O and no wall clock: time comes from event `ts` and `advance(now)`.

This module holds the state's attributes, the watermark and sealing, and the event dispatch; each
concern's handlers and contributions live in a mixin of its own (engine.state.contacts,
state_attempts, state_email, state_alerts, state_details, state_extremes), and its aggregates in the
value objects of engine.state.measures. All of them share this one object's attributes, so a recovery
snapshot pickles one flat ``__dict__`` as before.
"""

from __future__ import annotations

import heapq
from collections import Counter

from engine.compliance.forecast import ForecastAlarm
from engine.compliance.guards import ComplianceGuards
from engine.compliance.levels import DEFAULT_MIN_SAMPLE, AlertTracker
from engine.localtime import day_bounds_of
from engine.state.agents import AgentFacts
from engine.state.alert_levels import AlertsAndForecast
from engine.state.attempts import AttemptFacts
from engine.state.config import ConfigHistory
from engine.state.contacts import ContactFacts
from engine.state.details import DetailRecords
from engine.state.email import EmailFacts
from engine.state.entities import Attempt, Batch, Message, Pass, pack_batches, unpack_batches
from engine.state.extremes import StaleExtremes
from engine.state.followups import DueSchedule
from engine.state.grid import HOUR, MINUTE, SECOND
from engine.state.measures import CallbackTotals, Latest
from engine.state.runs import Runs, runs_of
from engine.state.upgrade import adopt_value_objects, upgrade
from engine.state.windows import RollingPair
from engine.storage.contact_table import NO_TS, ContactTable
from engine.storage.sealed import SealedAttempts
from engine.storage.sealed_layouts import latest_fact_ts
from engine.storage.sealed_messages import SealedMessages
from engine.views.activity import ACTIVITY_TYPES, activity_source
from engine.vocab import COMPLAINT_WINDOWS, EMAIL_TYPES, FORECAST_WINDOWS


class CampaignState(ContactFacts, AttemptFacts, EmailFacts, AlertsAndForecast, ComplianceGuards, DetailRecords,
                    StaleExtremes, AgentFacts):
    """``lateness_ms``: the gate's lateness bound. When given, the state relies on it (every event it is
    handed is at most that far behind the latest event ts it applied) to seal finished attempts and
    forget tie-breaking event ids (engine.storage.sealed, engine.storage.contact_table); None keeps everything."""

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
        self.message_seal_queue: list[tuple[int, str]] = []  # heap (latest fact ts, message_id)
        self.config = ConfigHistory()
        self.status_key = None
        self.status = "draft"

        self.attempts: dict[str, Attempt] = {}  # open attempts (and every attempt without a lateness bound)
        self.sealed = SealedAttempts(seal_chunk_rows)
        self.table = ContactTable(seal_chunk_rows)  # tiny chunks in tests: tiny contact blocks too
        self.messages: dict[str, Message] = {}  # open messages (and every message without a lateness bound)
        self.sealed_messages = SealedMessages(seal_chunk_rows)
        self.batches: dict[str, Batch] = {}
        self.batch_ids: list[str] = []  # batch number -> batch_id (the contact table stores numbers)
        self.batch_no: dict[str, int] = {}
        self.passes: dict[int, Pass] = {}
        self.runs = Runs()  # restarts: run table and per-run figures (engine.state.runs)

        # Aggregates maintained by the contributions.
        self.by_status: Counter = Counter()
        self.retry: Counter = Counter()
        self.nonfinal_by_dialed: Counter = Counter()  # for retries_left
        self.due_schedule = DueSchedule()  # follow-ups and retries by due minute (derived from the table on load)
        self._init_attempt_totals()
        self.email_counts: Counter = Counter({t: 0 for t in EMAIL_TYPES})
        self.meetings = 0
        self.callbacks = CallbackTotals()
        self.cost_micros = 0
        self.cost_by_category: Counter = Counter()
        self.late = 0
        self.duplicates = 0

        # First/last dial (and send): mins only ever decrease; a latest that a retraction
        # lowers is recomputed from the entities (engine.state.measures.Latest, refresh_extremes).
        self.first_dial = None
        self.last_dial = Latest()
        self.first_send = None
        self.last_send = Latest()
        self.last_end = Latest()

        self._init_series()
        self._init_alerts()
        # Pacing's E (engine.compliance.forecast): the contacts in a non-final status, and F_h, the human-answered ended
        # attempts of the contacts in a final status.
        self.open_contacts = 0
        self.final_human = 0
        # Compliance guards (engine.compliance.guards): counts, last violating dial, the abandoned ends of each
        # contact with one, the alerts raised per kind, the alerts this event decided.
        self.ch_violations = 0
        self.ch_last = Latest()
        self.ar_violations = 0
        self.ar_last = Latest()
        self.abandon_ends: dict[int, list[int]] = {}
        self.guard_alerts = {"calling_hours": 0, "abandon_redial": 0}
        self.guard_queue: list[tuple] = []
        self.guards_touched: list[tuple] = []  # (contact id, row, abandoned end, ±1) of this update
        # Derived from the open attempts (not pickled): the open dialed attempts of each contact, and the
        # callers waiting for an agent.
        self.open_by_contact: dict[str, list[str]] = {}
        self.waiting: dict = {}
        # 30-day periods from the first dial: {period: [abandoned, human]}, bucketed from `period_origin`.
        self.period_origin = None
        self.periods: dict[int, list[int]] = {}

        self._init_details(collect_details)
        self._init_agents()

    def __getstate__(self) -> dict:
        d = self.__dict__.copy()
        d["batches"] = pack_batches(self.batches)
        del d["open_by_contact"], d["waiting"]  # derived from the open attempts on load
        d.pop("due_schedule", None)  # derived from the contact table on load
        return d

    def __setstate__(self, d: dict) -> None:
        if isinstance(d.get("batches"), bytes):
            d["batches"] = unpack_batches(d["batches"])
        if "contacts" in d:  # pickled by release 1 (a recovery snapshot from before the contact table)
            d = upgrade(d)
        if "ring_sum" in d:  # pickled before the aggregates were value objects (issue #13)
            d = adopt_value_objects(d)
        self.__dict__.update(d)
        if "sealed_messages" not in d:  # pickled before messages were sealed: queue them all for sealing
            self.sealed_messages = SealedMessages(self.sealed.chunk_rows)
            # (whatever the lateness bound: a release-1 state gets it from the flow after the load)
            self.message_seal_queue = sorted((latest_fact_ts(m), mid) for mid, m in self.messages.items() if m.keys)
        if "runs" not in d:  # pickled before runs existed
            runs_of(self)
        if "trend" not in d:  # pickled before the forecast existed
            self.forecast_alarms = {w: ForecastAlarm() for w in FORECAST_WINDOWS}
            self._rebuild_trend()
        self.forecast_stale = True
        self.forecast_recheck_at = 0
        self.forecast_reads_e = True  # (evaluated at the next event)
        self.__dict__.setdefault("complaints_dirty", True)
        self.config.current = self.config.resolve()  # (a configuration pickled before newer fields)
        self.due_schedule = DueSchedule.of_table(self.table)
        self.open_by_contact, self.waiting = {}, {}
        for aid, a in self.attempts.items():
            if a.dial is not None:
                self.open_by_contact.setdefault(a.contact, []).append(aid)
            self._note_waiting(aid, a)
        if "agents" not in d:  # written before agents existed (its attempts name none)
            self._init_agents()
        if "abandon_ends" not in d:  # pickled before the compliance guards, complaints and periods
            self.complaints_30d = RollingPair(HOUR, 30 * 24)
            self.complaint_trackers = {w: AlertTracker(w) for w in COMPLAINT_WINDOWS}
            self.email_counts["email.complained"] = 0
            self._rebuild_complaints()
            self.ch_violations = self.ar_violations = 0
            self.ch_last, self.ar_last = Latest(), Latest()
            self.guard_alerts = {"calling_hours": 0, "abandon_redial": 0}
            self.period_origin, self.periods = None, {}
            self._rebuild_compliance()
            for tracker in self.trackers.values():
                tracker.last_input = None  # judged again under the rule of this release
            self.alerts_dirty = True

    def _rebuild_complaints(self) -> None:
        """The 30-day (complained, delivered) buckets from the messages, open and sealed."""
        pair = self.complaints_30d
        if self.now is not None:
            pair.advance(self.now)
        for m in self.messages.values():
            for t, da, dh in (("email.complained", 1, 0), ("email.delivered", 0, 1)):
                k = m.keys.get(t)
                if k is not None:
                    pair.add(k[0], da, dh)
        sm = self.sealed_messages
        if sm.live:
            live = sm.live_rows()
            for ts in sm.column("email.delivered")[live].tolist():
                if ts != NO_TS:
                    pair.add(ts, 0, 1)

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
        self.complaints_30d.advance(ts)
        for s in (self.dials_1s, self.sends_1s, self.bridged_1s, self.ended_1s, self.ring_1s):
            s.prune(ts)
        if self.lateness_ms is not None:
            self._seal()

    def _seal(self) -> None:
        """Seal ended attempts whose facts are all behind the horizon (engine.storage.sealed) and forget
        tie-breaking event ids behind it. Changes no figure: only the form the state is kept in."""
        if self.max_event_ts is None or self.lateness_ms is None:
            return  # (called only with a lateness bound)
        horizon = self.max_event_ts - self.lateness_ms
        if self.sealed_below is not None and horizon <= self.sealed_below:
            return
        self.sealed_below = horizon
        dirty = self.dirty_attempts
        queue = self.seal_queue
        while queue and queue[0][0] < horizon:
            ts, aid = heapq.heappop(queue)
            a = self.attempts.get(aid)
            if a is None or a.end is None or a.latest_fact_ts() != ts:
                continue  # sealed already, or a later fact pushed a newer entry
            if not self.sealed.seal(aid, a, self.table.row_of(a.contact) if a.contact is not None else -1):
                continue  # too wide for a sealed row (engine.storage.sealed.CompactLayout): stays open
            if a.dial is not None:
                self._forget_open(a.contact, aid)
            if aid in dirty:  # its changed record is still owed to the detail sink: build it now
                dirty.discard(aid)
                self.sealed_records.append((a.partial, self.attempt_detail(aid, a)))
            del self.attempts[aid]
        self._seal_messages(horizon)
        self.table.forget_event_ids(horizon)
        self._compact_agents(horizon)

    def _seal_messages(self, horizon: int) -> None:
        """Messages whose facts are all behind the horizon become rows (engine.storage.sealed_messages)."""
        queue = self.message_seal_queue
        messages, table = self.messages, self.table
        while queue and queue[0][0] < horizon:
            ts, mid = heapq.heappop(queue)
            m = messages.get(mid)
            if m is None or latest_fact_ts(m) != ts:
                continue  # sealed already, or a later fact pushed a newer entry
            row = table.row_of(m.contact) if m.contact is not None else -1
            if self.sealed_messages.seal(mid, m, row):  # (not one with a reply, or too wide: stays open)
                del messages[mid]

    def _reset_today(self, tz: str) -> None:
        self.alerts_dirty = True
        self.day_tz = tz
        now = self.now
        assert now is not None  # (the day is reset as the watermark moves)
        self.day_start, self.day_end = day_bounds_of(now, tz)
        self.today.hi = max(self.today.hi, now // MINUTE)
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
                trend = self.trend
                if ts // SECOND > trend.hi and trend.advance(ts):
                    self.forecast_stale = True
            else:
                self._move_now(ts)
        _HANDLERS[ev["type"]](self, ev, (ts, ev["event_id"]))
        if self.collect_details and ev["type"] in ACTIVITY_TYPES:
            self.activity_out.append(activity_source(ev))  # every applied one: the log is folded at read time
        if self.alerts_dirty:
            self._evaluate_alerts(ts)
            self.forecast_stale = True
        elif self.complaints_dirty:
            self._evaluate_complaints(ts)
        if self.forecast_stale or self.now >= self.forecast_recheck_at:  # type: ignore[operator]  # (set above)
            self._evaluate_forecast(ts)
        if self.guard_queue:
            self._flush_guard_alerts(ts)

    def note_late(self) -> None:
        self.late += 1

    def note_duplicate(self) -> None:
        self.duplicates += 1

    # campaign / batch / pass ------------------------------------------------

    def _campaign_created(self, ev, key):
        self.alerts_dirty = True  # the ceilings may have changed
        self.forecast_stale = True
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
        if new.guard_inputs() != old.guard_inputs():
            self._redecide_all()  # the guards read the configuration as of now

    def _campaign_status(self, ev, key):
        if self.status_key is None or key > self.status_key:
            if ev["status"] != self.status:
                self.alerts_dirty = True  # levels judge a final campaign by its own figures
                self.forecast_stale = True  # the forecast runs only while it is active
            self.status_key, self.status = key, ev["status"]

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
    "agent.state": CampaignState._agent_state,
}
for _t in ("call.dialed", "call.answered", "call.amd", "call.bridged", "call.ended",
           "call.transcript", "conversation.evaluated"):
    _HANDLERS[_t] = CampaignState._attempt_event
for _t in EMAIL_TYPES:
    _HANDLERS[_t] = CampaignState._email_event
