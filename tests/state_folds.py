"""Folding a campaign's events through the gate into a `CampaignState`, as the flow's campaign step does,
and carrying two states on side by side (a resumed one beside one that never left memory)."""

from __future__ import annotations

from engine.state.campaign import CampaignState
from engine.state.gate import OK, EventGate


def fold(events: list[dict], **state_options) -> tuple[EventGate, CampaignState]:
    """A fresh gate and state after ``events`` (collecting details, the gate's lateness bound)."""
    gate = EventGate()
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True,
                       lateness_ms=gate.lateness_ms, **state_options)
    for ev in events:
        if gate.check(ev) == OK:
            st.apply(ev)
    return gate, st


def go_on_side_by_side(events: list[dict], old_gate: EventGate, old: CampaignState, gate: EventGate,
                       fresh: CampaignState, *, level_ids: bool = True) -> None:
    """Apply ``events`` to both: the gates give the same verdicts, the states the same alerts.
    ``level_ids`` False: the ids of level alerts may differ (a state pickled before the level rule of
    issue #23 numbers its level changes by its own history, which the rule changed; its ids go on from
    the ones it published, so they stay unique)."""
    seen = set()
    for ev in events:
        verdict = gate.check(ev)
        assert old_gate.check(ev) == verdict
        if verdict == OK:
            old.apply(ev)
            fresh.apply(ev)
        mine, theirs = old.take_alerts(), fresh.take_alerts()
        if not level_ids:
            for a in mine:
                assert a["alert_id"] not in seen
                seen.add(a["alert_id"])
            mine = [dict(a, alert_id=None) if a["kind"] == "level" else a for a in mine]
            theirs = [dict(a, alert_id=None) if a["kind"] == "level" else a for a in theirs]
        assert mine == theirs
