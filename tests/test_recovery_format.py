"""The recovery format (engine.storage.recovery_format, engine.state.parts): a campaign's state written by parts and
records, read back exactly, naming no code of ours, refusing anything else; and the format's own fixture.

`tests/data/release6_recovery_format.snapshot` was written by `_write_fixture` below as of the commit that
introduced the format (STATE_VERSION 6): the scenario folded through its first two thirds with 16-row
chunks, details and alerts drained, ``encode((gate, state))``. A later release must keep reading it."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from callpulse.simulator import SimConfig, generate
from engine.state.campaign import CampaignState
from engine.state.parts import DERIVED, FIELDS_OF, PART_OF, PARTS, part_fields
from engine.storage.recovery_format import (
    MAGIC,
    RECORD_TYPES,
    STORED_TYPES,
    RecoveryFormatError,
    decode,
    encode,
    is_current,
)
from engine.validation.events import validate_event
from engine.views.snapshot import build_snapshot
from flows.chunk_store import ChunkStore
from tests.state_folds import fold, go_on_side_by_side

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "release6_recovery_format.snapshot"
VOICE = SimConfig(seed=61, contacts=160, channel="voice", jitter_ms=5000, duplicate_pct=3, abandon_prob=0.06,
                  restart=True, off_hours_pct=10, redial_abandoned_pct=20, tz_mix="us")
EMAIL = SimConfig(seed=62, contacts=120, channel="email", jitter_ms=5000, duplicate_pct=3, complaint_pct=5)

# Tags snapshots of this format already hold: never removed or renamed (a new type adds its own).
TAGS_IN_USE = {
    "campaign_state", "event_gate", "key_clock", "config_history", "campaign_config", "time_window",
    "alert_tracker", "forecast_alarm", "contact_table", "block_book", "column_block", "id_rows", "attempt",
    "message", "batch", "pass", "sealed_attempts", "sealed_messages", "frozen_chunk", "runs", "due_schedule",
    "mean", "latest", "callback_totals", "bucket_series", "rolling_pair",
}


def _events(cfg: SimConfig) -> list[dict]:
    return [validate_event(e) for e in generate(cfg) if isinstance(e, dict)]


def _halfway(cfg: SimConfig):
    events = _events(cfg)
    cut = len(events) * 2 // 3
    gate, st = fold(events[:cut], seal_chunk_rows=16)
    return events, cut, gate, st


def _globals_named(data: bytes) -> set[tuple[str, str]]:
    """The (module, name) pairs a pickle stream names, read without building anything of ours."""
    named: set[tuple[str, str]] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            named.add((module, name))
            if module.split(".")[0] in ("engine", "flows"):
                return lambda *args: None
            return super().find_class(module, name)

        def persistent_load(self, pid):
            return None

    Recording(io.BytesIO(data)).load()
    return named


def test_every_attribute_of_a_state_belongs_to_exactly_one_part():
    _events_, _cut, _gate, st = _halfway(VOICE)
    declared = [f for cls in PARTS.values() for f in part_fields(cls)]
    assert len(declared) == len(set(declared)), "an attribute declared in two parts"
    assert set(st.__dict__) <= set(PART_OF)
    fresh = CampaignState("o", "c", collect_details=True, lateness_ms=1000)
    assert set(fresh.__dict__) | {"_breach_cache"} == set(PART_OF)
    assert set(PART_OF) >= DERIVED and not DERIVED & {f for fs in FIELDS_OF.values() for f in fs}


@pytest.mark.parametrize("cfg", [VOICE, EMAIL], ids=["voice", "email"])
def test_a_state_through_the_format_resumes_exactly_beside_one_that_never_left(cfg, tmp_path):
    events, cut, gate, st = _halfway(cfg)
    st.take_details()
    st.take_alerts()
    data = encode((gate, st))
    assert is_current(data) and data.startswith(MAGIC)
    gate2, back = decode(data)
    assert build_snapshot(back) == build_snapshot(st)
    # with a chunk store: the frozen chunks and the contact blocks are files, the snapshot names them
    store = ChunkStore(tmp_path)
    stored = store.dumps((gate, st))
    assert len(stored) < len(data) and list((tmp_path / "chunks").glob("*.chunk"))
    gate3, back3 = store.loads(stored)
    assert build_snapshot(back3) == build_snapshot(st)
    go_on_side_by_side(events[cut:], gate2, back, gate, st)
    assert build_snapshot(back) == build_snapshot(st) and back.take_details() == st.take_details()
    gate4, back4 = decode(data)
    go_on_side_by_side(events[cut:], gate3, back3, gate4, back4)  # through the store: the same
    assert build_snapshot(back3) == build_snapshot(st)


def test_the_format_names_only_its_own_two_functions_and_plain_types(tmp_path):
    _events_, _cut, gate, st = _halfway(VOICE)
    for data in (encode((6, st, 1, False, 0.0, 0.0, gate)), ChunkStore(tmp_path).dumps((6, st, gate))):
        named = _globals_named(data[len(MAGIC):])
        ours = {(m, n) for m, n in named if m.split(".")[0] in ("engine", "flows", "api", "callpulse")}
        assert ours <= {("engine.storage.recovery_format", "record"), ("engine.storage.recovery_format", "stored_piece")}
        assert {m for m, _n in named} <= {"engine.storage.recovery_format", "builtins", "collections", "fractions", "array"}
    # the old format named every class by its module path
    legacy = pickle.dumps((gate, st), protocol=5)
    assert b"engine.state.campaign" in legacy and b"CampaignState" in legacy


def test_a_snapshot_naming_anything_else_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = MAGIC + pickle.dumps((6, Evil()))
    with pytest.raises(RecoveryFormatError, match="may not name builtins.open|io.open"):
        decode(data)
    assert not marker.exists()
    with pytest.raises(RecoveryFormatError, match="unknown record type 'nope'"):
        decode(MAGIC + _record_call("nope", {}))


def _record_call(tag: str, state) -> bytes:
    """A pickle stream that calls engine.storage.recovery_format.record(tag, state)."""
    from engine.storage import recovery_format
    class Call:
        def __reduce__(self):
            return recovery_format.record, (tag, state)

    return pickle.dumps(Call(), protocol=5)


def test_an_attribute_that_belongs_to_no_part_is_refused_when_writing():
    st = CampaignState("o", "c")
    st.unexpected = 1
    with pytest.raises(RecoveryFormatError, match=r"\['unexpected'\] belong to no part"):
        encode(st)


def test_a_type_of_ours_without_a_record_type_is_refused_when_writing():
    from engine.state.fold import Fold

    with pytest.raises(RecoveryFormatError, match="engine.state.fold.Fold has no record type"):
        encode(Fold())


def test_record_tags_are_never_taken_back():
    assert set(RECORD_TYPES) >= TAGS_IN_USE
    assert len(set(RECORD_TYPES.values())) == len(RECORD_TYPES)
    assert {t.__name__ for t in STORED_TYPES} == {"FrozenChunk", "ColumnBlock", "ColumnBlockRef"}


def _write_fixture() -> None:  # pragma: no cover (run by hand when the fixture is made)
    _events_, _cut, gate, st = _halfway(VOICE)
    st.take_details()
    st.take_alerts()
    FIXTURE.write_bytes(encode((gate, st)))


def test_the_format_fixture_resumes_exactly():
    """A snapshot written when the format was introduced: read by every later release."""
    events, cut, gate, fresh = _halfway(VOICE)
    fresh.take_details()
    fresh.take_alerts()
    old_gate, old = decode(FIXTURE.read_bytes())
    assert build_snapshot(old) == build_snapshot(fresh)
    go_on_side_by_side(events[cut:], old_gate, old, gate, fresh)
    assert build_snapshot(old) == build_snapshot(fresh)
    assert old.take_details() == fresh.take_details()


def test_the_snapshot_reader_takes_each_campaigns_newest_row_and_marks_a_retired_one(tmp_path):
    """flows/recovery_snapshots.py on a partition file of Bytewax's layout: the newest epoch of each campaign
    across partitions wins; a NULL change (the key discarded: a retired campaign) reads as no data."""
    import sqlite3

    from engine.storage.keys import route_key
    from flows.recovery_snapshots import latest_campaign_snapshots, read_value

    _events_, _cut, gate, st = _halfway(EMAIL)
    live = encode((6, st, 3, False, 0.0, 0.0, gate))
    rows = {0: [(route_key("o1", "c1"), 1, pickle.dumps(b"old")), (route_key("o1", "c2"), 4, None),
                ("callpulse.read-key-not-a-route", 9, pickle.dumps(b"x"))],
            1: [(route_key("o1", "c1"), 3, pickle.dumps(live)), (route_key("o1", "c2"), 2, pickle.dumps(live))]}
    for part, snaps in rows.items():
        conn = sqlite3.connect(tmp_path / f"part-{part}.sqlite3")
        conn.execute("CREATE TABLE snaps (step_id TEXT, state_key TEXT, snap_epoch INTEGER, ser_change BLOB)")
        conn.executemany("INSERT INTO snaps VALUES ('callpulse.campaign', ?, ?, ?)", snaps)
        conn.commit()
        conn.close()
    found = latest_campaign_snapshots(tmp_path)
    assert [(s.org_id, s.campaign_id, s.epoch, s.partition) for s in found] == [
        ("o1", "c1", 3, "part-1.sqlite3"), ("o1", "c2", 4, "part-0.sqlite3")]
    assert found[1].data is None  # retired at epoch 4
    fmt, value = read_value(tmp_path, found[0])
    assert fmt == "callpulse-recovery/1" and build_snapshot(value[1]) == build_snapshot(st)
