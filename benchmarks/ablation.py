"""Does self-attention help? The SAGAN paper's ablation, small enough for 2 CPU cores.

Trains, from one preset (``--preset``) with the same step budget, widths, seeds and optimiser:

* ``cnn-gan``: no attention, no spectral norm in G, non-saturating loss (the baseline the
  paper improves on; D keeps spectral norm);
* ``no-attention``: the preset without attention. Under ``--preset none`` (the settings of
  0.3 and older: ResNet, width 16, spectral norm in G and D, hinge, TTUR) this is SN-GAN;
  under ``--preset quick`` it is the quick preset (DCGAN, width 32, spectral norm in D only,
  hinge, Adam 4e-4 / 4e-4 with betas (0.5, 0.999), ours) less its attention. The records made
  before 2026-12-07 ran the quick preset's learning rates of then, 2e-4 / 2e-4: add
  ``--lr-g 2e-4 --lr-d 2e-4`` to reproduce them;
* ``sagan@R``: that plus one self-attention layer at feature resolution R in G and D, for
  every R the architecture offers (``--variants`` picks a subset);

on the built-in digits (class-conditional) and on the long-range mirror data set
(unconditional), and evaluates each final EMA generator offline: FD-digits, the classifier
Inception Score and conditional accuracy on digits; constraint satisfaction and FD-random on
long-range. With ``--eval-every N`` each run also scores its EMA generator every N steps (on
``--eval-n`` samples), so the curve shows whether FD had stopped improving. Prints Markdown
tables of mean +- std over seeds, with the learned attention gammas, the FD curves, and how
many runs' FD had stopped improving by a stated rule (ours): the mean of the last
``--plateau-window`` periodic scores (2) is less than ``--plateau-tol`` (5%) below the mean of
the as many scores before them.

Every finished run is recorded in ``OUT/results.jsonl`` (with its median it/s over all its
invocations, the machine that scored it, and ``train_s``, the wall time of the invocation that
finished it); running the script again skips those,
so an interrupted ablation resumes where it stopped (``--jobs 2`` runs two at a time, one
thread each). A larger ``--steps`` continues the recorded runs from their last checkpoints
(each gets a new record). An ``OUT`` whose runs were trained with other settings (another
``--lr-g``, say) is refused with a line naming them: give each setting its own ``OUT``.

    python benchmarks/ablation.py --out runs/ablation --preset none   # the 800-step record
    python benchmarks/ablation.py --out runs/abl-quick --preset quick --steps 6000 \
        --variants no-attention,sagan@8,sagan@16 --eval-every 1000 --jobs 2
    python benchmarks/ablation.py --out /tmp/abl --steps 20 --seeds 1 --eval-n 200  # smoke

``--first-seed 2 --seeds 1`` trains seed 2 alone (one lost with its run folder, say).

``--preset none --arch dcgan --ch 32 --batch-size 64`` is the quick preset with the paper's
spectral norm in G and TTUR (lr 1e-4 / 4e-4, Adam (0, 0.9)) in place of ours: those are the
only settings in which it differs from ``--preset quick`` (EMA of G, ours, is in both).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch
from _pool import check_same_run, read_records, run_all, train_or_resume
from memory import cpu_model

from sagan.images.config import PRESETS, RunConfig
from sagan.images.evaluate import evaluate
from sagan.images.export import load_generator
from sagan.images.networks import ARCHITECTURES
from sagan.images.report import read_series
from sagan.images.train import train

DATASETS = {
    "digits": ("fd_digits", "is_digits", "accuracy"),
    "longrange": ("constraint", "wellformed", "fd_random"),
}
FD_METRIC = {"digits": "fd_digits", "longrange": "fd_random"}
"""The FD each data set's curve follows during training."""


def fd_gain(curve: dict[str, float], window: int) -> float | None:
    """How much a run's FD curve still fell at its end: the mean of its last ``window``
    values against the mean of the ``window`` before them, as a fraction of the latter
    (0.2: the last window is 20% lower; < 0: it rose). None for fewer than 2 x ``window``
    values, or where a value in the two windows is not finite or the first window's mean is not
    positive. Means of windows, not single points or minima, because a periodic FD on a
    thousand samples moves by several percent from one evaluation to the next."""
    values = [v for _, v in sorted((int(k), v) for k, v in curve.items())]
    if window < 1 or len(values) < 2 * window:
        return None
    if not all(v is not None and math.isfinite(v) for v in values[-2 * window :]):
        return None  # a failed score (NaN, inf) in either window: nothing to compare
    before = statistics.fmean(values[-2 * window : -window])
    last = statistics.fmean(values[-window:])
    return (before - last) / before if before > 0 else None


