"""`CampaignState`'s agents (SPEC §3 *Agents*, *Agent events*): each agent's state over time, and its connected
calls with their handle time; a mixin of engine.state.campaign.

An agent exists once an `agent.state` or a counted `call.bridged` (its attempt's earliest) names it. Its
state is its latest `agent.state` by (ts, event_id), `offline` until it has one. Its time in each state is
read from its `agent.state` events in (ts, event_id) order, each holding its state until the next one's ts
and the last until now; so a state delivered late re-splits the time of its neighbours. To keep memory
bounded however long the floor works, the segments that ended behind the sealing horizon (the gate's
lateness bound: no event can arrive before it any more) are folded into per-state totals (``closed``) when
the state seals (`_compact_agents`); only the events since then are kept, the last one always.

Calls and handle time follow the attempts' retract-and-add (engine.state.attempts): the bridge part counts
the counted `call.bridged`'s agent (``bridges``), the end part adds a connected attempt's handle time to its
agent's `Mean`. A sealed attempt keeps its agent beside its row (engine.storage.sealed, 4 bytes a row), so
one unsealed by a late fact retracts exactly what it added.
"""

from __future__ import annotations

from bisect import insort

from engine.state.agent_timeline import STATE_CODE, Agent
from engine.state.parts import StateAttributes


class AgentFacts(StateAttributes):
    def _init_agents(self) -> None:
        self.agents = {}

    def _agent(self, agent_id: str) -> Agent:
        ag = self.agents.get(agent_id)
        if ag is None:
            ag = self.agents[agent_id] = Agent()
        return ag

    def _forget_if_gone(self, agent_id: str, ag: Agent) -> None:
        if not ag.exists():
            del self.agents[agent_id]  # a retraction took back the only mention of it

    def _agent_state(self, ev, key) -> None:
        ag = self._agent(ev["agent_id"])
        insort(ag.events, (key[0], key[1], STATE_CODE[ev["state"]], ev.get("reason")))

    def _agent_bridge(self, agent_id: str, s: int) -> None:
        """The bridge part of an attempt whose counted `call.bridged` names ``agent_id``."""
        ag = self._agent(agent_id)
        ag.bridges += s
        if s < 0:
            self._forget_if_gone(agent_id, ag)

    def _agent_call(self, agent_id: str, handle_ms: int, s: int) -> None:
        """The end part of a connected attempt taken by ``agent_id``: one call and its handle time."""
        ag = self._agent(agent_id)
        ag.calls.add(handle_ms, s)
        if s < 0:
            self._forget_if_gone(agent_id, ag)

    def _compact_agents(self, horizon: int) -> None:
        for ag in self.agents.values():
            if len(ag.events) > 1:
                ag.compact(horizon)
