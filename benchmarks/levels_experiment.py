"""CESAGAN against its baselines, with and without bootstrapping (Torrado et al., CoG 2020).

Trains, with the same step budget, widths and seeds: a DCGAN-style level GAN (no attention, no
conditioning), SAGAN (attention, no conditioning), CESAGAN (attention and the condition
embedding) and CESAGAN with our auxiliary count loss (``cesagan+count``, weight
``--count-weight``), each with and without bootstrapping, on the built-in levels or
``--levels DIR`` (e.g. the five GVGAI originals). Each final EMA generator makes 15,000 levels
(the paper's count), scored by :func:`sagan.levels.evaluate.evaluate_levels`. Prints a
Markdown table of mean ± std over seeds, and the training set's size over time.

Finished runs are recorded in ``OUT/results.jsonl`` and skipped when the script runs again
with the same ``--steps``. A run folder already in OUT without a record of that length (a
4,000-step run copied there, or an interrupted one) is continued up to ``--steps`` and then
evaluated. A run folder trained with other flags (another ``--ch``, say), or past ``--steps``,
is refused with one line before anything trains.

    python benchmarks/levels_experiment.py --out runs/levels-exp
    python benchmarks/levels_experiment.py --out /tmp/lx --steps 20 --seeds 1 --n 200  # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from _pool import check_same_run, read_records, train_or_resume

from sagan.levels.config import LevelRunConfig
from sagan.levels.evaluate import evaluate_levels, load_level_gan
from sagan.levels.train import train_levels

PAPER = {"dcgan": {"attention": False, "conditional": False}, "sagan": {"conditional": False}}
"""The paper's baselines, as ModelConfig overrides of its CESAGAN."""


@dataclass(frozen=True)
class Arm:
    """A preset and overrides of its ModelConfig, TrainConfig and BootstrapConfig fields; a
    None value takes its value from the script's flag of the same name (``--count-weight``,
    ``--min-solution``, ...). The arms before ``default`` are the paper's model with our EMA
    (as measured since 0.1) and our additions one by one."""

    model: dict[str, object] = field(default_factory=dict)
    train: dict[str, object] = field(default_factory=dict)
    bootstrap: dict[str, object] = field(default_factory=dict)
    preset: str = "paper"


EMA = {"ema": True}
COND = {"condition_counts": True, "condition_norm": True}


def _with(
    arm: Arm,
    model: dict[str, object] | None = None,
    train: dict[str, object] | None = None,
    bootstrap: dict[str, object] | None = None,
) -> Arm:
    """``arm`` with more overrides."""
    return Arm(
        model={**arm.model, **(model or {})},
        train={**arm.train, **(train or {})},
        bootstrap={**arm.bootstrap, **(bootstrap or {})},
        preset=arm.preset,
    )


