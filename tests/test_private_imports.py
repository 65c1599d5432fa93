"""No product module uses another module's private names (issue 26): what a module shares, it names
publicly. An AST scan of engine/, flows/, api/ and callpulse/ for ``from <our module> import _name`` and for
``<our module>._name`` read through a module or name imported from one of ours (as api/event_schema.py once
read the engine's private checkers). Dunder names (``__version__``) are not private."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
OURS = ("engine", "flows", "api", "callpulse")

# "path:line: what" of uses still allowed, each with the reason; empty: none left.
ALLOWED: set[str] = set()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _ours(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in OURS


def private_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Every use in one file of a private name of another of our modules."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(root).as_posix()
    found, imported = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (_ours(node.module) or node.level):
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if _private(alias.name):
                    found.append(f"{rel}:{node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _ours(alias.name):
                    imported.add(alias.asname or alias.name.split(".")[0])
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{rel}:{node.lineno}: import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute) and not _private(base.attr):
                base = base.value  # engine.storage.sealed._x: the chain down to its first name
            if isinstance(base, ast.Name) and base.id in imported:
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_product_module_uses_another_modules_private_names():
    found = [use for package in OURS for path in sorted((ROOT / package).rglob("*.py"))
             for use in private_uses(path)]
    assert [u for u in found if u not in ALLOWED] == [], "make the name public in its module, or move it"
    assert not ALLOWED - set(found), "an allowed use is gone: take it off ALLOWED"


def test_the_scan_finds_each_form(tmp_path):
    """The scan itself: a private name imported from one of ours, or read through an imported module or
    name, is found; a module's own private names, dunders and other packages' names are not."""
    pkg = tmp_path / "engine"
    pkg.mkdir()
    src = pkg / "x.py"
    src.write_text("import os\nfrom engine import checkers as ck\nfrom engine.validation.rejection import _show, show\n"
                   "from engine.storage.sealed import SealedRows\nimport engine.storage.sealed\nfrom os import _exit\n"
                   "_mine = 1\nck._check_id\nck.check_id\nSealedRows._append\nengine.storage.sealed._I32\nos._exit\n"
                   "_mine.__class__\nck.__name__\n")
    assert private_uses(src, tmp_path) == [
        "engine/x.py:3: from engine.validation.rejection import _show", "engine/x.py:8: ck._check_id",
        "engine/x.py:10: SealedRows._append", "engine/x.py:11: engine.storage.sealed._I32"]
