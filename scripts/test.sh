#!/usr/bin/env bash
# The README's test command: set up (redis-server, .venv with test extras) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLPULSE_TEST_EXTRAS=1 bash scripts/setup.sh
# guard rails first (seconds): lint, and the import contracts between the packages (pyproject.toml)
.venv/bin/ruff check --quiet .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
# the type checker on engine/ and flows/ ([tool.mypy] in pyproject.toml)
.venv/bin/mypy --no-error-summary
# the full run (no arguments) first runs the unit tests on the pure-Python engine too, the reference model
# and the property tests among them: the compiled engine (the rest of the run) must compute what its source
# does (engine/compiled.py, tests/test_compiled_engine.py). About 40 s.
if [ $# = 0 ]; then
  mkdir -p var
  if ! CALLPULSE_PURE_PYTHON=1 .venv/bin/python -m pytest -q -n "${CALLPULSE_TEST_WORKERS:-2}" --dist loadfile \
      -m unit -p no:cacheprovider > var/pure-python-lane.log 2>&1; then
    cat var/pure-python-lane.log
    echo "test: the unit tests failed on the pure-Python engine (CALLPULSE_PURE_PYTHON=1)"
    exit 1
  fi
  echo "pure-Python engine, unit tests: $(tail -n 1 var/pure-python-lane.log)"
fi
# two workers (pytest-xdist), each test module on one of them (--dist loadfile: a module's stack is built
# once). The e2e tests wait on Redis, the flow and servers much of the time, so two workers gain even on two
# cores. CALLPULSE_TEST_WORKERS=0 runs in this process. The fast lane: `bash scripts/test.sh -m unit`.
exec .venv/bin/python -m pytest -q -n "${CALLPULSE_TEST_WORKERS:-2}" --dist loadfile "$@"
