"""Blocked sigmoid attention (``sagan.nn.sigmoid_attention``) against the explicit N x N map:
forward + backward seconds and peak memory, Hg-SAGAN's sizes.

Run by hand; prints a Markdown table. On the CPU each case runs in a fresh subprocess (peak
resident set, VmHWM, reset after the inputs are made, so the column is what attention adds);
on CUDA (``--device cuda``) the allocator's peak above the inputs, after
``torch.cuda.synchronize``. The benchmark checks first that both forms agree (max diff).

    python benchmarks/sigmoid_attention.py                  # 64x64 features, batch 6
    python benchmarks/sigmoid_attention.py --blocks 128 256 512 --device cuda

Cases: ``sarm_b`` is the generator head's attention (q, k, v of 16 channels: 256 -> 16 1x1
convs); ``sarm_a`` the discriminator's (X of 256 channels as both sides, values of 256).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import cpu_model, peak_mib, reset_peak, rss_mib, run_one

CASES = {"sarm_b": (16, 16), "sarm_a": (256, 256)}
"""case -> (key channels d, value channels c)."""


def measure_one(
    case: str, size: int, batch: int, block: int, reps: int, device: str = "cpu"
) -> dict[str, float]:
    from sagan.nn import sigmoid_attention, sigmoid_attention_explicit

    dev = torch.device(device)
    d, c = CASES[case]
    n = size * size
    g = torch.Generator(device=dev).manual_seed(0)
    q = (torch.randn(batch, d, n, generator=g, device=dev) / d**0.5).requires_grad_()
    k = q if case == "sarm_a" else (torch.randn(batch, d, n, generator=g, device=dev) / d**0.5)
    k.requires_grad_()
    v = torch.randn(batch, c, n, generator=g, device=dev).requires_grad_()
    upstream = torch.randn(batch, c, n, generator=g, device=dev)

    def run() -> torch.Tensor:
        out = (
            sigmoid_attention_explicit(q, k, v)
            if block == 0
            else sigmoid_attention(q, k, v, block=block)
        )
        out.backward(upstream)
        return out.detach()

    run()  # warm-up
    for t in (q, k, v):
        t.grad = None
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset_peak()
        base = rss_mib()
    start = time.perf_counter()
    for _ in range(reps):
        out = run()
        for t in (q, k, v):
            t.grad = None
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = peak_mib() - base
    sec = (time.perf_counter() - start) / reps
    ref = sigmoid_attention_explicit(q.detach(), k.detach(), v.detach())
    return {"sec": sec, "mib": peak, "diff": float((out - ref).abs().max() / ref.abs().max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    p.add_argument("--size", type=int, default=64, help="feature side (64: N = 4096)")
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--blocks", nargs="+", type=int, default=[256], help="0 = explicit")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        case, size, batch, block, reps = args.one
        print(json.dumps(measure_one(case, int(size), int(batch), int(block), int(reps))))
        return
    where = torch.cuda.get_device_name() if args.device == "cuda" else cpu_model()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    print(f"torch {torch.__version__}, {where}, {torch.get_num_threads()} threads"
          + (f", ONEDNN_MAX_CPU_ISA={isa}" if isa else ""))  # fmt: skip
    print(f"{args.size}x{args.size} features (N = {args.size**2}), batch {args.batch}, float32, "
          "forward + backward")  # fmt: skip
    print("| case | block | s | MiB | max rel. diff | speed-up vs explicit | memory vs explicit |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases:
        rows = {}
        for block in [0, *args.blocks]:
            spec = (case, args.size, args.batch, block, args.reps)
            if args.device == "cuda":
                r: dict[str, float | str] = measure_one(*spec, device="cuda")
                torch.cuda.empty_cache()
            else:
                r = run_one(__file__, *spec)
            rows[block] = r
            name = "explicit" if block == 0 else str(block)
            if "error" in r:
                print(f"| {case} | {name} | {r['error']} | | | | |", flush=True)
                continue
            ref = rows[0] if "error" not in rows[0] else None
            speed = f"{ref['sec'] / r['sec']:.2f}x" if ref and block else ""
            mem = f"{r['mib'] / max(ref['mib'], 1e-9):.3f}" if ref and block else ""
            print(
                f"| {case} | {name} | {r['sec']:.3f} | {r['mib']:.0f} | {r['diff']:.1e} "
                f"| {speed} | {mem} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
