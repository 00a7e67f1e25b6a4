"""A pose step at the paper's size and a level step, through the shared engine's task code:
seconds per iteration, examples per second and peak memory.

Run by hand; prints a Markdown table. Each measurement builds the task as ``train`` does
(:func:`sagan.training.engine.build_task`) and times its ``step`` plus the guard's bookkeeping
and the EMA update, the loop's per-iteration work. On the CPU each runs in a fresh subprocess,
so its peak resident set (VmHWM) is its own; on CUDA (``--device cuda``) all run in this
process, the memory column is the allocator's peak and times follow ``torch.cuda.synchronize``.

    python benchmarks/engine_steps.py                       # pose 4x256 @ 256 px, batch 6; levels
    python benchmarks/engine_steps.py --device cuda --precisions 32 bf16 16
    python benchmarks/engine_steps.py --cases levels --iters 50

Cases: ``pose-paper`` is Wang et al.'s generator size (4 stacks x 256 features, depth 4, 256 px
input, 64 px heat-maps, batch 6) with this library's default discriminator (32 features, depth
2) on synthetic figures; ``pose-small`` is the CPU default (2 x 64, 64 px, batch 16);
``levels`` is the default CESAGAN on the built-in Zelda levels (batch 32, no bootstrap round).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import machine_line, peak_mib, run_one

CASES = ("pose-paper", "pose-small", "levels")


def _task(case: str, precision: str, device: torch.device):  # type: ignore[no-untyped-def]
    from sagan.training.engine import build_task

    if case.startswith("pose"):
        from sagan.pose.config import PoseModelConfig, PoseRunConfig, PoseTrainConfig
        from sagan.pose.train import PoseTask

        if case == "pose-paper":
            model = PoseModelConfig(stacks=4, features=256, depth=4)
            train = PoseTrainConfig(batch_size=6, resolution=256, train_size=64)
        else:
            model, train = PoseModelConfig(), PoseTrainConfig(train_size=64)
        train = PoseTrainConfig(**{**train.__dict__, "precision": precision, "heatmap": None})
        cfg, data = PoseTask.prepare(PoseRunConfig(model=model, train=train), resuming=False)
        return build_task(PoseTask, cfg, data, device), cfg.train.batch_size
    from sagan.levels.config import BootstrapConfig, LevelRunConfig, TrainConfig
    from sagan.levels.train import LevelTask

    cfg = LevelRunConfig(train=TrainConfig(precision=precision), bootstrap=BootstrapConfig(every=0))
    cfg, data = LevelTask.prepare(cfg, resuming=False)
    return build_task(LevelTask, cfg, data, device), cfg.train.batch_size


def measure_one(
    case: str, precision: str, warmup: int, iters: int, device: str = "cpu"
) -> dict[str, float]:
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    task, batch = _task(case, precision, dev)

    def step() -> None:  # the loop's per-iteration work
        task.step()
        task.updates.end_iteration()
        task.step_count += 1
        for key, ema in task.emas.items():
            ema.update(task.nets[key], task.step_count)

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    task.updates.read()  # the one sync: counters (and the step's work) done
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    sec = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else peak_mib()
    return {"sec": sec, "per_s": batch / sec, "peak_mib": peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    p.add_argument("--precisions", nargs="+", default=["32", "bf16"], choices=["32", "bf16", "16"])
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        case, precision, warmup, iters = args.one
        print(json.dumps(measure_one(case, precision, int(warmup), int(iters))))
        return
    header, memory = machine_line(args.device)
    print(header)
    print(f"| case | precision | s / iteration | examples / s | peak {memory} MiB |")
    print("|---|---|---|---|---|")
    for case in args.cases:
        for precision in args.precisions:
            if args.device == "cuda":
                try:
                    r = measure_one(case, precision, args.warmup, args.iters, "cuda")
                except torch.OutOfMemoryError:
                    r = {"error": "out of GPU memory"}
                gc.collect()
                torch.cuda.empty_cache()
            else:
                r = run_one(__file__, case, precision, args.warmup, args.iters)
            if "error" in r:
                print(f"| {case} | {precision} | {r['error']} | | |", flush=True)
                continue
            print(
                f"| {case} | {precision} | {r['sec']:.3f} | {r['per_s']:.1f} "
                f"| {r['peak_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
