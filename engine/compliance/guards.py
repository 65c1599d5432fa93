"""`CampaignState`'s compliance guards, 30-day periods and callers waiting for an agent (SPEC §3 *Compliance
guards*, *Abandon rate* `periods`, *Live block* `waiting_for_agent`); a mixin of engine.state.campaign.

**Guards.** Every dialed attempt carries two decisions, each a bit of ``Attempt.guards`` (a sealed one:
a byte a row beside the sealed mask, engine.storage.sealed), with two more bits saying that its alert was raised:

- ``calling_hours``: the local time of day of its counted dial in the contact's zone (the `tz` of its
  counted `contact.added`, else the campaign's zone) is before `calling_hours.start` or at/after its end;
- ``abandon_redial``: another attempt of the same contact ended `abandoned` at e with e < dial ≤ e + the
  redial hours (never when they are 0).

The configuration is read as of now, like every other metric (docs/semantics.md). A decision depends on
the attempt's dial and contact, the contact's zone, the configuration, and the abandoned ends of the
contact's other attempts, kept per contact row in ``abandon_ends`` (only contacts with an abandoned call:
a few percent). Whenever one of those changes, the attempts it can touch are re-decided:

- the attempt's own dial: by `_update_attempt` (retract, set, decide, add);
- an abandoned end appearing, leaving or moving: the contact's attempts dialed in (e, e + hours]. The
  open ones are found through ``open_by_contact``; a sealed one needs a scan of the sealed columns only
  when that range reaches below the sealing horizon (every sealed attempt was dialed before it), which
  the gate makes rare: an outcome changes only through an event within the lateness bound of its end;
- the contact's zone (its counted `contact.added` arrives or is replaced): its attempts, a sealed scan
  only when some of them are sealed;
- the calling hours, the campaign's zone or the redial hours: every attempt (rare: a config change).

The counts and last times follow by retract-and-add, so they always equal the decisions over the current facts
(the sorted fold). An attempt's alert is raised the first time the engine decides it violates; its alerted bit
stays, so a violation taken back and decided again never alerts twice. A frozen sealed row keeps only a digest
of its attempt id, so an alert a late fact raises for one carries ``attempt_id: null`` (docs/semantics.md).
"""

from __future__ import annotations

import numpy as np

from engine.localtime import local_tod_ms
from engine.state.parts import StateAttributes
from engine.storage.contact_table import NONFINAL_CODES
from engine.storage.keys import alert_id
from engine.storage.sealed_base import DEAD
from engine.storage.sealed_layouts import F_DIAL, F_HUMAN, OUTCOME_CODE
from engine.timefmt import format_time
from engine.views.detail import attempt_patch, attempt_record

V_CH, V_AR = 1, 2  # violates calling hours / abandon redial
A_CH, A_AR = 4, 8  # its alert was raised
VIOLATIONS = V_CH | V_AR
GUARD_KINDS = ("calling_hours", "abandon_redial")
PERIOD_MS = 30 * 86_400_000
_ABANDONED = OUTCOME_CODE["abandoned"]


