"""Sealed email messages: messages whose facts are all behind the lateness horizon, kept as columns.

Voice attempts are sealed (engine.storage.sealed); an email campaign's messages were one Python object each
(~770 bytes with its id and its dict of event keys: ~3 KB a contact at three messages a contact). The
same argument applies to a message: once its latest fact is older than the watermark minus the lateness
bound, every event the gate still accepts for it is later than all its facts, so an event of a type it
has is a duplicate (the earlier fact stays: nothing changes but the duplicate count), and an event of a
type it lacks is added to it as to any message. So only what its contribution needs is kept: the ts of
each of its facts and its contact row, in 40 bytes (`MessageLayout`), by id through the same frozen
chunks and digest index as sealed attempts (engine.storage.sealed_base). A fact of a new type *unseals* it back into
a `Message`.

A message with a reply is never sealed: its reply record (`GET /replies`) is rebuilt whenever the
message changes (its contact comes with a later `email.sent`), from the reply's payload, which only the
object holds. Replies are a few percent of messages.
"""

from __future__ import annotations

from engine.state.entities import Message
from engine.storage.sealed_base import SealedRows
from engine.storage.sealed_layouts import EMAIL_TYPES, TYPE_FLAG, MessageLayout
from engine.vocab import EMAIL_TYPES as HANDLED_TYPES

# `email.complained` has no place in the row layout: a message with a complaint is never sealed (complaints are
# rare, and a sealed message that receives one is unsealed for good), so the format stays as release 4 wrote it.
UNSEALED_TYPES = frozenset({"email.complained"})
assert set(EMAIL_TYPES) == set(HANDLED_TYPES) - UNSEALED_TYPES
REPLIED = "email.replied"


class SealedMessages(SealedRows):
    """Sealed email messages by id, in `MessageLayout` (engine.storage.sealed_layouts), no guard bytes."""

    __slots__ = ()
    NEW_LAYOUT = MessageLayout
    HAS_GUARD = False

    def seal(self, message_id: str, m: Message, contact_row: int) -> bool:
        """Keep a message as a row; False (nothing kept) when it has a reply or does not fit."""
        if m.reply is not None or REPLIED in m.keys or not m.keys or not UNSEALED_TYPES.isdisjoint(m.keys):
            return False
        values = self.hot_layout.encode(m, contact_row)
        if values is None:
            return False
        mask = 0
        flag = TYPE_FLAG
        for t in m.keys:
            mask |= flag[t]
        self._append(message_id, mask, values)
        return True

    def has_type(self, row: int, etype: str) -> bool:
        return bool(self.mask[row] & TYPE_FLAG.get(etype, 0))

    def unseal(self, row: int, contact_name) -> Message:
        """The message back as a `Message`: its facts keyed ``(ts, "")`` (every event still accepted is
        later than all of them, so no comparison needs their event ids), its contact, no reply."""
        m = self.view(row, contact_name)
        self._kill(row)
        return m

    def view(self, row: int, contact_name) -> Message:
        """The row as a `Message` (as `unseal` gives it), the row staying sealed: for the record of a message
        sealed after it changed and before its record was taken (engine.state.details)."""
        m = Message()
        mask = self.mask[row]
        for t in EMAIL_TYPES:
            if mask & TYPE_FLAG[t]:
                m.keys[t] = (self.value(t, row), "")
        c = self.value("contact", row)
        m.contact = contact_name(c) if c >= 0 else None
        return m