def stopped_improving(curve: dict[str, float], window: int, tol: float) -> bool | None:
    """The benchmark's rule (ours) for "FD has stopped improving": :func:`fd_gain` below
    ``tol``. None where the curve is too short to say."""
    gain = fd_gain(curve, window)
    return None if gain is None else gain < tol


def variants(cfg: RunConfig) -> dict[str, dict[str, dict[str, object]]]:
    """Variant name -> config overrides ``{"model": {...}, "train": {...}}`` of ``cfg``."""
    g_sizes, d_sizes = ARCHITECTURES[cfg.model.arch].feature_sizes(cfg.model.resolution)
    allowed = sorted(set(g_sizes) | set(d_sizes))
    plain = "sn-gan" if cfg.model.g_spectral_norm else "no-attention"
    out: dict[str, dict[str, dict[str, object]]] = {
        "cnn-gan": {
            "model": {"attention": [], "g_spectral_norm": False},
            "train": {"loss": "nonsaturating"},
        },
        plain: {"model": {"attention": []}, "train": {}},
    }
    for r in allowed:
        out[f"sagan@{r}"] = {"model": {"attention": [r]}, "train": {}}
    return out


def base_config(args: argparse.Namespace, data: str = "digits") -> dict[str, object]:
    """The preset plus the script's flags, as nested plain data for ``RunConfig.from_dict``."""
    model = {k: v for k in ("arch", "resolution", "ch") if (v := getattr(args, k)) is not None}
    train: dict[str, object] = {
        "steps": args.steps,
        "device": args.device,
        "precision": args.precision,
        "save_every": args.save_every or args.steps,
        "sample_every": args.steps,
        "log_every": 50,
        "keep_checkpoints": 1,
    }
    for key in ("batch_size", "lr_g", "lr_d"):
        if (v := getattr(args, key)) is not None:
            train[key] = v
    if args.eval_every:
        train.update(eval_every=args.eval_every, eval_n=args.eval_n, eval_metrics=FD_METRIC[data])
    return {"preset": args.preset, "model": model, "train": train}


def run_folder(out: Path, data: str, variant: str, seed: int) -> Path:
    """Where the run of (data, variant, seed) lives under ``out``."""
    return out / f"{data}-{variant}-s{seed}"


def run_config(
    data: str, overrides: dict[str, dict[str, object]], seed: int, args: argparse.Namespace
) -> RunConfig:
    """The config of one (data, variant, seed): the preset, the flags, the variant's
    ``overrides`` and the seed."""
    base = base_config(args, data)
    return RunConfig.from_dict(
        {
            "preset": base["preset"],
            "model": {**base["model"], **overrides["model"]},  # type: ignore[dict-item]
            "data": {"data": data},
            "train": {**base["train"], "seed": seed, **overrides["train"]},  # type: ignore[dict-item]
        }
    )


def run_one(
    out: Path,
    data: str,
    variant: str,
    overrides: dict[str, dict[str, object]],
    seed: int,
    args: argparse.Namespace,
) -> dict[str, object]:
    """Train and evaluate one (data, variant, seed); returns the record."""
    if args.jobs > 1:
        torch.set_num_threads(1)
    cfg = run_config(data, overrides, seed, args)
    run_dir = run_folder(out, data, variant, seed)
    start = time.perf_counter()
    train_or_resume(train, cfg, run_dir)
    train_s = time.perf_counter() - start
    rec = score(run_dir, run_dir, data, variant, seed, args)
    return {**rec, "train_s": round(train_s, 1)}


