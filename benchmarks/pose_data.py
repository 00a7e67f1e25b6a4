"""Can the pose data path keep up? Images per second of the loader alone (read, crop, augment,
heat-maps; :class:`sagan.pose.loader.PoseBatches`) for each number of workers, against the
images per second of a training step at the same size.

Run by hand; prints a Markdown table.

    python benchmarks/pose_data.py                        # MPII sample at 256 px, 2 CPU cores
    python benchmarks/pose_data.py --workers 0 2 4 8 16 --step-device cuda --precision bf16

Data: ``mpii`` is the five MPII photos of ``../shared/mpii-sample`` (full-size JPEGs, cropped
at 256 px with the released augmentation, every batch a fresh draw; ``--mpii DIR`` points
elsewhere); ``synthetic`` the built-in figures at 64 px (drawn on the fly). "workers 0,
prefetch 0" loads each batch inside the step; "workers 0" with prefetch uses one background
thread. The step is the paper's model (4 stacks x 256 features, depth 4, the released
discriminator at 256 features, depth 4, batch 6) on synthetic figures at 256 px, timed through
the engine's task (``benchmarks/engine_steps.py``'s method), with ``--step-device``.

Cores needed to keep a device busy = step images/s / (loader images/s per worker).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import machine_line

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mpii-sample"


def _dataset(kind: str, mpii: Path, resolution: int):  # type: ignore[no-untyped-def]
    from sagan.pose.data import read_mpii_json
    from sagan.pose.datasets import AnnotatedPoseDataset, SyntheticPoseDataset

    if kind == "synthetic":
        return SyntheticPoseDataset(4000, resolution=64, heatmap=16)
    people = read_mpii_json(mpii / "test_mpii.json")
    return AnnotatedPoseDataset(people, mpii, resolution=resolution, heatmap=resolution // 4)


def loader_rate(
    kind: str, mpii: Path, resolution: int, batch: int, workers: int, prefetch: int, n: int
) -> float:
    """Images per second of the loader alone, after its first batch."""
    from sagan.pose.loader import PoseBatches

    batches = PoseBatches(
        _dataset(kind, mpii, resolution), batch, slice(None), num_workers=workers,
        prefetch=prefetch,
    )  # fmt: skip
    rng = torch.Generator().manual_seed(0)
    batches.next(rng)  # start-up: workers fork, the thread fills its queue
    start = time.perf_counter()
    for _ in range(n):
        batches.next(rng)
    rate = n * batch / (time.perf_counter() - start)
    batches.close()
    return rate


def step_rate(device: str, precision: str, iters: int) -> float:
    """Images per second of a training step at the paper's size."""
    from sagan.pose.config import PoseModelConfig, PoseRunConfig, PoseTrainConfig
    from sagan.pose.train import PoseTask
    from sagan.training.engine import build_task

    model = PoseModelConfig(stacks=4, features=256, depth=4, d_features=256, d_depth=4)
    train = PoseTrainConfig(batch_size=6, resolution=256, train_size=64, precision=precision)
    cfg, data = PoseTask.prepare(PoseRunConfig(model=model, train=train), resuming=False)
    task = build_task(PoseTask, cfg, data, torch.device(device))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    task.step()  # warm-up
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        task.step()
    sync()
    rate = iters * 6 / (time.perf_counter() - start)
    task.close()
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    kinds = ["mpii", "synthetic"]
    p.add_argument("--data", nargs="+", default=kinds, choices=kinds)
    p.add_argument("--mpii", type=Path, default=SHARED, help="folder with test_mpii.json")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--batches", type=int, default=30, help="timed batches per case")
    p.add_argument("--step-device", default="cpu", help="'none' skips the step")
    p.add_argument("--precision", default="32")
    p.add_argument("--step-iters", type=int, default=3)
    args = p.parse_args()
    print(machine_line("cpu")[0])
    print(f"batch {args.batch}; mpii at {args.resolution} px with the released augmentation\n")
    print("| data | workers | prefetch | loader img/s | per worker |")
    print("|---|---|---|---|---|")
    for kind in args.data:
        cases = [(0, 0), (0, 2)] + [(w, 2) for w in args.workers if w > 0]
        for workers, prefetch in cases:
            rate = loader_rate(kind, args.mpii, args.resolution, args.batch, workers, prefetch,
                               args.batches)  # fmt: skip
            per = f"{rate / workers:.1f}" if workers else ""
            print(f"| {kind} | {workers} | {prefetch} | {rate:.1f} | {per} |", flush=True)
    if args.step_device != "none":
        rate = step_rate(args.step_device, args.precision, args.step_iters)
        print(f"\nstep at the paper's size ({args.step_device}, precision {args.precision}): "
              f"{rate:.2f} img/s")  # fmt: skip


if __name__ == "__main__":
    main()
