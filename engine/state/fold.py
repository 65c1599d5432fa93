"""Fold a stream of validated events into per-campaign states: gate, route, apply.

This is the whole engine path for one process: `callpulse replay` uses it
directly, and the Bytewax flow runs the same two pieces (gate, then
`CampaignState.apply`) in its stateful steps through the same `gate_and_apply`,
so both give identical results.
"""

from __future__ import annotations

from engine.compliance.levels import DEFAULT_MIN_SAMPLE
from engine.state.campaign import CampaignState
from engine.state.gate import DEFAULT_LATENESS_MS, DUPLICATE, OK, EventGate
from engine.views.snapshot import build_snapshot

CampaignKey = tuple[str, str]  # (org_id, campaign_id)


def apply_verdict(st: CampaignState, verdict: str, ev: dict) -> None:
    """What a gate's verdict on a validated event does to its campaign's state: ``ok`` applies it; a
    duplicate or a late event is only counted (a late event's dead letter is the caller's to write)."""
    if verdict == OK:
        st.apply(ev)
    elif verdict == DUPLICATE:
        st.note_duplicate()
    else:
        st.note_late()


def gate_and_apply(gate: EventGate, st: CampaignState, ev: dict) -> str:
    """Gate one validated event of ``st``'s campaign and apply the verdict (`apply_verdict`); the verdict."""
    verdict = gate.check(ev)
    apply_verdict(st, verdict, ev)
    return verdict


class Fold:
    def __init__(self, *, lateness_ms: int = DEFAULT_LATENESS_MS, min_sample: int = DEFAULT_MIN_SAMPLE):
        self.gate = EventGate(lateness_ms=lateness_ms)
        self.min_sample = min_sample
        self.campaigns: dict[CampaignKey, CampaignState] = {}

    def state(self, key: CampaignKey) -> CampaignState:
        st = self.campaigns.get(key)
        if st is None:
            st = self.campaigns[key] = CampaignState(key[0], key[1], min_sample=self.min_sample,
                                                     lateness_ms=self.gate.lateness_ms)
        return st

    def apply(self, ev: dict) -> str:
        """Apply one validated event; returns the gate's verdict (ok, duplicate, late)."""
        return gate_and_apply(self.gate, self.state((ev["org_id"], ev["campaign_id"])), ev)

    def advance(self, now: int) -> None:
        """Live-mode tick: every campaign's watermark moves to at least ``now``."""
        for key, st in self.campaigns.items():
            self.gate.advance(key, now)
            st.advance(now)

    def snapshot(self, key: CampaignKey) -> dict:
        return build_snapshot(self.campaigns[key])

    def snapshots(self) -> list[dict]:
        """Bodies of every campaign with at least one applied event (one that only saw
        duplicates of other campaigns' event_ids has no watermark, hence no body)."""
        return [build_snapshot(self.campaigns[k]) for k in sorted(self.campaigns)
                if self.campaigns[k].now is not None]

    def take_alerts(self) -> list[dict]:
        out: list[dict] = []
        for k in sorted(self.campaigns):
            out.extend(self.campaigns[k].take_alerts())
        return out
