"""Hg-SAGAN's ablation on the synthetic figures: plain stacked hourglass, + self-attention,
+ adversarial discriminator, + both, with the same budget and seeds; PCKh@0.5 per joint and
total on held-out figures (flip test on), and the total along the way. Finished runs are
recorded in ``OUT/results.jsonl`` and skipped when the script runs again with the same
``--steps``; an interrupted run, or one recorded at fewer steps, continues from its last
checkpoint (every ``--eval-every`` steps) to ``--steps``, so ``train s`` of such a run counts
only this invocation's part. A run folder trained with other flags is refused with one line
before anything trains.

    python benchmarks/pose_ablation.py --out runs/pose-ablation
    python benchmarks/pose_ablation.py --out runs/pose-ablation --variants +sagan
    OMP_NUM_THREADS=1 python benchmarks/pose_ablation.py --out DIR --first-seed 1 --seeds 1 &

By default the four arms of the paper's table (hourglass, +SARM, +adversarial, Hg-SAGAN),
seed by seed, so that an interrupted invocation leaves whole seeds behind.
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
from _pool import check_same_run, read_records, train_or_resume

from sagan.pose.train import (
    PoseModelConfig,
    PoseRunConfig,
    PoseTrainConfig,
    evaluate_pose,
    load_pose_model,
    train_pose,
    validation_set,
)

VARIANTS = {
    "hourglass": ("none", False),
    "+sarm": ("sarm", False),
    "+adversarial": ("none", True),
    "hg-sagan (both)": ("sarm", True),
    # the core softmax layer on the features (ours), as the 0.1 table measured it
    "+sagan": ("sagan", False),
    "sagan+adversarial": ("sagan", True),
}
"""name -> (--attention, adversarial). ``sarm``: the authors' modules (SARM_B in G's heads,
SARM_A on D's skips); with attention ``none`` the released D keeps residual skips."""


def run_config(name: str, seed: int, args: argparse.Namespace) -> PoseRunConfig:
    """The settings the flags ask of one run."""
    attention, adversarial = VARIANTS[name]
    return PoseRunConfig(
        model=PoseModelConfig(attention=attention),
        train=PoseTrainConfig(adversarial=adversarial, steps=args.steps, seed=seed,
                              save_every=args.eval_every, eval_every=args.eval_every,
                              eval_n=args.n),
    )  # fmt: skip


def run_folder(out: Path, name: str, seed: int) -> Path:
    """The run's folder in OUT."""
    return out / f"{name.replace(' ', '_')}-s{seed}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=4800)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS)[:4], choices=VARIANTS)
    p.add_argument("--eval-every", type=int, default=600, help="PCKh along the way")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--first-seed", type=int, default=0, help="seeds FIRST..FIRST+SEEDS-1 (to split a sweep)"
    )
    p.add_argument("--n", type=int, default=300, help="held-out figures")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = read_records(results, args.steps)
    keys = {(r["variant"], r["seed"]) for r in done}
    for seed in range(args.first_seed, args.first_seed + args.seeds):  # before anything trains
        for name in args.variants:
            cfg = run_config(name, seed, args)
            check_same_run(run_folder(args.out, name, seed), cfg, recorded=(name, seed) in keys)
    start = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name in args.variants:
            if (name, seed) in keys:
                continue
            t0 = time.perf_counter()
            run = run_folder(args.out, name, seed)
            # an interrupted invocation, or a shorter run: continue it exactly, to --steps
            train_or_resume(train_pose, run_config(name, seed, args), run)
            train_s = time.perf_counter() - t0
            G, cfg = load_pose_model(run)
            # the same held-out figures for every run: the validation seed of seed 0
            val = validation_set(PoseRunConfig(), args.n)
            scores = evaluate_pose(G, val, n=args.n)
            stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
            key = "metric/pckh_total"
            curve = {str(r["step"]): r[key] for r in stats if key in r}
            rec = {"variant": name, "seed": seed, "steps": args.steps, "train_s": train_s,
                   "pckh": scores, "curve": curve}  # fmt: skip
            with open(results, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            done.append(rec)
            print(f"{name} seed {seed}: total {scores['total']:.1f} ({train_s:.0f} s)", flush=True)
    print(
        f"\n{args.steps} steps, batch 16, 2 stacks x 64 features, 64 px in / 16 px maps, "
        f"{args.n} held-out figures; {platform.machine()}, {torch.get_num_threads()} threads; "
        f"this invocation {time.perf_counter() - start:.0f} s\n"
    )
    # the papers' table: each column the mean of the left and right joint
    groups = {"head": ("head_top", "upper_neck"), "shoulder": ("r_shoulder", "l_shoulder"),
              "elbow": ("r_elbow", "l_elbow"), "wrist": ("r_wrist", "l_wrist"),
              "hip": ("r_hip", "l_hip"), "knee": ("r_knee", "l_knee"),
              "ankle": ("r_ankle", "l_ankle"), "total": ("total",)}  # fmt: skip
    print("| variant | seeds | " + " | ".join(groups) + " | train s |")
    print("|---|---|" + "---|" * (len(groups) + 1))
    for name in VARIANTS:
        rows = [r for r in done if r["variant"] == name]  # done: records of --steps only
        if not rows:
            continue
        cells = []
        for joints in groups.values():
            vals = [statistics.fmean(r["pckh"][j] for j in joints) for r in rows]
            cells.append(_mean_sd([v for v in vals if not math.isnan(v)]))
        t = statistics.fmean(r["train_s"] for r in rows)
        print(f"| {name} | {len(rows)} | " + " | ".join(cells) + f" | {t:.0f} |")
    steps = sorted({int(k) for r in done for k in r.get("curve", {})})
    print("\nPCKh total along the way:\n")
    print("| variant | " + " | ".join(f"step {k}" for k in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for name in VARIANTS:
        rows = [r for r in done if r["variant"] == name]  # done: records of --steps only
        if rows:
            cells = [_mean_sd([r["curve"][str(k)] for r in rows if str(k) in r["curve"]])
                     for k in steps]  # fmt: skip
            print(f"| {name} | " + " | ".join(cells) + " |")


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {sd:.1f}"


if __name__ == "__main__":
    main()
