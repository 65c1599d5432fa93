"""`CampaignState`'s call attempts: the handler of every call/conversation event and the attempt's
contribution to the aggregates, split into parts by the facts each reads (engine.state.campaign composes
this mixin), plus the daily quarter-hour cells every fact counts in."""

from __future__ import annotations

import heapq
from collections import Counter

from engine.state.entities import Attempt
from engine.state.grid import (
    D_ABANDONED,
    D_ANSWERED,
    D_CONNECTED,
    D_DIALS,
    D_ENDED,
    DAILY_FIELDS,
    QUARTER_HOUR,
    SECOND,
)
from engine.state.measures import Mean
from engine.state.parts import StateAttributes
from engine.state.windows import BucketSeries
from engine.storage.contact_table import NONFINAL_CODES
from engine.vocab import OUTCOMES

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


class AttemptFacts(StateAttributes):
    def _init_attempt_totals(self) -> None:
        """The attempt and outcome totals this part maintains."""
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

    def _init_series(self) -> None:
        """The trailing-window series on the 1 s grid (kept for the longest 1 s window: 1 h) and daily cells."""
        # Trailing-window series (1 s grid, kept for the longest 1 s window: 1 h).
        self.dials_1s = BucketSeries(SECOND, 3700)
        self.sends_1s = BucketSeries(SECOND, 3700)
        self.bridged_1s = BucketSeries(SECOND, 3700)
        self.ended_1s = BucketSeries(SECOND, 3700)
        self.ring_1s = BucketSeries(SECOND, 3700, width=2)  # (ring sum, count) by answered ts
        self.daily: dict[int, list[int]] = {}

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
                a = self.attempts[aid] = self.sealed.unseal(row, self.table.name)
                if a.dial is not None:
                    self.open_by_contact.setdefault(a.contact, []).append(aid)
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
        elif slot == "bridge":
            a.agent = ev.get("agent_id")
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
        if parts & P_DIAL and a.guards:
            self._guard_retract_own(a)  # the guards decide on the dial
        if not fresh:
            self._attempt_contrib(a, -1, parts)
        elif not parts & P_DIAL:
            self.orphan_attempts += 1  # the dial part of a dial-less attempt: counted as orphaned
        if slot is not None:
            self._set_fact(a, slot, ev, key)  # type: ignore[arg-type]  # (a fact comes with its event)
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
        if parts & P_DIAL and a.dial is not None:
            self._guard_open(aid, a)
        if self.guards_touched:
            self._redecide_touched()
        if a.ans is not None and a.end is None and a.bridge is None and a.dial is not None \
                and a.amd_result != "machine":  # a caller waiting for an agent
            self.waiting[aid] = a
        elif aid in self.waiting:
            del self.waiting[aid]
        if a.end is not None and self.lateness_ms is not None and slot is not None:
            heapq.heappush(self.seal_queue, (a.latest_fact_ts(), aid))

    def _forget_open(self, cid: str, aid: str) -> None:
        """An attempt of contact ``cid`` leaves the open attempts (sealed, or its dial names another)."""
        aids = self.open_by_contact[cid]
        aids.remove(aid)
        if not aids:
            del self.open_by_contact[cid]

    def _move_attempt_between_contacts(self, aid: str, old_contact, new_contact) -> None:
        t = self.table
        if old_contact is not None:
            self._forget_open(old_contact, aid)
        if new_contact is not None:
            self.open_by_contact.setdefault(new_contact, []).append(aid)
        for cid, d in ((old_contact, -1), (new_contact, 1)):
            if cid is None:
                continue
            row = t.row_of(cid)
            self._contact_contrib(row, -1)
            t.touch(row)
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
                self._dial_contrib(a, dial[0], s)
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
            if a.agent is not None:
                self._agent_bridge(a.agent, s)
        if parts & P_END and end is not None:
            self._end_contrib(a, end[0], s)

    def _dial_contrib(self, a: Attempt, dts: int, s: int) -> None:
        """The dial part: dial counts and series, first/last dial, the pass's contacts and start."""
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
        p.add_dial(self.table.row_of(a.contact), s)
        if s > 0:
            if p.started is None or dts < p.started:
                p.started = dts
        elif dts == p.started:
            p.stale = True

    def _end_contrib(self, a: Attempt, ets: int, s: int) -> None:
        """The end part: outcomes, abandon windows and periods, pacing F_h, guards, AHT, the pass end."""
        dial = a.dial
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
            if self.period_origin is not None:
                self._period_add(ets, ab, s)
            if dial is not None:  # pacing's F_h: the contact's human answers, counted while it is final
                t = self.table
                row = t.row_of(a.contact)
                t.touch(row)
                t.human[row] += s
                if t.status[row] not in NONFINAL_CODES:
                    self.final_human += s
        if o == "abandoned" and dial is not None:
            self._abandon_end(a.contact, self.table.row_of(a.contact), ets, s)
        if o == "abandoned":
            self._daily(ets, D_ABANDONED, s)
        elif o == "connected":
            self._daily(ets, D_CONNECTED, s)
            handle = ets - a.bridge[0] + a.wrap
            self.aht.add(handle, s)
            if a.agent is not None:
                self._agent_call(a.agent, handle, s)
        if dial is not None:
            p = self.passes[a.pass_no]
            if o == "connected":
                p.add_connect(self.table.row_of(a.contact), s)
            if s > 0:
                if p.ended is None or ets > p.ended:
                    p.ended = ets
            elif ets == p.ended:
                p.stale = True
