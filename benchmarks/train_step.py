"""Seconds per training iteration (one D and one G update, hinge, TTUR, EMA) on random data.

Run by hand; prints a Markdown table. Example (the figures in the README):

    python benchmarks/train_step.py --configs resnet:32:16:16:64 resnet:32:32:16:64 \
        resnet:32:64:16:64 dcgan:32:64:16:64 resnet:32:16:16:32

Each config is arch:resolution:ch:attention(comma list or -):batch.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from sagan.images.config import ModelConfig, RunConfig, TrainConfig
from sagan.images.train import build_state, train_step
from sagan.losses import LOSSES


def measure(spec: str, warmup: int, iters: int, device: torch.device) -> tuple[str, float, float]:
    arch, res, ch, att, batch = spec.split(":")
    attention = () if att == "-" else tuple(int(a) for a in att.split(","))
    cfg = RunConfig(
        model=ModelConfig(
            arch=arch,
            resolution=int(res),
            ch=int(ch),
            attention=attention,
            channels=1,
            num_classes=10,
        ),
        train=TrainConfig(batch_size=int(batch)),
    )
    state = build_state(cfg, device)
    b, r = int(batch), int(res)

    def batches():  # random "real" data: the step's cost does not depend on the pixels
        while True:
            yield (
                torch.rand(b, 1, r, r, device=device) * 2 - 1,
                torch.randint(0, 10, (b,), device=device),
            )

    it = batches()
    for _ in range(warmup):
        train_step(state, it, LOSSES["hinge"])
    start = time.perf_counter()
    for _ in range(iters):
        train_step(state, it, LOSSES["hinge"])
    sec = (time.perf_counter() - start) / iters
    return spec, sec, b / sec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["resnet:32:16:16:64", "dcgan:32:64:16:64"])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor()}")
    print("| arch:res:ch:attention:batch | s / iteration | real images / s |")
    print("|---|---|---|")
    for spec in args.configs:
        name, sec, ips = measure(spec, args.warmup, args.iters, device)
        print(f"| {name} | {sec:.3f} | {ips:.0f} |", flush=True)


if __name__ == "__main__":
    main()
