"""Reliability #8: with `callpulse flow --no-recovery`, a wiped Redis stays visible until an operator acts.

On a redis-server of the test's own (tests/redis_faults.py), the real flow and the real API:
- the running flow finds its dataset gone and exits 3 (as before); a restarted flow refuses too (exit 3:
  before the fix it adopted the new, empty dataset and `/readyz` went back to 200 with nothing said);
  `/readyz` keeps answering 503 "dataset lost" until the flow is started with `--accept-new-dataset`;
- `--dataset-file`: the flow remembers its dataset across its own restarts, so a Redis wiped while the
  flow was down too is refused as well.
"""

from __future__ import annotations

import os
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
from tests.test_flow import append, fold_bodies, run_flow, stored_bodies, wait_for_bodies
from tests.test_outage_and_data_loss import _flow

pytestmark = pytest.mark.e2e


def _items():
    return list(generate(SimConfig(seed=21, orgs=1, campaigns=1, contacts=60, channel="voice", window="none")))


def _log(tmp_path) -> str:
    return (tmp_path / "flow.log").read_text()[-3000:]


def test_a_wipe_is_not_forgotten_by_a_restarted_flow_without_recovery(tmp_path):
    items = _items()
    want = fold_bodies(items)
    rp = RedisProcess(tmp_path / "redis").start()
    client = rp.client()
    api = ServerThread(create_app(rp.url)).start()
    proc = again = None
    try:
        append(client, items)
        proc = _flow(rp.url, tmp_path, "--no-recovery")
        wait_for_bodies(client, want, timeout=60)
        wait_until(lambda: httpx.get(api.url + "/readyz").status_code == 200, what="ready")

        rp.wipe()  # Redis comes back empty
        rp.start()
        assert proc.wait(timeout=30) == EXIT_DATASET_LOST, _log(tmp_path)

        # what a supervisor does: start it again. It must not adopt the empty dataset
        again = _flow(rp.url, tmp_path, "--no-recovery")
        assert again.wait(timeout=30) == EXIT_DATASET_LOST, _log(tmp_path)
        assert "--accept-new-dataset" in _log(tmp_path)
        assert [k for k in client.keys("*") if b"stats" in k] == []
        time.sleep(1.1)  # the API's dataset verdict is cached for a second
        r = httpx.get(api.url + "/readyz", timeout=10)
        assert r.status_code == 503 and "dataset lost" in r.json()["reason"], r.json()

        # an operator creating keys again is not yet the acknowledgement: still refused
        create_key(client, org="org-1")
        again = _flow(rp.url, tmp_path, "--no-recovery")
        assert again.wait(timeout=30) == EXIT_DATASET_LOST, _log(tmp_path)

        # the documented recovery: re-ingest the event log, start the flow once with --accept-new-dataset
        append(client, items)
        run_flow(rp.url, tmp_path, "--replay", "--no-recovery", "--accept-new-dataset")
        assert stored_bodies(client, want) == want
        assert client.hget(flow_status_key(), "dataset_error") is None
        time.sleep(1.1)
        r = httpx.get(api.url + "/readyz", timeout=10)
        assert r.status_code == 200, r.json()
    finally:
        for p in (proc, again):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        api.stop()
        client.close()
        rp.stop()


def test_dataset_file_catches_a_wipe_while_the_flow_was_down_too(tmp_path):
    items = _items()
    rp = RedisProcess(tmp_path / "redis").start()
    client = rp.client()
    ident = tmp_path / "flow-dataset-id"
    try:
        append(client, items)
        run_flow(rp.url, tmp_path, "--replay", "--no-recovery", "--dataset-file", str(ident))
        old = client.get(DATASET_KEY).decode()
        assert ident.read_text().strip() == old

        rp.wipe()  # no flow ran to see it: nothing recorded in the new Redis
        rp.start()
        append(client, items)
        proc = _flow(rp.url, tmp_path, "--no-recovery", "--dataset-file", str(ident))
        assert proc.wait(timeout=30) == EXIT_DATASET_LOST, _log(tmp_path)
        reason = client.hget(flow_status_key(), "dataset_error").decode()
        assert old in reason and str(ident) in reason and "--accept-new-dataset" in reason

        run_flow(rp.url, tmp_path, "--replay", "--no-recovery", "--dataset-file", str(ident), "--accept-new-dataset")
        new = client.get(DATASET_KEY).decode()
        assert new != old and ident.read_text().strip() == new
        assert stored_bodies(client, fold_bodies(items)) == fold_bodies(items)
    finally:
        client.close()
        rp.stop()
