"""The things a campaign's events are about: attempts, contacts, messages, batches, passes.

Each entity keeps only the facts that count (the earliest of each
"earliest counts" fact, the latest of each "latest counts" fact) with their
keys ``(ts, event_id)``, so a late-arriving earlier fact can replace a later
one. Memory grows with the number of entities, never with events.
"""

from __future__ import annotations

from array import array
from collections import Counter

import orjson

from engine.storage.contact_blocks import BlockBook, join_blocks
from engine.vocab import OUTCOMES  # noqa: F401  (re-exported: engine.state.entities.OUTCOMES)

BUSY_SIP = frozenset({486, 600})
NO_ANSWER_SIP = frozenset({408, 480, 487})


class Slotted:
    """Pickles as a bare tuple of slot values: recovery snapshots pickle whole campaign states,
    and the default (a dict of slot names per object) is several times larger and slower."""

    __slots__ = ()

    def __getstate__(self):
        return tuple([getattr(self, name) for name in self.__slots__])

    def __setstate__(self, state):
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)


class Attempt(Slotted):
    __slots__ = (
        "dial", "contact", "pass_no", "follow_up", "phone_number",
        "ans", "amd", "amd_result", "bridge",
        "end", "sip", "wrap", "conversation_id", "recording_url",
        "eval_key", "eval_results",
        "outcome", "answered_at_end", "human_at_end", "partial", "guards", "agent",
    )

    def __init__(self):
        self.dial = None  # key of the earliest call.dialed
        self.contact = None
        self.pass_no = 1
        self.follow_up = False
        self.phone_number = None
        self.ans = None
        self.amd = None
        self.amd_result = None
        self.bridge = None
        self.end = None
        self.sip = None
        self.wrap = 0
        self.conversation_id = None
        self.recording_url = None
        self.eval_key = None
        self.eval_results = None
        self.outcome = None  # decided at the end; cached so a retraction removes what was added
        self.answered_at_end = False
        self.human_at_end = False
        self.partial = False  # unsealed (engine.storage.sealed): its detail-only fields are not known here
        self.guards = 0  # compliance guards (engine.compliance.guards): violation and alerted bits
        self.agent = None  # agent_id of the counted call.bridged (engine.state.agents)

    def __setstate__(self, state):
        super().__setstate__(state)
        n = len(state)  # (older shapes are shorter: each later slot was appended)
        if n < 20:  # written before 'partial' existed
            self.partial = False
        if n < 21:  # written before the guards existed (rebuilt by the state on load)
            self.guards = 0
        if n < 22:  # written before agents existed
            self.agent = None

    def latest_fact_ts(self) -> int:
        """ts of its latest fact (the evaluation included); -1 when it has none."""
        return max(k[0] for k in (self.dial, self.ans, self.amd, self.bridge, self.end, self.eval_key, (-1,))
                   if k is not None)

    def decide(self, threshold_ms: int, abandon_from: str = "answer") -> None:
        """Outcome rules of SPEC §1 over the facts that precede the end (it is decided at the end).
        The threshold runs from the connection start: the answer, or with ``abandon_from`` =
        `greeting_end` the AMD decision when it is human or unknown (a bridge before it is in time)."""
        end = self.end
        if end is None:
            self.outcome = None
            self.answered_at_end = self.human_at_end = False
            return
        answered = self.ans is not None and self.ans < end
        machine = self.amd is not None and self.amd < end and self.amd_result == "machine"
        bridged = self.bridge is not None and self.bridge < end
        self.answered_at_end = answered
        self.human_at_end = answered and not machine
        if answered and machine:
            self.outcome = "machine"
        elif answered and (not bridged or self.bridge[0] - self._connection_start(abandon_from) > threshold_ms):
            self.outcome = "abandoned"
        elif bridged:
            self.outcome = "connected"
        elif self.sip in BUSY_SIP:
            self.outcome = "busy"
        elif self.sip is None or self.sip in NO_ANSWER_SIP:
            self.outcome = "no_answer"
        else:
            self.outcome = "failed"


    def _connection_start(self, abandon_from: str) -> int:
        if abandon_from == "greeting_end" and self.amd is not None and self.amd < self.end:
            return self.amd[0]  # result human or unknown here: a machine was decided by rule 1
        return self.ans[0]