def score(
    run_dir: Path, source: Path, data: str, variant: str, seed: int, args: argparse.Namespace
) -> dict[str, object]:
    """The record of one run: ``source`` (the run folder, or a checkpoint in it) scored on
    ``--final-n`` samples, with the learned gammas and the FD curve from its stats.jsonl."""
    gen = load_generator(source, device=args.device)
    wanted = ["constraint", "fd_random"] if data == "longrange" else ["fd_digits", "is_digits"]
    wanted += ["accuracy"] if gen.num_classes else []
    result = evaluate(gen, metrics=wanted, n=args.final_n, device=args.device)
    series = read_series(run_dir / "stats.jsonl")
    gammas = {
        k.removeprefix("gamma/"): v[-1] for k, (_, v) in series.items() if k.startswith("gamma/")
    }
    steps, values = series.get(f"metric/{FD_METRIC[data]}", ([], []))
    curve = {str(step): v for step, v in zip(steps, values, strict=True)}
    speeds = series.get("it_per_s", ([], []))[1]
    cuda = args.device.startswith("cuda")
    return {
        "data": data,
        "variant": variant,
        "seed": seed,
        "preset": args.preset,
        "steps": args.steps,
        "scored_step": gen.step,
        "metrics": result.values,
        "gammas": gammas,
        "curve": curve,
        # the median logged speed over the whole run, every invocation of it (train_s, added
        # by run_one, is the last invocation's wall time only)
        "it_per_s": round(statistics.median(speeds), 3) if speeds else None,
        "scored_on": torch.cuda.get_device_name(args.device) if cuda else cpu_model(),
    }


