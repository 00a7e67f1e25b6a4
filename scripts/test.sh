#!/usr/bin/env bash
# The README's test command: set up with the test extra, lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXTRAS=test . scripts/setup.sh
ruff check .
ruff format --check .
python -m pytest "$@"
