"""`callpulse demo` — the README's main job — runs Redis, flow, API and simulator and stops them cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import redis

from callpulse.redis_local import free_port
from engine.storage.keys import org_campaigns_key, stats_key

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("callpulse"))


def test_demo_runs_the_live_pipeline_and_stops_cleanly(tmp_path, redis_url):
    port = free_port()
    env = dict(os.environ, CALLPULSE_REDIS_URL=redis_url)
    out = subprocess.run([CLI, "demo", "--duration", "25", "--every", "5", "--contacts", "40", "--port", str(port),
                          "--data-dir", str(tmp_path)], env=env, capture_output=True, timeout=120, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"dashboard:  http://127.0.0.1:{port}/#key=" in out.stdout  # the page's advice: key in the fragment
    assert "?key=" not in out.stdout
    assert "Authorization: Bearer" in out.stdout
    # the flow wrote live bodies for the simulated campaigns, and dialing really happened
    client = redis.Redis.from_url(redis_url)
    campaigns = client.smembers(org_campaigns_key("org-1"))
    assert campaigns
    bodies = [orjson.loads(client.get(stats_key("org-1", c.decode()))) for c in campaigns]
    assert any(b["attempts"]["total"] > 0 for b in bodies)
    # the seeded campaign's past (2 h of calls) is in from the start: its abandon rate is judged at once
    # (no "too few to judge"), and its off-hours dials already count against the calling hours
    (seeded,) = [b for b in bodies if b["campaign_id"].endswith("p-1-1")]
    assert seeded["abandon"]["windows"]["30d"]["human_answered"] >= 50  # the flow's min_sample
    assert seeded["compliance"]["calling_hours"]["violations"] > 0
    assert seeded["status"] == "active"
    assert " off-hours " in out.stdout
    assert " live " in out.stdout or " idle " in out.stdout
    # campaigns by name, each introduced once with its id and link
    assert f"new: Seeded {seeded['name'].removeprefix('Seeded ')} — id {seeded['campaign_id']}" in out.stdout
    assert out.stdout.count(f"id {seeded['campaign_id']},") == 1
    # everything it started is gone: the API port is closed
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_to_the_process_group_stops_everything_cleanly(tmp_path):
    """What a Ctrl-C in a terminal does: SIGINT to the demo's whole foreground process group. The demo
    starts its own Redis here; every child must be gone after a clean exit, with no traceback."""
    import signal
    import time

    api_port, redis_port = free_port(), free_port()
    env = dict(os.environ, CALLPULSE_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    demo = subprocess.Popen([CLI, "demo", "--every", "2", "--contacts", "30", "--campaigns", "3",
                             "--port", str(api_port), "--data-dir", str(tmp_path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group, as a shell gives a foreground job
    try:
        deadline = time.monotonic() + 60
        client = None
        while time.monotonic() < deadline:  # wait until the flow has written frames of voice and email
            if _port_open(redis_port):
                client = client or redis.Redis(port=redis_port)
                ids = [c.decode() for c in client.smembers(org_campaigns_key("org-1"))]
                channels = {orjson.loads(client.get(stats_key("org-1", c)))["channel"] for c in ids
                            if client.exists(stats_key("org-1", c))}
                if channels == {"voice", "email"}:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("no voice and email frames within 60 s")
        assert any(c.endswith("e-1-1") for c in ids)  # the email simulator's campaign (voice ones stagger 30 s)
        os.killpg(demo.pid, signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert demo.returncode == 0, out[-2000:] + err[-2000:]
    assert "Traceback" not in out + err, err[-3000:]
    assert "stopping the simulator" in out
    assert not _port_open(api_port) and not _port_open(redis_port)  # API and Redis are gone
    # a re-run starts from an empty dataset: the last demo's campaigns are not shown again
    again = subprocess.run([CLI, "demo", "--duration", "6", "--every", "3", "--contacts", "10", "--campaigns", "1",
                            "--port", str(api_port), "--data-dir", str(tmp_path)],
                           env=env, capture_output=True, text=True, timeout=90)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Traceback" not in again.stdout + again.stderr
    for old in ids:
        assert old not in again.stdout


# ---------------------------------------------------------------- the terminal's words (no process)

def _window(abandoned, answers, level):
    return {"abandoned": abandoned, "human_answered": answers, "rate": abandoned / answers if answers else 0.0,
            "level": level}


def test_terminal_judges_the_abandon_rate_as_the_dashboard_does():
    from callpulse.commands.demo_status import abandon_words

    # 1 abandon of 2 answers is 50 %, but far below the sample: not "50.0% (ok)"
    assert abandon_words(_window(1, 2, "ok"), 50, "active") == "abandon today too few to judge (2/50 answers)"
    assert abandon_words(_window(2, 40, "breach"), 50, "active") == \
        "abandon today 5.0% (breach, certain at the sample size)"
    assert abandon_words(_window(1, 2, "breach"), 50, "completed") == "abandon today 50.0% (breach, final)"
    assert abandon_words(_window(3, 200, "ok"), 50, "active") == "abandon today 1.5% (ok)"


def test_terminal_lines_show_the_campaign_name():
    from callpulse.commands.demo_status import status_line
    from callpulse.simulator import SimConfig, generate
    from engine.state.fold import Fold
    from engine.validation.events import validate_event

    fold = Fold()
    for ev in generate(SimConfig(seed=3, contacts=30, channel="mixed", campaigns=4, name_prefix="Seeded")):
        fold.apply(validate_event(ev if isinstance(ev, dict) else orjson.loads(ev)))
    bodies = fold.snapshots()
    assert {b["channel"] for b in bodies} == {"voice", "email"}
    for body in bodies:
        line = status_line(body)
        assert body["name"].startswith("Seeded ") and body["name"] in line
        assert body["campaign_id"] not in line


def test_plain_setup_after_the_test_setup_installs_nothing():
    """The README's test command, then its demo command: the second set-up must not reinstall (and print
    pip's warnings before the demo's first line). The suite itself runs after the test set-up."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(["bash", "scripts/setup.sh"], cwd=root, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "CALLPULSE_TEST_EXTRAS"})
    assert out.returncode == 0, out.stderr
    assert out.stdout + out.stderr == ""
