"""Compile the engine's modules with Cython, in place (engine/compiled.py says how a process picks them up).

    python scripts/build_compiled.py [--force] [--clean] [--strict]

Run by scripts/setup.sh after the install: does nothing when ``engine/_compiled.json`` already names the
current sources and this script's settings; else compiles every engine module but the packages'
``__init__`` files and ``engine/compiled.py`` (two workers; about 70 s on two cores, after any change:
every module is compiled again, never from a C file of an earlier build), each into an extension module
beside its source, with the C files under ``build/cython``. Where compiling is impossible (no C compiler,
no Python headers, no Cython) it prints one warning line, removes what a failed build left, and exits 0
(``--strict``: exits 1): the engine then runs as pure Python, with the same results.

``--clean`` removes the compiled modules and the manifest (the engine runs as pure Python).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["CALLPULSE_PURE_PYTHON"] = "1"  # this process imports the engine's sources, never an old build

from engine import compiled  # noqa: E402

BUILD_DIR = ROOT / "build" / "cython"
LOG = BUILD_DIR / "build.log"  # the compiler's output (read it when a build fails)
# Cython compiles this Python with Python's semantics: annotations are not used as C types (an ``int``
# stays unbounded, a ``float`` parameter is not coerced), so the compiled engine computes what the source does.
DIRECTIVES = {"language_level": 3, "annotation_typing": False, "binding": True, "embedsignature": False}


def clean() -> None:
    for path in compiled.extension_files():
        path.unlink()
    compiled.MANIFEST.unlink(missing_ok=True)


def build() -> None:
    from Cython.Build import cythonize
    from setuptools import Distribution

    sources = [str(p.relative_to(ROOT)) for p in compiled.compiled_sources()]
    os.chdir(ROOT)
    # force: every C file from its source as it is now. Cython's own reuse judges by file times, and a
    # source copied with an old time (cp -p, rsync -a, an archive) would be compiled from its stale C file.
    extensions = cythonize(sources, build_dir=str(BUILD_DIR), nthreads=2, quiet=True, force=True,
                           compiler_directives=DIRECTIVES)
    for ext in extensions:
        ext.extra_compile_args = ["-g0"]  # no debug sections: a fifth of the size, and a faster build
    dist = Distribution({"name": "callpulse-engine", "ext_modules": extensions})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True
    cmd.build_temp = str(BUILD_DIR / "temp")
    cmd.parallel = 2
    cmd.force = True  # every object file from its fresh C file
    cmd.ensure_finalized()
    cmd.run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="compile even when the build is current")
    ap.add_argument("--clean", action="store_true", help="remove the compiled modules and stop")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when the engine cannot be compiled (an image build), instead of a warning")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)  # the build itself, output to LOG
    args = ap.parse_args()
    if args.clean:
        clean()
        return 0
    if args.inner:
        build()
        return 0
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two set-ups at once (the demo and the tests): one builds, one waits
        return build_if_stale(args.force, args.strict)


def build_settings() -> str:
    """A digest of how the engine is compiled (this script, Cython's version): a change rebuilds it."""
    import Cython

    return hashlib.sha256(Path(__file__).read_bytes() + Cython.__version__.encode()).hexdigest()


def build_if_stale(force: bool, strict: bool) -> int:
    digest = compiled.sources_digest()
    try:
        settings = build_settings()
    except ImportError:
        settings = "no-cython"
    try:
        manifest = compiled.MANIFEST.read_text().split()
    except OSError:
        manifest = []
    if manifest == [digest, settings] and not compiled.missing_extensions() and not force:
        return 0
    print("setup: compiling the engine with Cython (about 70 s on two cores)", flush=True)
    started = time.monotonic()
    clean()  # a manifest is written only after a whole build succeeded
    try:
        with open(LOG, "wb") as log:  # gcc writes to the process's descriptors: a child's go to the log
            inner = [sys.executable, __file__, "--inner"]
            rc = subprocess.run(inner, stdout=log, stderr=subprocess.STDOUT).returncode
    except OSError as exc:
        rc = f"{exc}"
    if rc != 0:
        clean()
        print(f"setup: {'error' if strict else 'warning'}: the engine could not be compiled (exit {rc}; see "
              f"{LOG.relative_to(ROOT)}); it runs as pure Python (slower, same results)", file=sys.stderr)
        return 1 if strict else 0
    if compiled.sources_digest() != digest:  # a source was saved while it compiled: this build may predate it
        print("setup: warning: an engine source changed while it was compiled; run scripts/setup.sh again "
              "(until then the engine runs as pure Python)", file=sys.stderr)
        return 0
    compiled.MANIFEST.write_text(f"{digest}\n{settings}\n")
    print(f"setup: compiled {len(compiled.extension_files())} engine modules in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
