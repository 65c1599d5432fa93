"""`CampaignState`'s contacts, batches, passes, runs, meetings and callbacks: their event handlers and
the contacts' contribution to the status counts (engine.state.campaign composes this mixin)."""

from __future__ import annotations

import bisect

from engine.state.entities import Batch, Pass, fold_callbacks
from engine.state.followups import DUE_CODES
from engine.state.parts import StateAttributes
from engine.storage.contact_table import NONFINAL_CODES, STATUS_CODE
from engine.views.detail import profile_record
from engine.vocab import CONTACT_STATUSES


class ContactFacts(StateAttributes):
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
            p = self.passes[n] = Pass(self.table.book.rows)  # its counter blocks align with the contacts'
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
        row = self.table.row(cid)
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
        if code in DUE_CODES:  # the follow-up schedule (engine.state.followups): its due minute, if it has one
            self.due_schedule.add(code, t.due[row], s)
        if code in NONFINAL_CODES:
            self.nonfinal_by_dialed[t.dialed[row]] += s
            self.open_contacts += s
        else:
            h = t.human[row]
            if h:
                self.final_human += s * h
        if self.forecast_reads_e:
            self.forecast_stale = True  # pacing's E moves with the open and final contacts

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
        t.touch(row)
        t.added_ts[row] = key[0]
        t.added_eid[row] = key[1]
        t.batch[row] = self.batch_no[batch_id] if batch_id is not None else -1
        self._contact_contrib(row, 1)
        zone = t.zone_index(ev.get("tz"))
        if zone != t.tz[row]:  # the calling-hours zone of its dials
            t.tz[row] = zone
            if t.dialed[row]:
                self._redecide_contact(cid, row)
        if self.collect_details:
            self.profiles[cid] = profile_record(ev)

    def _contact_status(self, ev, key):
        row = self._contact(ev["contact_id"])
        t = self.table
        current = t.status_key(row)
        if current is not None and key < current:
            return
        self._contact_contrib(row, -1)
        t.touch(row)
        t.status_ts[row] = key[0]
        t.status_eid[row] = key[1]
        code = t.status[row] = STATUS_CODE[ev["status"]]
        t.retry[row] = ev.get("retry_number") or 0
        due = ev.get("due_at")
        t.due[row] = due + 1 if due is not None and code in DUE_CODES else 0  # kept only while it can fall due
        self._contact_contrib(row, 1)

    def _meeting_booked(self, ev, key):
        row = self._contact(ev["contact_id"])
        if self.table.meeting[row]:
            self.duplicates += 1
        else:
            self.table.touch(row)
            self.table.meeting[row] = 1
            self.meetings += 1

    # callbacks ----------------------------------------------------------------

    def _callback(self, ev, key):
        row = self._contact(ev["contact_id"])
        t = self.table
        kind = ev["type"][9:]  # callback.<kind>
        t.touch(row)  # its block carries its callbacks (engine.storage.contact_table)
        events = t.callbacks_of(row)
        old = fold_callbacks(events)
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
        t.set_callbacks(row, events)
        self.callbacks.replace(old, fold_callbacks(events))
