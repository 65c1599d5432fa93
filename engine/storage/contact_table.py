"""A campaign's contacts as columns: a few bytes a contact, pickled at memory speed.

A campaign of a million contacts cannot be a million Python objects: each
costs hundreds of bytes and recovery snapshots would pickle them one by one
(seconds). Here a contact is a row number; its facts live in typed arrays
(`array.array`, which pickles as raw bytes) and its id in an append-only
byte string. Only what the metrics read is kept: the contact's profile
(phone, email, variables) goes to the detail sink when `contact.added` is
applied and never comes back into memory.

Fact keys are ``(ts, event_id)``. The event id only breaks ties between facts
of the same ``ts``, which can only happen while the stored fact is inside
the lateness bound: once its ``ts`` is older than the watermark minus the
bound, every event the gate still lets through has a larger ``ts``. So the
event ids are kept in small dicts and dropped by `forget_event_ids` once
their facts fall behind that horizon.
"""

from __future__ import annotations

from array import array

import orjson

from engine.state.entities import fold_callbacks
from engine.storage.contact_blocks import COLUMNS, BlockBook, join_blocks
from engine.storage.id_rows import IdRows
from engine.vocab import CONTACT_STATUSES, NONFINAL_CONTACT_STATUSES

RECENT_CONTACTS = 8192  # contact rows cached in front of the id table (~1 MB)
NO_TS = -(1 << 63)  # "no such fact" in a ts column
STATUS_CODE = {s: i for i, s in enumerate(CONTACT_STATUSES)}
PENDING = STATUS_CODE["pending"]
NONFINAL_CODES = frozenset(STATUS_CODE[s] for s in NONFINAL_CONTACT_STATUSES)


def _kept(doc: bytes) -> bytes:
    """A copy of an orjson result to keep: orjson returns short results in a ~4 KB allocation, so
    the ~80,000 callback histories of a 1M-contact campaign held ~140 MB kept as they were."""
    return bytes(memoryview(doc))


