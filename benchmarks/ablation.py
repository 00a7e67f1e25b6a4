"""Does self-attention help? The SAGAN paper's ablation, small enough for 2 CPU cores.

Trains, with the same step budget, widths, seeds and optimiser (TTUR Adam, EMA of G):

* ``cnn-gan``: no attention, no spectral norm in G, non-saturating loss (the baseline the
  paper improves on; D keeps spectral norm);
* ``sn-gan``: spectral norm in G and D, hinge loss, no attention;
* ``sagan@R``: SN-GAN plus one self-attention layer at feature resolution R in G and D, for
  every R the architecture offers;

on the built-in digits (class-conditional) and on the long-range mirror data set
(unconditional), and evaluates each final EMA generator offline: FD-digits, the classifier
Inception Score and conditional accuracy on digits; constraint satisfaction, well-formedness
and FD-random on long-range. Prints a Markdown table of mean +- std over seeds, with the
learned attention gammas.

Every finished run is recorded in ``OUT/results.jsonl``; running the script again skips those,
so an interrupted ablation resumes where it stopped.

    python benchmarks/ablation.py --out runs/ablation            # about an hour on 2 cores
    python benchmarks/ablation.py --out /tmp/abl --steps 20 --seeds 1 --eval-n 200  # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from sagan.images.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from sagan.images.evaluate import evaluate
from sagan.images.export import load_generator
from sagan.images.networks import ARCHITECTURES
from sagan.images.train import train

DATASETS = {
    "digits": ("fd_digits", "is_digits", "accuracy"),
    "longrange": ("constraint", "wellformed", "fd_random"),
}


def variants(arch: str, resolution: int) -> dict[str, dict[str, dict[str, object]]]:
    """Variant name -> config overrides ``{"model": {...}, "train": {...}}``."""
    g_sizes, d_sizes = ARCHITECTURES[arch].feature_sizes(resolution)
    allowed = sorted(set(g_sizes) | set(d_sizes))
    out: dict[str, dict[str, dict[str, object]]] = {
        "cnn-gan": {
            "model": {"attention": (), "g_spectral_norm": False},
            "train": {"loss": "nonsaturating"},
        },
        "sn-gan": {"model": {"attention": ()}, "train": {}},
    }
    for r in allowed:
        out[f"sagan@{r}"] = {"model": {"attention": (r,)}, "train": {}}
    return out


def run_one(
    out: Path,
    data: str,
    variant: str,
    overrides: dict[str, dict[str, object]],
    seed: int,
    args: argparse.Namespace,
) -> dict[str, object]:
    """Train and evaluate one (data, variant, seed); returns the record."""
    model = ModelConfig(arch=args.arch, resolution=args.resolution, ch=args.ch)
    cfg = RunConfig(
        model=dataclasses.replace(model, **overrides["model"]),  # type: ignore[arg-type]
        data=DataConfig(data=data),
        train=TrainConfig(
            **{
                "batch_size": args.batch_size,
                "steps": args.steps,
                "seed": seed,
                "device": "cpu",
                "precision": args.precision,
                "save_every": args.steps,
                "sample_every": args.steps,
                "log_every": 50,
                "keep_checkpoints": 1,
                **overrides["train"],
            }
        ),
    )
    run_dir = out / f"{data}-{variant}-s{seed}"
    start = time.perf_counter()
    train(cfg, out=run_dir, progress=False)
    train_s = time.perf_counter() - start
    gen = load_generator(run_dir)
    wanted = ["constraint", "fd_random"] if data == "longrange" else ["fd_digits", "is_digits"]
    wanted += ["accuracy"] if gen.num_classes else []
    result = evaluate(gen, metrics=wanted, n=args.eval_n)
    last = {}
    for line in (run_dir / "stats.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "loss_d" in rec:
            last = rec
    gammas = {k.removeprefix("gamma/"): v for k, v in last.items() if k.startswith("gamma/")}
    return {
        "data": data,
        "variant": variant,
        "seed": seed,
        "steps": args.steps,
        "train_s": round(train_s, 1),
        "metrics": result.values,
        "gammas": gammas,
    }


def _cell(values: list[float], percent: bool) -> str:
    k = 100.0 if percent else 1.0
    vals = [v * k for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "n/a"
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f}" if percent or abs(mean) >= 10 else f"{mean:.2f} ± {std:.2f}"


def table(records: list[dict[str, object]], names: list[str]) -> str:
    """Markdown: one row per (data set, variant), mean ± std over seeds."""
    lines = []
    for data, metrics in DATASETS.items():
        pct = {"accuracy", "constraint", "wellformed"}
        head = [f"{m} (%)" if m in pct else m for m in metrics]
        lines.append(f"\n**{data}**\n")
        lines.append("| variant | seeds | " + " | ".join(head) + " | learned gammas (mean) |")
        lines.append("|---|---|" + "---|" * len(metrics) + "---|")
        for name in names:
            rows = [r for r in records if r["data"] == data and r["variant"] == name]
            if not rows:
                continue
            cells = [_cell([r["metrics"].get(m) for r in rows], m in pct) for m in metrics]
            g = {}
            for r in rows:
                for k, v in r["gammas"].items():  # type: ignore[union-attr]
                    g.setdefault(k, []).append(v)
            gam = ", ".join(f"{k} {statistics.fmean(v):+.3f}" for k, v in sorted(g.items())) or "-"
            lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + f" | {gam} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for runs and results.jsonl")
    p.add_argument("--arch", default="resnet")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--ch", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--eval-n", type=int, default=2000)
    p.add_argument("--precision", default="bf16", help="bf16 (default; AMX/AVX-512 CPUs) or 32")
    p.add_argument("--data", default="digits,longrange", help="comma list")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = []
    if results.exists():
        done = [json.loads(x) for x in results.read_text().splitlines() if x.strip()]
    keys = {(r["data"], r["variant"], r["seed"]) for r in done}
    names = list(variants(args.arch, args.resolution))
    start = time.perf_counter()
    for data in args.data.split(","):
        for seed in range(args.seeds):
            for name, overrides in variants(args.arch, args.resolution).items():
                if (data, name, seed) in keys:
                    continue
                rec = run_one(args.out, data, name, overrides, seed, args)
                with open(results, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                done.append(rec)
                print(
                    f"{data} {name} seed {seed}: {rec['train_s']} s, "
                    + ", ".join(f"{k} {v:.4g}" for k, v in rec["metrics"].items()),  # type: ignore[union-attr]
                    flush=True,
                )
    print(
        f"\n{args.arch} {args.resolution} px, ch {args.ch}, batch {args.batch_size}, "
        f"{args.steps} steps, precision {args.precision}, eval n={args.eval_n}; "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; this invocation {time.perf_counter() - start:.0f} s"
    )
    print(table(done, names))


if __name__ == "__main__":
    main()
