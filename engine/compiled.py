"""Which build of the engine this process runs: the Cython-compiled modules or the pure-Python source.

The engine's modules are plain Python, and they stay the reference. `scripts/build_compiled.py` (run by
`scripts/setup.sh`) compiles them with Cython into extension modules beside their sources
(``engine/state/campaign.cpython-311-*.so`` next to ``campaign.py``) and records a digest of the sources
it compiled in ``engine/_compiled.json``. Python imports an extension module before a source file of the
same name, so a process runs the compiled engine whenever those files are there and current.

`activate` (called by ``engine/__init__.py``, before any other engine module is imported) keeps the
source instead, for every engine module, when:

- ``CALLPULSE_PURE_PYTHON=1`` asks for it (the tests run the reference model and the property tests in
  both builds and require the same results; benchmarks measure one against the other);
- the compiled modules are stale: a source changed since they were built (a developer's edit must never
  be shadowed by an old build). The CLI then says so in one warning line;
- nothing was compiled (no C compiler where it was installed): the same warning line.

Both builds compute the same results: Cython compiles this Python with its Python semantics (no type
annotations are used as C types: ``annotation_typing`` is off), so ints stay unbounded and floats stay
floats.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import sys
from pathlib import Path

PURE_ENV = "CALLPULSE_PURE_PYTHON"
ENGINE_DIR = Path(__file__).resolve().parent
MANIFEST = ENGINE_DIR / "_compiled.json"
# Modules never compiled: the packages' __init__ files (tiny) and this one (it decides what is imported).
NOT_COMPILED = ("__init__.py", "compiled.py")


def compiled_sources() -> list[Path]:
    """The engine's source files that the build compiles, sorted: module files only (an editor's lock or
    backup file such as ``.#gate.py`` is none)."""
    return sorted(p for p in ENGINE_DIR.rglob("*.py")
                  if p.name not in NOT_COMPILED and p.stem.isidentifier() and p.is_file())


def sources_digest() -> str:
    """A digest of the compiled sources' paths and contents and of this Python's version: the build it
    names is current when the manifest holds the same digest."""
    h = hashlib.sha256(sys.version.encode())
    for path in compiled_sources():
        h.update(str(path.relative_to(ENGINE_DIR)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def extension_files() -> list[Path]:
    """The compiled extension modules lying beside the engine's sources."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(p for p in ENGINE_DIR.rglob("*") if p.name.endswith(suffixes))


def manifest_digest() -> str | None:
    """The sources digest the manifest names (its first line; the second is the build script's own), or None."""
    try:
        lines = MANIFEST.read_text().split()
    except OSError:
        return None
    return lines[0] if lines else None


def missing_extensions() -> bool:
    """Some compiled source has no extension module beside it (one was deleted): never run half a build."""
    built = {p.parent / p.name.split(".", 1)[0] for p in extension_files()}
    return any(p.with_suffix("") not in built for p in compiled_sources())


class _SourceFirst:
    """A meta-path finder that imports every ``engine.*`` module from its ``.py`` file, even when a compiled
    extension module lies beside it."""

    def find_spec(self, name, path=None, target=None):
        if not name.startswith("engine.") or not path:
            return None
        loaders = [(importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)]
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, *loaders).find_spec(name, target)
            if spec is not None:
                return spec
        # no source: never fall through to an extension module left behind (a module renamed since the build)
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)


# What `activate` chose: "compiled", or "pure" with why (see `fallback_warning`).
MODE = "pure"
REASON = "not activated"
BAD_SWITCH: str | None = None  # a value of CALLPULSE_PURE_PYTHON other than 0 or 1 (ignored, and said)


def _is_current() -> bool:
    try:
        return manifest_digest() == sources_digest() and not missing_extensions()
    except OSError:  # a source vanished while it was read: judge it stale
        return False


def activate() -> None:
    global MODE, REASON, BAD_SWITCH
    switch = os.environ.get(PURE_ENV, "")
    BAD_SWITCH = switch if switch not in ("", "0", "1") else None
    if switch == "1":
        MODE, REASON = "pure", "asked"
    elif not extension_files():
        MODE, REASON = "pure", "not built"
    elif not _is_current():
        MODE, REASON = "pure", "stale"
    else:
        MODE, REASON = "compiled", ""
    if MODE == "pure" and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())


def fallback_warning() -> str | None:
    """One line for the CLI when the engine runs as pure Python without having been asked to, or when the
    switch has a value it ignores; else None."""
    if BAD_SWITCH is not None:
        return f"callpulse: warning: {PURE_ENV} must be 0 or 1, got {BAD_SWITCH!r}: ignored"
    if MODE == "compiled" or REASON == "asked":
        return None
    why = {"not built": "its compiled modules were not built (no C compiler when it was set up?)",
           "stale": "its compiled modules do not match its sources (edited since, or a build cut short)"
           }.get(REASON, REASON)
    return (f"callpulse: warning: the engine runs as pure Python (slower, same results): {why}; "
            "run scripts/setup.sh (or python scripts/build_compiled.py) to compile it")
