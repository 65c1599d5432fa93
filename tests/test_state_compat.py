"""Recovery snapshots of the release-2 `CampaignState` layout (before issue #13 split the state into value
objects) resume exactly.

`tests/data/release2_{voice,email}_campaign_snapshot.pickle` were written by the engine as of commit
534e9e9 (main before #13): the simulator scenarios below folded through their first two thirds (gate
lateness 30 s, so the voice one holds sealed attempts), details and alerts drained, pickled as
`CampaignLogic.snapshot` pickles them (state version 2, seq 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callpulse.simulator import SimConfig, generate
from engine.storage.recovery_format import decode, encode
from engine.validation.events import validate_event
from engine.views.snapshot import build_snapshot
from flows.dataflow import CampaignLogic, FlowConfig
from tests.state_folds import fold, go_on_side_by_side

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data"
SCENARIOS = {
    "voice": SimConfig(seed=21, contacts=120, jitter_ms=5000, duplicate_pct=3, abandon_prob=0.08, restart=True),
    "email": SimConfig(seed=22, contacts=60, channel="email", jitter_ms=5000, duplicate_pct=3),
}


def _fold(events, upto):
    gate, st = fold(events[:upto])
    st.take_details()
    st.take_alerts()
    return gate, st


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_release_2_snapshot_resumes_exactly(name):
    events = [validate_event(e) for e in generate(SCENARIOS[name]) if isinstance(e, dict)]
    cut = len(events) * 2 // 3
    logic = CampaignLogic(FlowConfig(), (DATA / f"release2_{name}_campaign_snapshot.pickle").read_bytes())
    old, old_gate = logic.state, logic.gate
    gate, fresh = _fold(events, cut)
    assert logic.seq >= 7 and not logic.dirty
    assert build_snapshot(old) == build_snapshot(fresh)
    assert old.take_details() == fresh.take_details()
    # ... and it goes on from there like a state that never left memory, alerts and details included
    go_on_side_by_side(events[cut:], old_gate, old, gate, fresh, level_ids=False)
    assert build_snapshot(old) == build_snapshot(fresh)
    assert old.take_details() == fresh.take_details()
    # ... and pickles again in the current layout
    assert build_snapshot(decode(encode(old))) == build_snapshot(fresh)
