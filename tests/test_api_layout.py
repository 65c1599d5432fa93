"""Issue #13: api/ stays readable — small modules, and imports that follow api/__init__.py's rules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "api"
MAX_LINES = 400
MAX_FUNCTION_LINES = 80
PACKAGES = ("engine", "flows", "api", "callpulse")
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
    """Route modules hold no Redis key layout (engine/storage/keys.py): that is api/read_model/'s business
    (readiness, which reads the flow's status hash, is the one exception)."""
    for path in (API / "routes").glob("*.py"):
        if path.name != "ops.py":
            assert "engine.storage.keys" not in set(_imports(path)), path.name


def _long_functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                yield f"{path.relative_to(API)}:{node.name}", n


def test_no_function_over_80_lines():
    """Issue 26: long functions are split into named steps (e.g. `campaign_events`: history, then live;
    `create_app`: the settings object, then `build_app`)."""
    long = {name: n for p in _modules() for name, n in _long_functions(p)}
    assert not long, f"split these api functions (over {MAX_FUNCTION_LINES} lines): {long}"


def _private_imports(path: Path):
    """``from <our package>.x import _name``, and ``x._name`` on a module of ours imported as ``x``."""
    tree = ast.parse(path.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    yield f"from {node.module} import {a.name}"
                modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in PACKAGES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                yield f"{ast.unparse(node)}"


def test_no_private_names_of_other_modules():
    """Issue 26: api/ and callpulse/ use only the public names of other modules (a private name may change
    without notice; one another module needs is made public where it lives)."""
    found = {}
    for pkg in ("api", "callpulse"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if names := sorted(set(_private_imports(path))):
                found[str(path.relative_to(ROOT))] = names
    assert not found, found


def test_the_api_starts_without_the_write_model():
    """Issue 26: the API reads what the flow wrote; importing it loads neither the campaign state nor numpy
    (engine/views/daily.py's state is a type hint only, the follow-ups view is engine/views/due_statuses.py)."""
    code = ("import sys, api.app; loaded = [m for m in ('engine.state.campaign', 'numpy') if m in sys.modules]; "
            "assert not loaded, loaded")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
