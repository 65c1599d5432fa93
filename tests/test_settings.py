"""Issue 26 (item 3): one settings object per process, and the only readers of the environment.

`ApiSettings` (api/settings.py), `FlowConfig` (flows/config.py) and `CliSettings` (callpulse/settings.py) read
the environment; every other product module gets its values from them (docs/operations.md, *Settings*).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from api.settings import ApiSettings
from api.webhook_delivery import DeliverySettings
from callpulse.settings import CliSettings
from engine.storage.keys import DEFAULT_PARTITIONS, partitions_from
from flows.config import FlowConfig
from flows.patience import PatienceSettings
from flows.replica_ack import AckSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "flows", "api", "callpulse")
# engine/compiled.py reads one switch, CALLPULSE_PURE_PYTHON, which build of the engine to import: it must be
# read before any engine module is imported, so no settings object can carry it
READERS = {"api/settings.py", "flows/config.py", "callpulse/settings.py", "engine/compiled.py"}


def _env_reads(path: Path, root: Path = ROOT) -> list[str]:
    """Where a module reads the environment: any use of ``os.environ`` / ``os.getenv`` (or ``environ`` /
    ``getenv`` imported from os) but an assignment ``os.environ[k] = v`` (a write, for a child process)."""
    tree = ast.parse(path.read_text())
    names = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and node.module == "os" for a in node.names if a.name in ("environ", "getenv", "getenvb")}
    writes = {id(node.value) for node in ast.walk(tree)
              if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del))}
    found = []
    for node in ast.walk(tree):
        hit = (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
               and node.attr in ("environ", "getenv", "getenvb", "environb")) \
            or (isinstance(node, ast.Name) and node.id in names)
        if hit and id(node) not in writes:
            found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno}"))
    return [where for _line, where in sorted(found)]


def test_only_the_three_settings_modules_read_the_environment():
    reads = [hit for pkg in PACKAGES for path in sorted((ROOT / pkg).rglob("*.py"))
             if str(path.relative_to(ROOT)) not in READERS for hit in _env_reads(path)]
    assert not reads, f"read the environment in a settings object and pass the value on: {reads}"


def test_the_scan_sees_reads_and_lets_writes_pass(tmp_path):
    (tmp_path / "m.py").write_text("import os\nfrom os import getenv as g\nos.environ['A'] = '1'\n"
                                   "a = os.environ.get('A')\nb = g('B')\nc = dict(os.environ)\n")
    assert _env_reads(tmp_path / "m.py", tmp_path) == ["m.py:4", "m.py:5", "m.py:6"]


def test_api_settings_read_the_environment_given_and_the_caller_wins():
    env = {"CALLPULSE_REDIS_URL": "redis://h:1/0", "CALLPULSE_DEV": "1", "CALLPULSE_PARTITIONS": "4",
           "CALLPULSE_CORS_ORIGINS": "https://a.example, https://b.example", "CALLPULSE_SSE_MAX_CONNECTIONS": "7",
           "CALLPULSE_WEBHOOK_POLL_S": "0.05", "CALLPULSE_ACK_REPLICAS": "2", "CALLPULSE_REDIS_CLUSTER": "1",
           "CALLPULSE_HEADER_TIMEOUT_S": "3", "CALLPULSE_WEBHOOK_ALLOW": "10.0.0.0/8"}
    s = ApiSettings.from_env(env=env)
    assert (s.redis_url, s.dev_mode, s.partitions, s.sse_max_connections, s.redis_cluster) == \
           ("redis://h:1/0", True, 4, 7, True)
    assert s.cors_origins == ("https://a.example", "https://b.example") and s.webhook_allow == "10.0.0.0/8"
    assert s.delivery == DeliverySettings(poll_s=0.05) and s.ack == AckSettings(replicas=2)
    assert s.header_timeout_s == 3.0 and s.heartbeat_s == ApiSettings.heartbeat_s
    # the caller's values (create_app's keywords, the command's flags) win; None means "not given"
    o = ApiSettings.from_env("redis://other:2/0", env=env, dev_mode=False, sse_max_connections=None,
                             cors_origins="https://c.example", webhooks=False)
    assert (o.redis_url, o.dev_mode, o.sse_max_connections, o.cors_origins) == \
           ("redis://other:2/0", False, 7, ("https://c.example",))
    assert o.delivery == DeliverySettings()  # no deliverer in this process: its settings are not read
    empty = ApiSettings.from_env(env={})
    assert empty == ApiSettings() and empty.partitions == DEFAULT_PARTITIONS and empty.redis_cluster is None


@pytest.mark.parametrize("setting, value", [
    ("CALLPULSE_INGEST_RATE", "lots"), ("CALLPULSE_WEBHOOK_TIMEOUT_S", "soon"), ("CALLPULSE_SNDBUF", "-1"),
    ("CALLPULSE_METRICS_CACHE_S", "nan"), ("CALLPULSE_PARTITIONS", "0"), ("CALLPULSE_ACK_TIMEOUT_MS", "2s"),
    ("CALLPULSE_REDIS_URL", "localhost:6379")])
def test_a_malformed_setting_is_one_error_naming_it(setting, value):
    with pytest.raises(ValueError) as exc:
        ApiSettings.from_env(env={setting: value})
    assert setting in str(exc.value) and repr(value) in str(exc.value) and "\n" not in str(exc.value)


def test_an_unknown_keyword_is_refused():
    with pytest.raises(TypeError, match="heartbeat"):
        ApiSettings.from_env(env={}, heartbeat=1.0)


def test_cli_settings(tmp_path):
    env = {"CALLPULSE_REDIS_URL": " redis://x:3/0 ", "CALLPULSE_PARTITIONS": "2", "CALLPULSE_GIVE_UP_S": "9",
           "CALLPULSE_RETRY_MAX_DELAY_S": "oops", "CALLPULSE_REDIS_CLUSTER": "0"}
    s = CliSettings.from_env(env)
    assert (s.redis_url, s.partitions, s.redis_cluster) == ("redis://x:3/0", 2, False)
    assert s.patience == PatienceSettings(give_up_s=9.0)  # a malformed patience setting is its default
    assert s.partitions_or(None) == 2 and s.partitions_or(5) == 5
    assert CliSettings.from_env({}) == CliSettings()


def test_flow_config_takes_the_flags_then_the_environment(monkeypatch):
    monkeypatch.setenv("CALLPULSE_REDIS_URL", "redis://flow:4/0")
    monkeypatch.setenv("CALLPULSE_PARTITIONS", "3")
    monkeypatch.setenv("CALLPULSE_DATASET_ID", "ds-1")
    monkeypatch.setenv("CALLPULSE_OUTAGE_NOTICE_S", "2")
    cfg = FlowConfig.from_env(partitions=None, lateness_ms=5, replay=True)
    assert (cfg.redis_url, cfg.partitions, cfg.dataset, cfg.lateness_ms, cfg.replay) == \
           ("redis://flow:4/0", 3, "ds-1", 5, True)
    assert cfg.patience.notice_s == 2.0 and cfg.redis_cluster is None
    assert FlowConfig.from_env(partitions=6).partitions == 6


def test_partitions_from():
    assert partitions_from(None) == partitions_from(" ") == DEFAULT_PARTITIONS and partitions_from("5") == 5
    for bad in ("x", "0", "-2"):
        with pytest.raises(ValueError, match="CALLPULSE_PARTITIONS"):
            partitions_from(bad)
