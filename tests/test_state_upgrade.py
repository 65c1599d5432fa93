"""A recovery snapshot written by release 1 (one object per contact) resumes in the columnar layout.

`tests/data/release1_campaign_snapshot.pickle` was written by release 1's engine: a 40-contact campaign
(simulator seed 12, jitter, duplicates) folded through its first two thirds, details drained, pickled as
`CampaignLogic.snapshot` pickles it (state version 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callpulse.simulator import SimConfig, generate
from engine.state.gate import OK
from engine.validation.events import validate_event
from engine.views.snapshot import build_snapshot
from flows.campaign_step import CampaignLogic
from flows.config import FlowConfig
from tests.state_folds import fold

pytestmark = pytest.mark.unit

SNAPSHOT = Path(__file__).parent / "data" / "release1_campaign_snapshot.pickle"


def _events():
    return [validate_event(e) for e in generate(SimConfig(seed=12, contacts=40, jitter_ms=5000, duplicate_pct=3))
            if isinstance(e, dict)]


def _fresh(events, upto):
    return fold(events[:upto])


def test_release_1_snapshot_resumes_exactly_and_rewrites_its_detail():
    events = _events()
    cut = len(events) * 2 // 3
    logic = CampaignLogic(FlowConfig(), SNAPSHOT.read_bytes())
    old = logic.state
    gate, fresh = _fresh(events, cut)
    assert build_snapshot(old) == build_snapshot(fresh)
    assert logic.dirty and logic.seq >= 7 and old.lateness_ms == FlowConfig().lateness_ms
    details = old.take_details()  # everything it knows, for the new detail keys
    assert {c["contact_id"] for c in details.contacts} == set(fresh.table.ids())
    assert {p["contact_id"] for p in details.profiles} == set(fresh.table.ids())
    assert sum(1 for _c, _a, d in details.trail if d > 0) == build_snapshot(fresh)["attempts"]["total"]
    # ... and it goes on from there like a state that never left memory
    for ev in events[cut:]:
        if gate.check(ev) == OK:
            old.apply(ev)
            fresh.apply(ev)
    assert build_snapshot(old) == build_snapshot(fresh)
