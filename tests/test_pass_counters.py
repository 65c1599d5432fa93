"""A pass's per-contact counters: a byte a contact, widened to 32 bits when a count leaves 0..255,
and pickled by blocks in whichever width they have (engine.state.entities.Pass)."""

from __future__ import annotations

import pickle
from array import array

import pytest

from engine.state.entities import Pass

pytestmark = pytest.mark.unit


def _counts(p: Pass) -> tuple[list[int], list[int], int, int]:
    return p.dials.tolist(), p.connects.tolist(), p.attempted, p.connected


def test_counters_start_as_bytes_and_widen_past_255_exactly():
    p = Pass(block_rows=4)
    for row in (0, 5, 9):
        p.add_dial(row, 1)
    p.add_connect(5, 1)
    assert p.dials.typecode == "B" and _counts(p) == ([1, 0, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1], 3, 1)
    first = pickle.dumps(p)
    for _ in range(300):  # one contact dialed 300 times in the pass
        p.add_dial(5, 1)
    assert p.dials.typecode == "i" and p.dials[5] == 301 and p.attempted == 3
    assert p.book.dirty == {0, 1, 2}, "widening rewrites every block"
    back = pickle.loads(pickle.dumps(p))
    assert back.dials.typecode == "i" and _counts(back) == _counts(p)
    for _ in range(301):
        back.add_dial(5, -1)
    assert back.dials[5] == 0 and back.attempted == 2
    older = pickle.loads(first)
    assert older.dials.typecode == "B" and _counts(older)[2:] == (3, 1)


def test_blocks_pickled_with_32_bit_counters_still_load():
    """Snapshots written before the byte counters tagged their blocks "blocks" and held int32 counts."""
    p = Pass(block_rows=4)
    p.dials, p.connects = array("i", [2, 0, 1, 7, 1]), array("i", [1, 0, 0, 1])
    p.attempted, p.connected = 4, 2
    state = list(p.__getstate__())
    old = ("blocks", *state[1:10])  # the earlier layout: no typecodes, 32-bit blocks
    q = Pass.__new__(Pass)
    q.__setstate__(pickle.loads(pickle.dumps(old)))
    assert q.dials.tolist() == [2, 0, 1, 7, 1] and q.connects.tolist() == [1, 0, 0, 1] and q.attempted == 4
    q.add_dial(1, 1)
    assert q.dials.typecode == "i" and q.attempted == 5
