"""An append-only list of ids with a lookup from id to row, in ~30 bytes an id instead of ~200.

A dict of a million contact ids costs ~125 bytes a contact (the dict entry, the
``str`` key, the ``int`` row) and the row → id list another ~65: a third of a
million-contact campaign's memory. Here the ids are one byte string (each id
followed by ``\\n``; ids never hold one), with typed arrays beside it:

- ``ends``: the offset of each row's ``\\n`` (row → id is a slice);
- ``hashes``: each row's ``hash(id)``;
- ``slots``: an open-addressing table (linear probing, at most half full) of
  row numbers, -1 for empty, placed by the id's hash.

A lookup probes from ``hash(id) & mask`` and compares the hash, then the id
itself, so two ids with the same hash are still told apart. Python's string
hash is salted per process, so ``hashes`` and ``slots`` are never pickled:
`from_bytes` rebuilds them from the ids.
"""

from __future__ import annotations

from array import array

import numpy as np

EMPTY = -1
MIN_SLOTS = 8


class IdRows:
    __slots__ = ("data", "ends", "hashes", "slots", "mask")

    def __init__(self):
        self.data = bytearray()  # every id + "\n", in row order
        self.ends = array("q")  # row -> offset of its "\n" in data
        self.hashes = array("q")  # row -> hash(id)
        self.slots = array("i", [EMPTY]) * MIN_SLOTS
        self.mask = MIN_SLOTS - 1

    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> IdRows:
        """The ids of ``data`` (each followed by ``\\n``) in order, with the lookup table rebuilt."""
        self = cls()
        self.data = bytearray(data)
        self.ends.frombytes(np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 10).astype(np.int64).tobytes())
        self.hashes = array("q", map(hash, self.data.decode().split("\n")[:-1]))
        self._resize(len(self.hashes))
        return self

    def __len__(self) -> int:
        return len(self.ends)

    def __iter__(self):
        return iter(self.data.decode().split("\n")[:-1])

    def __contains__(self, name: str) -> bool:
        return self.row(name) is not None

    def name(self, row: int) -> str:
        if row < 0:
            raise IndexError(row)
        ends = self.ends
        return self.data[ends[row - 1] + 1 if row else 0:ends[row]].decode()

    def row(self, name: str) -> int | None:
        """Row of ``name``, or None."""
        h = hash(name)
        slots, hashes, mask = self.slots, self.hashes, self.mask
        i = h & mask
        r = slots[i]
        while r != EMPTY:
            if hashes[r] == h:
                ends = self.ends
                if self.data[ends[r - 1] + 1 if r else 0:ends[r]] == name.encode():
                    return r
            i = (i + 1) & mask
            r = slots[i]
        return None

    def add(self, name: str) -> int:
        """Append ``name`` (not present yet: the caller looked it up) and return its row."""
        row = len(self.ends)
        self.data += name.encode()
        self.data.append(10)  # "\n"
        self.ends.append(len(self.data) - 1)
        h = hash(name)
        self.hashes.append(h)
        if 2 * (row + 1) > len(self.slots):
            self._resize(row + 1)
        else:
            self._place(row, h)
        return row

    def _place(self, row: int, h: int) -> None:
        slots, mask = self.slots, self.mask
        i = h & mask
        while slots[i] != EMPTY:
            i = (i + 1) & mask
        slots[i] = row

    def _resize(self, count: int) -> None:
        """A table for ``count`` rows at most half full (the next power of two ≥ 2 × count)."""
        size = MIN_SLOTS
        while size < 2 * count:
            size *= 2
        self.slots = array("i", [EMPTY]) * size
        self.mask = size - 1
        for row, h in enumerate(self.hashes):
            self._place(row, h)
