#!/usr/bin/env bash
# The README's main command: set up, then run `callpulse demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/callpulse demo "$@"
