#!/usr/bin/env bash
# The README's test command: set up (redis-server, .venv with test extras) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLPULSE_TEST_EXTRAS=1 bash scripts/setup.sh
# guard rails first (seconds): lint, and the import contracts between the packages (pyproject.toml)
.venv/bin/ruff check --quiet .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -q "$@"
