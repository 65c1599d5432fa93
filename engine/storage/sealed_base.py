"""Sealed rows by id: what sealed attempts (engine.storage.sealed) and sealed email messages (engine.storage.sealed_messages)
share — typed hot columns frozen into immutable chunks, a one-byte mask a row, and lookup by id.

Rows are appended to *hot* columns; every ``chunk_rows`` rows they are frozen into an immutable
`FrozenChunk` (with the BLAKE2b-128 digests of its ids), which never changes again: the flow's recovery
writes each frozen chunk once (flows/chunk_store.py) and its snapshots only name it. The per-row mask
(which facts it has; `DEAD` once unsealed) stays hot: one byte a row. Each kind writes its rows in its own
layout (engine.storage.sealed_layouts, where every layout a chunk may name is listed).

Lookup by id: hot rows by a dict of their ids; frozen rows by the top 32 bits of their digests, sorted,
beside the row numbers (8 bytes a row, rebuilt from the chunks on load); a candidate is confirmed by the
full digest, read from its chunk. Two different ids share a digest with probability about n²/2¹²⁹ — for a
billion rows, below 10⁻²⁰.

Both kinds are written as records of the recovery format (engine.storage.recovery_format: tags
``sealed_attempts``, ``sealed_messages``, ``frozen_chunk``); their ``__setstate__`` reads every older shape.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from hashlib import blake2b
from typing import ClassVar

import numpy as np

from engine.storage.sealed_layouts import LAYOUTS, RowLayout, WideLayout

DEAD = 0  # mask of a row that was unsealed again (a live row always has a bit set)
CHUNK_ROWS = 65_536  # default: hot rows frozen into a chunk this many at a time


def digest(row_id: str) -> tuple[int, int]:
    """The BLAKE2b-128 digest of an id, as two 64-bit halves (the chunk keeps both)."""
    d = blake2b(row_id.encode(), digest_size=16).digest()
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")


class FrozenChunk:
    """``chunk_rows`` sealed rows that never change: their columns (in ``layout``) and the digests of their
    ids. ``key`` names the content (a digest of it), so a store can write it once and refer to it."""

    __slots__ = ("columns", "hi", "lo", "key", "layout")

    def __init__(self, columns: list[array], hi: np.ndarray, lo: np.ndarray, layout: type[RowLayout]):
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
        self.layout = LAYOUTS[state[4] if len(state) > 4 else WideLayout.version]  # 4 items: written by release 3
        self.columns = []
        for typecode, raw in cols:
            col = array(typecode)
            col.frombytes(raw)
            self.columns.append(col)
        self.hi = np.frombuffer(hi, dtype=np.uint64)
        self.lo = np.frombuffer(lo, dtype=np.uint64)



def row_numbers(start: int, count: int) -> np.ndarray:
    """Rows ``start`` .. ``start + count - 1`` as the index stores them (int32: 2³¹ sealed rows would
    be over 100 GB of columns, far beyond one campaign's memory)."""
    if start + count > np.iinfo(np.int32).max:
        raise OverflowError("more than 2**31 sealed rows in one campaign")
    return np.arange(start, start + count, dtype=np.int32)


def prefixes(hi: np.ndarray) -> np.ndarray:
    """The index's key: the top 32 bits of a digest's first half (the chunk holds the full 128 bits)."""
    return (hi >> np.uint64(32)).astype(np.uint32)


class SealedRows:
    """Sealed rows by id, in a subclass's layout (``NEW_LAYOUT``); the subclass seals its own kind of item
    into rows (`_append`) and reads them back (`value`). ``guard`` is one hot byte a row that only
    attempts use (``HAS_GUARD``; their compliance-guard bits, engine.compliance.guards): empty for messages."""

    __slots__ = ("chunk_rows", "mask", "chunks", "hot", "hot_layout", "hot_ids", "recent", "keys", "rows", "live",
                 "guard")
    # what rows are written in (a hot part loaded from an older release keeps its own)
    NEW_LAYOUT: ClassVar[type[RowLayout]]
    HAS_GUARD: ClassVar[bool] = False

    def __init__(self, chunk_rows: int = 0):
        self.chunk_rows = chunk_rows or CHUNK_ROWS  # fixed for the state's life: rows are addressed by it
        self.mask = array("B")  # every row, frozen or hot
        self.chunks: list[FrozenChunk] = []
        self.hot_layout = self.NEW_LAYOUT
        self.hot = self.NEW_LAYOUT.empty()  # rows after the last frozen chunk
        self.hot_ids: list[str] = []  # id of each hot row (an id sealed twice has two rows)
        self.recent: dict[str, int] = {}  # id -> its latest hot row
        self.keys = np.zeros(0, dtype=np.uint32)  # top 32 bits of the frozen rows' digests, sorted
        self.rows = np.zeros(0, dtype=np.int32)  # the row of each (its chunk holds the full digest)
        self.live = 0
        self.guard = array("B")  # attempts: every row's guard bits (like the mask, never frozen)

    def __len__(self) -> int:
        return self.live

    def value(self, name: str, row: int) -> int:
        """Column ``name`` of one row, as its layout reads it (a ts only where the mask has the fact)."""
        k, i = divmod(row, self.chunk_rows)
        if k < len(self.chunks):
            chunk = self.chunks[k]
            return chunk.layout.value(chunk.columns, name, i)
        return self.hot_layout.value(self.hot, name, i)

    def find(self, row_id: str) -> int | None:
        """Row of a sealed (not unsealed) id, or None."""
        row = self.recent.get(row_id)
        if row is not None:
            return row if self.mask[row] != DEAD else None
        keys = self.keys
        n = len(keys)
        if not n:
            return None
        h, l_ = digest(row_id)
        prefix = h >> 32
        view = memoryview(keys)  # type: ignore[arg-type]  # (an ndarray is a buffer)
        # bisect over it: a third of np.searchsorted's call cost for one key
        i = bisect_left(view, prefix)
        while i < n and view[i] == prefix:
            row = int(self.rows[i])
            k, j = divmod(row, self.chunk_rows)
            chunk = self.chunks[k]
            if int(chunk.hi[j]) == h and int(chunk.lo[j]) == l_ and self.mask[row] != DEAD:
                return row
            i += 1
        return None

    def hot_id(self, row: int) -> str | None:
        """The id of a row still in the hot part; None for a frozen row (only its digest is kept)."""
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

    def _kill(self, row: int) -> None:
        """The row is unsealed: it stays in its columns, but is no longer found or live."""
        self.mask[row] = DEAD
        self.live -= 1

    def _freeze(self) -> None:
        """Hot rows become a frozen chunk; their ids join the digest index."""
        ids = self.hot_ids
        pairs = [digest(x) for x in ids]
        hi = np.fromiter((p[0] for p in pairs), dtype=np.uint64, count=len(pairs))
        lo = np.fromiter((p[1] for p in pairs), dtype=np.uint64, count=len(pairs))
        base = len(self.chunks) * self.chunk_rows
        self.chunks.append(FrozenChunk(self.hot, hi, lo, self.hot_layout))
        self.hot_layout = self.NEW_LAYOUT
        self.hot = self.NEW_LAYOUT.empty()
        self.hot_ids, self.recent = [], {}
        self._index_add(prefixes(hi), row_numbers(base, len(ids)))

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
        # (pickled before the guards: zeros, which the campaign state then decides: engine.compliance.guards)
        self.guard = state[7] if len(state) > 7 else array("B", bytes(len(self.mask) if self.HAS_GUARD else 0))
        self.hot_layout = LAYOUTS[state[6] if len(state) > 6 else WideLayout.version]  # 6 items: release 3
        if isinstance(hot_ids, str):  # else a list: pickled before the ids went as one string
            hot_ids = hot_ids.split("\n") if len(self.hot[0]) else []
        self.hot_ids = hot_ids
        base = len(self.chunks) * self.chunk_rows
        self.recent = {rid: base + i for i, rid in enumerate(self.hot_ids)}  # later rows win
        self.keys = np.zeros(0, dtype=np.uint32)
        self.rows = np.zeros(0, dtype=np.int32)
        if self.chunks:
            self._index_add(prefixes(np.concatenate([c.hi for c in self.chunks])),
                            row_numbers(0, len(self.chunks) * self.chunk_rows))
