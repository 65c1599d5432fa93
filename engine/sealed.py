"""Sealed attempts: finished attempts whose facts are all behind the lateness horizon, kept as columns.

An ended attempt whose every fact is older than the campaign's watermark minus
the lateness bound has given its whole contribution to the aggregates. Any
event the gate still accepts for it is later than all its facts, so (SPEC §1
rules) it can only be a duplicate of a fact it has (a no-op, counted), a
fact stamped after its end (which cannot change the outcome, but still counts,
e.g. a ring time or a bridge), or an evaluation. So the per-attempt object is
dropped from memory and only what an exact retraction needs is kept, in typed
arrays: fact timestamps, contact row, pass, AMD result, SIP code, wrap time,
outcome. A new fact for a sealed attempt *unseals* it back into an `Attempt`
(`unseal`), which then takes the ordinary retract-apply-add path.

Rows are appended to *hot* columns; every `CHUNK_ROWS` rows they are frozen
into an immutable `FrozenChunk` (with the BLAKE2b-128 digests of its attempt
ids), which never changes again: the flow's recovery writes each frozen chunk
once (flows/chunk_store.py) and its snapshots only name it. The per-row mask
(which facts it has, and whether it was unsealed) stays hot: one byte a row.

Rows are kept in `CompactLayout` (40 bytes; an attempt whose values do not
fit it is not sealed and stays open); chunks written by release 3 in
`WideLayout` are still read. Snapshots written now cannot be read by
release 3 (no downgrade).

Lookup by attempt id: hot rows by a dict of their ids; frozen rows by the
top 32 bits of their digests, sorted, beside the row numbers (8 bytes a
row, rebuilt from the chunks on load); a candidate is confirmed by the
full digest, read from its chunk. Two
different ids share a digest with probability about n²/2¹²⁹ — for a billion
attempts, below 10⁻²⁰.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from hashlib import blake2b

import numpy as np

from engine.contact_table import NO_TS
from engine.entities import Attempt
from engine.vocab import OUTCOMES

AMD_RESULTS = ("human", "machine", "unknown")
F_DIAL, F_ANS, F_AMD, F_BRIDGE, F_END, F_FOLLOW_UP, F_ANSWERED, F_HUMAN = 1, 2, 4, 8, 16, 32, 64, 128
DEAD = 0  # mask of a row whose attempt was unsealed again (a live row always has F_END)
SLOT_FLAG = {"dial": F_DIAL, "ans": F_ANS, "amd": F_AMD, "bridge": F_BRIDGE, "end": F_END}
CHUNK_ROWS = 65_536  # default: hot rows frozen into a chunk this many at a time
TS_COLUMNS = ("dial", "ans", "amd", "bridge", "end")
COLUMN_NAMES = TS_COLUMNS + ("amd_result", "contact", "pass_no", "sip", "wrap", "outcome")

_OUTCOME_CODE = {o: i for i, o in enumerate(OUTCOMES)}
_AMD_CODE = {r: i for i, r in enumerate(AMD_RESULTS)}
_I32 = 1 << 31


def _digest(attempt_id: str) -> tuple[int, int]:
    d = blake2b(attempt_id.encode(), digest_size=16).digest()
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")


def _ts(key) -> int:
    return NO_TS if key is None else key[0]


class RowLayout:
    """A sealed row layout: its ``version`` (named by the chunks written in it) and its typed ``COLUMNS``;
    a subclass adds ``encode`` (a row's values, or None when they do not fit), ``value`` and ``column``."""

    version: int
    COLUMNS: tuple = ()
    _INDEX: dict[str, int] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._INDEX = {name: i for i, (name, _t) in enumerate(cls.COLUMNS)}

    @classmethod
    def empty(cls) -> list[array]:
        return [array(t) for _n, t in cls.COLUMNS]


class WideLayout(RowLayout):
    """Release 3's row layout, one 64-bit column per timestamp: still read from snapshots written by it
    (chunks are immutable), never written by new code."""

    version = 1
    COLUMNS = (("dial", "q"), ("ans", "q"), ("amd", "q"), ("bridge", "q"), ("end", "q"), ("amd_result", "b"),
               ("contact", "i"), ("pass_no", "i"), ("sip", "q"), ("wrap", "q"), ("outcome", "b"))

    @staticmethod
    def encode(a: Attempt, contact_row: int) -> tuple | None:
        if not (-_I32 <= a.pass_no < _I32):
            return None
        return (_ts(a.dial), _ts(a.ans), _ts(a.amd), _ts(a.bridge), _ts(a.end),
                _AMD_CODE.get(a.amd_result, -1), contact_row, a.pass_no, NO_TS if a.sip is None else a.sip,
                a.wrap, _OUTCOME_CODE.get(a.outcome, -1))

    @classmethod
    def value(cls, cols: list[array], name: str, i: int) -> int:
        return cols[cls._INDEX[name]][i]

    @classmethod
    def column(cls, cols: list[array], name: str, mask: np.ndarray) -> np.ndarray:
        return np.array(cols[cls._INDEX[name]], dtype=np.dtype(cls.COLUMNS[cls._INDEX[name]][1]))


class CompactLayout(RowLayout):
    """40 bytes a row (the wide layout takes 66): the end's ts in full and every other fact as a signed
    32-bit distance back from it, wrap in 32 bits, the SIP code in 16 (0 = none). An attempt whose
    values do not fit (facts more than ~24 days from its end, a wrap over ~24 days) is not sealed:
    `encode` says so and it stays an ordinary open attempt, exact as ever."""

    version = 2
    COLUMNS = (("end", "q"), ("dial", "i"), ("ans", "i"), ("amd", "i"), ("bridge", "i"), ("wrap", "i"),
               ("contact", "i"), ("pass_no", "i"), ("sip", "h"), ("amd_result", "b"), ("outcome", "b"))
    _FLAG = {"dial": F_DIAL, "ans": F_ANS, "amd": F_AMD, "bridge": F_BRIDGE}

    @staticmethod
    def encode(a: Attempt, contact_row: int) -> tuple | None:
        end = a.end[0]
        offsets = []
        for key in (a.dial, a.ans, a.amd, a.bridge):
            back = 0 if key is None else end - key[0]
            if not -_I32 <= back < _I32:
                return None
            offsets.append(back)
        sip = 0 if a.sip is None else a.sip
        if not (0 <= a.wrap < _I32 and -_I32 <= a.pass_no < _I32 and (a.sip is None or 0 < sip < 1 << 15)):
            return None
        return (end, *offsets, a.wrap, contact_row, a.pass_no, sip,
                _AMD_CODE.get(a.amd_result, -1), _OUTCOME_CODE.get(a.outcome, -1))

    @classmethod
    def value(cls, cols: list[array], name: str, i: int) -> int:
        """The wide layout's value (callers read a ts only where the mask has the fact)."""
        v = cols[cls._INDEX[name]][i]
        if name in cls._FLAG:
            return cols[0][i] - v
        if name == "sip":
            return NO_TS if v == 0 else v
        return v

    @classmethod
    def column(cls, cols: list[array], name: str, mask: np.ndarray) -> np.ndarray:
        """As the wide layout holds it: int64 timestamps with NO_TS where the fact is missing, sip NO_TS
        when none, wrap int64 (sums of it must not overflow)."""
        i = cls._INDEX[name]
        raw = np.array(cols[i], dtype=np.dtype(cls.COLUMNS[i][1]))
        if name in cls._FLAG:
            end = np.array(cols[0], dtype=np.int64)
            return np.where((mask & cls._FLAG[name]) != 0, end - raw.astype(np.int64), NO_TS)
        if name == "sip":
            return np.where(raw == 0, NO_TS, raw.astype(np.int64))
        if name == "wrap":
            return raw.astype(np.int64)
        return raw


LAYOUTS = {layout.version: layout for layout in (WideLayout, CompactLayout)}
LAYOUT = CompactLayout  # what new rows are written in


class FrozenChunk:
    """CHUNK_ROWS sealed rows that never change: their columns (in ``layout``) and the digests of their
    attempt ids. ``key`` names the content (a digest of it), so a store can write it once and refer to it."""

    __slots__ = ("columns", "hi", "lo", "key", "layout")

    def __init__(self, columns: list[array], hi: np.ndarray, lo: np.ndarray, layout=LAYOUT):
        self.columns = columns
        self.hi, self.lo = hi, lo
        self.layout = layout
        h = blake2b(digest_size=16)
        h.update(b"layout%d" % layout.version)
        for col in columns:
            h.update(col.tobytes())
        h.update(hi.tobytes())
        h.update(lo.tobytes())
        self.key = h.hexdigest()

    @property
    def chunk_key(self) -> str:
        return self.key

    def chunk_data(self) -> FrozenChunk:
        return self

    def __getstate__(self):
        return ([(c.typecode, c.tobytes()) for c in self.columns], self.hi.tobytes(), self.lo.tobytes(), self.key,
                self.layout.version)

    def __setstate__(self, state):
        cols, hi, lo, self.key = state[:4]
        version = state[4] if len(state) > 4 else WideLayout.version  # 4 items: written by release 3
        if version not in LAYOUTS:  # a message chunk read before engine.sealed_messages was imported
            import engine.sealed_messages  # noqa: F401  (registers MessageLayout)
        self.layout = LAYOUTS[version]
        self.columns = []
        for typecode, raw in cols:
            col = array(typecode)
            col.frombytes(raw)
            self.columns.append(col)
        self.hi = np.frombuffer(hi, dtype=np.uint64)
        self.lo = np.frombuffer(lo, dtype=np.uint64)


def _row_numbers(start: int, count: int) -> np.ndarray:
    """Rows ``start`` .. ``start + count - 1`` as the index stores them (int32: 2³¹ sealed attempts would
    be over 100 GB of columns, far beyond one campaign's memory)."""
    if start + count > np.iinfo(np.int32).max:
        raise OverflowError("more than 2**31 sealed attempts in one campaign")
    return np.arange(start, start + count, dtype=np.int32)


def _prefixes(hi: np.ndarray) -> np.ndarray:
    """The index's key: the top 32 bits of a digest's first half (the chunk holds the full 128 bits)."""
    return (hi >> np.uint64(32)).astype(np.uint32)


class SealedAttempts:
    """Sealed attempts by id (`engine.sealed_messages.SealedMessages` keeps email messages the same way,
    in its own row layout: ``NEW_LAYOUT``, and its own mask bits)."""

    __slots__ = ("chunk_rows", "mask", "chunks", "hot", "hot_layout", "hot_ids", "recent", "keys", "rows", "live",
                 "guard")
    NEW_LAYOUT = LAYOUT  # what rows are written in (a hot part loaded from an older release keeps its own)
    HAS_GUARD = True  # a hot byte a row with the attempt's compliance-guard bits (engine.state_guards)

    def __init__(self, chunk_rows: int = 0):
        self.chunk_rows = chunk_rows or CHUNK_ROWS  # fixed for the state's life: rows are addressed by it
        self.mask = array("B")  # every row, frozen or hot
        self.chunks: list[FrozenChunk] = []
        self.hot_layout = self.NEW_LAYOUT
        self.hot = self.NEW_LAYOUT.empty()  # rows after the last frozen chunk
        self.hot_ids: list[str] = []  # attempt_id of each hot row (an id sealed twice has two rows)
        self.recent: dict[str, int] = {}  # attempt_id -> its latest hot row
        self.keys = np.zeros(0, dtype=np.uint32)  # top 32 bits of the frozen rows' digests, sorted
        self.rows = np.zeros(0, dtype=np.int32)  # the row of each (its chunk holds the full digest)
        self.live = 0
        self.guard = array("B")  # attempts: every row's guard bits (like the mask, never frozen)

    def __len__(self) -> int:
        return self.live

    def _value(self, name: str, row: int) -> int:
        k, i = divmod(row, self.chunk_rows)
        if k < len(self.chunks):
            chunk = self.chunks[k]
            return chunk.layout.value(chunk.columns, name, i)
        return self.hot_layout.value(self.hot, name, i)

    def find(self, attempt_id: str) -> int | None:
        """Row of a sealed (not unsealed) attempt, or None."""
        row = self.recent.get(attempt_id)
        if row is not None:
            return row if self.mask[row] != DEAD else None
        keys = self.keys
        n = len(keys)
        if not n:
            return None
        h, l_ = _digest(attempt_id)
        prefix = h >> 32
        view = memoryview(keys)  # bisect over it: a third of np.searchsorted's call cost for one key
        i = bisect_left(view, prefix)
        while i < n and view[i] == prefix:
            row = int(self.rows[i])
            k, j = divmod(row, self.chunk_rows)
            chunk = self.chunks[k]
            if int(chunk.hi[j]) == h and int(chunk.lo[j]) == l_ and self.mask[row] != DEAD:
                return row
            i += 1
        return None

    def seal(self, attempt_id: str, a: Attempt, contact_row: int) -> bool:
        """Keep an ended attempt as a row; False (nothing kept) when its values do not fit the row
        layout: the caller then keeps the attempt open."""
        assert a.end is not None, "only ended attempts are sealed"
        values = self.hot_layout.encode(a, contact_row)
        if values is None:
            return False
        mask = ((F_DIAL if a.dial else 0) | (F_ANS if a.ans else 0) | (F_AMD if a.amd else 0)
                | (F_BRIDGE if a.bridge else 0) | F_END | (F_FOLLOW_UP if a.follow_up else 0)
                | (F_ANSWERED if a.answered_at_end else 0) | (F_HUMAN if a.human_at_end else 0))
        self.guard.append(a.guards)
        self._append(attempt_id, mask, values)
        return True

    def hot_id(self, row: int) -> str | None:
        """The attempt id of a row still in the hot part; None for a frozen row (only its digest is kept)."""
        i = row - len(self.chunks) * self.chunk_rows
        return self.hot_ids[i] if i >= 0 else None

    def _append(self, key: str, mask: int, values: tuple) -> None:
        """A new hot row (``mask`` != DEAD) for ``key``; the hot rows freeze into a chunk when full."""
        row = len(self.mask)
        self.mask.append(mask)
        for col, v in zip(self.hot, values):
            col.append(v)
        self.recent[key] = row
        self.hot_ids.append(key)
        self.live += 1
        if len(self.hot[0]) >= self.chunk_rows:
            self._freeze()

    def has_fact(self, row: int, slot: str) -> bool:
        return bool(self.mask[row] & SLOT_FLAG[slot])

    def unseal(self, row: int, contact_name) -> Attempt:
        """The attempt back as an `Attempt`, marked ``partial``: its facts are keyed ``(ts, "")`` (every
        event still accepted is later than all of them, so no comparison needs the event ids), its
        outcome is the one decided at its end and is never re-decided (nothing accepted now can
        precede the end), and its detail-only fields (phone, conversation, recording, evaluation)
        stayed in the detail store."""
        a = self.view(row, contact_name)
        self.mask[row] = DEAD
        self.live -= 1
        return a

    def view(self, row: int, contact_name) -> Attempt:
        """The row as a ``partial`` `Attempt` (as `unseal` gives it), the row staying sealed: for its
        detail record when a later fact re-decides its guards (engine.state_guards)."""
        m = self.mask[row]
        v = self._value
        a = Attempt()
        a.partial = True
        if m & F_DIAL:
            a.dial = (v("dial", row), "")
        if m & F_ANS:
            a.ans = (v("ans", row), "")
        if m & F_AMD:
            a.amd = (v("amd", row), "")
            code = v("amd_result", row)
            a.amd_result = AMD_RESULTS[code] if code >= 0 else None
        if m & F_BRIDGE:
            a.bridge = (v("bridge", row), "")
        if m & F_END:
            a.end = (v("end", row), "")
        c = v("contact", row)
        a.contact = contact_name(c) if c >= 0 else None
        a.pass_no = v("pass_no", row)
        a.follow_up = bool(m & F_FOLLOW_UP)
        sip = v("sip", row)
        a.sip = None if sip == NO_TS else sip
        a.wrap = v("wrap", row)
        o = v("outcome", row)
        a.outcome = OUTCOMES[o] if o >= 0 else None
        a.answered_at_end = bool(m & F_ANSWERED)
        a.human_at_end = bool(m & F_HUMAN)
        a.guards = self.guard[row]
        return a

    def _freeze(self) -> None:
        """Hot rows become a frozen chunk; their ids join the digest index."""
        ids = self.hot_ids
        pairs = [_digest(x) for x in ids]
        hi = np.fromiter((p[0] for p in pairs), dtype=np.uint64, count=len(pairs))
        lo = np.fromiter((p[1] for p in pairs), dtype=np.uint64, count=len(pairs))
        base = len(self.chunks) * self.chunk_rows
        self.chunks.append(FrozenChunk(self.hot, hi, lo, self.hot_layout))
        self.hot_layout = self.NEW_LAYOUT
        self.hot = self.NEW_LAYOUT.empty()
        self.hot_ids, self.recent = [], {}
        self._index_add(_prefixes(hi), _row_numbers(base, len(ids)))

    def _index_add(self, keys, rows) -> None:
        """Merge new keys into the index, sorted (equal keys stay adjacent; `find` checks the full
        digest in the row's chunk). One array at a time, so the transient memory is one column's old
        and new copy."""
        order = np.argsort(keys, kind="stable")
        keys, rows = keys[order], rows[order]
        at = np.searchsorted(self.keys, keys)
        self.keys = np.insert(self.keys, at, keys)
        self.rows = np.insert(self.rows, at, rows)

    # numpy copies for the rare full scans (a retraction lowered a maximum)
    def column(self, name: str) -> np.ndarray:
        """One column over every row, as int64 timestamps with NO_TS for a missing fact (the same
        whatever layout each chunk was written in); "mask" gives the masks."""
        mask = np.array(self.mask, dtype=np.uint8)  # a copy: a view would pin the array's size
        if name == "mask":
            return mask
        parts = [(c.layout, c.columns) for c in self.chunks] + [(self.hot_layout, self.hot)]
        cr = self.chunk_rows
        decoded = [layout.column(cols, name, mask[k * cr:k * cr + len(cols[0])])
                   for k, (layout, cols) in enumerate(parts)]
        if len({d.dtype for d in decoded}) > 1:  # a wide chunk beside compact ones: widen to one type
            decoded = [d.astype(np.int64) for d in decoded]
        return np.concatenate(decoded)

    def live_rows(self) -> np.ndarray:
        return self.column("mask") != DEAD

    # Pickled without the digest index: it is rebuilt from the chunks (each chunk carries its digests).
    # The hot ids go as one string (up to a chunk's worth of ids: one object, not 65,536).
    def __getstate__(self):
        return (self.chunk_rows, self.mask, self.chunks, self.hot, "\n".join(self.hot_ids), self.live,
                self.hot_layout.version, self.guard)

    def __setstate__(self, state):
        self.chunk_rows, self.mask, self.chunks, self.hot, hot_ids, self.live = state[:6]
        # (pickled before the guards: zeros, which the campaign state then decides: engine.state_guards)
        self.guard = state[7] if len(state) > 7 else array("B", bytes(len(self.mask) if self.HAS_GUARD else 0))
        self.hot_layout = LAYOUTS[state[6] if len(state) > 6 else WideLayout.version]  # 6 items: release 3
        if isinstance(hot_ids, str):  # else a list: pickled before the ids went as one string
            hot_ids = hot_ids.split("\n") if len(self.hot[0]) else []
        self.hot_ids = hot_ids
        base = len(self.chunks) * self.chunk_rows
        self.recent = {aid: base + i for i, aid in enumerate(self.hot_ids)}  # later rows win
        self.keys = np.zeros(0, dtype=np.uint32)
        self.rows = np.zeros(0, dtype=np.int32)
        if self.chunks:
            self._index_add(_prefixes(np.concatenate([c.hi for c in self.chunks])),
                            _row_numbers(0, len(self.chunks) * self.chunk_rows))
