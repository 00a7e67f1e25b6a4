#!/usr/bin/env bash
# Create .venv (once) and install torch-sagan into it; sourced by the other scripts.
# TORCH_SPEC picks the torch build: the default, torch==2.13.0, is the CPU build that machines
# of this project keep on local disk. Elsewhere set e.g. TORCH_SPEC='torch>=2.4' (CUDA wheels).
# EXTRAS adds optional extras, e.g. EXTRAS=test.
# --no-compile: pip would byte-compile every installed module (torch's thousands) up front,
# 35 of the 88 s a fresh set-up took on 2 AVX2 EPYC cores; Python compiles the few it
# imports on first use instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --no-compile "${TORCH_SPEC:-torch==2.13.0}"
python -m pip install --quiet --disable-pip-version-check --no-compile -e ".${EXTRAS:+[$EXTRAS]}"