class ContactTable:
    __slots__ = ("ids_", "recent", "status", "retry", "dialed", "batch", "status_ts", "added_ts", "meeting",
                 "tz", "human", "due", "zones", "zone_no",
                 "status_eid", "added_eid", "callback_events", "callback_blocks",
                 "book", "id_starts")

    def __init__(self, block_rows: int = 0):
        self.ids_ = IdRows()  # contact_id <-> row (engine.storage.id_rows: ~30 B a contact, not a dict of strings)
        self.recent: dict[str, int] = {}  # rows of the contacts looked up last (a cache, not pickled)
        self.status = array("b")  # index into CONTACT_STATUSES
        self.retry = array("i")  # retry_number of the latest status, 0 = none
        self.dialed = array("i")  # attempts with a call.dialed for this contact
        self.batch = array("i")  # batch number (the state's batch list), -1 = none
        self.status_ts = array("q")  # ts of the latest contact.status, NO_TS = none
        self.added_ts = array("q")  # ts of the earliest contact.added, NO_TS = none
        self.meeting = array("b")  # 1 once a meeting.booked names the contact
        self.tz = array("H")  # the zone of its counted contact.added: index into `zones`, 0 = none
        self.human = array("i")  # its human-answered ended attempts (pacing's F_h)
        # due_at + 1 of its latest contact.status while that is retrying or followup_scheduled, 0 = none (so a
        # block written before this column, read with zeros, means "no due time known"); engine.state.followups
        self.due = array("q")
        self.zones: list[str] = [""]  # the campaign's contact zones, by index (0: none)
        self.zone_no: dict[str, int] = {}
        self.status_eid: dict[int, str] = {}  # row -> event_id of its status fact, while inside the horizon
        self.added_eid: dict[int, str] = {}
        # row -> its sorted [(key, kind, due_at)] as JSON bytes (~100 B, not ~400 B of tuples and strings):
        # only rows with callbacks, which are rarely touched once requested
        self.callback_events: dict[int, bytes] = {}
        self.callback_blocks: dict[int, set[int]] = {}  # block -> its rows with callbacks (what it pickles)
        # Recovery pickles the columns by blocks of rows, writing only changed blocks (engine.storage.contact_blocks):
        self.book = BlockBook(block_rows)  # blocks written to since the last pickle, keys of the clean ones
        self.id_starts: list[int] = []  # offset in ids_.data of each block's first id

    def __len__(self) -> int:
        return len(self.status)

    def row(self, contact_id: str) -> int | None:
        """The contact's row, or None. A contact's events come in bursts (added, dialed, ended, its
        status), so the rows of the last few thousand contacts looked up are kept in a small dict."""
        row = self.recent.get(contact_id)
        if row is None:
            row = self.ids_.row(contact_id)
            if row is not None:
                self._remember(contact_id, row)
        return row

    def row_of(self, contact_id: str) -> int:
        """The row of a contact the table holds (KeyError otherwise)."""
        row = self.row(contact_id)
        if row is None:
            raise KeyError(contact_id)
        return row

    def _remember(self, contact_id: str, row: int) -> None:
        if len(self.recent) >= RECENT_CONTACTS:
            self.recent.clear()
        self.recent[contact_id] = row

    def name(self, row: int) -> str:
        """The contact_id of a row."""
        return self.ids_.name(row)

    def add(self, contact_id: str) -> int:
        """Row of a new contact (status pending, no facts)."""
        row = len(self.status)
        if row % self.book.rows == 0:
            self.id_starts.append(len(self.ids_.data))
        self.book.touch(row)
        self.ids_.add(contact_id)
        self._remember(contact_id, row)
        self.status.append(PENDING)
        self.retry.append(0)
        self.dialed.append(0)
        self.batch.append(-1)
        self.status_ts.append(NO_TS)
        self.added_ts.append(NO_TS)
        self.meeting.append(0)
        self.tz.append(0)
        self.human.append(0)
        self.due.append(0)
        return row

    def zone_index(self, name: str | None) -> int:
        """The index of a zone name in `zones` (added when new); 0 for none."""
        if name is None:
            return 0
        i = self.zone_no.get(name)
        if i is None:
            i = self.zone_no[name] = len(self.zones)
            self.zones.append(name)
        return i

    def zone_of(self, row: int) -> str | None:
        """The zone of the row's counted contact.added, None when it named none."""
        z = self.tz[row]
        return self.zones[z] if z else None

    def callbacks_of(self, row: int) -> list:
        """The row's callback history, sorted [(key, kind, due_at)] (a new list: `set_callbacks` stores it)."""
        doc = self.callback_events.get(row)
        return [] if doc is None else [((k[0], k[1]), kind, due) for k, kind, due in orjson.loads(doc)]

    def set_callbacks(self, row: int, events: list) -> None:
        if row not in self.callback_events:
            self.callback_blocks.setdefault(row // self.book.rows, set()).add(row)
        self.callback_events[row] = _kept(orjson.dumps(events))

    def callback_fold(self, row: int) -> tuple | None:
        """`fold_callbacks` of the row's history; None when it has none."""
        return fold_callbacks(self.callbacks_of(row)) if row in self.callback_events else None

    def touch(self, row: int) -> None:
        """Mark the row's block changed (every write to a column calls it): the next pickle copies it."""
        self.book.touch(row)

    def status_key(self, row: int):
        ts = self.status_ts[row]
        return None if ts == NO_TS else (ts, self.status_eid.get(row, ""))

    def added_key(self, row: int):
        ts = self.added_ts[row]
        return None if ts == NO_TS else (ts, self.added_eid.get(row, ""))

    def ids(self) -> list[str]:
        return list(self.ids_)

    def forget_event_ids(self, horizon: int) -> None:
        """Drop tie-breaking event ids of facts older than ``horizon`` (they can no longer tie)."""
        for eids, col in ((self.status_eid, self.status_ts), (self.added_eid, self.added_ts)):
            old = [r for r in eids if col[r] < horizon]
            for r in old:
                del eids[r]

    # Pickled as blocks of rows (engine.storage.contact_blocks): the id index is rebuilt on load, and each block
    # carries the callback histories of its rows as one orjson document (lists of small tuples: several
    # times faster than pickle), so a snapshot re-encodes only the callbacks of the blocks that changed.
    def block_content(self, b: int) -> tuple[tuple[bytes, ...], bytes, bytes]:
        lo, hi = b * self.book.rows, min(len(self.status), (b + 1) * self.book.rows)
        cols = tuple(getattr(self, name)[lo:hi].tobytes() for name, _t in COLUMNS)
        data = self.ids_.data
        end = self.id_starts[b + 1] if b + 1 < len(self.id_starts) else len(data)
        rows = sorted(self.callback_blocks.get(b, ()))
        # [histories by row, {}]: the second item held the folds before they were recomputed on demand
        extra = orjson.dumps([{r: orjson.Fragment(self.callback_events[r]) for r in rows}, {}],
                             option=orjson.OPT_NON_STR_KEYS) if rows else b""
        return cols, bytes(data[self.id_starts[b]:end]), extra

    def __getstate__(self):
        return ("blocks3", self.book, self.book.refs(self, len(self.id_starts)), self.status_eid, self.added_eid,
                self.zones)

    def __setstate__(self, s):
        self.zones = [""]
        if s[0] in ("blocks", "blocks2", "blocks3"):
            if s[0] in ("blocks2", "blocks3"):
                _tag, self.book, blocks, self.status_eid, self.added_eid = s[:5]
                if s[0] == "blocks3":
                    self.zones = s[5]
                callbacks = [blk.extra for blk in blocks if blk.extra]
            else:  # before each block carried its rows' callbacks: one document for the table
                _tag, self.book, blocks, self.status_eid, self.added_eid, callbacks = s
                callbacks = [callbacks]
            columns, ids = join_blocks(blocks)
            for (name, _t), col in zip(COLUMNS, columns):
                setattr(self, name, col)
            self.book.loaded(blocks)
            if any(len(blk.columns) < len(COLUMNS) for blk in blocks):  # written before the zone, human or
                self.book.touch_range(0, max(0, len(self.status) - 1))  # due columns: rewrite every block
            starts, offset = [], 0
            for blk in blocks:
                starts.append(offset)
                offset += len(blk.ids)
            self.id_starts = starts
        else:  # pickled whole, before the blocks: every block starts dirty
            (ids, self.status, self.retry, self.dialed, self.batch, self.status_ts, self.added_ts, self.meeting,
             self.status_eid, self.added_eid, callbacks) = s
            callbacks = [callbacks]
            self.book = BlockBook()
            self.tz = array("H", bytes(2 * len(self.status)))
            self.human = array("i", bytes(4 * len(self.status)))
            self.due = array("q", bytes(8 * len(self.status)))
        self.callback_events = {}
        for doc in callbacks:
            events, _folds = orjson.loads(doc)
            self.callback_events.update({int(r): _kept(orjson.dumps(evs)) for r, evs in events.items()})
        self.ids_ = IdRows.from_bytes(ids)
        self.zone_no = {z: i for i, z in enumerate(self.zones) if i}
        self.recent = {}
        self.callback_blocks = {}
        for r in self.callback_events:
            self.callback_blocks.setdefault(r // self.book.rows, set()).add(r)
        if s[0] not in ("blocks", "blocks2"):
            self.id_starts = []
            ends = self.ids_.ends
            for row in range(0, len(ends), self.book.rows):
                self.id_starts.append(ends[row - 1] + 1 if row else 0)
            self.book.touch_range(0, max(0, len(self.status) - 1))  # nothing written as blocks yet
