"""Issue #9 items 2 and 3, end to end on a redis-server of the test's own (AOF on):

- the flow rides out a Redis outage longer than its outage horizon (the point where the old sink
  gave up; 60 s in production, shrunk to 2 s here by ``CALLPULSE_OUTAGE_NOTICE_S`` so the suite
  stays short) and ends with exactly the counts of an offline replay; `/readyz` is 503 meanwhile;
- a wiped Redis (restart without its data) is detected: the running flow stops writing and exits
  3, a restarted flow refuses, the API answers 503 with the reason (not 401); the documented
  recovery (new recovery dir, new key, re-ingest) brings back exactly the replayed bodies.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import httpx
import pytest

from api.app import create_app
from api.auth import create_key
from callpulse.simulator import SimConfig, generate
from engine.storage.keys import flow_status_key
from flows.dataset import DATASET_KEY, EXIT_DATASET_LOST
from tests.redis_faults import RedisProcess
from tests.support import ServerThread, wait_until
from tests.test_flow import (
    append,
    check_alerts,
    check_frames,
    fold_bodies,
    offline_replay,
    run_flow,
    start_flow,
    stored_bodies,
    wait_for_bodies,
    write_ndjson,
)

pytestmark = pytest.mark.e2e

FAST_RETRY = {"CALLPULSE_RETRY_MAX_DELAY_S": "0.5", "CALLPULSE_OUTAGE_NOTICE_S": "2"}


def _events(tmp_path, seed):
    cfg = SimConfig(seed=seed, orgs=1, campaigns=2, contacts=300, channel="mixed", duplicate_pct=3,
                    jitter_ms=3000, malformed_pct=1, abandon_prob=0.1)
    items = list(generate(cfg))
    path = tmp_path / "events.ndjson"
    write_ndjson(path, items)
    return items, path


def _flow(url, tmp_path, *args):
    os.environ.update(FAST_RETRY)  # start_flow copies os.environ
    try:
        return start_flow(url, tmp_path, "--replay", "--heartbeat-ms", "300", *args)
    finally:
        for k in FAST_RETRY:
            os.environ.pop(k, None)


def _stop(proc, timeout=30):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except Exception:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return proc.returncode


def test_flow_rides_out_an_outage_past_the_old_give_up_horizon(tmp_path):
    items, path = _events(tmp_path, seed=5)
    cut = len(items) // 2
    rp = RedisProcess(tmp_path / "redis").start()
    client = rp.client()
    api = ServerThread(create_app(rp.url)).start()
    proc = None
    try:
        append(client, items[:cut])
        proc = _flow(rp.url, tmp_path, "--recovery-dir", str(tmp_path / "rec"))
        wait_for_bodies(client, fold_bodies(items[:cut]), timeout=60)
        wait_until(lambda: httpx.get(api.url + "/readyz").status_code == 200, what="ready before the outage")

        rp.stop()
        t0 = time.monotonic()
        r = httpx.get(api.url + "/readyz", timeout=10)
        assert r.status_code == 503 and "Redis unreachable" in r.json()["reason"]
        time.sleep(6)  # three times the horizon at which the old sink stopped the flow for good
        assert proc.poll() is None, (tmp_path / "flow.log").read_text()[-2000:]
        rp.start()
        outage = time.monotonic() - t0

        append(client, items[cut:])
        want, want_alerts = offline_replay(rp.url, path, tmp_path)
        wait_for_bodies(client, want, timeout=60)
        wait_until(lambda: httpx.get(api.url + "/readyz").status_code == 200, what="ready after the outage")
        assert _stop(proc) == 0
        assert stored_bodies(client, want) == want  # exact: nothing lost, nothing counted twice
        check_alerts(client, want_alerts)
        check_frames(client, want)
        log = (tmp_path / "flow.log").read_text()
        assert "Redis outage: unreachable for" in log  # the horizon was passed ...
        assert "reachable again" in log  # ... and the flow resumed
        status = {k.decode(): v.decode() for k, v in client.hgetall(flow_status_key()).items()}
        assert int(status["outages"]) >= 1 and int(status["last_outage_ms"]) >= 2000
        assert int(status["last_outage_ms"]) <= outage * 1000 + 5000
        r = httpx.get(api.url + "/readyz")  # stopped (SIGTERM): not ready, and said at once (reliability #11)
        assert r.status_code == 503 and r.json()["reason"].startswith("flow stopped at "), r.json()
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        api.stop()
        client.close()
        rp.stop()


def test_wiped_redis_is_refused_by_flow_and_api_and_the_documented_recovery_works(tmp_path):
    items, path = _events(tmp_path, seed=9)
    rp = RedisProcess(tmp_path / "redis").start()
    client = rp.client()
    api = ServerThread(create_app(rp.url)).start()
    rec = tmp_path / "rec"
    proc = None
    try:
        key = create_key(client, org="org-1")[1]
        org = items[0]["org_id"] if isinstance(items[0], dict) else "org-1"
        append(client, items)
        proc = _flow(rp.url, tmp_path, "--recovery-dir", str(rec))
        want, want_alerts = offline_replay(rp.url, path, tmp_path)
        wait_for_bodies(client, want, timeout=60)
        old_ds = client.get(DATASET_KEY)
        assert old_ds and (rec / "dataset-id").read_text().strip() == old_ds.decode()

        rp.wipe()  # Redis comes back empty: a restart without persistence
        rp.start()
        assert proc.wait(timeout=30) == EXIT_DATASET_LOST, (tmp_path / "flow.log").read_text()[-2000:]
        assert "Refusing to write a partial dataset" in (tmp_path / "flow.log").read_text()
        # the flow wrote nothing but its refusal: no stats, no partial campaign
        assert [k for k in client.keys("*") if b"stats" in k or b"contact" in k] == []
        assert b"Redis data was lost" in client.hget(flow_status_key(), "dataset_error")

        r = httpx.get(api.url + "/readyz", timeout=10)
        assert r.status_code == 503 and "dataset lost" in r.json()["reason"]
        h = {"Authorization": f"Bearer {key}"}
        for path_ in ("/v1/campaigns", f"/v1/campaigns/{want and next(iter(want))[1]}/stats"):
            r = httpx.get(api.url + path_, headers=h, timeout=10)
            assert r.status_code == 503 and "dataset lost" in r.json()["detail"], r.text  # not 401, not 404

        # a supervisor restart does not paper over it
        again = _flow(rp.url, tmp_path, "--recovery-dir", str(rec))
        assert again.wait(timeout=60) == EXIT_DATASET_LOST

        # the documented recovery: fresh recovery dir, new key, re-ingest the event log, run the flow
        shutil.rmtree(rec)
        key = create_key(client, org=org)[1]
        append(client, items)
        run_flow(rp.url, tmp_path, "--replay", "--recovery-dir", str(rec))
        assert stored_bodies(client, want) == want
        check_alerts(client, want_alerts)
        assert client.get(DATASET_KEY) != old_ds
        time.sleep(1.1)  # the API's verdict is cached for a second
        assert httpx.get(api.url + "/readyz").status_code == 200
        r = httpx.get(api.url + "/v1/campaigns", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and len(r.json()["campaigns"]) == len(want)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        api.stop()
        client.close()
        rp.stop()


def test_recovery_state_without_its_identity_is_refused_never_adopted(tmp_path, redis_url, redis_client):
    """Reliability #2: a recovery directory whose `dataset-id` is missing or empty is not adopted by
    another dataset (before the fix the flow took over a fresh Redis's id and rewrote the file, so every
    campaign came out wrong for good). A fresh directory still adopts; the right file resumes."""
    items, path = _events(tmp_path, seed=13)
    rec = tmp_path / "rec"
    append(redis_client, items)
    run_flow(redis_url, tmp_path, "--replay", "--recovery-dir", str(rec))
    ident = rec / "dataset-id"
    ds = ident.read_text().strip()
    assert ds and redis_client.get(DATASET_KEY).decode() == ds

    redis_client.flushall()  # another dataset: a fresh Redis, with its own id and its own events
    other = create_key(redis_client, org="org-9")  # creates that dataset's id
    assert other and redis_client.get(DATASET_KEY).decode() != ds
    for content in (None, "", "\n"):  # missing, empty, blank
        if content is None:
            ident.unlink(missing_ok=True)
        else:
            ident.write_text(content)
        proc = _flow(redis_url, tmp_path, "--recovery-dir", str(rec))
        assert proc.wait(timeout=60) == EXIT_DATASET_LOST, (tmp_path / "flow.log").read_text()[-2000:]
        reason = redis_client.hget(flow_status_key(), "dataset_error").decode()
        assert "dataset-id file is" in reason and str(rec) in reason
        assert (ident.read_text() if ident.exists() else None) == content  # not rewritten with the wrong id
    assert [k for k in redis_client.keys("*") if b"stats" in k] == []  # nothing of the old state written

    fresh = tmp_path / "fresh"  # a new directory is adopted, and records the id durably
    run_flow(redis_url, tmp_path, "--replay", "--recovery-dir", str(fresh))
    assert (fresh / "dataset-id").read_text().strip() == redis_client.get(DATASET_KEY).decode()
    assert not list(fresh.glob("*.tmp"))
