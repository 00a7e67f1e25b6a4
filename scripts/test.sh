#!/usr/bin/env bash
# The README's test command: set up with the test and docs extras, lint, build the docs site
# (warnings are errors), then run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXTRAS=test,docs . scripts/setup.sh
ruff check .
ruff format --check .
site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$site"
rm -rf "$site"
python -m pytest "$@"
