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
# two workers (pytest-xdist), each test module on one of them (--dist loadfile: a module's stack is built
# once). The e2e tests wait on Redis, the flow and servers much of the time, so two workers gain even on two
# cores. CALLPULSE_TEST_WORKERS=0 runs in this process. The fast lane: `bash scripts/test.sh -m unit`.
exec .venv/bin/python -m pytest -q -n "${CALLPULSE_TEST_WORKERS:-2}" --dist loadfile "$@"
