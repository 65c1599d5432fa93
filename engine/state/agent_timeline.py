"""One agent of a campaign (engine.state.agents): its state events in order, the time folded behind the horizon,
the counted bridges that name it and its connected calls' handle times."""

from __future__ import annotations

from engine.state.entities import Slotted
from engine.state.measures import Mean
from engine.vocab import AGENT_STATES

STATE_CODE = {s: i for i, s in enumerate(AGENT_STATES)}
OFFLINE = STATE_CODE["offline"]


class Agent(Slotted):
    """One agent: ``events`` ``[(ts, event_id, state code, reason)]`` sorted, from the last one behind the
    horizon on; ``closed`` the ms in each state of the segments folded away; ``bridges`` the counted
    `call.bridged` naming it; ``calls`` the handle times of its connected attempts."""

    __slots__ = ("events", "closed", "bridges", "calls")

    def __init__(self):
        self.events: list[tuple[int, str, int, str | None]] = []
        self.closed = [0] * len(AGENT_STATES)
        self.bridges = 0
        self.calls = Mean()

    def exists(self) -> bool:
        return bool(self.events) or self.bridges > 0 or self.calls.n > 0

    def state_code(self) -> int:
        return self.events[-1][2] if self.events else OFFLINE

    def time_in_states(self, now: int) -> list[int]:
        """ms in each state (AGENT_STATES order) up to ``now``."""
        out = list(self.closed)
        ev = self.events
        for cur, nxt in zip(ev, ev[1:]):
            out[cur[2]] += nxt[0] - cur[0]
        if ev:
            out[ev[-1][2]] += max(0, now - ev[-1][0])
        return out

    def compact(self, horizon: int) -> None:
        """Fold the segments that end before ``horizon`` (no event can come before it) into ``closed``."""
        ev = self.events
        i = 0
        while i + 1 < len(ev) and ev[i + 1][0] < horizon:
            self.closed[ev[i][2]] += ev[i + 1][0] - ev[i][0]
            i += 1
        if i:
            del ev[:i]
