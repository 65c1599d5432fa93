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

Lookup by attempt id: hot rows by a dict of their ids; frozen rows by the
first halves of their digests, sorted, beside the row numbers (12 bytes a
row, rebuilt from the chunks on load); a candidate is confirmed by the
second half, read from its chunk. Two
different ids share a digest with probability about n²/2¹²⁹ — for a billion
attempts, below 10⁻²⁰.
"""

from __future__ import annotations

from array import array
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
COLUMNS = (("dial", "q"), ("ans", "q"), ("amd", "q"), ("bridge", "q"), ("end", "q"), ("amd_result", "b"),
           ("contact", "i"), ("pass_no", "i"), ("sip", "q"), ("wrap", "q"), ("outcome", "b"))
_COL_INDEX = {name: i for i, (name, _t) in enumerate(COLUMNS)}
TS_COLUMNS = ("dial", "ans", "amd", "bridge", "end")

_OUTCOME_CODE = {o: i for i, o in enumerate(OUTCOMES)}
_AMD_CODE = {r: i for i, r in enumerate(AMD_RESULTS)}


def _digest(attempt_id: str) -> tuple[int, int]:
    d = blake2b(attempt_id.encode(), digest_size=16).digest()
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")


def _ts(key) -> int:
    return NO_TS if key is None else key[0]


def _empty_columns() -> list[array]:
    return [array(t) for _n, t in COLUMNS]


class FrozenChunk:
    """CHUNK_ROWS sealed rows that never change: their columns and the digests of their attempt ids.
    ``key`` names the content (a digest of it), so a store can write it once and refer to it."""

    __slots__ = ("columns", "hi", "lo", "key")

    def __init__(self, columns: list[array], hi: np.ndarray, lo: np.ndarray):
        self.columns = columns
        self.hi, self.lo = hi, lo
        h = blake2b(digest_size=16)
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
        return ([(c.typecode, c.tobytes()) for c in self.columns], self.hi.tobytes(), self.lo.tobytes(), self.key)

    def __setstate__(self, state):
        cols, hi, lo, self.key = state
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


class SealedAttempts:
    __slots__ = ("chunk_rows", "mask", "chunks", "hot", "hot_ids", "recent", "hi", "rows", "live")

    def __init__(self, chunk_rows: int = 0):
        self.chunk_rows = chunk_rows or CHUNK_ROWS  # fixed for the state's life: rows are addressed by it
        self.mask = array("B")  # every row, frozen or hot
        self.chunks: list[FrozenChunk] = []
        self.hot = _empty_columns()  # rows after the last frozen chunk
        self.hot_ids: list[str] = []  # attempt_id of each hot row (an id sealed twice has two rows)
        self.recent: dict[str, int] = {}  # attempt_id -> its latest hot row
        self.hi = np.zeros(0, dtype=np.uint64)  # first halves of the frozen rows' digests, sorted
        self.rows = np.zeros(0, dtype=np.int32)  # the row of each (its chunk holds the second half)
        self.live = 0

    def __len__(self) -> int:
        return self.live

    def _value(self, name: str, row: int) -> int:
        k, i = divmod(row, self.chunk_rows)
        cols = self.chunks[k].columns if k < len(self.chunks) else self.hot
        return cols[_COL_INDEX[name]][i]

    def find(self, attempt_id: str) -> int | None:
        """Row of a sealed (not unsealed) attempt, or None."""
        row = self.recent.get(attempt_id)
        if row is not None:
            return row if self.mask[row] != DEAD else None
        if not len(self.hi):
            return None
        h, l_ = _digest(attempt_id)
        hi = self.hi
        i = int(np.searchsorted(hi, np.uint64(h)))
        n = len(hi)
        while i < n and int(hi[i]) == h:
            row = int(self.rows[i])
            k, j = divmod(row, self.chunk_rows)
            if int(self.chunks[k].lo[j]) == l_ and self.mask[row] != DEAD:
                return row
            i += 1
        return None

    def seal(self, attempt_id: str, a: Attempt, contact_row: int) -> None:
        mask = ((F_DIAL if a.dial else 0) | (F_ANS if a.ans else 0) | (F_AMD if a.amd else 0)
                | (F_BRIDGE if a.bridge else 0) | (F_END if a.end else 0) | (F_FOLLOW_UP if a.follow_up else 0)
                | (F_ANSWERED if a.answered_at_end else 0) | (F_HUMAN if a.human_at_end else 0))
        assert mask & F_END, "only ended attempts are sealed"
        row = len(self.mask)
        self.mask.append(mask)
        values = (_ts(a.dial), _ts(a.ans), _ts(a.amd), _ts(a.bridge), _ts(a.end),
                  _AMD_CODE.get(a.amd_result, -1), contact_row, a.pass_no, NO_TS if a.sip is None else a.sip,
                  a.wrap, _OUTCOME_CODE.get(a.outcome, -1))
        for col, v in zip(self.hot, values):
            col.append(v)
        self.recent[attempt_id] = row
        self.hot_ids.append(attempt_id)
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
        self.mask[row] = DEAD
        self.live -= 1
        return a

    def _freeze(self) -> None:
        """Hot rows become a frozen chunk; their ids join the digest index."""
        ids = self.hot_ids
        pairs = [_digest(x) for x in ids]
        hi = np.fromiter((p[0] for p in pairs), dtype=np.uint64, count=len(pairs))
        lo = np.fromiter((p[1] for p in pairs), dtype=np.uint64, count=len(pairs))
        base = len(self.chunks) * self.chunk_rows
        self.chunks.append(FrozenChunk(self.hot, hi, lo))
        self.hot = _empty_columns()
        self.hot_ids, self.recent = [], {}
        self._index_add(hi, _row_numbers(base, len(ids)))

    def _index_add(self, hi, rows) -> None:
        """Merge new digests' first halves into the index, sorted (equal ``hi`` stay adjacent; `find`
        checks the second half in the row's chunk). One array at a time, so the transient memory is one
        column's old and new copy."""
        order = np.argsort(hi, kind="stable")
        hi, rows = hi[order], rows[order]
        at = np.searchsorted(self.hi, hi)
        self.hi = np.insert(self.hi, at, hi)
        self.rows = np.insert(self.rows, at, rows)

    # numpy copies for the rare full scans (a retraction lowered a maximum)
    def column(self, name: str) -> np.ndarray:
        i = _COL_INDEX[name] if name != "mask" else None
        if i is None:
            parts = [self.mask]
        else:
            parts = [c.columns[i] for c in self.chunks] + [self.hot[i]]
        typecode = parts[0].typecode
        return np.concatenate([np.array(p, dtype=np.dtype(typecode)) for p in parts]) if any(parts) \
            else np.zeros(0, np.dtype(typecode))

    def live_rows(self) -> np.ndarray:
        return self.column("mask") != DEAD

    # Pickled without the digest index: it is rebuilt from the chunks (each chunk carries its digests).
    # The hot ids go as one string (up to a chunk's worth of ids: one object, not 65,536).
    def __getstate__(self):
        return self.chunk_rows, self.mask, self.chunks, self.hot, "\n".join(self.hot_ids), self.live

    def __setstate__(self, state):
        self.chunk_rows, self.mask, self.chunks, self.hot, hot_ids, self.live = state
        if isinstance(hot_ids, str):  # else a list: pickled before the ids went as one string
            hot_ids = hot_ids.split("\n") if len(self.hot[0]) else []
        self.hot_ids = hot_ids
        base = len(self.chunks) * self.chunk_rows
        self.recent = {aid: base + i for i, aid in enumerate(self.hot_ids)}  # later rows win
        self.hi = np.zeros(0, dtype=np.uint64)
        self.rows = np.zeros(0, dtype=np.int32)
        if self.chunks:
            self._index_add(np.concatenate([c.hi for c in self.chunks]), _row_numbers(0, len(self.chunks) * self.chunk_rows))
