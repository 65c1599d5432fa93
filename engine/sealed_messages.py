"""Sealed email messages: messages whose facts are all behind the lateness horizon, kept as columns.

Voice attempts are sealed (engine.sealed); an email campaign's messages were one Python object each
(~770 bytes with its id and its dict of event keys: ~3 KB a contact at three messages a contact). The
same argument applies to a message: once its latest fact is older than the watermark minus the lateness
bound, every event the gate still accepts for it is later than all its facts, so an event of a type it
has is a duplicate (the earlier fact stays: nothing changes but the duplicate count), and an event of a
type it lacks is added to it as to any message. So only what its contribution needs is kept: the ts of
each of its facts and its contact row, in 40 bytes (`MessageLayout`), by id through the same frozen
chunks and digest index as sealed attempts. A fact of a new type *unseals* it back into a `Message`.

A message with a reply is never sealed: its reply record (`GET /replies`) is rebuilt whenever the
message changes (its contact comes with a later `email.sent`), from the reply's payload, which only the
object holds. Replies are a few percent of messages.
"""

from __future__ import annotations

from array import array

import numpy as np

from engine.contact_table import NO_TS
from engine.entities import Message
from engine.sealed import _I32, LAYOUTS, RowLayout, SealedAttempts
from engine.state_email import EMAIL_TYPES as HANDLED_TYPES

# The column order and mask bits of stored rows: a file format, so spelled out here, not taken from the
# handler's tuple (whose order may change); every handled type must have its place.
EMAIL_TYPES = ("email.sent", "email.delivered", "email.bounced", "email.opened",
               "email.clicked", "email.replied", "email.unsubscribed")
# `email.complained` has no place: a message with a complaint is never sealed (complaints are rare, and a
# sealed message that receives one is unsealed for good), so this format stays as release 4 wrote it.
UNSEALED_TYPES = frozenset({"email.complained"})
assert set(EMAIL_TYPES) == set(HANDLED_TYPES) - UNSEALED_TYPES
TYPE_FLAG = {t: 1 << i for i, t in enumerate(EMAIL_TYPES)}  # mask bits (DEAD = 0: every live row has one)
TYPE_INDEX = {t: i for i, t in enumerate(EMAIL_TYPES)}
REPLIED = "email.replied"


def latest_fact_ts(m: Message) -> int:
    return max(k[0] for k in m.keys.values())


class MessageLayout(RowLayout):
    """The latest fact's ts in full, every fact as a signed 32-bit distance back from it (0 where the
    mask says it has none), the contact row. A message whose facts lie more than ~24 days apart does not
    fit: `encode` says so and it stays an ordinary message."""

    version = 3
    COLUMNS = (("latest", "q"), *((t, "i") for t in EMAIL_TYPES), ("contact", "i"))

    @staticmethod
    def encode(m: Message, contact_row: int) -> tuple | None:
        latest = latest_fact_ts(m)
        backs = [0] * len(EMAIL_TYPES)
        for t, key in m.keys.items():
            back = latest - key[0]
            if back >= _I32:  # (never negative: ``latest`` is the largest)
                return None
            backs[TYPE_INDEX[t]] = back
        return (latest, *backs, contact_row)

    @classmethod
    def value(cls, cols: list[array], name: str, i: int) -> int:
        v = cols[cls._INDEX[name]][i]
        return v if name in ("latest", "contact") else cols[0][i] - v

    @classmethod
    def column(cls, cols: list[array], name: str, mask: np.ndarray) -> np.ndarray:
        """A type's fact ts as int64, NO_TS where the message has none; "contact" as stored."""
        i = cls._INDEX[name]
        raw = np.array(cols[i], dtype=np.dtype(cls.COLUMNS[i][1]))
        if name in ("latest", "contact"):
            return raw
        latest = np.array(cols[0], dtype=np.int64)
        return np.where((mask & TYPE_FLAG[name]) != 0, latest - raw.astype(np.int64), NO_TS)


LAYOUTS[MessageLayout.version] = MessageLayout  # frozen message chunks name it when they are loaded


class SealedMessages(SealedAttempts):
    __slots__ = ()
    NEW_LAYOUT = MessageLayout
    HAS_GUARD = False

    def seal(self, message_id: str, m: Message, contact_row: int) -> bool:  # type: ignore[override]
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

    def unseal(self, row: int, contact_name) -> Message:  # type: ignore[override]
        """The message back as a `Message`: its facts keyed ``(ts, "")`` (every event still accepted is
        later than all of them, so no comparison needs their event ids), its contact, no reply."""
        m = self.view(row, contact_name)
        self.mask[row] = 0
        self.live -= 1
        return m

    def view(self, row: int, contact_name) -> Message:  # type: ignore[override]
        """The row as a `Message` (as `unseal` gives it), the row staying sealed: for the record of a message
        sealed after it changed and before its record was taken (engine.state_details)."""
        m = Message()
        mask = self.mask[row]
        for t in EMAIL_TYPES:
            if mask & TYPE_FLAG[t]:
                m.keys[t] = (self._value(t, row), "")
        c = self._value("contact", row)
        m.contact = contact_name(c) if c >= 0 else None
        return m
