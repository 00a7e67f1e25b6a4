"""Full training iteration (one D and one G update, hinge, TTUR, EMA): ours against the
reference design, images per second and peak resident memory.

Run by hand; prints a Markdown table. On the CPU each measurement runs in a fresh subprocess,
so its peak resident set (VmHWM: the whole process, library code and model included) is its
own. On CUDA (``--device cuda``) all run in this process, one after another; the memory column
is then the caching allocator's peak (``torch.cuda.max_memory_allocated``: weights, optimiser
state, activations), reset between measurements, and times are taken after
``torch.cuda.synchronize``. Modes:

* ``ref``: the step as the public implementations build it: explicit bmm/softmax/bmm
  attention, default (contiguous) memory format, the per-parameter Adam loop, float32;
* ``ours``: the library's step: SDPA attention, channels_last, fused Adam, float32;
* ``ours-bf16``: the same with ``--precision bf16`` (bfloat16 autocast);
* ``ours-fp16``: the same with ``--precision 16`` (float16 autocast, gradient scaling; CUDA);
* ``ours-explicit``, ``ours-nchw``, ``ours-adam-loop``: ``ours`` with one of the reference's
  choices, to find where a gap comes from; ``ours-compile``, ``ours-bf16-compile``: with
  ``--compile`` (``torch.compile`` on G's and D's forward).

    python benchmarks/train_step.py                 # the README table
    python benchmarks/train_step.py --configs resnet:32:16:16:32 --modes ours
    python benchmarks/train_step.py --device cuda --modes ref ours ours-bf16 ours-fp16

A config is arch:resolution:ch:attention(comma list or -):batch; the data are random.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import machine_line, peak_mib, run_one
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


def _config(spec: str, precision: str, compile: bool = False) -> RunConfig:
    arch, res, ch, att, batch = spec.split(":")
    attention = () if att == "-" else tuple(int(a) for a in att.split(","))
    model = ModelConfig(
        arch=arch,
        resolution=int(res),
        ch=int(ch),
        attention=attention,
        g_spectral_norm=True,  # as the reference design (the quick preset's G has none)
        channels=3,
        num_classes=10,
    )
    train = TrainConfig(batch_size=int(batch), precision=precision, compile=compile)
    return RunConfig(model=model, train=train)


@dataclass(frozen=True)
class Mode:
    """How one measured step is built; ``ref`` differs from ``ours`` in the last four."""

    precision: str = "32"
    explicit: bool = False
    """Attention as bmm/softmax/bmm (the reference implementations), not SDPA."""
    nchw: bool = False
    """Default (contiguous) memory format instead of channels_last."""
    adam_loop: bool = False
    """Adam's per-parameter loop instead of the library's fused/foreach Adam."""
    compiled: bool = False
    """``torch.compile`` on G's and D's forward: the library's ``--compile``."""
    sync_guard: bool = False
    """The non-finite verdict read on the host after every update (``bool(isfinite(...))``,
    the design before the on-device guard): two host syncs per iteration."""


MODES = {
    "ref": Mode(explicit=True, nchw=True, adam_loop=True),
    "ours": Mode(),
    "ours-bf16": Mode("bf16"),
    "ours-fp16": Mode("16"),
    # one difference at a time, to find where a gap comes from
    "ours-explicit": Mode(explicit=True),
    "ours-nchw": Mode(nchw=True),
    "ours-adam-loop": Mode(adam_loop=True),
    "ours-compile": Mode(compiled=True),
    "ours-bf16-compile": Mode("bf16", compiled=True),
    "ours-sync-guard": Mode(sync_guard=True),
}


def measure_one(
    mode: str, spec: str, warmup: int, iters: int, device: str = "cpu"
) -> dict[str, float]:
    """Seconds per iteration and peak memory (CPU: RSS; CUDA: allocated) of one mode/config,
    in this process."""
    dev = torch.device(device)
    how = MODES[mode]
    cfg = _config(spec, how.precision, how.compiled)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    state = build_state(cfg, dev)
    layout = torch.contiguous_format if how.nchw else torch.channels_last
    state.G.to(memory_format=layout)
    state.D.to(memory_format=layout)
    opts = state.updates.optimizers
    if how.adam_loop:
        t = cfg.train
        betas = (t.beta1, t.beta2)
        opts["g"] = torch.optim.Adam(state.G.parameters(), t.lr_g, betas, foreach=False)
        opts["d"] = torch.optim.Adam(state.D.parameters(), t.lr_d, betas, foreach=False)
    if how.sync_guard:
        guarded = state.updates.update

        def update(name: str, loss: torch.Tensor) -> None:
            guarded(name, loss)
            bool(state.updates._bad)  # the host waits for the verdict, as the old loop did

        state.updates.update = update  # type: ignore[method-assign]
    context = contextlib.ExitStack()
    if how.explicit:
        context.enter_context(explicit_attention(state.G))
        context.enter_context(explicit_attention(state.D))
    b, r = cfg.train.batch_size, cfg.model.resolution
    real = (torch.rand(b, 3, r, r, device=dev) * 2 - 1).contiguous(memory_format=layout)
    labels = torch.randint(0, 10, (b,), device=dev)

    def batches():  # the pixels do not change the cost
        while True:
            yield real, labels

    it = batches()

    def step() -> None:  # as the engine's loop: the iteration, the guard's counters, the EMA
        train_step(state, it, LOSSES["hinge"])
        state.updates.end_iteration()
        state.step_count += 1
        for key, ema in state.emas.items():
            ema.update(state.nets[key], state.step_count)

    with context:
        for _ in range(warmup):
            step()
        _synchronize(dev)
        start = time.perf_counter()
        for _ in range(iters):
            step()
        _synchronize(dev)
        sec = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else peak_mib()
    return {"sec": sec, "img_s": b / sec, "peak_mib": peak}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _in_process(mode: str, spec: str, warmup: int, iters: int) -> dict[str, float | str]:
    """One CUDA measurement in this process; the allocator's cache is emptied afterwards."""
    try:
        return measure_one(mode, spec, warmup, iters, "cuda")
    except torch.OutOfMemoryError:
        return {"error": "out of GPU memory"}
    finally:
        gc.collect()
        torch.cuda.empty_cache()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    p.add_argument("--modes", nargs="+", default=["ref", "ours", "ours-bf16"], choices=MODES)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        mode, spec, warmup, iters = args.one
        print(json.dumps(measure_one(mode, spec, int(warmup), int(iters))))
        return
    header, memory = machine_line(args.device)
    print(header)
    print(
        "| arch:res:ch:attention:batch | mode | s / iteration | real img / s | speed-up vs ref "
        f"| peak {memory} MiB |"
    )
    print("|---|---|---|---|---|---|")
    for spec in args.configs:
        ref_sec = None
        for mode in args.modes:
            if args.device == "cuda":
                r = _in_process(mode, spec, args.warmup, args.iters)
            else:
                r = run_one(__file__, mode, spec, args.warmup, args.iters)
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
