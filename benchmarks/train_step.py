"""Full training iteration (one D and one G update, hinge, TTUR, EMA): ours against the
reference design, images per second and peak resident memory.

Run by hand; prints a Markdown table. Each measurement runs in a fresh subprocess, so its peak
resident set (VmHWM: the whole process, library code and model included) is
its own. Modes:

* ``ref``: the step as the public implementations build it: explicit bmm/softmax/bmm
  attention, default (contiguous) memory format, the per-parameter Adam loop, float32;
* ``ours``: the library's step: SDPA attention, channels_last, fused Adam, float32;
* ``ours-bf16``: the same with ``--precision bf16`` (bfloat16 autocast).

    python benchmarks/train_step.py                 # the README table
    python benchmarks/train_step.py --configs resnet:32:16:16:32 --modes ours

A config is arch:resolution:ch:attention(comma list or -):batch; the data are random.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import peak_mib
from reference import explicit_attention

from sagan.images.config import ModelConfig, RunConfig, TrainConfig
from sagan.images.train import build_state, train_step
from sagan.losses import LOSSES

DEFAULT_CONFIGS = [
    "dcgan:64:32:32:64",
    "resnet:32:16:16:64",
    "resnet:64:16:32:64",
    "resnet:64:16:64:64",
    "resnet:128:8:64:16",
]


def _config(spec: str, precision: str) -> RunConfig:
    arch, res, ch, att, batch = spec.split(":")
    attention = () if att == "-" else tuple(int(a) for a in att.split(","))
    model = ModelConfig(
        arch=arch, resolution=int(res), ch=int(ch), attention=attention, channels=3, num_classes=10
    )
    return RunConfig(model=model, train=TrainConfig(batch_size=int(batch), precision=precision))


def measure_one(mode: str, spec: str, warmup: int, iters: int) -> dict[str, float]:
    """Seconds per iteration and peak RSS of one mode/config, in this process."""
    cfg = _config(spec, "bf16" if mode == "ours-bf16" else "32")
    state = build_state(cfg, torch.device("cpu"))
    layout = torch.channels_last
    context: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if mode == "ref":
        layout = torch.contiguous_format
        state.G.to(memory_format=layout)
        state.D.to(memory_format=layout)
        t = cfg.train
        betas = (t.beta1, t.beta2)
        state.opt_g = torch.optim.Adam(state.G.parameters(), t.lr_g, betas, foreach=False)
        state.opt_d = torch.optim.Adam(state.D.parameters(), t.lr_d, betas, foreach=False)
        context = contextlib.ExitStack()
        context.enter_context(explicit_attention(state.G))
        context.enter_context(explicit_attention(state.D))
    b, r = cfg.train.batch_size, cfg.model.resolution
    real = (torch.rand(b, 3, r, r) * 2 - 1).contiguous(memory_format=layout)
    labels = torch.randint(0, 10, (b,))

    def batches():  # the pixels do not change the cost
        while True:
            yield real, labels

    it = batches()
    with context:
        for _ in range(warmup):
            train_step(state, it, LOSSES["hinge"])
        start = time.perf_counter()
        for _ in range(iters):
            train_step(state, it, LOSSES["hinge"])
        sec = (time.perf_counter() - start) / iters
    return {"sec": sec, "img_s": b / sec, "peak_mib": peak_mib()}


def _subprocess(mode: str, spec: str, warmup: int, iters: int) -> dict[str, float | str]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", mode, spec, str(warmup), str(iters)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"rc {out.returncode}"
        return {"error": last[:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    p.add_argument("--modes", nargs="+", default=["ref", "ours", "ours-bf16"])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        mode, spec, warmup, iters = args.one
        print(json.dumps(measure_one(mode, spec, int(warmup), int(iters))))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}")
    print(
        "| arch:res:ch:attention:batch | mode | s / iteration | real img / s | speed-up vs ref "
        "| peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|")
    for spec in args.configs:
        ref_sec = None
        for mode in args.modes:
            r = _subprocess(mode, spec, args.warmup, args.iters)
            if "error" in r:
                print(f"| {spec} | {mode} | {r['error']} | | | |", flush=True)
                continue
            if mode == "ref":
                ref_sec = r["sec"]
            speed = f"{ref_sec / r['sec']:.2f}x" if ref_sec else ""
            print(
                f"| {spec} | {mode} | {r['sec']:.3f} | {r['img_s']:.1f} | {speed} "
                f"| {r['peak_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
