#!/usr/bin/env bash
# Create .venv (once) and install torch-sagan into it; sourced by the other scripts.
# TORCH_SPEC picks the torch build: the default, torch==2.13.0, is the CPU build that machines
# of this project keep on local disk. Elsewhere set e.g. TORCH_SPEC='torch>=2.4' (CUDA wheels).
# EXTRAS adds optional extras, e.g. EXTRAS=test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}"
python -m pip install --quiet --disable-pip-version-check -e ".${EXTRAS:+[$EXTRAS]}"
