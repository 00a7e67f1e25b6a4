#!/usr/bin/env bash
# One short GPU session (issue 15's attention claim at convergence, and the CUDA tests):
#
#     bash benchmarks/cuda_convergence.sh [OUT] [SECONDS]
#
# Runs tests/test_cuda.py beside the long-range ablation on the quick preset at 64 px
# (no-attention, sagan@16, sagan@32; 3 seeds; 8,000 steps; FD-random every 1,000 on 1,000
# samples), all nine runs at once on the one GPU. The ablation is killed after SECONDS (default
# 450); runs it stopped are scored at their best.pt (unfinished.jsonl). Everything that
# comes back is under OUT (default ./cuda-results): tests.txt, ablation.txt and runs.tgz (the
# records, each run's stats.jsonl and config.yaml). Needs torch with CUDA and the package's
# dependencies; the package is taken from src/.
set -uo pipefail
out=${1:-cuda-results}
budget=${2:-450}
runs=runs/cuda-convergence
mkdir -p "$out" "$runs"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 - <<'PY' | tee "$out/machine.txt"
import platform, torch
p = torch.cuda.get_device_properties(0)
print(f"{torch.cuda.get_device_name()} ({p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs), "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs")
PY
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py >"$out/tests.txt" 2>&1 &
tests=$!
args=(--out "$runs" --preset quick --resolution 64 --data longrange --seeds 3
      --variants no-attention,sagan@16,sagan@32 --steps 8000 --eval-every 1000 --eval-n 1000
      --final-n 2000 --precision 32 --device cuda)
start=$SECONDS
timeout -s KILL "$budget" python3 benchmarks/ablation.py "${args[@]}" --jobs 9 2>&1 | tee "$out/ablation.txt"
echo "== ablation: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out/ablation.txt"
pgrep -af spawn_main && echo "(workers left running, above)"
python3 benchmarks/ablation.py "${args[@]}" --score-unfinished 2>&1 | tee -a "$out/ablation.txt"
wait "$tests"
echo "== tests: exit $?" >>"$out/tests.txt"
tail -5 "$out/tests.txt"
tar czf "$out/runs.tgz" "$runs"/*.jsonl "$runs"/*/stats.jsonl "$runs"/*/config.yaml
