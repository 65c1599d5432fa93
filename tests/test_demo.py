"""`callpulse demo` — the README's main job — runs Redis, flow, API and simulator and stops them cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import redis

from callpulse.redis_local import free_port
from engine.keys import org_campaigns_key, stats_key

CLI = str(Path(sys.executable).with_name("callpulse"))


def test_demo_runs_the_live_pipeline_and_stops_cleanly(tmp_path, redis_url):
    port = free_port()
    env = dict(os.environ, CALLPULSE_REDIS_URL=redis_url)
    out = subprocess.run([CLI, "demo", "--duration", "25", "--every", "5", "--contacts", "40", "--port", str(port),
                          "--data-dir", str(tmp_path)], env=env, capture_output=True, timeout=120, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"dashboard:  http://127.0.0.1:{port}/" in out.stdout
    assert "Authorization: Bearer" in out.stdout
    # the flow wrote live bodies for the simulated campaigns, and dialing really happened
    client = redis.Redis.from_url(redis_url)
    campaigns = client.smembers(org_campaigns_key("org-1"))
    assert campaigns
    bodies = [orjson.loads(client.get(stats_key("org-1", c.decode()))) for c in campaigns]
    assert any(b["attempts"]["total"] > 0 for b in bodies)
    assert " live " in out.stdout or " idle " in out.stdout
    # everything it started is gone: the API port is closed
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
