"""The `/stats` body's `agents` block (SPEC §3 *Agents*) from a campaign state's agents (engine.state.agents)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.timefmt import format_time
from engine.vocab import AGENT_STATES, AGENT_TIME_STATES

if TYPE_CHECKING:
    from engine.state.agent_timeline import Agent


def agent_entry(agent_id: str, ag: Agent, now: int) -> dict:
    """One `agents.list` entry as of ``now``."""
    times = ag.time_in_states(now)
    time_ms = {name: times[i] for i, name in enumerate(AGENT_TIME_STATES)}
    busy = time_ms["on_call"] + time_ms["wrap"]
    worked = busy + time_ms["ready"]
    last = ag.events[-1] if ag.events else None
    return {
        "agent_id": agent_id,
        "state": AGENT_STATES[ag.state_code()],
        "since": format_time(last[0]) if last is not None else None,
        "reason": last[3] if last is not None else None,
        "calls": ag.calls.n,
        "aht_ms": ag.calls.value,
        "time_ms": time_ms,
        "occupancy": busy / worked if worked else None,
    }


def agents_block(agents: dict[str, Agent], now: int) -> dict:
    """``{by_state: {five states}, list: [entry, ...]}``, the list by agent_id in code point order."""
    by_state = dict.fromkeys(AGENT_STATES, 0)
    entries = []
    for agent_id in sorted(agents):
        ag = agents[agent_id]
        by_state[AGENT_STATES[ag.state_code()]] += 1
        entries.append(agent_entry(agent_id, ag, now))
    return {"by_state": by_state, "list": entries}
