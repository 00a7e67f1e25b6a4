#!/usr/bin/env bash
# The README's main job: set up, train the default SAGAN (the quick preset) on the built-in
# digits (under 10 minutes in all on 2 AVX2 CPU cores) with an offline evaluation every 500
# steps, then draw the attention figure and write the run's HTML report. Extra arguments go
# to `sagan train`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
out="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
sagan train --out "$out" --eval-every 500 "$@"
sagan attention "$out" --out "$out/attention.png"
sagan report "$out"
echo "samples: $out/samples/   attention figure: $out/attention.png   report: $out/report.html"
