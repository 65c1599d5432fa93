"""The floor behind a simulated voice campaign (`--agents N`): human agents who take answered calls, wrap up
and pause, one bot line, and team breaks that leave the floor short-staffed, so abandons follow from nobody
being free (issue #27).

A call's whole script is drawn at dial time (voice_calls.answered_call), in dial order, so calls are booked
out of time order: each agent keeps its busy intervals (calls with their wrap, pauses) and a call goes to the
first human free from its bridge to the end of its wrap, else to the bot line if free, else to nobody (the
caller is abandoned). Each booking emits the agent's `agent.state` events at once: ``on_call`` at the bridge,
``wrap`` at the hang-up, ``ready`` after the wrap; a pause ``paused`` (with its reason) then ``ready``.
Intervals never overlap, so an agent's events read in time order are one consistent day. Pauses are planned
two hours ahead of the calls, so no pause lands on a booked call.

Draws come from the floor's own RNG: a run without agents gives exactly the events it gave before.
"""

from __future__ import annotations

import random

MIN = 60_000
PLAN_AHEAD_MS = 2 * 3_600_000
PAUSE_REASONS = ("break", "lunch", "coaching", "meeting", "system issue")
BOT = "bot-1"


class AgentFloor:
    def __init__(self, sim, agents: int):
        self.sim = sim
        self.rng = random.Random(f"{sim.cfg.seed}:agents:{sim.org}:{sim.cid}")
        self.ids = [f"agent-{i + 1:02d}" for i in range(agents)]
        self.busy: dict[str, list[tuple[int, int]]] = {a: [] for a in self.ids}
        self.busy[BOT] = []
        self.planned_until = 0

    def sign_on(self, ts: int) -> None:
        """Every human logs in ready before the dialing starts."""
        for a in self.ids:  # (within the 100 ms before the dialer's first pump: never behind what was sent)
            self.sim.emit(ts + int(self.rng.random() * 90), "agent.state", {"agent_id": a, "state": "ready"})
        self._plan(ts + PLAN_AHEAD_MS)

    def sign_off(self, ts: int) -> None:
        """The campaign is over: every human logs off once done with what was booked."""
        for a in self.ids:
            at = max(ts, self._end_of_bookings(a)) + int(self.rng.random() * MIN)
            self.sim.emit(at, "agent.state", {"agent_id": a, "state": "offline"})

    def call(self, ans: int, threshold: int) -> tuple[str, int, int, int] | None:
        """An answered call's bridge, talk and wrap (drawn here) and who takes it; None when nobody is free
        (the caller hears silence: abandoned)."""
        r = self.rng
        bridge = ans + int(r.uniform(250, max(300, threshold * 0.9)))
        talk = int(min(900_000, max(8000, r.lognormvariate(11.2, 0.7))))
        wrap = int(r.uniform(10_000, 90_000))
        agent = self.take(bridge, bridge + talk, wrap)
        if agent is None:
            return None
        return agent, bridge, talk, (int(r.uniform(0, 3000)) if agent == BOT else wrap)

    def take(self, bridge: int, end: int, wrap: int) -> str | None:
        """Book the call [bridge, end + wrap]: the agent who takes it, or None when nobody is free."""
        self._plan(bridge + PLAN_AHEAD_MS)
        order = list(self.ids)
        self.rng.shuffle(order)
        for a in order:
            if self._free(a, bridge, end + wrap):
                self.busy[a].append((bridge, end + wrap))
                emit = self.sim.emit
                emit(bridge, "agent.state", {"agent_id": a, "state": "on_call"})
                emit(end, "agent.state", {"agent_id": a, "state": "wrap"})
                emit(end + wrap, "agent.state", {"agent_id": a, "state": "ready"})
                return a
        if self._free(BOT, bridge, end):
            self.busy[BOT].append((bridge, end))
            return BOT
        return None

    def _free(self, a: str, start: int, end: int) -> bool:
        intervals = self.busy[a]
        if len(intervals) > 64:  # forget what ended long before any call still to be booked
            horizon = start - PLAN_AHEAD_MS
            intervals[:] = [iv for iv in intervals if iv[1] >= horizon]
        return all(e <= start or s >= end for s, e in intervals)

    def _end_of_bookings(self, a: str) -> int:
        return max((e for _s, e in self.busy[a]), default=0)

    def _plan(self, until: int) -> None:
        """Pauses up to ``until``: each agent every 20-60 min for 3-15 min, and a team break every ~45 min
        that takes half the floor away at once (the short-staffed moments)."""
        if until <= self.planned_until:
            return
        start = max(self.planned_until, self.sim.t0)
        r = self.rng
        for a in self.ids:
            t = start + int(r.uniform(20, 60) * MIN)
            while t < until:
                self._pause(a, t, int(r.uniform(3, 15) * MIN), r.choice(PAUSE_REASONS))
                t += int(r.uniform(20, 60) * MIN)
        t = start + int(r.uniform(30, 60) * MIN)
        while t < until:
            for a in r.sample(self.ids, max(1, len(self.ids) // 2)):
                self._pause(a, t + int(r.random() * MIN), 10 * MIN, "team break")
            t += int(r.uniform(35, 55) * MIN)
        self.planned_until = until

    def _pause(self, a: str, at: int, length: int, reason: str) -> None:
        if not self._free(a, at, at + length):
            return  # (overlaps another pause planned for it: skipped)
        self.busy[a].append((at, at + length))
        self.sim.emit(at, "agent.state", {"agent_id": a, "state": "paused", "reason": reason})
        self.sim.emit(at + length, "agent.state", {"agent_id": a, "state": "ready"})
