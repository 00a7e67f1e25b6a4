"""Self-attention layer, forward + backward: time and peak memory, ours against the explicit map.

Run by hand; prints a Markdown table. On the CPU each measurement runs in a fresh subprocess
so that its peak memory is its own: the rise of the resident set (VmHWM, reset after a warm-up
run) over its level before the timed runs, i.e. the memory that forward + backward needs. On
CUDA (``--device cuda``) it is the rise of the caching allocator's peak
(``torch.cuda.max_memory_allocated``) over the memory allocated before the timed runs, measured
in this process, and times are taken after ``torch.cuda.synchronize``. Before timing, every
configuration checks that both implementations give equal outputs and input gradients
(float32: max abs diff <= 1e-4, or 1e-2 on CUDA, where TF32 may round the 1x1 convolutions;
bfloat16/float16: <= 0.1).

    python benchmarks/attention.py                       # the README table
    python benchmarks/attention.py --sizes 32 64 --batches 16 --dtypes float32
    python benchmarks/attention.py --device cuda --dtypes float32 bfloat16 float16 --reps 20
    python benchmarks/attention.py --sizes 16 --pool yes --explicit-max 0   # fused at 16x16 too

The baseline is skipped where its N x N' map alone would not fit in --budget-gb.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import peak_mib, reset_peak, rss_mib
from reference import explicit_forward

from sagan.nn import SelfAttention2d
from sagan.nn.attention import EXPLICIT_MAX

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _layer(channels: int, pool: bool, explicit_max: int = EXPLICIT_MAX) -> SelfAttention2d:
    torch.manual_seed(0)
    layer = SelfAttention2d(channels, pool=pool, explicit_max=explicit_max)
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    return layer


def _run(layer: SelfAttention2d, x: torch.Tensor, impl: str, dtype: torch.dtype) -> torch.Tensor:
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
        y = layer(x) if impl == "ours" else explicit_forward(layer, x)
    y.float().square().mean().backward()
    return y


def check_equal(
    size: int,
    pool: bool,
    channels: int,
    dtype: torch.dtype,
    device: str = "cpu",
    explicit_max: int = EXPLICIT_MAX,
) -> float:
    """Max abs difference of outputs and input gradients of the two implementations."""
    # eval: both implementations see the same normalised weights
    layer = _layer(channels, pool, explicit_max).eval().to(device)
    x = torch.randn(2, channels, size, size).to(device)
    worst = 0.0
    results = []
    for impl in ("ours", "explicit"):
        xi = x.clone().requires_grad_(True)
        y = _run(layer, xi, impl, dtype)
        results.append((y.detach().float(), xi.grad))
    for a, b in zip(results[0], results[1], strict=True):
        worst = max(worst, (a - b).abs().max().item())
    tol = (1e-4 if device == "cpu" else 1e-2) if dtype == torch.float32 else 0.1
    assert worst <= tol, f"outputs differ by {worst} at {size}x{size} pool={pool} {dtype}"
    return worst


@dataclass(frozen=True)
class Case:
    """One measured configuration; travels to a subprocess as strings."""

    size: int
    pool: bool
    batch: int
    channels: int
    dtype: str
    reps: int
    explicit_max: int = EXPLICIT_MAX

    def to_args(self) -> list[str]:
        return [str(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_args(cls, args: list[str]) -> Case:
        size, pool, batch, channels, dtype, reps, explicit_max = args
        return cls(
            int(size),
            pool == "True",
            int(batch),
            int(channels),
            dtype,
            int(reps),
            int(explicit_max),
        )

    def layer(self) -> SelfAttention2d:
        return _layer(self.channels, self.pool, self.explicit_max)


def measure_one(impl: str, case: Case) -> dict[str, float]:
    """Time and peak memory of one configuration, in this process."""
    layer, dtype = case.layer(), DTYPES[case.dtype]
    x = torch.randn(case.batch, case.channels, case.size, case.size, requires_grad=True)
    _run(layer, x, impl, dtype)  # warm-up (allocator, kernels)
    layer.zero_grad(set_to_none=True)
    x.grad = None
    reset_peak()
    base = rss_mib()
    times = []
    for _ in range(case.reps):
        start = time.perf_counter()
        _run(layer, x, impl, dtype)
        times.append(time.perf_counter() - start)
        layer.zero_grad(set_to_none=True)
        x.grad = None
    return {"time": statistics.median(times), "peak_mib": max(peak_mib() - base, 0.0)}


def measure_cuda(impl: str, case: Case) -> dict[str, float]:
    """Time and peak GPU memory of one configuration on CUDA, in this process."""
    device = torch.device("cuda")
    try:
        layer, dtype = case.layer().to(device), DTYPES[case.dtype]
        shape = (case.batch, case.channels, case.size, case.size)
        x = torch.randn(*shape, device=device, requires_grad=True)
        for _ in range(2):  # warm-up (allocator, kernel choice)
            _run(layer, x, impl, dtype)
            layer.zero_grad(set_to_none=True)
            x.grad = None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        for _ in range(case.reps):
            _run(layer, x, impl, dtype)
            layer.zero_grad(set_to_none=True)
            x.grad = None
        torch.cuda.synchronize()
        sec = (time.perf_counter() - start) / case.reps
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    except torch.OutOfMemoryError:
        return {"error": "out of GPU memory"}
    finally:
        x = layer = None  # type: ignore[assignment]
        torch.cuda.empty_cache()
    return {"time": sec, "peak_mib": peak}


def measure(device: str, impl: str, case: Case) -> dict[str, float]:
    """``case`` on ``device``: in a subprocess on the CPU (its own resident set), in this
    process on CUDA."""
    if device == "cpu":
        return _subprocess([impl, *case.to_args()])
    return measure_cuda(impl, case)


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
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--explicit-max",
        type=int,
        default=EXPLICIT_MAX,
        help=f"the layer's explicit_max (default {EXPLICIT_MAX}; 0: fused kernel at every size)",
    )
    p.add_argument("--one", nargs=8, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        r = measure_one(args.one[0], Case.from_args(args.one[1:]))
        print(json.dumps(r))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is available here")
    where = (
        f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}"
        if args.device == "cuda"
        else f"{torch.get_num_threads()} threads"
    )
    print(f"torch {torch.__version__}, {where}, C = {args.channels}")
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
                    check_equal(
                        size,
                        pool == "yes",
                        args.channels,
                        DTYPES[dtype],
                        args.device,
                        args.explicit_max,
                    )
                    if n * keys * 2 * 4 < args.budget_gb * 2**30
                    else float("nan")
                )
                for batch in args.batches:
                    case = Case(
                        size,
                        pool == "yes",
                        batch,
                        args.channels,
                        dtype,
                        args.reps,
                        args.explicit_max,
                    )
                    ours = measure(args.device, "ours", case)
                    # map + softmax output + their gradients: ~4 float32 N x N' tensors
                    if batch * n * keys * 4 * 4 > args.budget_gb * 2**30:
                        ref = {"error": f"skipped: map needs > {args.budget_gb:g} GB"}
                    else:
                        ref = measure(args.device, "explicit", case)
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
