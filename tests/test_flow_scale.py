"""Recovery cost stays proportional to the campaign's contacts, not its history (docs/flow.md, cost model).

CI-sized: the measure is `callpulse bench scale` (benchmarks/RESULTS.md); this only guards against the
old shape coming back — whole histories pickled every epoch, recovery many times slower than none."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from callpulse.simulator import SimConfig, generate
from tests.test_flow import CLI, env, write_ndjson

pytestmark = pytest.mark.e2e


def _flow(redis_url, path, *args):
    t0 = time.perf_counter()
    r = subprocess.run([CLI, "flow", "--replay", "--file", str(path), *args], env=env(redis_url),
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return time.perf_counter() - t0, r.stderr.decode()


def test_snapshots_hold_contacts_not_history_and_recovery_costs_little(tmp_path, redis_url):
    contacts = 3000
    items = list(generate(SimConfig(seed=3, contacts=contacts, channel="voice", window="none")))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    off, _ = _flow(redis_url, path, "--no-recovery")
    on, err = _flow(redis_url, path, "--recovery-dir", str(tmp_path / "rec"), "-s", "0.2",
                    "--seal-chunk-rows", "1024")
    m = re.search(r"(\d+) campaign snapshots", err)
    assert m and int(m.group(1)) >= 5, err[-1000:]  # snapshots were taken along the way
    assert list((tmp_path / "rec" / "chunks").glob("*.chunk")), "sealed history went to the chunk store"
    assert on < 3 * off + 5, (on, off)  # loose: the benchmark is the measure
    _the_snapshot_shows_what_the_flow_published(redis_url, tmp_path / "rec")


def _the_snapshot_shows_what_the_flow_published(redis_url, rec):
    """`callpulse flow --show-snapshot`: lists the campaigns, prints one's parts and the /stats body its state
    gives (the last body the flow wrote, figure for figure), and changes nothing in the directory."""
    import orjson
    import redis

    from engine.storage.keys import stats_key

    def files():  # (SQLite's own -shm/-wal side files of a reader aside)
        return sorted((p.name, p.stat().st_mtime_ns) for p in rec.rglob("*") if not p.name.endswith(("-shm", "-wal")))

    before = files()
    listed = subprocess.run([CLI, "flow", "--recovery-dir", str(rec), "--show-snapshot", "all"], env=env(redis_url),
                            capture_output=True, timeout=60)
    assert listed.returncode == 0, listed.stderr.decode()
    campaigns = orjson.loads(listed.stdout)
    assert len(campaigns) == 1 and campaigns[0]["bytes"] > 0 and not campaigns[0]["retired"]
    name = campaigns[0]["campaign"]
    shown = subprocess.run([CLI, "flow", "--recovery-dir", str(rec), "--show-snapshot", name], env=env(redis_url),
                           capture_output=True, timeout=60)
    assert shown.returncode == 0, shown.stderr.decode()
    out = orjson.loads(shown.stdout)
    assert out["format"] == "callpulse-recovery/1" and out["state_version"] == 6
    assert out["parts"]["identity"]["org_id"] + "/" + out["parts"]["identity"]["campaign_id"] == name
    assert out["parts"]["attempts"]["attempts_total"] == out["stats"]["attempts"]["total"] > 0
    published = orjson.loads(redis.Redis.from_url(redis_url).get(stats_key(*name.split("/"))))
    assert out["stats"] == published
    assert files() == before
    missing = subprocess.run([CLI, "flow", "--recovery-dir", str(rec), "--show-snapshot", "o/none"],
                             env=env(redis_url), capture_output=True, timeout=60)
    assert missing.returncode == 1 and b"no snapshot of campaign o/none" in missing.stderr


def test_a_snapshot_names_frozen_chunks_instead_of_copying_them(tmp_path):
    """What an epoch writes for a campaign: its hot part, not its sealed history (flows/chunk_store.py)."""
    import pickle

    from engine.state.campaign import CampaignState
    from engine.state.gate import OK, EventGate
    from engine.validation.events import validate_event
    from engine.views.snapshot import build_snapshot
    from flows.chunk_store import ChunkStore

    events = [validate_event(e) for e in generate(SimConfig(seed=4, contacts=1500, channel="voice", window="none"))
              if isinstance(e, dict)]
    gate = EventGate()
    st = CampaignState(events[0]["org_id"], events[0]["campaign_id"], collect_details=True,
                       lateness_ms=gate.lateness_ms, seal_chunk_rows=256)
    for ev in events:
        if gate.check(ev) == OK:
            st.apply(ev)
        if len(st.dirty_contacts) > 500:
            st.take_details()
    store = ChunkStore(tmp_path)
    first = store.dumps(st)
    chunk_files = list((tmp_path / "chunks").glob("*.chunk"))
    frozen = sum(f.stat().st_size for f in chunk_files)
    # the contact columns and each pass's per-contact counters go by blocks of rows too (256 here), all
    # content-addressed: one file per distinct content (equal blocks, e.g. all zeros, share one)
    assert len(st.table.book.keys) == -(-len(st.table) // 256)
    keys = {c.key for c in st.sealed.chunks} | set(st.table.book.keys.values())
    for p in st.passes.values():
        assert len(p.book.keys) == -(-max(len(p.dials), len(p.connects)) // 256)
        keys |= set(p.book.keys.values())
    assert {f.stem for f in chunk_files} == keys and len(st.sealed.chunks) >= 8
    inline = pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(first) < len(inline) - 0.9 * frozen  # the chunks are named, not copied
    again = store.dumps(st)  # the next epoch writes no chunk again
    assert len(list((tmp_path / "chunks").glob("*.chunk"))) == len(chunk_files) and len(again) == len(first)
    back = store.loads(first)
    first_attempt = next(e["attempt_id"] for e in events if e["type"] == "call.dialed")
    row = st.sealed.find(first_attempt)
    assert row is not None and row < 256  # sealed in the first frozen chunk ...
    assert back.sealed.find(first_attempt) == row  # ... and found again through the rebuilt digest index
    assert st.sealed.hot_ids  # hot sealed rows pickle their ids as one string: found again after the load
    hot_id = st.sealed.hot_ids[-1]
    assert back.sealed.find(hot_id) == st.sealed.find(hot_id) is not None
    assert back.sealed.hot_ids == st.sealed.hot_ids
    assert build_snapshot(back) == build_snapshot(st)
    # a contact's new status: the next epoch writes that contact's block of rows only
    last = st.table.name(len(st.table) - 1)
    st.apply(validate_event({"event_id": "late-status", "type": "contact.status", "ts": st.now, "org_id": st.org_id,
                             "campaign_id": st.campaign_id, "contact_id": last, "status": "completed"}))
    third = store.dumps(st)
    assert len(list((tmp_path / "chunks").glob("*.chunk"))) == len(chunk_files) + 1
    assert build_snapshot(store.loads(third)) == build_snapshot(st)
    # A snapshot written before the dispatch table (a pickle, stored pieces named by persistent id) still loads.
    import io

    from engine.storage.recovery_format import STORED_TYPES
    TAG = "callpulse-chunk"

    class OldPickler(pickle.Pickler):
        def persistent_id(self, obj):
            return (TAG, store.put(obj)) if type(obj) in STORED_TYPES else None

    buf = io.BytesIO()
    OldPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(st)
    assert build_snapshot(store.loads(buf.getvalue())) == build_snapshot(st)
    # and a state whose batches were pickled as objects (before they went as one orjson document)
    old = st.__dict__.copy()
    back = CampaignState.__new__(CampaignState)
    back.__setstate__(pickle.loads(pickle.dumps(old)))
    assert build_snapshot(back) == build_snapshot(st) and back.batches.keys() == st.batches.keys()
    assert all(back.batches[b].__getstate__() == st.batches[b].__getstate__() for b in st.batches)
    loaded = store.loads(third)
    assert len(st.batches) > 1 and {b: x.__getstate__() for b, x in loaded.batches.items()} == \
        {b: x.__getstate__() for b, x in st.batches.items()}
    # A callback for the first contact: its block (which carries its rows' callback histories) is the one
    # new file, and the callbacks come back exactly.
    files_before = len(list((tmp_path / "chunks").glob("*.chunk")))
    first_contact = st.table.name(0)
    st.apply(validate_event({"event_id": "cb-new", "type": "callback.requested", "ts": st.now, "org_id": st.org_id,
                             "campaign_id": st.campaign_id, "contact_id": first_contact, "due_at": st.now + 3_600_000}))
    fourth = store.dumps(st)
    assert len(list((tmp_path / "chunks").glob("*.chunk"))) == files_before + 1
    loaded = store.loads(fourth)
    assert loaded.table.callback_events == st.table.callback_events and 0 in loaded.table.callback_events
    assert [loaded.table.callback_fold(r) for r in range(len(st.table))] == \
        [st.table.callback_fold(r) for r in range(len(st.table))]
    assert build_snapshot(loaded) == build_snapshot(st)
    plain = pickle.loads(pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL))
    assert plain.table.callback_events == st.table.callback_events and build_snapshot(plain) == build_snapshot(st)


def test_kept_callback_histories_cost_their_size_not_orjsons_buffer():
    """orjson returns short results in a ~4 KB allocation; the table keeps copies (engine.storage.contact_table._kept),
    else 80,000 contacts with callbacks held ~300 MB at 1M contacts."""
    import tracemalloc

    from engine.storage.contact_table import ContactTable

    t = ContactTable()
    rows = [t.add(f"c{i}") for i in range(2000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for r in rows:
            t.set_callbacks(r, [((1_700_000_000_000 + r, f"evt-{r}"), "requested", 1_700_000_360_000)])
        per_row = (tracemalloc.get_traced_memory()[0] - before) / len(rows)
    finally:
        tracemalloc.stop()
    assert per_row < 400, per_row
    assert t.callbacks_of(rows[5]) == [((1_700_000_000_005, "evt-5"), "requested", 1_700_000_360_000)]
