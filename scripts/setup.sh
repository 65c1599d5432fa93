#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine with Python 3.11:
# installs redis-server (Debian package) when missing, creates .venv and
# installs callpulse into it (with test extras when CALLPULSE_TEST_EXTRAS=1).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # apt-get update only when a package cannot be found in the current lists.
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  fi
}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server (Debian package)"
  apt_install redis-server
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  if ! "$PY" -m venv .venv 2>/dev/null; then
    apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi

extras=""
if [ "${CALLPULSE_TEST_EXTRAS:-0}" = 1 ]; then
  extras="[test]"
  # the dashboard tests (tests/test_dashboard.py) drive Debian's Chromium headless via Playwright;
  # never `playwright install` (it downloads its own browser)
  if ! command -v chromium >/dev/null; then
    echo "setup: installing chromium (Debian package, for the dashboard tests)"
    apt_install chromium chromium-driver
  fi
fi
# Re-install only when pyproject.toml changed since the last install.
stamp=.venv/.callpulse-installed
# constraints.txt pins every dependency to the versions CI tested (regenerate with
# `.venv/bin/pip freeze --exclude-editable | grep -v '^callpulse' > constraints.txt` after a change)
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)$extras"
have="$(cat "$stamp" 2>/dev/null || true)"
# an install with the test extras also serves the demo (the extras only add packages): the README's
# test command then the demo must not reinstall, nor print pip's warnings first
if [ "$have" != "$want" ] && [ "$have" != "$want[test]" ]; then
  echo "setup: installing callpulse$extras into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -c constraints.txt -e ".$extras"
  echo "$want" > "$stamp"
fi
# Compile the engine's modules with Cython (engine/compiled.py): nothing to do when the build is current;
# where compiling is impossible, one warning line and the engine runs as pure Python (same results)
.venv/bin/python scripts/build_compiled.py