class Contact(Slotted):
    """Release 1's contact object: only read from old recovery snapshots (engine.state.upgrade)."""

    __slots__ = ("status_key", "status", "retry_number", "added_key", "batch", "phone_number",
                 "email", "variables", "dialed", "attempt_ids", "callback_events", "callback_contrib",
                 "meeting_key")

    def __init__(self):
        self.status_key = None
        self.status = "pending"
        self.retry_number = None
        self.added_key = None
        self.batch = None
        self.phone_number = None
        self.email = None
        self.variables = None
        self.dialed = 0  # attempts with a call.dialed for this contact
        self.attempt_ids: list[str] = []  # those attempts, in the order they were named
        self.callback_events = None  # sorted [(key, kind, due_at)] — only contacts with callbacks pay for it
        self.callback_contrib = (0, 0, 0, 0, 0, 0)
        self.meeting_key = None


class Message(Slotted):
    __slots__ = ("keys", "contact", "reply")

    def __init__(self):
        self.keys: dict[str, tuple] = {}  # email event type -> key of its earliest event
        self.contact = None
        self.reply = None  # payload of the earliest email.replied


class Batch(Slotted):
    __slots__ = ("exists", "status_key", "status", "by_status", "retry")

    def __init__(self):
        self.exists = False  # batch.created or a contact.added names it (a batch.status alone does not)
        self.status_key = None
        self.status = "pending"
        self.by_status: Counter = Counter()
        self.retry: Counter = Counter()

    # Thousands of batches per big campaign: pickle the counters as flat tuples, not Counter objects.
    def __getstate__(self):
        return (self.exists, self.status_key, self.status, tuple(self.by_status.items()), tuple(self.retry.items()))

    def __setstate__(self, state):
        self.exists, self.status_key, self.status, by_status, retry = state
        self.by_status = Counter(dict(by_status))
        self.retry = Counter(dict(retry))


def pack_batches(batches: dict[str, Batch]) -> bytes:
    """A campaign's batches as one orjson document: a big campaign has thousands, and pickling each
    (object, tuples, Counters) costs ~8 µs, most of a recovery snapshot's time (CampaignState pickles this).
    orjson writes the Counters as objects itself (retry numbers become string keys: `unpack_batches`)."""
    return orjson.dumps({bid: (b.exists, b.status_key, b.status, b.by_status, b.retry) for bid, b in batches.items()},
                        option=orjson.OPT_NON_STR_KEYS)


def unpack_batches(data: bytes) -> dict[str, Batch]:
    out = {}
    for bid, (exists, status_key, status, by_status, retry) in orjson.loads(data).items():
        b = out[bid] = Batch()
        b.exists, b.status = exists, status
        b.status_key = tuple(status_key) if status_key is not None else None
        b.by_status = Counter(by_status)
        b.retry = Counter({int(k): v for k, v in retry.items()})
    return out


