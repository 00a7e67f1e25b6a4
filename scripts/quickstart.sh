#!/usr/bin/env bash
# The README's main job: set up, train the default SAGAN on the built-in digits (about 10
# minutes on 2 CPU cores), then draw the attention figure. Extra arguments go to `sagan train`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
out="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
sagan train --out "$out" "$@"
sagan attention "$out" --out "$out/attention.png"
echo "samples: $out/samples/   attention figure: $out/attention.png"