V03 = Arm(
    preset="default",
    model={
        "condition_places": False,
        "wall_border": False,
        "fixed_places": False,
        "fixed_enemies": False,
    },
    train={
        "place_weight": 0.0,
        "mode_seeking": 0.0,
        "mirror": False,
        "request_weight": 0.0,
        "rank_weight": 0.0,
        "anchor": 0.0,
    },
    bootstrap={"min_distance": 5},
)
"""The 0.3 default preset (counts, conditional BatchNorm, min solution 15, EMA), pinned so
that the arms built on it keep the settings they were recorded with."""
PLACES = {"condition_places": True}
PLACES_MS = _with(V03, model=PLACES, train={"place_weight": None, "mode_seeking": None})
MIRROR_REQUEST = {"mirror": True, "request_weight": None}
WALL = {"wall_border": True}
FAR = {"min_distance": None}
V04 = _with(PLACES_MS, model=WALL, train=MIRROR_REQUEST, bootstrap=FAR)
"""The 0.4 default, pinned (with the script's defaults for its None values and
``--min-distance 10``)."""
V05A = _with(
    V04,
    model={"fixed_places": True},
    train={"rank_weight": 1.0, "rank_margin": 0.5},
    bootstrap={"min_distance": 10},
)
"""0.5's first candidate: the 0.4 default with G putting the avatar, key and door on their
cells and the rank loss at margin 0.5."""
V05B = _with(V05A, train={"rank_margin": 2.0, "anchor": 0.25}, bootstrap={"min_distance": 15})
"""0.5's second candidate: the first with margin 2, a quarter of each real batch from the
starting levels, and minimum distance 15."""
V06 = _with(V05B, model={"fixed_enemies": True}, train={"rank_weight": 0.0})
"""The 0.6 default: 0.5's with G making exactly the enemy total asked for and the rank loss
off."""
ARMS: dict[str, Arm] = {
    "dcgan": Arm(model=PAPER["dcgan"], train=EMA),
    "sagan": Arm(model=PAPER["sagan"], train=EMA),
    "cesagan": Arm(train=EMA),
    "cesagan+count": Arm(train={"count_weight": None, **EMA}),
    "cesagan+input": Arm(model={"condition_input": True}, train=EMA),
    "cesagan+input+count": Arm(
        model={"condition_input": True}, train={"count_weight": None, **EMA}
    ),
    "cesagan+counts": Arm(model={"condition_counts": True}, train=EMA),
    "cesagan+counts+norm": Arm(model=COND, train=EMA),
    "cesagan+counts+norm+count": Arm(model=COND, train={"count_weight": None, **EMA}),
    "cesagan+solution": Arm(train=EMA, bootstrap={"min_solution": None}),
    "cesagan+counts+norm+solution": Arm(model=COND, train=EMA, bootstrap={"min_solution": None}),
    "cesagan+counts+norm+solution+cap": Arm(
        model=COND, train=EMA, bootstrap={"min_solution": None, "max_cell_share": None}
    ),
    "cesagan+counts+norm+solution+far": Arm(
        model=COND, train=EMA, bootstrap={"min_solution": None, "min_distance": None}
    ),
    "cesagan+counts+norm+solution+cap+far": Arm(
        model=COND,
        train=EMA,
        bootstrap={"min_solution": None, "max_cell_share": None, "min_distance": None},
    ),
    "cesagan+counts+norm+solution+mbstd": Arm(
        model={**COND, "minibatch_std": 4}, train=EMA, bootstrap={"min_solution": None}
    ),
    "cesagan+counts+norm+solution+cap+mbstd": Arm(
        model={**COND, "minibatch_std": 4},
        train=EMA,
        bootstrap={"min_solution": None, "max_cell_share": None},
    ),
    "cesagan+counts+norm+solution+ms": Arm(
        model=COND, train={**EMA, "mode_seeking": None}, bootstrap={"min_solution": None}
    ),
    "cesagan+counts+norm+solution+cap+ms": Arm(
        model=COND,
        train={**EMA, "mode_seeking": None},
        bootstrap={"min_solution": None, "max_cell_share": None},
    ),
    # the presets exactly, as `sagan levels train` and `--preset paper` give them
    "default": Arm(preset="default"),
    "paper": Arm(),
    "paper-dcgan": Arm(model=PAPER["dcgan"]),
    # the 0.3 default and what 0.4 added to it, step by step (the arms' names as recorded)
    "default-0.3": V03,
    "default+places": _with(V03, model=PLACES),
    "default+places+loss": _with(V03, model=PLACES, train={"place_weight": None}),
    "default+places+loss+ms": PLACES_MS,
    "default+places+loss+ms+mirror": _with(PLACES_MS, train={"mirror": True}),
    "default+places+loss+ms+mirror+request": _with(PLACES_MS, train=MIRROR_REQUEST),
    "default+places+loss+ms+mirror+request+wall": _with(
        PLACES_MS, model=WALL, train=MIRROR_REQUEST
    ),
    "default+places+loss+ms+mirror+request+far": _with(
        PLACES_MS, train=MIRROR_REQUEST, bootstrap=FAR
    ),
    "default+places+loss+ms+mirror+request+far+wall": V04,
    "default+places+loss+ms+mirror+request+far+wall+count": _with(
        PLACES_MS, model=WALL, train={**MIRROR_REQUEST, "count_weight": None}, bootstrap=FAR
    ),
    # the 0.4 default (the arm above without +count) and the two 0.5 candidates
    "default-0.4": V04,
    "default-0.5a": V05A,
    "default-0.5b": V05B,
    "default-0.5a+enemycap": _with(V05A, bootstrap={"max_enemy_share": None}),
    "default-0.5b+enemycap": _with(V05B, bootstrap={"max_enemy_share": None}),
    # the 0.6 default and its two changes one at a time
    "default-0.6": V06,
    "default-0.5b-rank": _with(V05B, train={"rank_weight": 0.0}),
    "default-0.5b+fixedenemies": _with(V05B, model={"fixed_enemies": True}),
}
"""The paper's three models with our EMA, our additions one by one, then the presets."""

COLUMNS = (
    ("playable", "playable %"),
    ("unique_playable", "unique among playable %"),
    ("novel_unique_playable", "unique novel playable (of n)"),
    ("distinct_novel_playable", "distinct (10+ tiles) novel playable"),
    ("pairwise_hamming", "pairwise Hamming (tiles)"),
    ("placements", "avatar/key/door placements"),
    ("key_cell_share", "key on one cell, max %"),
    ("door_cell_share", "door on one cell, max %"),
    ("enemy_cell_share", "an enemy on one cell, max %"),
    ("novelty", "novelty (tiles)"),
    ("solution_length", "solution length (moves)"),
    ("enemies_as_asked", "enemies as asked %"),
    ("length_as_asked", "length as asked %"),
    ("counts_as_asked", "all counts as asked %"),
    ("places_as_asked", "cells as asked %"),
    ("train_size", "final training set"),
    ("train_s", "train s"),
)


