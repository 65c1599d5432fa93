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

The rows, their chunks and their lookup by id are shared with sealed email messages
(engine.storage.sealed_base); an attempt row is kept in `CompactLayout` (40 bytes; an attempt whose values do not
fit it is not sealed and stays open); chunks written by release 3 in `WideLayout` are still read
(engine.storage.sealed_layouts). Snapshots written now cannot be read by release 3 (no downgrade).
"""

from __future__ import annotations

from array import array

from engine.state.entities import Attempt
from engine.storage.contact_table import NO_TS
from engine.storage.sealed_base import FrozenChunk, SealedRows
from engine.storage.sealed_layouts import (
    AMD_RESULTS,
    ATTEMPT_LAYOUT,
    F_AMD,
    F_ANS,
    F_ANSWERED,
    F_BRIDGE,
    F_DIAL,
    F_END,
    F_FOLLOW_UP,
    F_HUMAN,
    SLOT_FLAG,
)
from engine.vocab import OUTCOMES

# Pickles name a class by its module: snapshots and chunk files name engine.storage.sealed.FrozenChunk (those written
# before engine.storage.sealed_base, and those written now: the class keeps that name in the recovery format), so the
# name stays importable from here.
__all__ = ["FrozenChunk", "SealedAttempts"]


class SealedAttempts(SealedRows):
    """Sealed attempts by id (`engine.storage.sealed_messages.SealedMessages` keeps email messages the same way,
    in its own row layout and mask bits), with a hot guard byte a row."""

    __slots__ = ("agent", "agent_names", "agent_no")
    NEW_LAYOUT = ATTEMPT_LAYOUT
    HAS_GUARD = True  # a hot byte a row with the attempt's compliance-guard bits (engine.compliance.guards)

    def __init__(self, chunk_rows: int = 0):
        super().__init__(chunk_rows)
        # The agent of each row's counted bridge (engine.state.agents), like the guard byte kept beside the
        # rows and never frozen: a number into ``agent_names`` (-1: none), 4 bytes a row.
        self.agent = array("i")
        self.agent_names: list[str] = []
        self.agent_no: dict[str, int] = {}

    def _agent_number(self, agent: str | None) -> int:
        if agent is None:
            return -1
        n = self.agent_no.get(agent)
        if n is None:
            n = self.agent_no[agent] = len(self.agent_names)
            self.agent_names.append(agent)
        return n

    def __getstate__(self):
        return (*super().__getstate__(), self.agent, self.agent_names)

    def __setstate__(self, state):
        super().__setstate__(state)
        if len(state) > 9:
            self.agent, self.agent_names = state[8], state[9]
        else:  # written before agents: no row has one
            self.agent, self.agent_names = array("i", [-1]) * len(self.mask), []
        self.agent_no = {name: i for i, name in enumerate(self.agent_names)}

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
        self.agent.append(self._agent_number(a.agent))
        self._append(attempt_id, mask, values)
        return True

    def has_fact(self, row: int, slot: str) -> bool:
        return bool(self.mask[row] & SLOT_FLAG[slot])

    def unseal(self, row: int, contact_name) -> Attempt:
        """The attempt back as an `Attempt`, marked ``partial``: its facts are keyed ``(ts, "")`` (every
        event still accepted is later than all of them, so no comparison needs the event ids), its
        outcome is the one decided at its end and is never re-decided (nothing accepted now can
        precede the end), and its detail-only fields (phone, conversation, recording, evaluation)
        stayed in the detail store."""
        a = self.view(row, contact_name)
        self._kill(row)
        return a

    def view(self, row: int, contact_name) -> Attempt:
        """The row as a ``partial`` `Attempt` (as `unseal` gives it), the row staying sealed: for its
        detail record when a later fact re-decides its guards (engine.compliance.guards)."""
        m = self.mask[row]
        v = self.value
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
        n = self.agent[row]
        a.agent = self.agent_names[n] if n >= 0 else None
        return a