def score_unfinished(todo: list[tuple[str, str, int]], args: argparse.Namespace) -> None:
    """Score the runs an interrupted ablation left without a record, at their best.pt (the
    best periodic FD so far), into ``OUT/unfinished.jsonl`` (not results.jsonl, so running the
    ablation again still trains them to the end)."""
    scored = []
    for data, variant, seed in todo:
        run_dir = run_folder(args.out, data, variant, seed)
        if not (run_dir / "best.pt").exists():
            print(f"{run_dir.name}: no best.pt (no periodic score yet), skipped")
            continue
        rec = score(run_dir, run_dir / "best.pt", data, variant, seed, args)
        with open(args.out / "unfinished.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"{run_dir.name}: best.pt at step {rec['scored_step']}: {rec['metrics']}")
        scored.append(rec)
    print(runs_table(scored, args.plateau_window, args.plateau_tol))


PERCENT = frozenset({"accuracy", "constraint", "wellformed"})
"""Metrics the tables show in percent."""


def _columns(records: list[dict[str, object]], data: str) -> tuple[tuple[str, ...], list[str]]:
    """The metrics of ``data`` that some record of it has, and their column headings."""
    metrics = tuple(
        m
        for m in DATASETS[data]
        if any(m in r["metrics"] for r in records if r["data"] == data)  # type: ignore[operator]
    )
    return metrics, [f"{m} (%)" if m in PERCENT else m for m in metrics]


def _curve_steps(records: list[dict[str, object]]) -> list[int]:
    """Every step at which some record's FD curve has a value, in order."""
    return sorted({int(s) for r in records for s in r.get("curve") or {}})  # type: ignore[union-attr]


def _cell(values: list[float], percent: bool) -> str:
    k = 100.0 if percent else 1.0
    vals = [v * k for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "n/a"
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f}" if percent or abs(mean) >= 10 else f"{mean:.2f} ± {std:.2f}"


def _stopped(rows: list[dict[str, object]], window: int, tol: float) -> str:
    """``k of n``: how many of the runs' FD curves have stopped improving (n: the runs whose
    curve is long enough to say); ``n/a`` where none is."""
    said = [
        x
        for r in rows
        if (x := stopped_improving(r.get("curve") or {}, window, tol)) is not None  # type: ignore[arg-type]
    ]
    return f"{sum(said)} of {len(said)}" if said else "n/a"


def table(
    records: list[dict[str, object]], names: list[str], window: int = 2, tol: float = 0.05
) -> str:
    """Markdown: one row per (data set, variant), mean ± std over seeds, with how many runs'
    FD had stopped improving (:func:`stopped_improving` with ``window`` and ``tol``); then the
    FD curves."""
    lines = []
    for data in DATASETS:
        metrics, head = _columns(records, data)
        if not metrics:
            continue
        lines.append(f"\n**{data}**\n")
        lines.append(
            "| variant | seeds | " + " | ".join(head) + " | learned gammas (mean) "
            f"| FD stopped improving (last {window} evals < {100 * tol:g}% below the "
            f"{window} before) |"
        )
        lines.append("|---|---|" + "---|" * len(metrics) + "---|---|")
        for name in names:
            rows = [r for r in records if r["data"] == data and r["variant"] == name]
            if not rows:
                continue
            cells = [_cell([r["metrics"].get(m) for r in rows], m in PERCENT) for m in metrics]
            g: dict[str, list[float]] = {}
            for r in rows:
                for k, v in r["gammas"].items():  # type: ignore[union-attr]
                    g.setdefault(k, []).append(v)
            gam = ", ".join(f"{k} {statistics.fmean(v):+.3f}" for k, v in sorted(g.items())) or "-"
            stopped = _stopped(rows, window, tol)
            lines.append(
                f"| {name} | {len(rows)} | " + " | ".join(cells) + f" | {gam} | {stopped} |"
            )
        curves = [r for r in records if r["data"] == data and r.get("curve")]
        steps = _curve_steps(curves)
        if steps:
            lines.append(
                f"\n{FD_METRIC[data]} during training (eval n as above, mean ± std over seeds)\n"
            )
            lines.append("| variant | " + " | ".join(str(s) for s in steps) + " |")
            lines.append("|---|" + "---|" * len(steps))
            for name in names:
                rows = [r for r in curves if r["variant"] == name]
                if rows:
                    cells = [
                        _cell([r["curve"].get(str(s)) for r in rows], False)  # type: ignore[union-attr]
                        for s in steps
                    ]
                    lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_table(records: list[dict[str, object]], window: int = 2, tol: float = 0.05) -> str:
    """Markdown: one row per run (the step it was scored at, its metrics, last gammas, median
    it/s, and :func:`fd_gain` over ``window`` evaluations with the rule's verdict at ``tol``),
    then one FD curve per run. The fall is shown to a tenth of a percent beside the verdict: a
    whole percent read "+5%" for a fall of 5.4%, which the rule at 5% counts as improving."""
    lines = []
    for data in DATASETS:
        metrics, head = _columns(records, data)
        if not metrics:
            continue
        rows = sorted(
            (r for r in records if r["data"] == data),
            key=lambda r: (str(r["variant"]), int(r["seed"])),  # type: ignore[call-overload]
        )
        lines.append(f"\n**{data}, every run**\n")
        lines.append(
            "| variant | seed | scored at | " + " | ".join(head) + " | gammas | it/s "
            f"| FD fall, last {window} evals against the {window} before (< {tol:.0%}: stopped) |"
        )
        lines.append("|---|---|---|" + "---|" * len(metrics) + "---|---|---|")
        for r in rows:
            vals = r["metrics"]
            cells = [
                "n/a"
                if (v := vals.get(m)) is None  # type: ignore[union-attr]
                else (f"{100 * v:.1f}" if m in PERCENT else f"{v:.2f}")
                for m in metrics
            ]
            gam = ", ".join(f"{k} {v:+.3f}" for k, v in sorted(r["gammas"].items())) or "-"  # type: ignore[union-attr]
            curve = r.get("curve") or {}
            g = fd_gain(curve, window)  # type: ignore[arg-type]
            verdict = "stopped" if stopped_improving(curve, window, tol) else "improving"  # type: ignore[arg-type]
            gain = "n/a" if g is None else f"{g:+.1%}, {verdict}"
            lines.append(
                f"| {r['variant']} | {r['seed']} | {r['scored_step']} | "
                + " | ".join(cells)
                + f" | {gam} | {r.get('it_per_s') or 'n/a'} | {gain} |"
            )
        steps = _curve_steps(rows)
        if steps:
            lines.append(f"\n{FD_METRIC[data]} during training, every run\n")
            lines.append("| variant | seed | " + " | ".join(str(s) for s in steps) + " |")
            lines.append("|---|---|" + "---|" * len(steps))
            for r in rows:
                curve = r.get("curve") or {}
                cells = [
                    f"{v:.2f}" if (v := curve.get(str(s))) is not None else "-"  # type: ignore[union-attr]
                    for s in steps
                ]
                lines.append(f"| {r['variant']} | {r['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for runs and results.jsonl")
    p.add_argument(
        "--preset",
        default="none",
        choices=sorted(PRESETS),
        help="settings every arm starts from (none: 0.3's, the recorded ablation)",
    )
    p.add_argument("--arch", default=None, help="default: the preset's")
    p.add_argument("--resolution", type=int, default=None, help="default: the preset's")
    p.add_argument("--ch", type=int, default=None, help="default: the preset's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--lr-g", type=float, default=None, help="default: the preset's")
    p.add_argument("--lr-d", type=float, default=None, help="default: the preset's")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--seeds", type=int, default=3, help="how many seeds")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds are FIRST_SEED ... FIRST_SEED + SEEDS - 1 (e.g. one seed lost with its folder)",
    )
    p.add_argument("--variants", default="", help="comma list of arms (default: every one)")
    p.add_argument("--eval-every", type=int, default=0, help="score every N steps (0: never)")
    p.add_argument("--eval-n", type=int, default=1000, help="samples per periodic score")
    p.add_argument("--final-n", type=int, default=2000, help="samples for the final score")
    p.add_argument(
        "--save-every",
        type=int,
        default=0,
        help="checkpoint every N steps, so a run killed without SIGTERM loses at most N (0: at "
        "the end only)",
    )
    p.add_argument("--precision", default="bf16", help="bf16 (the recorded runs; AMX CPUs) or 32")
    p.add_argument("--data", default="digits,longrange", help="comma list")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (training and scoring)")
    p.add_argument(
        "--score-unfinished",
        action="store_true",
        help="train nothing: score the runs left without a record at their best.pt",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each if > 1")
    p.add_argument(
        "--plateau-window",
        type=int,
        default=2,
        help="the tables call a run's FD stopped improving when the mean of its last W "
        "periodic scores is less than --plateau-tol below the mean of the W before (ours)",
    )
    p.add_argument(
        "--plateau-tol", type=float, default=0.05, help="see --plateau-window (0.05: 5%%)"
    )
    args = p.parse_args()  # fmt: skip
    unknown_data = set(args.data.split(",")) - set(DATASETS)
    if unknown_data:
        raise SystemExit(f"unknown --data {sorted(unknown_data)}: choose from {sorted(DATASETS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = read_records(results, args.steps)
    keys = {(r["data"], r["variant"], r["seed"]) for r in done}
    cfg = RunConfig.from_dict(base_config(args))
    arms = variants(cfg)
    if args.variants:
        unknown = set(args.variants.split(",")) - set(arms)
        if unknown:
            raise SystemExit(f"unknown variants {sorted(unknown)}: choose from {sorted(arms)}")
        arms = {k: v for k, v in arms.items() if k in args.variants.split(",")}
    names = list(arms)
    todo = [
        (data, name, seed)
        for data in args.data.split(",")
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        for name in names
        if (data, name, seed) not in keys
    ]
    for data in args.data.split(","):  # before anything trains: every run kept is of these flags
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for name in names:
                run_cfg = run_config(data, arms[name], seed, args)
                recorded = (data, name, seed) in keys
                check_same_run(run_folder(args.out, data, name, seed), run_cfg, recorded=recorded)
    if args.score_unfinished:
        score_unfinished(todo, args)
        return
    start = time.perf_counter()
    done += run_all(
        run_one,
        [(args.out, data, name, arms[name], seed, args) for data, name, seed in todo],
        args.jobs,
        results,
        lambda rec: (
            f"{rec['data']} {rec['variant']} seed {rec['seed']}: {rec['train_s']} s, "
            + ", ".join(f"{k} {v:.4g}" for k, v in rec["metrics"].items())
        ),
    )
    print(
        f"\npreset {args.preset}: {cfg.model.arch} {cfg.model.resolution} px, ch {cfg.model.ch}, "
        f"batch {cfg.train.batch_size}, {args.steps} steps, precision {args.precision}, "
        f"final eval n={args.final_n}; {platform.processor() or platform.machine()}, "
        f"{args.jobs} job(s), torch {torch.__version__}; "
        f"this invocation {time.perf_counter() - start:.0f} s"
    )
    shown = [r for r in done if r["variant"] in names]
    print(table(shown, names, args.plateau_window, args.plateau_tol))
    print(runs_table(shown, args.plateau_window, args.plateau_tol))


if __name__ == "__main__":
    main()
