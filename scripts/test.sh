#!/usr/bin/env bash
# Set up .venv with every extra (idempotent) and run the test suite.
# Extra arguments go to pytest; CI runs the default selection (slow tests excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
if [ "$#" -eq 0 ]; then set -- -m "not slow"; fi
exec .venv/bin/python -m pytest "$@"
