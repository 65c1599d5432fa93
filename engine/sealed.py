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

Lookup by attempt id: recently sealed ids in a dict; older ones as 128-bit
BLAKE2b digests in sorted numpy arrays (16 bytes instead of a ~100-byte
string and dict slot). Two different ids share a digest with probability
about n²/2¹²⁹ — for a billion attempts, below 10⁻²⁰.
"""

from __future__ import annotations

from array import array
from hashlib import blake2b

import numpy as np

from engine.contact_table import NO_TS
from engine.entities import OUTCOMES, Attempt

AMD_RESULTS = ("human", "machine", "unknown")
F_DIAL, F_ANS, F_AMD, F_BRIDGE, F_END, F_FOLLOW_UP, F_ANSWERED, F_HUMAN = 1, 2, 4, 8, 16, 32, 64, 128
DEAD = 0  # mask of a row whose attempt was unsealed again (a live row always has F_END)
SLOT_FLAG = {"dial": F_DIAL, "ans": F_ANS, "amd": F_AMD, "bridge": F_BRIDGE, "end": F_END}
MERGE_EVERY = 65_536  # recent ids moved into the sorted digest arrays this many at a time

_OUTCOME_CODE = {o: i for i, o in enumerate(OUTCOMES)}
_AMD_CODE = {r: i for i, r in enumerate(AMD_RESULTS)}
_EMPTY_U8 = np.zeros(0, dtype=np.uint64)


def _digest(attempt_id: str) -> tuple[int, int]:
    d = blake2b(attempt_id.encode(), digest_size=16).digest()
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")


def _ts(key) -> int:
    return NO_TS if key is None else key[0]


class SealedAttempts:
    __slots__ = ("mask", "dial", "ans", "amd", "bridge", "end", "amd_result", "contact", "pass_no", "sip",
                 "wrap", "outcome", "recent", "hi", "lo", "rows", "live")

    def __init__(self):
        self.mask = array("B")
        self.dial, self.ans, self.amd = array("q"), array("q"), array("q")
        self.bridge, self.end = array("q"), array("q")
        self.amd_result = array("b")  # index into AMD_RESULTS, -1 none
        self.contact = array("i")  # contact row, -1 none
        self.pass_no = array("i")
        self.sip = array("q")  # NO_TS: none
        self.wrap = array("q")
        self.outcome = array("b")  # index into OUTCOMES
        self.recent: dict[str, int] = {}  # attempt_id -> row, not yet in the digest arrays
        self.hi, self.lo = _EMPTY_U8, _EMPTY_U8  # sorted by (hi, lo)
        self.rows = np.zeros(0, dtype=np.int64)
        self.live = 0

    def __len__(self) -> int:
        return self.live

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
            if int(self.lo[i]) == l_:
                row = int(self.rows[i])
                if self.mask[row] != DEAD:
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
        self.dial.append(_ts(a.dial))
        self.ans.append(_ts(a.ans))
        self.amd.append(_ts(a.amd))
        self.bridge.append(_ts(a.bridge))
        self.end.append(_ts(a.end))
        self.amd_result.append(_AMD_CODE.get(a.amd_result, -1))
        self.contact.append(contact_row)
        self.pass_no.append(a.pass_no)
        self.sip.append(NO_TS if a.sip is None else a.sip)
        self.wrap.append(a.wrap)
        self.outcome.append(_OUTCOME_CODE.get(a.outcome, -1))
        self.recent[attempt_id] = row
        self.live += 1
        if len(self.recent) >= MERGE_EVERY:
            self._merge()

    def has_fact(self, row: int, slot: str) -> bool:
        return bool(self.mask[row] & SLOT_FLAG[slot])

    def unseal(self, row: int, contact_ids: list[str]) -> Attempt:
        """The attempt back as an `Attempt`, marked ``partial``: its facts are keyed ``(ts, "")`` (every
        event still accepted is later than all of them, so no comparison needs the event ids), its
        outcome is the one decided at its end and is never re-decided (nothing accepted now can
        precede the end), and its detail-only fields (phone, conversation, recording, evaluation)
        stayed in the detail store."""
        m = self.mask[row]
        a = Attempt()
        a.partial = True
        if m & F_DIAL:
            a.dial = (self.dial[row], "")
        if m & F_ANS:
            a.ans = (self.ans[row], "")
        if m & F_AMD:
            a.amd = (self.amd[row], "")
            a.amd_result = AMD_RESULTS[self.amd_result[row]] if self.amd_result[row] >= 0 else None
        if m & F_BRIDGE:
            a.bridge = (self.bridge[row], "")
        if m & F_END:
            a.end = (self.end[row], "")
        c = self.contact[row]
        a.contact = contact_ids[c] if c >= 0 else None
        a.pass_no = self.pass_no[row]
        a.follow_up = bool(m & F_FOLLOW_UP)
        a.sip = None if self.sip[row] == NO_TS else self.sip[row]
        a.wrap = self.wrap[row]
        o = self.outcome[row]
        a.outcome = OUTCOMES[o] if o >= 0 else None
        a.answered_at_end = bool(m & F_ANSWERED)
        a.human_at_end = bool(m & F_HUMAN)
        self.mask[row] = DEAD
        self.live -= 1
        return a

    def _merge(self) -> None:
        ids = list(self.recent)
        if not ids:
            return
        pairs = [_digest(x) for x in ids]
        hi = np.fromiter((p[0] for p in pairs), dtype=np.uint64, count=len(pairs))
        lo = np.fromiter((p[1] for p in pairs), dtype=np.uint64, count=len(pairs))
        rows = np.fromiter(self.recent.values(), dtype=np.int64, count=len(pairs))
        hi, lo, rows = np.concatenate((self.hi, hi)), np.concatenate((self.lo, lo)), np.concatenate((self.rows, rows))
        order = np.lexsort((lo, hi))
        self.hi, self.lo, self.rows = hi[order], lo[order], rows[order]
        self.recent = {}

    # numpy views for the rare full scans (a retraction lowered a maximum)
    def column(self, name: str) -> np.ndarray:
        """A copy of one column as a numpy array (a copy: a view would pin the array's size)."""
        col = getattr(self, name)
        return np.array(col, dtype=np.dtype(col.typecode)) if len(col) else np.zeros(0, np.dtype(col.typecode))

    def live_rows(self) -> np.ndarray:
        return self.column("mask") != DEAD

    def __getstate__(self):
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, state):
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)
