"""The row layouts of sealed rows (engine.storage.sealed_base): a file format, all of it in this one module.

A frozen chunk names its layout by ``version`` (written into the chunk and into its content key), and a
chunk is read back by a table lookup in `LAYOUTS`. Every layout is in that table from the start — the
attempts' (`WideLayout`, release 3's, still read; `CompactLayout`, written now) and the email messages'
(`MessageLayout`) — so a chunk of either kind loads whichever sealed module was imported first, and no
module registers a layout by being imported.

The mask bits of each kind live here too: `CompactLayout` and `MessageLayout` read a fact's timestamp only
where the row's mask says it has the fact.
"""

from __future__ import annotations

from array import array
from typing import ClassVar

import numpy as np

from engine.state.entities import Attempt, Message
from engine.storage.contact_table import NO_TS
from engine.vocab import OUTCOMES

I32 = 1 << 31  # the bound of a signed 32-bit column

# ---------------------------------------------------------------- attempts: their mask bits and codes
AMD_RESULTS = ("human", "machine", "unknown")
F_DIAL, F_ANS, F_AMD, F_BRIDGE, F_END, F_FOLLOW_UP, F_ANSWERED, F_HUMAN = 1, 2, 4, 8, 16, 32, 64, 128
SLOT_FLAG = {"dial": F_DIAL, "ans": F_ANS, "amd": F_AMD, "bridge": F_BRIDGE, "end": F_END}
OUTCOME_CODE = {o: i for i, o in enumerate(OUTCOMES)}  # the outcome column's code of each outcome
AMD_CODE = {r: i for i, r in enumerate(AMD_RESULTS)}

# ---------------------------------------------------------------- messages: their column order and mask bits
# A file format, so spelled out here, not taken from the email handler's tuple (whose order may change);
# engine.storage.sealed_messages checks that every handled type has its place.
EMAIL_TYPES = ("email.sent", "email.delivered", "email.bounced", "email.opened",
               "email.clicked", "email.replied", "email.unsubscribed")
TYPE_FLAG = {t: 1 << i for i, t in enumerate(EMAIL_TYPES)}  # mask bits (DEAD = 0: every live row has one)
TYPE_INDEX = {t: i for i, t in enumerate(EMAIL_TYPES)}


def ts_of(key) -> int:
    """A fact's ts, NO_TS when the attempt lacks the fact (``key`` None)."""
    return NO_TS if key is None else key[0]


def latest_fact_ts(m: Message) -> int:
    return max(k[0] for k in m.keys.values())


