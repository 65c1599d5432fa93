"""Issue #13: api/ stays readable — small modules, and imports that follow api/__init__.py's rules."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parent.parent / "api"
MAX_LINES = 400
FLOWS_ALLOWED = {"flows.ingest_claims", "flows.ingest_writer", "flows.dataset", "flows.live_channel",
                 "flows.redis_connect"}  # ingest append, Redis clients (cluster or not), dataset marker, pub/sub format


def _modules():
    return sorted(API.rglob("*.py"))


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_no_module_over_the_cap():
    big = {str(p.relative_to(API)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"split these api modules (over {MAX_LINES} lines): {big}"


def test_imports_follow_the_package_rules():
    wrong = []
    for path in _modules():
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top == "callpulse":
                wrong.append(f"{path.name}: {mod} (the CLI imports api, never the reverse)")
            if top == "flows" and mod not in FLOWS_ALLOWED:
                wrong.append(f"{path.name}: {mod} (api may import flows only for {sorted(FLOWS_ALLOWED)})")
    assert not wrong, wrong


def test_routes_read_through_the_read_model():
    """Route modules hold no Redis key layout (engine/keys.py): that is api/read_model/'s business
    (readiness, which reads the flow's status hash, is the one exception)."""
    for path in (API / "routes").glob("*.py"):
        if path.name != "ops.py":
            assert "engine.keys" not in set(_imports(path)), path.name
