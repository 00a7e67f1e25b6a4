"""Self-attention layer, forward + backward: time and peak memory, ours against the explicit map.

Run by hand; prints a Markdown table. Each measurement runs in a fresh subprocess so that its
peak memory is its own: the rise of the resident set (VmHWM, reset after a warm-up run) over
its level before the timed runs, i.e. the memory that forward + backward needs. Before timing,
every configuration checks that both implementations give equal outputs and input gradients
(float32: max abs diff <= 1e-4; bf16: <= 0.1).

    python benchmarks/attention.py                       # the README table
    python benchmarks/attention.py --sizes 32 64 --batches 16 --dtypes float32

The baseline is skipped where its N x N' map alone would not fit in --budget-gb.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import peak_mib, reset_peak, rss_mib
from reference import explicit_forward

from sagan.nn import SelfAttention2d

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _layer(channels: int, pool: bool) -> SelfAttention2d:
    torch.manual_seed(0)
    layer = SelfAttention2d(channels, pool=pool)
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    return layer


def _run(layer: SelfAttention2d, x: torch.Tensor, impl: str, dtype: torch.dtype) -> torch.Tensor:
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        y = layer(x) if impl == "ours" else explicit_forward(layer, x)
    y.float().square().mean().backward()
    return y


def check_equal(size: int, pool: bool, channels: int, dtype: torch.dtype) -> float:
    """Max abs difference of outputs and input gradients of the two implementations."""
    layer = _layer(channels, pool).eval()  # eval: both runs see the same normalised weights
    x = torch.randn(2, channels, size, size)
    worst = 0.0
    results = []
    for impl in ("ours", "explicit"):
        xi = x.clone().requires_grad_(True)
        y = _run(layer, xi, impl, dtype)
        results.append((y.detach().float(), xi.grad))
    for a, b in zip(results[0], results[1], strict=True):
        worst = max(worst, (a - b).abs().max().item())
    tol = 1e-4 if dtype == torch.float32 else 0.1
    assert worst <= tol, f"outputs differ by {worst} at {size}x{size} pool={pool} {dtype}"
    return worst


def measure_one(
    impl: str, size: int, pool: bool, batch: int, channels: int, dtype: str, reps: int
) -> dict[str, float]:
    """Time and peak memory of one configuration, in this process."""
    layer = _layer(channels, pool)
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    _run(layer, x, impl, DTYPES[dtype])  # warm-up (allocator, kernels)
    layer.zero_grad(set_to_none=True)
    x.grad = None
    reset_peak()
    base = rss_mib()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        _run(layer, x, impl, DTYPES[dtype])
        times.append(time.perf_counter() - start)
        layer.zero_grad(set_to_none=True)
        x.grad = None
    return {"time": statistics.median(times), "peak_mib": max(peak_mib() - base, 0.0)}


def _subprocess(args: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=list(DTYPES))
    p.add_argument("--pool", nargs="+", default=["yes", "no"], choices=["yes", "no"])
    p.add_argument("--channels", type=int, default=64, help="C of the feature map (64)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--budget-gb", type=float, default=16.0)
    p.add_argument("--one", nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        impl, size, pool, batch, channels, dtype, reps = args.one
        r = measure_one(impl, int(size), pool == "yes", int(batch), int(channels), dtype, int(reps))
        print(json.dumps(r))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, C = {args.channels}")
    print(
        "| features | pool | batch | dtype | max diff | ours s | ref s | speed-up "
        "| ours MiB | ref MiB | memory ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for pool in args.pool:
            for dtype in args.dtypes:
                n, keys = size * size, size * size // (4 if pool == "yes" else 1)
                diff = (
                    check_equal(size, pool == "yes", args.channels, DTYPES[dtype])
                    if n * keys * 2 * 4 < args.budget_gb * 2**30
                    else float("nan")
                )
                for batch in args.batches:
                    common = [
                        str(size),
                        pool,
                        str(batch),
                        str(args.channels),
                        dtype,
                        str(args.reps),
                    ]
                    ours = _subprocess(["ours", *common])
                    # map + softmax output + their gradients: ~4 float32 N x N' tensors
                    if batch * n * keys * 4 * 4 > args.budget_gb * 2**30:
                        ref = {"error": f"skipped: map needs > {args.budget_gb:g} GB"}
                    else:
                        ref = _subprocess(["explicit", *common])
                    row = [f"{size}x{size}", pool, str(batch), dtype, f"{diff:.1e}"]
                    if "error" in ours:
                        row += [ours["error"]] * 6
                    elif "error" in ref:
                        row += [
                            f"{ours['time']:.3f}",
                            ref["error"],
                            "",
                            f"{ours['peak_mib']:.0f}",
                            "",
                            "",
                        ]
                    else:
                        row += [
                            f"{ours['time']:.3f}",
                            f"{ref['time']:.3f}",
                            f"{ref['time'] / ours['time']:.2f}x",
                            f"{ours['peak_mib']:.0f}",
                            f"{ref['peak_mib']:.0f}",
                            f"{ours['peak_mib'] / max(ref['peak_mib'], 1e-9):.3f}",
                        ]
                    print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