class Pass(Slotted):
    """One pass. Per contact row: its dialed and connected attempts in the pass (typed arrays, grown
    on demand), with the counts of rows above zero kept as they change. The arrays hold a byte a row
    and are widened to 32 bits the first time a count leaves 0..255 (`_bump`)."""

    __slots__ = ("eligible_key", "eligible", "dials", "connects", "attempted", "connected", "started", "ended",
                 "stale", "book")

    def __init__(self, block_rows: int = 0):
        self.eligible_key = None
        self.eligible = None
        self.dials = array("B")  # contact row -> dialed attempts in this pass
        self.connects = array("B")  # contact row -> connected attempts in this pass
        self.attempted = 0  # rows with dials > 0 (distinct contacts dialed)
        self.connected = 0  # rows with connects > 0
        self.started: int | None = None  # first dial ts
        self.ended: int | None = None  # last call.ended ts
        self.stale = False  # a retraction touched started/ended: recompute from attempts
        self.book = BlockBook(block_rows)  # recovery pickles the counters by blocks of rows (changed ones only)

    # Pickled with the counters as blocks of rows (engine.storage.contact_blocks): a finished pass's blocks are
    # written once, and a running pass rewrites only the blocks of the contacts it dialed since.
    def block_content(self, b: int) -> tuple[tuple[bytes, bytes], bytes]:
        lo, hi = b * self.book.rows, (b + 1) * self.book.rows
        return (self.dials[lo:hi].tobytes(), self.connects[lo:hi].tobytes()), b""

    def __getstate__(self):
        n_blocks = -(-max(len(self.dials), len(self.connects)) // self.book.rows)
        return ("blocks2", self.eligible_key, self.eligible, self.book, self.book.refs(self, n_blocks),
                self.attempted, self.connected, self.started, self.ended, self.stale,
                (self.dials.typecode, self.connects.typecode))

    def __setstate__(self, state):
        if state[0] in ("blocks", "blocks2"):
            (_tag, self.eligible_key, self.eligible, self.book, blocks, self.attempted, self.connected,
             self.started, self.ended, self.stale) = state[:10]
            typecodes = state[10] if state[0] == "blocks2" else ("i", "i")  # "blocks": 32-bit counts
            (self.dials, self.connects), _ids = join_blocks(blocks, typecodes)
            self.book.loaded(blocks)
            return
        self.book = BlockBook()
        if len(state) == 7:  # release 1: (eligible_key, eligible, contacts, connected, started, ended, stale)
            self.eligible_key, self.eligible, self.dials, self.connects, self.started, self.ended, self.stale = state
            self.attempted = self.connected = None  # engine.state.upgrade turns the Counters into arrays
            return
        for name, value in zip(self.__slots__, state):  # release 2: the slots' values, whole arrays
            setattr(self, name, value)

    def add_dial(self, row: int, s: int) -> None:
        moved, self.dials = _bump(self.dials, row, s, self.book)
        self.attempted += moved

    def add_connect(self, row: int, s: int) -> None:
        moved, self.connects = _bump(self.connects, row, s, self.book)
        self.connected += moved


def _bump(col: array, row: int, s: int, book: BlockBook) -> tuple[int, array]:
    """Add ``s`` to ``col[row]`` (grown on demand). Returns how the count of rows above zero moved
    (+1 / -1 / 0) and the column: a byte column whose value leaves 0..255 comes back as a new
    32-bit copy, with every block marked changed (the next snapshot rewrites them in that width)."""
    if row >= len(col):
        book.touch_range(len(col), row)  # the grown rows change their blocks too
        col.extend(array(col.typecode, [0]) * (row + 1 - len(col)))
    else:
        book.touch(row)
    before = col[row]
    after = before + s
    if col.typecode == "B" and not 0 <= after <= 255:
        col = array("i", col)
        book.touch_range(0, len(col) - 1)
    col[row] = after
    return (not before) - (not after), col


def fold_callbacks(events: list) -> tuple:
    """(requested, completed, cancelled, delay_sum, delay_n, unmatched) of one contact's
    callback events sorted by key: a close takes the open callback with the earliest due_at."""
    open_: list = []  # (due_at, request key)
    requested = completed = cancelled = delay_sum = delay_n = unmatched = 0
    for key, kind, due_at in events:
        if kind == "requested":
            requested += 1
            open_.append((due_at, key))
            continue
        if not open_:
            unmatched += 1
            continue
        first = min(open_)
        open_.remove(first)
        if kind == "completed":
            completed += 1
            delay_sum += key[0] - first[0]
            delay_n += 1
        else:
            cancelled += 1
    return requested, completed, cancelled, delay_sum, delay_n, unmatched