def run_name(variant: str, boot: bool, seed: int) -> str:
    """The run's folder in OUT."""
    return f"{variant}-{'boot' if boot else 'noboot'}-s{seed}"


def run_config(args: argparse.Namespace, variant: str, boot: bool, seed: int) -> LevelRunConfig:
    """The settings the flags ask of one run."""
    arm = ARMS[variant]

    def resolved(over: dict[str, object]) -> dict[str, Any]:
        return {k: getattr(args, k) if v is None else v for k, v in over.items()}

    return LevelRunConfig.from_dict({
        "preset": arm.preset,
        "model": {"ch": args.ch, **resolved(arm.model)},
        "train": {
            **resolved(arm.train),
            "steps": args.steps,
            "seed": seed,
            "save_every": args.eval_every or args.steps,
            "sample_every": args.steps,
            "eval_every": args.eval_every,
            "eval_n": args.eval_n,
            "log_every": 100,
            "keep_checkpoints": 1,
        },
        "bootstrap": {"every": args.bootstrap_every if boot else 0, **resolved(arm.bootstrap)},
        "levels": args.levels,
    })  # fmt: skip


def run_one(args: argparse.Namespace, variant: str, boot: bool, seed: int) -> dict[str, object]:
    cfg = run_config(args, variant, boot, seed)
    run = args.out / run_name(variant, boot, seed)
    start = time.perf_counter()
    train_or_resume(train_levels, cfg, run)  # a shorter run of these settings is continued
    train_s = time.perf_counter() - start
    gan = load_level_gan(run)
    start = time.perf_counter()
    values = evaluate_levels(gan, n=args.n, seed=seed)
    values["eval_s"] = time.perf_counter() - start
    values["train_size"] = float(len(gan.training_set))
    values["train_s"] = train_s
    stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    growth = {str(r["step"]): r["train_size"] for r in stats if "train_size" in r}
    return {
        "variant": variant,
        "bootstrap": boot,
        "seed": seed,
        "steps": args.steps,
        "count_weight": cfg.train.count_weight,
        "min_solution": cfg.bootstrap.min_solution,
        "config": cfg.to_dict(),
        "values": values,
        "growth": growth,
    }


def _cell(vals: list[float]) -> str:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return "n/a"
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    if abs(mean) >= 100:  # counts and seconds: whole numbers
        return f"{mean:,.0f} ± {std:,.0f}"
    return f"{mean:.1f} ± {std:.1f}"