class RowLayout:
    """A sealed row layout: its ``version`` (named by the chunks written in it) and its typed ``COLUMNS``;
    a subclass adds ``encode`` (a row's values, or None when they do not fit), ``value`` and ``column``."""

    version: ClassVar[int]
    COLUMNS: ClassVar[tuple] = ()
    INDEX: ClassVar[dict[str, int]] = {}  # column name -> its position, set per subclass

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.INDEX = {name: i for i, (name, _t) in enumerate(cls.COLUMNS)}

    @classmethod
    def empty(cls) -> list[array]:
        return [array(t) for _n, t in cls.COLUMNS]

    @staticmethod
    def encode(item, contact_row: int) -> tuple | None:
        """The row's values in ``COLUMNS`` order, or None when they do not fit the layout."""
        raise NotImplementedError

    @classmethod
    def value(cls, cols: list[array], name: str, i: int) -> int:
        raise NotImplementedError

    @classmethod
    def column(cls, cols: list[array], name: str, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class WideLayout(RowLayout):
    """Release 3's row layout, one 64-bit column per timestamp: still read from snapshots written by it
    (chunks are immutable), never written by new code."""

    version = 1
    COLUMNS = (("dial", "q"), ("ans", "q"), ("amd", "q"), ("bridge", "q"), ("end", "q"), ("amd_result", "b"),
               ("contact", "i"), ("pass_no", "i"), ("sip", "q"), ("wrap", "q"), ("outcome", "b"))

    @staticmethod
    def encode(a: Attempt, contact_row: int) -> tuple | None:
        if not (-I32 <= a.pass_no < I32):
            return None
        return (ts_of(a.dial), ts_of(a.ans), ts_of(a.amd), ts_of(a.bridge), ts_of(a.end),
                AMD_CODE.get(a.amd_result, -1), contact_row, a.pass_no, NO_TS if a.sip is None else a.sip,
                a.wrap, OUTCOME_CODE.get(a.outcome, -1))

    @classmethod
    def value(cls, cols: list[array], name: str, i: int) -> int:
        return cols[cls.INDEX[name]][i]

    @classmethod
    def column(cls, cols: list[array], name: str, mask: np.ndarray) -> np.ndarray:
        return np.array(cols[cls.INDEX[name]], dtype=np.dtype(cls.COLUMNS[cls.INDEX[name]][1]))


class CompactLayout(RowLayout):
    """40 bytes a row (the wide layout takes 66): the end's ts in full and every other fact as a signed
    32-bit distance back from it, wrap in 32 bits, the SIP code in 16 (0 = none). An attempt whose
    values do not fit (facts more than ~24 days from its end, a wrap over ~24 days) is not sealed:
    `encode` says so and it stays an ordinary open attempt, exact as ever."""

    version = 2
    COLUMNS = (("end", "q"), ("dial", "i"), ("ans", "i"), ("amd", "i"), ("bridge", "i"), ("wrap", "i"),
               ("contact", "i"), ("pass_no", "i"), ("sip", "h"), ("amd_result", "b"), ("outcome", "b"))
    FLAG = {"dial": F_DIAL, "ans": F_ANS, "amd": F_AMD, "bridge": F_BRIDGE}

    @staticmethod
    def encode(a: Attempt, contact_row: int) -> tuple | None:
        end = a.end[0]
        offsets = []
        for key in (a.dial, a.ans, a.amd, a.bridge):
            back = 0 if key is None else end - key[0]
            if not -I32 <= back < I32:
                return None
            offsets.append(back)
        sip = 0 if a.sip is None else a.sip
        if not (0 <= a.wrap < I32 and -I32 <= a.pass_no < I32 and (a.sip is None or 0 < sip < 1 << 15)):
            return None
        return (end, *offsets, a.wrap, contact_row, a.pass_no, sip,
                AMD_CODE.get(a.amd_result, -1), OUTCOME_CODE.get(a.outcome, -1))

    @classmethod
    def value(cls, cols: list[array], name: str, i: int) -> int:
        """The wide layout's value (callers read a ts only where the mask has the fact)."""
        v = cols[cls.INDEX[name]][i]
        if name in cls.FLAG:
            return cols[0][i] - v
        if name == "sip":
            return NO_TS if v == 0 else v
        return v

    @classmethod
    def column(cls, cols: list[array], name: str, mask: np.ndarray) -> np.ndarray:
        """As the wide layout holds it: int64 timestamps with NO_TS where the fact is missing, sip NO_TS
        when none, wrap int64 (sums of it must not overflow)."""
        i = cls.INDEX[name]
        raw = np.array(cols[i], dtype=np.dtype(cls.COLUMNS[i][1]))
        if name in cls.FLAG:
            end = np.array(cols[0], dtype=np.int64)
            return np.where((mask & cls.FLAG[name]) != 0, end - raw.astype(np.int64), NO_TS)
        if name == "sip":
            return np.where(raw == 0, NO_TS, raw.astype(np.int64))
        if name == "wrap":
            return raw.astype(np.int64)
        return raw


class MessageLayout(RowLayout):
    """An email message: the latest fact's ts in full, every fact as a signed 32-bit distance back from it
    (0 where the mask says it has none), the contact row. A message whose facts lie more than ~24 days
    apart does not fit: `encode` says so and it stays an ordinary message."""

    version = 3
    COLUMNS = (("latest", "q"), *((t, "i") for t in EMAIL_TYPES), ("contact", "i"))

    @staticmethod
    def encode(m: Message, contact_row: int) -> tuple | None:
        latest = latest_fact_ts(m)
        backs = [0] * len(EMAIL_TYPES)
        for t, key in m.keys.items():
            back = latest - key[0]
            if back >= I32:  # (never negative: ``latest`` is the largest)
                return None
            backs[TYPE_INDEX[t]] = back
        return (latest, *backs, contact_row)

    @classmethod
    def value(cls, cols: list[array], name: str, i: int) -> int:
        v = cols[cls.INDEX[name]][i]
        return v if name in ("latest", "contact") else cols[0][i] - v

    @classmethod
    def column(cls, cols: list[array], name: str, mask: np.ndarray) -> np.ndarray:
        """A type's fact ts as int64, NO_TS where the message has none; "contact" as stored."""
        i = cls.INDEX[name]
        raw = np.array(cols[i], dtype=np.dtype(cls.COLUMNS[i][1]))
        if name in ("latest", "contact"):
            return raw
        latest = np.array(cols[0], dtype=np.int64)
        return np.where((mask & TYPE_FLAG[name]) != 0, latest - raw.astype(np.int64), NO_TS)


# Every layout a chunk may name (a file format: a version is never reused).
LAYOUTS: dict[int, type[RowLayout]] = {layout.version: layout for layout in (WideLayout, CompactLayout, MessageLayout)}
ATTEMPT_LAYOUT = CompactLayout  # what new attempt rows are written in
