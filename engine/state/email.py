"""`CampaignState`'s email messages and costs: their handlers and the messages' contribution to the
email counts (engine.state.campaign composes this mixin)."""

from __future__ import annotations

import heapq

from engine.state.entities import Message
from engine.state.grid import D_COST, D_OPENED, D_REPLIED, D_SENT
from engine.state.parts import StateAttributes


class EmailFacts(StateAttributes):
    # email ---------------------------------------------------------------------

    def _email_event(self, ev, key):
        mid = ev["message_id"]
        t = ev["type"]
        m = self.messages.get(mid)
        if m is None:
            row = self.sealed_messages.find(mid) if self.sealed_messages.live else None
            if row is None:
                m = self.messages[mid] = Message()
            elif self.sealed_messages.has_type(row, t):  # later than its sealed fact: the fact stays
                if t == "email.sent":
                    self._contact(ev["contact_id"])  # as for any email.sent, a repeat included
                self.duplicates += 1
                return
            else:
                m = self.messages[mid] = self.sealed_messages.unseal(row, self.table.name)
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
        if self.collect_details:  # its record (engine.views.message_detail), and its reply's when it has one
            self.dirty_messages.add(mid)
        if self.lateness_ms is not None:  # sealed once all its facts are behind the horizon (engine.state.campaign)
            heapq.heappush(self.message_seal_queue, (max(k[0] for k in m.keys.values()), mid))

    def _message_contrib(self, m: Message, s: int) -> None:
        keys = m.keys
        if not keys:
            return
        for t in keys:
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
        delivered = keys.get("email.delivered")
        complained = keys.get("email.complained")
        if delivered is not None or complained is not None:  # the spam-complaint windows (lifetime: the counts)
            self.complaints_dirty = True
            if delivered is not None:
                self.complaints_30d.add(delivered[0], 0, s)
            if complained is not None:
                self.complaints_30d.add(complained[0], s, 0)
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