def table(records: list[dict[str, object]]) -> str:
    head = "| model | bootstrap | seeds | " + " | ".join(c for _, c in COLUMNS) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(COLUMNS)]
    for variant in ARMS:
        for boot in (False, True):
            rows = [r for r in records if r["variant"] == variant and r["bootstrap"] == boot]
            if not rows:
                continue
            cells = [_cell([r["values"].get(k) for r in rows]) for k, _ in COLUMNS]  # type: ignore[union-attr]
            lines.append(
                f"| {variant} | {'yes' if boot else 'no'} | {len(rows)} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def seed_table(records: list[dict[str, object]]) -> str:
    """One row per run."""
    head = "| model | bootstrap | seed | " + " | ".join(c for _, c in COLUMNS) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(COLUMNS)]
    for r in sorted(records, key=lambda r: (list(ARMS).index(r["variant"]), r["bootstrap"],
                                            r["seed"])):  # type: ignore[arg-type]  # fmt: skip
        cells = [_cell([r["values"].get(k)]).split(" ± ")[0] for k, _ in COLUMNS]  # type: ignore[union-attr]
        boot = "yes" if r["bootstrap"] else "no"
        lines.append(f"| {r['variant']} | {boot} | {r['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth_table(records: list[dict[str, object]], points: int = 5) -> str:
    """The bootstrapped training set's size at evenly spaced steps, mean ± std over seeds."""
    boot = [r for r in records if r["bootstrap"] and r.get("growth")]
    if not boot:
        return ""
    steps = sorted({int(k) for r in boot for k in r["growth"]})  # type: ignore[union-attr]
    shown = sorted({steps[round(i * (len(steps) - 1) / (points - 1))] for i in range(points)})
    lines = ["| model | " + " | ".join(f"step {k}" for k in shown) + " |"]
    lines.append("|---|" + "---|" * len(shown))
    for variant in ARMS:
        rows = [r for r in boot if r["variant"] == variant]
        if rows:
            cells = [_cell([r["growth"].get(str(k)) for r in rows]) for k in shown]  # type: ignore[union-attr]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth_plot(records: list[dict[str, object]], path: Path) -> None:
    """The bootstrapped training set's size over time, one line per model (mean over seeds,
    shaded min to max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for variant in ARMS:
        rows = [r for r in records if r["bootstrap"] and r["variant"] == variant]
        if not rows:
            continue
        steps = sorted({int(k) for r in rows for k in r.get("growth", {})})  # type: ignore[union-attr]
        sizes = np.array([[r["growth"].get(str(k), np.nan) for k in steps] for r in rows])  # type: ignore[union-attr]
        ax.plot(steps, np.nanmean(sizes, 0), label=f"{variant} ({len(rows)} seeds)")
        ax.fill_between(steps, np.nanmin(sizes, 0), np.nanmax(sizes, 0), alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training levels")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--levels", default="builtin", help="builtin or a folder of level files")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--ch", type=int, default=32)
    p.add_argument("--bootstrap-every", type=int, default=100)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--first-seed", type=int, default=0, help="seeds FIRST..FIRST+SEEDS-1 (to split a sweep)"
    )
    p.add_argument("--n", type=int, default=15_000, help="levels generated per model")
    p.add_argument("--variants", default="dcgan,sagan,cesagan", help=", ".join(ARMS))
    p.add_argument("--count-weight", type=float, default=1.0, help="for cesagan+count (1.0)")
    p.add_argument(
        "--min-solution", type=int, default=15, help="for +solution: fewest moves to join (15)"
    )
    p.add_argument(
        "--max-cell-share", type=float, default=0.2, help="for +cap: bootstrap's cell cap (0.2)"
    )
    p.add_argument(
        "--min-distance", type=int, default=15, help="for +far: bootstrap's distance (15)"
    )
    p.add_argument(
        "--max-enemy-share", type=float, default=0.2, help="for +enemycap: the cap (0.2)"
    )
    p.add_argument(
        "--eval-every", type=int, default=0, help="keep best.pt by evaluating every N steps"
    )
    p.add_argument("--eval-n", type=int, default=2000, help="levels per periodic evaluation")
    p.add_argument("--mode-seeking", type=float, default=0.05, help="for +ms (0.05)")
    p.add_argument("--place-weight", type=float, default=1.0, help="for +places+loss (1.0)")
    p.add_argument("--request-weight", type=float, default=1.0, help="for +request (1.0)")
    p.add_argument("--per-seed", action="store_true", help="also a table row for every seed")
    p.add_argument("--plot", type=Path, help="PNG of the training set's size over time")
    p.add_argument("--bootstrap", choices=("both", "yes", "no"), default="both", help="arms to run")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = read_records(results, args.steps)
    keys = {(r["variant"], r["bootstrap"], r["seed"]) for r in done}
    start = time.perf_counter()
    unknown = set(args.variants.split(",")) - set(ARMS)
    if unknown:
        p.error(f"--variants: unknown {', '.join(sorted(unknown))}; choose from {', '.join(ARMS)}")
    boots = {"both": (False, True), "yes": (True,), "no": (False,)}[args.bootstrap]
    for seed in range(args.first_seed, args.first_seed + args.seeds):  # before anything trains
        for variant in args.variants.split(","):
            for boot in boots:
                run = args.out / run_name(variant, boot, seed)
                cfg = run_config(args, variant, boot, seed)
                check_same_run(run, cfg, recorded=(variant, boot, seed) in keys)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for variant in args.variants.split(","):
            for boot in boots:
                if (variant, boot, seed) in keys:
                    continue
                rec = run_one(args, variant, boot, seed)
                with open(results, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                done.append(rec)
                v = rec["values"]
                print(
                    f"{variant} bootstrap={boot} seed {seed}: "
                    + ", ".join(f"{k} {v[k]:.4g}" for k, _ in COLUMNS if k in v),  # type: ignore[index]
                    flush=True,
                )
    print(
        f"\nlevels {args.levels}, {args.steps} steps, ch {args.ch}, bootstrap every "
        f"{args.bootstrap_every}, n={args.n}; {platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; this invocation "
        f"{time.perf_counter() - start:.0f} s\n"
    )
    print(table(done))
    if args.per_seed:
        print("\nevery seed:\n")
        print(seed_table(done))
    print("\nbootstrapped training set, size over time:\n")
    print(growth_table(done))
    if args.plot is not None:
        growth_plot(done, args.plot)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
