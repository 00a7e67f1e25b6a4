#!/usr/bin/env bash
# One short GPU session (issue 15's attention claim at convergence, and the CUDA tests):
#
#     bash benchmarks/cuda_convergence.sh [OUT] [SECONDS]
#
# First tests/test_cuda.py alone (15 s on an H200; limit 180 s), then the long-range ablation
# on the quick preset at 64 px (no-attention, sagan@16, sagan@32; 3 seeds; 8,000 steps;
# FD-random every 1,000 on 1,000 samples), all nine runs at once on the one GPU. The ablation
# gets SIGTERM after SECONDS (default 450): its runs save a checkpoint and stop (whatever is
# left is killed 60 s later), and the runs it stopped are scored at their best.pt
# (unfinished.jsonl). On 2026-12-04 the tests ran beside the runs and took 516 s, slowing both
# and hitting their limit; now they run first. Everything that comes back is under OUT
# (default ./cuda-results): machine.txt, tests.txt, ablation.txt and runs.tgz (the records,
# each run's stats.jsonl and config.yaml). Needs torch with CUDA and the package's
# dependencies; the package is taken from src/.
set -uo pipefail
out=${1:-cuda-results}
budget=${2:-450}
runs=runs/cuda-convergence
mkdir -p "$out" "$runs"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 benchmarks/_cuda_machine.py | tee "$out/machine.txt"
timeout 180 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py >"$out/tests.txt" 2>&1
echo "== tests: exit $?" >>"$out/tests.txt"
tail -5 "$out/tests.txt"
args=(--out "$runs" --preset quick --lr-g 2e-4 --lr-d 2e-4 --resolution 64 --data longrange --seeds 3
      --variants no-attention,sagan@16,sagan@32 --steps 8000 --eval-every 1000 --eval-n 1000
      --final-n 2000 --precision 32 --device cuda)
start=$SECONDS
timeout -k 60 "$budget" python3 benchmarks/ablation.py "${args[@]}" --jobs 9 2>&1 |
    tee "$out/ablation.txt"
echo "== ablation: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out/ablation.txt"
pgrep -af spawn_main && echo "(workers left running, above)"
python3 benchmarks/ablation.py "${args[@]}" --score-unfinished 2>&1 | tee -a "$out/ablation.txt"
tar czf "$out/runs.tgz" "$runs"/*.jsonl "$runs"/*/stats.jsonl "$runs"/*/config.yaml
