#!/usr/bin/env bash
# Issue 15's attention claim at convergence on CPUs, a few hours at a time:
#
#     bash benchmarks/cpu_convergence.sh MINUTES [OUT]
#
# The quick preset at 64 px (where dcgan has 32x32 features, so attention can sit at 16 and
# at 32): no-attention, sagan@16 and sagan@32, seeds 0-2, 8,000 steps, FD every 1,000 steps
# on 1,000 samples, two runs at a time with one thread each; long-range first, then digits.
# Each run checkpoints every 1,000 steps. After MINUTES the ablation gets SIGTERM: its runs
# save where they are and stop. Running the script again continues them (finished runs are
# kept in OUT/results.jsonl and skipped), so the whole ablation (about 12 hours of 2 AMD EPYC
# cores per data set) can be done over several sittings, as long as OUT is kept between them;
# `--score-unfinished` is run last, so OUT/unfinished.jsonl scores the unfinished runs at their
# best.pt so far. The records say which CPU trained each part.
set -uo pipefail
minutes=${1:?usage: bash benchmarks/cpu_convergence.sh MINUTES [OUT]}
out=$(realpath -m "${2:-runs/abl-64}")
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
lscpu | grep -m1 "Model name" | tee -a "$out.log"
args=(--out "$out" --preset quick --lr-g 2e-4 --lr-d 2e-4 --resolution 64 --seeds 3
      --variants no-attention,sagan@16,sagan@32 --steps 8000 --eval-every 1000 --eval-n 1000
      --final-n 2000 --precision 32 --save-every 1000)
deadline=$((minutes * 60))
start=$SECONDS
for data in longrange digits; do
    left=$((deadline - (SECONDS - start)))
    ((left > 60)) || break
    timeout -k 120 "$left" python ablation.py "${args[@]}" --data "$data" --jobs 2 2>&1 |
        tee -a "$out.log"
    echo "== $data: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out.log"
done
rm -f "$out/unfinished.jsonl"
python ablation.py "${args[@]}" --data longrange,digits --score-unfinished 2>&1 | tee -a "$out.log"
