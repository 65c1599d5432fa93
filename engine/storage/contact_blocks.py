"""The contact columns in fixed blocks of rows, so a recovery snapshot writes only the blocks that changed.

A million-contact campaign holds ~50 MB of contact columns and ids. Pickling them
whole every epoch makes the snapshot cost grow with the campaign, while in an epoch
only a few blocks change (contacts are dialed in row order, and a contact's facts
change while it is being worked). So `ContactTable` pickles its columns as one
`ColumnBlockRef` per block of rows:

- a block changed since the last pickle (the table marks it *dirty* on every write)
  is copied into a `ColumnBlock`, whose ``key`` is a digest of its content;
- an unchanged block is only its key (and where to read it: the live table).

The flow's chunk store (flows/chunk_store.py) writes a block the first time it sees
its key and afterwards stores only the key, exactly as for sealed attempt chunks.
A plain pickle (tests, `copy`) writes every block's content. Loading concatenates
the blocks back into the columns.
"""

from __future__ import annotations

from array import array
from hashlib import blake2b

BLOCK_ROWS = 65_536  # default rows per block
COLUMNS = (("status", "b"), ("retry", "i"), ("dialed", "i"), ("batch", "i"), ("status_ts", "q"),
           ("added_ts", "q"), ("meeting", "b"), ("tz", "H"), ("human", "i"), ("due", "q"))
# Blocks written before the zone and human columns existed (issue #23) hold the first seven, and before the
# due column (issue 24) the first nine: `join_blocks` fills the missing ones with zeros (no zone, no human
# answer counted yet, no due time known).


class ColumnBlock:
    """One block's column bytes and id bytes (each id followed by a newline), and whatever else its
    owner keeps per row in encoded form (``extra``: the contact table's callback histories), immutable."""

    __slots__ = ("key", "columns", "ids", "extra")

    def __init__(self, columns: tuple[bytes, ...], ids: bytes, extra: bytes = b"", key: str | None = None):
        self.columns = columns
        self.ids = ids
        self.extra = extra
        if key is None:
            h = blake2b(digest_size=16)
            for col in columns:
                h.update(len(col).to_bytes(8, "little"))
                h.update(col)
            h.update(ids)
            if extra:  # (a block without any keeps the key it had before blocks carried extras)
                h.update(b"\0extra")
                h.update(extra)
            key = "cb" + h.hexdigest()
        self.key = key

    @property
    def chunk_key(self) -> str:
        return self.key

    def chunk_data(self) -> ColumnBlock:
        return self

    def __getstate__(self):
        return self.key, self.columns, self.ids, self.extra

    def __setstate__(self, state):
        self.key, self.columns, self.ids, *extra = state  # 3 items: written before blocks had extras
        self.extra = extra[0] if extra else b""


class BlockBook:
    """Which blocks of rows changed since the last pickle, and the content key of each clean one. The
    owner (a table of columns) calls `touch` on every write and `refs` when it is pickled; it provides
    ``block_content(b) -> (column bytes, id bytes[, extra bytes])``."""

    __slots__ = ("rows", "dirty", "keys")

    def __init__(self, rows: int = 0):
        self.rows = rows or BLOCK_ROWS
        self.dirty: set[int] = set()
        self.keys: dict[int, str] = {}

    def touch(self, row: int) -> None:
        self.dirty.add(row // self.rows)

    def touch_range(self, lo: int, hi: int) -> None:
        """Rows lo..hi (inclusive) changed, e.g. a column grown to reach row hi."""
        self.dirty.update(range(lo // self.rows, hi // self.rows + 1))

    def refs(self, owner, n_blocks: int) -> list[ColumnBlockRef]:
        out = []
        for b in range(n_blocks):
            key = None if b in self.dirty else self.keys.get(b)
            if key is None:
                block = ColumnBlock(*owner.block_content(b))
                self.keys[b] = block.key
                out.append(ColumnBlockRef(block.key, owner, b, block))
            else:
                out.append(ColumnBlockRef(key, owner, b, None))
        self.dirty = set()
        return out

    def loaded(self, blocks: list[ColumnBlock]) -> None:
        """After a load: every block clean, with its key."""
        self.dirty = set()
        self.keys = {b: blk.key for b, blk in enumerate(blocks)}

    def __getstate__(self):  # what changed is as of the last pickle of the owner: not carried
        return self.rows

    def __setstate__(self, rows):
        self.rows, self.dirty, self.keys = rows, set(), {}


class ColumnBlockRef:
    """A snapshot's reference to one block: the content itself when the block changed, else the key
    and the owner to read the (unchanged) content from should a plain pickle need it."""

    __slots__ = ("key", "table", "index", "block")

    def __init__(self, key: str, table, index: int, block: ColumnBlock | None):
        self.key, self.table, self.index, self.block = key, table, index, block

    @property
    def chunk_key(self) -> str:
        return self.key

    def chunk_data(self) -> ColumnBlock:
        if self.block is not None:
            return self.block
        columns, ids, *extra = self.table.block_content(self.index)  # (a pass's counters have no extra)
        return ColumnBlock(columns, ids, extra[0] if extra else b"", key=self.key)

    def __reduce__(self):  # a plain pickle: the content
        return ColumnBlock, (*self.table.block_content(self.index),) if self.block is None else \
            (self.block.columns, self.block.ids, self.block.extra, self.block.key)


def join_blocks(blocks: list[ColumnBlock], typecodes=None) -> tuple[list[array], bytes]:
    """The columns (of the contact table, or of ``typecodes``) and the id bytes of consecutive blocks."""
    columns = [array(t) for t in (typecodes or [t for _n, t in COLUMNS])]
    for blk in blocks:
        for col, raw in zip(columns, blk.columns):
            col.frombytes(raw)
        if len(blk.columns) < len(columns):  # an older block: its rows get zeros in the newer columns
            rows = len(blk.columns[0]) // columns[0].itemsize
            for col in columns[len(blk.columns):]:
                col.frombytes(bytes(rows * col.itemsize))
    return columns, b"".join(blk.ids for blk in blocks)
