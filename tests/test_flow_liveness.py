"""Reliability #11 and #12: `/readyz` knows when the flow is not running, and a full recovery disk is
said in one line.

On a real flow subprocess, a real Redis and the real API (ServerThread):
- a SIGKILLed flow (the OOM killer's way) is "not running" after a few missed liveness beats, not 30 s;
- a flow stopped by SIGTERM, or ended by an error, is "flow stopped" at once, with the reason; a
  restarted flow clears it;
- a flow whose recovery directory's disk fills (a real 16-512 KiB tmpfs, mounted in a user and mount
  namespace of its own: no root needed, skipped where the kernel refuses) exits 4 with one line saying
  which directory and what to do, and `/readyz` says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import httpx
import pytest

from api.app import create_app
from callpulse.simulator import SimConfig, generate
from engine.storage.keys import frames_stream
from flows.dataset import ensure
from tests.support import ServerThread, wait_until
from tests.test_flow import CLI, append, env, start_flow

pytestmark = pytest.mark.e2e


def _readyz(api) -> httpx.Response:
    return httpx.get(api.url + "/readyz", timeout=10)


def _not_ready(api, words: str):
    r = _readyz(api)
    return r if r.status_code == 503 and words in r.json().get("reason", "") else None


def _log(tmp_path) -> str:
    return (tmp_path / "flow.log").read_text()[-3000:]


def test_readyz_sees_a_killed_flow_in_seconds_a_stopped_one_at_once_and_a_restart(tmp_path, redis_url):
    api = ServerThread(create_app(redis_url)).start()
    proc = None
    try:
        proc = start_flow(redis_url, tmp_path, "--no-recovery")
        wait_until(lambda: _readyz(api).status_code == 200, timeout=30, what="ready")

        os.killpg(proc.pid, signal.SIGKILL)  # as the OOM killer does: nothing recorded on the way out
        proc.wait()
        t0 = time.monotonic()
        r = wait_until(lambda: _not_ready(api, "flow not running"), timeout=15, interval=0.2,
                       what="/readyz 503 flow not running")
        assert time.monotonic() - t0 < 8, r.json()  # a few missed beats (1 s each), far below the 30 s lag bound
        assert "no liveness beat" in r.json()["reason"]

        proc = start_flow(redis_url, tmp_path, "--no-recovery")  # a restart clears the verdict
        wait_until(lambda: _readyz(api).status_code == 200, timeout=30, what="ready again")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, _log(tmp_path)
        r = _readyz(api)  # at once, not after a lag bound
        assert r.status_code == 503 and r.json()["reason"].startswith("flow stopped at "), r.json()
        assert "stopped by SIGTERM" in r.json()["reason"]
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        api.stop()


def test_a_flow_that_dies_on_an_error_is_not_ready_at_once_with_the_reason(tmp_path, redis_url, redis_client):
    items = list(generate(SimConfig(seed=3, orgs=1, campaigns=1, contacts=20, channel="voice", window="none")))
    first = next(e for e in items if isinstance(e, dict))
    # a key of the wrong type where the flow appends the campaign's frames: Redis answers WRONGTYPE,
    # an error the flow does not ride out
    redis_client.set(frames_stream(first["org_id"], first["campaign_id"]), "not a stream")
    append(redis_client, items)
    api = ServerThread(create_app(redis_url)).start()
    proc = None
    try:
        proc = start_flow(redis_url, tmp_path, "--replay", "--no-recovery")
        assert proc.wait(timeout=60) not in (0, None), _log(tmp_path)
        r = _readyz(api)
        assert r.status_code == 503, r.json()
        reason = r.json()["reason"]
        assert reason.startswith("flow stopped at ") and "crashed" in reason and "WRONGTYPE" in reason, reason
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        api.stop()


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || "
                            "mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True, timeout=20)
    return probe.returncode == 0


@pytest.mark.parametrize("size, extra", [("512k", ()), ("256k", ("--seal-chunk-rows", "256")), ("16k", ())],
                         ids=["sqlite-full", "chunk-enospc", "at-start"])
def test_a_full_recovery_disk_is_one_line_exit_4_and_readyz_says_so(tmp_path, redis_url, redis_client, size,
                                                                    extra):
    if not _namespaces_work():
        pytest.skip("no unprivileged user+mount namespaces here (unshare): no small filesystem without root")
    append(redis_client, list(generate(SimConfig(seed=1, orgs=1, campaigns=2, contacts=1000, channel="voice"))))
    ensure(redis_client)  # a dataset id (keys create would make it): /readyz then judges the flow itself
    rec = tmp_path / "rec"
    rec.mkdir()
    # the flow sees a 16-512 KiB filesystem at `rec` (16 KiB: full before its first snapshot, while it
    # creates the recovery partitions); nothing else changes (same Redis, same network)
    cmd = (f"mount -t tmpfs -o size={size} tmpfs {rec} && exec {CLI} flow --replay --until-drained "
           f"--recovery-dir {rec} -s 0.2 {' '.join(extra)}")
    api = ServerThread(create_app(redis_url)).start()
    try:
        r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", cmd],
                           env=dict(env(redis_url), RUST_BACKTRACE="0"), capture_output=True, text=True, timeout=120)
        assert r.returncode == 4, r.stderr[-3000:]  # EXIT_DISK_FULL, documented in docs/operations.md
        ours = [ln for ln in r.stderr.splitlines() if ln.startswith("callpulse flow: stopped")]
        assert len(ours) == 1, r.stderr[-3000:]
        assert ours[0].startswith(f"callpulse flow: stopped: the disk of the recovery directory {rec} is full (")
        assert "Free space there, or move the recovery directory" in ours[0] and "resumes from its last" in ours[0]
        assert "Traceback" not in r.stderr, r.stderr[-3000:]  # no raw Python panic text
        ready = _readyz(api)
        assert ready.status_code == 503 and f"recovery directory {rec} is full" in ready.json()["reason"]
    finally:
        api.stop()


def test_the_disk_full_texts_bytewax_and_python_raise_are_recognised():
    """The exact texts of the two failures seen on a full disk (the test above produces them for real)."""
    from callpulse.commands.flow import EXIT_DISK_FULL, disk_full_line

    assert EXIT_DISK_FULL == 4
    sqlite = ("(src/run.rs:167:13) called `Result::unwrap()` on an `Err` value: SqliteFailure(Error { code: "
              "DiskFull, extended_code: 13 }, Some(\"database or disk is full\"))")
    chunk = ("(src/operators.rs:951:68): error calling `StatefulBatchLogic.snapshot` in \"callpulse.campaign\"\n"
             "[Errno 28] No space left on device")
    assert "(database or disk is full)" in disk_full_line(sqlite, "/data/rec")
    assert "/data/rec is full (No space left on device)" in disk_full_line(chunk, "/data/rec")
    assert disk_full_line("WRONGTYPE Operation against a key holding the wrong kind of value", "/r") is None