class ComplianceGuards(StateAttributes):
    # decisions ---------------------------------------------------------------

    def _zone_of(self, row: int) -> str:
        return self.table.zone_of(row) or self.config.current.tz

    def _decide_guards(self, dial_ts: int, row: int, own_end: int | None) -> int:
        """The violation bits of a dial at ``dial_ts`` of contact ``row`` (``own_end``: the attempt's own
        abandoned end, which is in the contact's list but is not "another attempt")."""
        cfg = self.config.current
        start, end = cfg.calling_ms
        t = self.table
        z = t.tz[row]
        tod = local_tod_ms(dial_ts, t.zones[z] if z else cfg.tz)
        bits = V_CH if tod < start or tod >= end else 0
        span = cfg.redial_ms
        if span and self.abandon_ends:
            ends = self.abandon_ends.get(row)
            if ends:
                n = 0
                for e in ends:
                    if e < dial_ts <= e + span:
                        n += 1
                if own_end is not None and own_end < dial_ts <= own_end + span:
                    n -= 1
                if n > 0:
                    bits |= V_AR
        return bits

    def _guard_count(self, bits: int, dial_ts: int, s: int) -> None:
        if bits & V_CH:
            self.ch_violations += s
            self.ch_last.count(dial_ts, s)
        if bits & V_AR:
            self.ar_violations += s
            self.ar_last.count(dial_ts, s)

    def _guards_apply(self, old: int, new: int, dial_ts: int, attempt_id, row: int) -> int:
        """Count the change from ``old`` to the violation bits ``new``; queue the alerts of violations
        never alerted before. Returns the new guard byte (violations and alerted bits)."""
        if (old & VIOLATIONS) != new:
            self._guard_count(old & VIOLATIONS, dial_ts, -1)
            self._guard_count(new, dial_ts, 1)
        fresh = new & ~(old >> 2)
        if fresh:
            for bit, kind in ((V_CH, "calling_hours"), (V_AR, "abandon_redial")):
                if fresh & bit:
                    self.guard_queue.append((kind, dial_ts, attempt_id, row))
        return new | (((old >> 2) | new) & VIOLATIONS) << 2

    def _guard_open(self, aid: str, a) -> None:
        """(Re-)decide an open dialed attempt whose guard bits are counted (its detail record is written
        again: the zone or the abandoned call it follows may have changed with the same decisions)."""
        if self.collect_details:
            self.dirty_attempts.add(aid)
        t = self.table
        row = t.row_of(a.contact)
        dial = a.dial[0]
        cfg = self.config.current
        z = t.tz[row]
        start, end = cfg.calling_ms
        tod = local_tod_ms(dial, t.zones[z] if z else cfg.tz)
        new = V_CH if tod < start or tod >= end else 0
        if self.abandon_ends and row in self.abandon_ends:  # (the redial guard needs an abandoned call)
            own = a.end[0] if a.end is not None and a.outcome == "abandoned" else None
            new = (new & ~V_AR) | (self._decide_guards(dial, row, own) & V_AR)
        old = a.guards
        if old == new:  # (the common case: nothing violated, nothing alerted)
            return
        a.guards = self._guards_apply(old, new, dial, aid, row)

    def _guard_sealed_rows(self, rows) -> None:
        """(Re-)decide sealed rows (live, dialed)."""
        sealed = self.sealed
        value, guard = sealed.value, sealed.guard
        t_name = self.table.name
        for r in rows:
            r = int(r)
            dial, row = value("dial", r), value("contact", r)
            own = value("end", r) if value("outcome", r) == _ABANDONED else None
            aid = sealed.hot_id(r)
            guard[r] = self._guards_apply(guard[r], self._decide_guards(dial, row, own), dial, aid, row)
            if self.collect_details and aid is not None:
                # its record again, as a patch (docs/flow.md); a frozen row keeps only a digest of its id,
                # so its record keeps the decisions it was written with (docs/semantics.md)
                self.sealed_records.append((True, self.attempt_detail(aid, sealed.view(r, t_name))))

    def _guard_retract_own(self, a) -> None:
        """Before an attempt's dial changes: its counted decisions leave (the alerted bits stay)."""
        if a.guards & VIOLATIONS:
            self._guard_count(a.guards & VIOLATIONS, a.dial[0], -1)
            a.guards &= ~VIOLATIONS

    # who is touched ------------------------------------------------------------

    def _abandon_end(self, cid: str, row: int, ets: int, s: int) -> None:
        """An abandoned end of a dialed attempt of contact ``row`` counted (s=1) or retracted (s=-1)."""
        ends = self.abandon_ends.get(row)
        if s > 0:
            if ends is None:
                self.abandon_ends[row] = [ets]
            else:
                ends.append(ets)
        else:
            assert ends is not None  # (a retraction: the end was added)
            ends.remove(ets)
            if not ends:
                del self.abandon_ends[row]
        self.guards_touched.append((cid, row, ets, s))

    def _redecide_touched(self) -> None:
        """Re-decide the attempts dialed in (e, e + hours] of each contact whose abandoned ends changed
        (an end retracted and counted again, as when a late fact reopens an attempt, changes nothing)."""
        touched, self.guards_touched = self.guards_touched, []
        span = self.config.current.redial_ms
        if not span:
            return
        net: dict[tuple, int] = {}
        for cid, row, e, s in touched:
            net[cid, row, e] = net.get((cid, row, e), 0) + s
        for (cid, row, e), n in net.items():
            if not n:
                continue
            opened = self.open_by_contact.get(cid, ())
            for aid in opened:
                a = self.attempts[aid]
                if e < a.dial[0] <= e + span:
                    self._guard_open(aid, a)
            below = self.sealed_below
            if below is not None and e + 1 < below and self.table.dialed[row] > len(opened) and self.sealed.live:
                dial = self._sealed_dials()
                contact = self.sealed.column("contact")
                sel = np.nonzero(dial[1] & (contact == row) & (dial[0] > e) & (dial[0] <= e + span))[0]
                self._guard_sealed_rows(sel)

    def _redecide_contact(self, cid: str, row: int) -> None:
        """Every attempt of a contact (its zone changed)."""
        opened = self.open_by_contact.get(cid, ())
        for aid in opened:
            self._guard_open(aid, self.attempts[aid])
        if self.table.dialed[row] > len(opened) and self.sealed.live:
            dial = self._sealed_dials()
            self._guard_sealed_rows(np.nonzero(dial[1] & (self.sealed.column("contact") == row))[0])

    def _redecide_all(self) -> None:
        """Every dialed attempt (the calling hours, the campaign's zone or the redial hours changed)."""
        for aid, a in self.attempts.items():
            if a.dial is not None:
                self._guard_open(aid, a)
        if self.sealed.live:
            self._guard_sealed_rows(np.nonzero(self._sealed_dials()[1])[0])

    def _sealed_dials(self):
        """(dial ts column, mask of the live sealed rows that have a dial)."""
        sealed = self.sealed
        mask = sealed.column("mask")
        return sealed.column("dial"), (mask != DEAD) & ((mask & F_DIAL) != 0)

    # detail records ------------------------------------------------------------------

    def attempt_detail(self, aid: str, a) -> dict:
        """The attempt's detail record (a patch for a ``partial`` one, engine.views.detail) with its guard
        decisions and their data, and why it is abandoned: nothing of it is kept per attempt."""
        rec = attempt_patch(aid, a) if a.partial else attempt_record(aid, a)
        violations, zone, local, followed = [], None, None, None
        if a.dial is not None:
            dial = a.dial[0]
            if a.guards & V_CH:
                violations.append("calling_hours")
            if a.guards & V_AR:
                violations.append("abandon_redial")
            row = self.table.row(a.contact)
            zone = (self.table.zone_of(row) if row is not None else None) or self.config.current.tz
            local = _hms(local_tod_ms(dial, zone))
            span = self.config.current.redial_ms
            ends = self.abandon_ends.get(row) if row is not None and a.guards & V_AR and span else None
            if ends:
                own = a.end[0] if a.end is not None and a.outcome == "abandoned" else None
                cands = list(ends)
                if own is not None and own in cands:
                    cands.remove(own)
                followed = max((e for e in cands if e < dial <= e + span), default=None)
        rec["violations"] = violations
        rec["dial_tz"] = zone
        rec["dial_local_time"] = local
        rec["redial_after_abandon_at"] = None if followed is None else format_time(followed)
        rec["abandon_reason"] = self._abandon_reason(a)
        return rec

    def _abandon_reason(self, a) -> str | None:
        if a.outcome != "abandoned" or a.end is None:
            return None
        if a.bridge is None or not a.bridge < a.end:
            return "never bridged"
        threshold, start_from = self.config.rules_at(a.end)
        after = a.bridge[0] - a._connection_start(start_from)
        return f"bridged {after} ms after the connection start (threshold {threshold} ms)"

    # alerts ------------------------------------------------------------------------

    def _flush_guard_alerts(self, at: int) -> None:
        """The guard alerts decided by this event (or tick), by kind, dial time and attempt id."""
        queue, self.guard_queue = self.guard_queue, []
        queue.sort(key=lambda q: (GUARD_KINDS.index(q[0]), q[1], q[2] or ""))
        for kind, dial_ts, aid, row in queue:
            n = self.guard_alerts[kind] = self.guard_alerts[kind] + 1
            rec = {
                "alert_id": alert_id(self.org_id, self.campaign_id, kind, n),
                "kind": kind,
                "campaign_id": self.campaign_id,
                "org_id": self.org_id,
                "attempt_id": aid,
                "contact_id": self.table.name(row),
                "dialed_at": format_time(dial_ts),
            }
            if kind == "calling_hours":
                zone = self._zone_of(row)
                rec["tz"] = zone
                rec["local_time"] = _hms(local_tod_ms(dial_ts, zone))
            rec["at"] = format_time(at)
            self.pending_alerts.append(rec)

    # reads ---------------------------------------------------------------------------

    def refresh_guard_times(self) -> None:
        """The last violation times a retraction marked stale, from the open and sealed attempts."""
        for latest, bit in ((self.ch_last, V_CH), (self.ar_last, V_AR)):
            if not latest.stale:
                continue
            best = max((a.dial[0] for a in self.attempts.values() if a.dial is not None and a.guards & bit),
                       default=None)
            if self.sealed.live:
                dial, live = self._sealed_dials()
                guard = np.array(self.sealed.guard, dtype=np.uint8)
                sel = dial[live & ((guard & bit) != 0)]
                if len(sel):
                    top = int(sel.max())
                    best = top if best is None else max(best, top)
            latest.recomputed(best)

    def waiting_for_agent(self) -> tuple[int, int | None]:
        """(callers on the line that nobody has taken, ms since the earliest connection start of them)."""
        waiting = self.waiting
        if not waiting:
            return 0, None
        greeting = self.config.current.abandon_from == "greeting_end"
        first: int | None = None
        for a in waiting.values():
            if greeting and a.amd is not None and a.amd_result in ("human", "unknown"):
                start = a.amd[0]
            else:
                start = a.ans[0]
            if first is None or start < first:
                first = start
        now = self.now
        assert now is not None and first is not None  # (a waiting caller has a connection start)
        return len(waiting), now - first

    def _note_waiting(self, aid: str, a) -> None:
        if (a.dial is not None and a.ans is not None and a.bridge is None and a.end is None
                and a.amd_result != "machine"):
            self.waiting[aid] = a
        else:
            self.waiting.pop(aid, None)

    # 30-day periods ----------------------------------------------------------------------

    def _period_add(self, ets: int, ab: int, s: int) -> None:
        origin = self.period_origin
        if origin is None:
            return
        k = (ets - origin) // PERIOD_MS + 1 if ets >= origin else 1
        cell = self.periods.get(k)
        if cell is None:
            cell = self.periods[k] = [0, 0]
        cell[0] += ab
        cell[1] += s
        if not cell[1]:
            del self.periods[k]

    def periods_now(self) -> tuple[int | None, dict]:
        """(first_dial_ts, {period: [abandoned, human_answered]}), re-bucketed when the first dial moved."""
        first = self.first_dial_ts()
        if first != self.period_origin:
            self.period_origin = first
            self.periods = {}
            if first is not None:
                for a in self.attempts.values():
                    if a.end is not None and a.human_at_end:
                        self._period_add(a.end[0], 1 if a.outcome == "abandoned" else 0, 1)
                if self.sealed.live:
                    sealed = self.sealed
                    mask = sealed.column("mask")
                    rows = (mask != DEAD) & ((mask & F_HUMAN) != 0)
                    for ets, o in zip(sealed.column("end")[rows].tolist(), sealed.column("outcome")[rows].tolist()):
                        self._period_add(ets, 1 if o == _ABANDONED else 0, 1)
        return first, self.periods

    # a state pickled before the guards ---------------------------------------------------------

    def _rebuild_compliance(self) -> None:
        """Everything the guards, pacing's F_h and the periods keep, from the attempts (open and sealed):
        for a state pickled before they existed. Violations found are marked alerted (the release that
        saw them raised no alert; a resumed flow does not raise them all at once)."""
        t, sealed = self.table, self.sealed
        self.abandon_ends = {}
        self.guards_touched = []
        self.guard_queue = []
        for i in range(len(t.human)):
            t.human[i] = 0
        for a in self.attempts.values():
            a.guards = 0
            if a.dial is not None and a.end is not None:
                row = t.row_of(a.contact)
                if a.human_at_end:
                    t.human[row] += 1
                if a.outcome == "abandoned":
                    self.abandon_ends.setdefault(row, []).append(a.end[0])
        if sealed.live:
            mask, contact, outcome, end = (sealed.column(n) for n in ("mask", "contact", "outcome", "end"))
            dialed = (mask != DEAD) & ((mask & F_DIAL) != 0)
            for row in contact[dialed & ((mask & F_HUMAN) != 0)].tolist():
                t.human[row] += 1
            ab = dialed & (outcome == _ABANDONED)
            for row, ets in zip(contact[ab].tolist(), end[ab].tolist()):
                self.abandon_ends.setdefault(row, []).append(ets)
        t.book.touch_range(0, max(0, len(t.human) - 1))
        self.final_human = sum(h for code, h in zip(t.status, t.human) if code not in NONFINAL_CODES)
        self.open_contacts = sum(1 for code in t.status if code in NONFINAL_CODES)
        # (the detail records are not rewritten for it: those of an earlier release gain the guard fields
        # when their attempt next changes, docs/api.md *Compliance record*)
        collect, self.collect_details = self.collect_details, False
        self._redecide_all()
        self.collect_details = collect
        for a in self.attempts.values():
            a.guards |= (a.guards & VIOLATIONS) << 2
        guard = sealed.guard
        for r in range(len(guard)):
            guard[r] |= (guard[r] & VIOLATIONS) << 2
        self.guard_queue = []
        # their alerts count as raised: the ids of the next ones go on from there
        self.guard_alerts = {"calling_hours": self.ch_violations, "abandon_redial": self.ar_violations}


def _hms(tod_ms: int) -> str:
    """A local time of day as ``HH:MM:SS``."""
    tod = tod_ms // 1000
    return f"{tod // 3600:02d}:{tod // 60 % 60:02d}:{tod % 60:02d}"
