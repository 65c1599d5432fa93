"""`CampaignState`'s changed detail records for the contacts/calls endpoints (`take_details`), drained
by the flow (engine.state.campaign composes this mixin)."""

from __future__ import annotations

from engine.state.grid import DAILY_FIELDS
from engine.state.parts import StateAttributes
from engine.views.activity import activity_source
from engine.views.detail import batch_record, contact_record, reply_record
from engine.views.detail_batch import DetailBatch
from engine.views.message_detail import message_record


class DetailRecords(StateAttributes):
    def _init_details(self, collect_details: bool) -> None:
        """The outbox of changed detail records this part owns (drained by take_details)."""
        # Detail for the contacts/calls endpoints (the flow turns this on and drains it with
        # take_details(); an offline replay leaves it off so nothing accumulates).
        self.collect_details = collect_details
        self.dirty_contacts: set[str] = set()
        self.dirty_attempts: set[str] = set()
        self.dirty_batches: set[str] = set()
        self.dirty_messages: set[str] = set()  # messages whose counted facts changed (their records, replies)
        self.dirty_quarters: set[int] = set()  # daily quarter-hour buckets that changed
        self.transcript_lines: list[dict] = []
        self.profiles: dict[str, dict] = {}  # contact_id -> profile record of its winning contact.added
        self.trail_changes: list[tuple[str, str, int]] = []  # (contact_id, attempt_id, +1 | -1)
        self.sealed_records: list[tuple[bool, dict]] = []  # (is patch, record) of attempts sealed unsent
        self.activity_out: list[dict] = []  # applied campaign/batch events for the activity log (engine.views.activity)

    def take_details(self) -> DetailBatch:
        """Detail records changed since the last call (see docs/flow.md): contacts, attempts,
        batches, email messages and replies, daily quarter-hour cells ``{q: [9 counters]}``, and new
        transcript lines."""
        t = self.table
        messages = self.message_records()
        attempts: list[dict] = []
        patches: list[dict] = []
        for is_patch, rec in self.sealed_records:
            (patches if is_patch else attempts).append(rec)
        self.sealed_records = []
        for aid in sorted(self.dirty_attempts):
            a = self.attempts[aid]
            (patches if a.partial else attempts).append(self.attempt_detail(aid, a))
        out = DetailBatch(
            contacts=[contact_record(cid, t, t.row_of(cid)) for cid in sorted(self.dirty_contacts)],
            profiles=[self.profiles[cid] for cid in sorted(self.profiles)],
            trail=self.trail_changes,
            attempts=attempts,
            attempt_patches=patches,
            batches=[batch_record(bid, self.batches[bid]) for bid in sorted(self.dirty_batches)
                     if self.batches[bid].exists],
            replies=[reply_record(rec["message_id"], m) for rec in messages
                     if (m := self.messages.get(rec["message_id"])) is not None and m.reply is not None],
            messages=messages,
            daily={q: list(self.daily.get(q) or [0] * len(DAILY_FIELDS)) for q in sorted(self.dirty_quarters)},
            transcripts=self.transcript_lines,
            activity=self.activity_out,
        )
        self.transcript_lines = []
        self.activity_out = []
        self.profiles = {}
        self.trail_changes = []
        self.dirty_contacts, self.dirty_attempts, self.dirty_batches = set(), set(), set()
        self.dirty_messages, self.dirty_quarters = set(), set()
        return out

    def pending_details(self) -> int:
        """About how many detail records the next `take_details` returns (the flow flushes them early
        when they pile up between two frames, to bound the memory a burst of events takes)."""
        return (len(self.dirty_contacts) + len(self.profiles) + len(self.dirty_attempts) + len(self.sealed_records)
                + len(self.trail_changes) + len(self.dirty_messages))

    def message_records(self) -> list[dict]:
        """The records of the changed messages, by id. A message sealed since it changed is read back from
        its row (engine.storage.sealed_messages): sealing does not wait for the record to be taken."""
        messages, sealed = self.messages, self.sealed_messages
        out = []
        for mid in sorted(self.dirty_messages):
            m = messages.get(mid)
            if m is None:
                row = sealed.find(mid) if sealed.live else None
                if row is None:
                    continue
                m = sealed.view(row, self.table.name)
            out.append(message_record(mid, m))
        return out

    def mark_all_details_dirty(self) -> None:
        """Make the next `take_details` return every detail record (a rewrite of the derived keys)."""
        if not self.collect_details:
            return
        self.dirty_contacts = set(self.table.ids())
        self.dirty_attempts = set(self.attempts)
        self.dirty_batches = set(self.batches)
        self.dirty_messages = set(self.messages)  # (sealed ones keep no id to list: a release-1 state has none)
        self.dirty_quarters = set(self.daily)
        self.activity_out = [activity_source(ev) for ev in self.config.events]  # status history is not kept
