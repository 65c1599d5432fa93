"""engine.storage.id_rows.IdRows: the contact id <-> row map behaves as a dict and a list would, and survives a
rebuild from its bytes (what a recovery snapshot keeps)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.state.campaign import CampaignState
from engine.storage.id_rows import IdRows

pytestmark = pytest.mark.unit

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_.:-é", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(ids, max_size=300), st.lists(ids, max_size=30))
def test_rows_and_names_match_a_dict_and_a_list(names, probes):
    table, want = IdRows(), {}
    for name in names:
        row = table.row(name)
        assert row == want.get(name)
        if row is None:
            want[name] = table.add(name)
            assert want[name] == len(want) - 1
    order = sorted(want, key=want.get)
    assert len(table) == len(want) and list(table) == order
    assert [table.name(r) for r in range(len(table))] == order
    rebuilt = IdRows.from_bytes(bytes(table.data))
    for t in (table, rebuilt):
        for name, row in want.items():
            assert t.row(name) == row and name in t
        for name in probes:
            assert t.row(name) == want.get(name)
    assert list(rebuilt) == order and list(rebuilt.ends) == list(table.ends)


def test_a_row_with_the_same_hash_but_another_id_is_not_a_match():
    table = IdRows()
    for name in ("k1", "k2", "k3"):
        table.add(name)
    table.hashes[1] = hash("other")  # as if "other" and "k2" shared a hash: the id itself must decide
    table._resize(len(table))
    assert table.row("other") is None
    assert table.row("k1") == 0 and table.row("k3") == 2


def test_the_table_grows_and_stays_at_most_half_full():
    table = IdRows()
    for i in range(5000):
        table.add(f"ct-{i:06d}")
        assert 2 * len(table) <= len(table.slots)
    assert all(table.row(f"ct-{i:06d}") == i for i in range(0, 5000, 7))
    assert table.row("ct-005000") is None


def test_a_campaign_state_finds_its_contacts_after_a_pickle_round_trip():
    st_ = CampaignState("o1", "c1")
    for i in range(100):
        st_.apply({"event_id": f"e{i}", "type": "contact.added", "ts": 1_700_000_000_000 + i, "org_id": "o1",
                   "campaign_id": "c1", "contact_id": f"k{i}"})
    back = pickle.loads(pickle.dumps(st_))
    assert [back.table.row(f"k{i}") for i in range(100)] == list(range(100))
    assert back.table.name(42) == "k42" and back.table.row("k100") is None
