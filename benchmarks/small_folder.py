"""DiffAugment, ADA and LeCam on a small folder of real photographs (issue 15).

Makes the folder, unless ``--folder`` names one of yours: ``--count`` random square crops
(side a quarter to a half of the shorter edge, then 32 px) of the twelve photographs bundled
with scikit-image whose documentation marks them public domain or CC0 (NASA, SpaceX,
CC0Textures and photographers' CC0 dedications; see ``PHOTOS``). Nothing is downloaded and no
photo is committed: ``pip install scikit-image`` provides them. This folder is ours, made for
this benchmark; it is crops of 12 photographs, not hundreds of different photographs, so it is
easier to over-fit than a real collection of the same size.

Beside it, ``--held-out`` more crops of the same photographs (another random draw, in
``OUT/held-out``) that no run trains on. With ``--folder``, ``--held-out-folder`` names images
of the same kind kept out of it; without one the held-out measures are left out.

Then trains the quick preset (unconditional) on it with each arm, ``--seeds`` seeds each, and
scores the final EMA generator by FD-random (the offline random-feature FD; lower is better)
against the training folder and against the held-out crops, on ``--final-n`` samples.
``--eval-every`` adds the FD curve during training, which shows when D's over-fitting starts to
hurt, and keeps a checkpoint at each of those steps, on which D's over-fitting is measured
directly, as in Karras et al. 2020 (ADA), Fig. 1b: the gap between D's mean score on the
training images and on the held-out ones (un-augmented, both; 0 when D has not memorised its
training set, growing as it does). Prints Markdown tables of mean +- std over seeds; every
finished run goes to ``OUT/results.jsonl`` and is skipped when the script runs again; a
larger ``--steps`` continues the runs, and an ``OUT`` whose runs had other settings (another
``--lr``, say) is refused.

    pip install scikit-image
    python benchmarks/small_folder.py --out runs/small-folder --jobs 2
    python benchmarks/small_folder.py --out /tmp/sf --steps 20 --seeds 1 --final-n 200  # smoke
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _pool import check_same_run, read_records, run_all, train_or_resume
from PIL import Image

from sagan.images.config import ModelConfig, RunConfig
from sagan.images.data import ImageDataset, load_dataset
from sagan.images.evaluate import evaluate
from sagan.images.export import load_generator
from sagan.images.networks import build_discriminator
from sagan.images.report import read_series
from sagan.images.train import KIND, train
from sagan.training.checkpoint import find_checkpoints, load_checkpoint

PHOTOS = (
    "astronaut",  # NASA, public domain
    "camera",  # CC0, Lav Varshney
    "chelsea",  # CC0, Stefan van der Walt
    "coffee",  # CC0, Rachel Michetti
    "coins",  # Brooklyn Museum, no known copyright restrictions
    "rocket",  # SpaceX, public domain
    "hubble_deep_field",  # NASA, public domain
    "retina",  # Wikimedia Commons, CC0
    "brick",  # CC0Textures, CC0
    "grass",  # CC0 (DeviantArt linolafett)
    "gravel",  # CC0Textures, CC0
    "immunohistochemistry",  # no known copyright restrictions
)
"""scikit-image's bundled photographs used, with the licence its documentation states."""

ARMS: dict[str, dict[str, object]] = {
    "none": {},
    "diffaugment": {"augment": "diffaugment"},
    "ada": {"augment": "ada"},
    "ada-0.4": {"augment": "ada", "ada_target": 0.4},
    "ada-0.3": {"augment": "ada", "ada_target": 0.3},
    "lecam": {"lecam": 0.01},
    "diffaugment+lecam": {"augment": "diffaugment", "lecam": 0.01},
}
"""Arm -> train settings over the quick preset. The LeCam weight 0.01 is ours (the weight the
docs' example uses), not tuned here. ``ada-0.4`` and ``ada-0.3`` lower ADA's r_t target (0.6,
set for StyleGAN2's logistic loss; ours to try under the hinge loss, where r_t stays near 0.5
while D over-fits)."""


def make_folder(out: Path, count: int, seed: int = 0) -> int:
    """Write ``count`` 32x32 PNG crops of :data:`PHOTOS` to ``out``; returns the count."""
    try:
        from skimage import data as skdata
    except ImportError:
        raise SystemExit(
            "scikit-image is needed to make the photo folder: pip install scikit-image "
            "(or pass --folder with a folder of your own photos)"
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = []
    for name in PHOTOS:
        a = np.asarray(getattr(skdata, name)())
        if a.dtype != np.uint8:
            a = (np.clip(a, 0, 1) * 255).astype(np.uint8) if a.max() <= 1 else a.astype(np.uint8)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        images.append(Image.fromarray(a[..., :3]))
    for i in range(count):
        im = images[i % len(images)]
        w, h = im.size
        side = int(rng.uniform(0.25, 0.5) * min(w, h))
        left = int(rng.integers(0, w - side + 1))
        top = int(rng.integers(0, h - side + 1))
        crop = im.resize(
            (32, 32), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side)
        )
        crop.save(out / f"{PHOTOS[i % len(PHOTOS)]}-{i:04d}.png")
    return count


def _images(data: ImageDataset) -> torch.Tensor:
    """Every image of ``data`` as D sees a real batch: (N, C, 32, 32) floats in [-1, 1]."""
    return torch.stack([data[i][0] for i in range(len(data))]).float().div(127.5).sub(1.0)


def d_gaps(run_dir: Path, train_x: torch.Tensor, held_x: torch.Tensor) -> dict[str, float]:
    """Step -> mean D score on the training images minus on the held-out ones, for every
    checkpoint of the run (D in eval mode, no augmentation; > 0: D rates the images it was
    trained on as more real than unseen ones of the same kind, i.e. it over-fits)."""
    gaps = {}
    for path in find_checkpoints(run_dir):
        ckpt = load_checkpoint(path, kind=KIND)
        D = build_discriminator(ModelConfig(**ckpt["config"]["model"]))
        D.load_state_dict(ckpt["D"])
        D.eval()
        with torch.no_grad():
            gap = D(train_x).mean() - D(held_x).mean()
        gaps[str(ckpt["step"])] = round(float(gap), 4)
    return gaps


def run_config(folder: Path, arm: str, seed: int, args: argparse.Namespace) -> RunConfig:
    """The config of one (arm, seed) on ``folder`` (named by its absolute path, so that a
    run's config.yaml does not depend on where the script ran)."""
    every = args.eval_every or args.steps  # a checkpoint per curve point, for D's gap
    train_cfg: dict[str, object] = {
        "steps": args.steps,
        "seed": seed,
        "device": "cpu",
        "lr_g": args.lr,
        "lr_d": args.lr,
        "save_every": every,
        "sample_every": args.steps,
        "log_every": 50,
        "keep_checkpoints": math.ceil(args.steps / every),
        **ARMS[arm],
    }
    if args.eval_every:
        train_cfg.update(eval_every=args.eval_every, eval_n=args.eval_n, eval_metrics="fd_random")
    return RunConfig.from_dict(
        {
            "preset": "quick",
            "data": {"data": str(folder.resolve()), "conditional": False},
            "train": train_cfg,
        }
    )


def run_one(
    out: Path, folder: Path, held_out: Path | None, arm: str, seed: int, args: argparse.Namespace
) -> dict[str, object]:
    """Train and score one (arm, seed); returns the record."""
    if args.jobs > 1:
        torch.set_num_threads(1)
    cfg = run_config(folder, arm, seed, args)
    run_dir = out / f"{arm}-s{seed}"
    start = time.perf_counter()
    train_or_resume(train, cfg, run_dir)
    train_s = time.perf_counter() - start
    gen = load_generator(run_dir)
    real = load_dataset(str(folder), 32, conditional=False)
    n_real = len(real)
    result = evaluate(gen, metrics=["fd_random"], real=real, n=args.final_n, n_real=n_real)
    held_fd, gaps = None, {}
    if held_out is not None:
        held = load_dataset(str(held_out), 32, conditional=False)
        scored = evaluate(gen, metrics=["fd_random"], real=held, n=args.final_n, n_real=len(held))
        held_fd = scored.values["fd_random"]
        gaps = d_gaps(run_dir, _images(real), _images(held))
    series = read_series(run_dir / "stats.jsonl")
    last = {k: v[-1] for k, (_, v) in series.items()}
    steps, values = series.get("metric/fd_random", ([], []))
    return {
        "arm": arm,
        "seed": seed,
        "steps": args.steps,
        "train_s": round(train_s, 1),
        "fd_random": result.values["fd_random"],
        "fd_random_held_out": held_fd,
        "count": n_real,
        "ada_p": last.get("ada_p"),
        "d_real": last.get("d_real"),
        "d_fake": last.get("d_fake"),
        "curve": {str(step): v for step, v in zip(steps, values, strict=True)},
        "d_gap": gaps,
    }


def _cell(values: list[float | None], digits: int = 1) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "-"
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.{digits}f} ± {std:.{digits}f}"


def table(records: list[dict[str, object]]) -> str:
    """Markdown: one row per arm (mean ± std over seeds), then the curves of FD and of D's
    train/held-out gap."""
    lines = [
        "| arm | seeds | FD-random (final) | per seed | FD-random vs held-out | D's gap, train - "
        "held-out (final) | D(real) - D(fake), last logged | ada p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        rows = sorted((r for r in records if r["arm"] == arm), key=lambda r: r["seed"])
        if not rows:
            continue
        per_seed = ", ".join(f"{r['fd_random']:.1f}" for r in rows)
        gap = [r["d_real"] - r["d_fake"] if r["d_real"] is not None else None for r in rows]
        held = [r.get("fd_random_held_out") for r in rows]
        final_gap = [_last(r.get("d_gap")) for r in rows]
        lines.append(
            f"| {arm} | {len(rows)} | {_cell([r['fd_random'] for r in rows])} | {per_seed} | "
            f"{_cell(held)} | {_cell(final_gap, 2)} | {_cell(gap, 2)} | "
            f"{_cell([r['ada_p'] for r in rows], 2)} |"
        )
    curves = (
        ("curve", "FD-random during training (mean ± std over seeds)", 1),
        ("d_gap", "D's mean score on its training images minus on held-out ones", 2),
    )
    for key, title, digits in curves:
        steps = sorted({int(s) for r in records for s in r.get(key) or {}})
        if not steps:
            continue
        lines.append(f"\n{title}\n")
        lines.append("| arm | " + " | ".join(str(s) for s in steps) + " |")
        lines.append("|---|" + "---|" * len(steps))
        for arm in ARMS:
            rows = [r for r in records if r["arm"] == arm and r.get(key)]
            if rows:
                cells = [_cell([r[key].get(str(s)) for r in rows], digits) for s in steps]
                lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _last(curve: dict[str, float] | None) -> float | None:
    """The value at the largest step of a ``{step: value}`` curve (None if empty)."""
    return curve[max(curve, key=int)] if curve else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for runs and results.jsonl")
    p.add_argument("--folder", type=Path, help="your own photos (default: make OUT/photos)")
    p.add_argument("--count", type=int, default=480, help="crops to make")
    p.add_argument("--held-out", type=int, default=96, help="crops made for D's over-fit check")
    p.add_argument("--held-out-folder", type=Path, help="with --folder: images kept out of it")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument(
        "--lr",
        type=float,
        default=2e-4,
        help="G's and D's learning rate (default: the quick preset's when the records were made; "
        "the preset's is 4e-4 since 2026-12-07)",
    )
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--arms", default=",".join(ARMS), help="comma list")
    p.add_argument("--eval-every", type=int, default=500, help="FD curve every N steps (0: no)")
    p.add_argument("--eval-n", type=int, default=500, help="samples per curve point")
    p.add_argument("--final-n", type=int, default=2000, help="samples for the final score")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each if > 1")
    args = p.parse_args()
    unknown = set(args.arms.split(",")) - set(ARMS)
    if unknown:
        sys.exit(f"unknown arms {sorted(unknown)}: choose from {', '.join(ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    folder = args.folder
    if folder is None:
        folder = args.out / "photos"
        if not any(folder.glob("*.png")):
            print(f"made {make_folder(folder, args.count)} crops in {folder}", flush=True)
    held_out = args.held_out_folder
    if held_out is None and args.folder is None:
        held_out = args.out / "held-out"
        if not any(held_out.glob("*.png")):
            print(f"made {make_folder(held_out, args.held_out, seed=1)} held-out crops", flush=True)
    results = args.out / "results.jsonl"
    done = read_records(results, args.steps)
    keys = {(r["arm"], r["seed"]) for r in done}
    todo = [
        (arm, seed)
        for seed in range(args.seeds)
        for arm in args.arms.split(",")
        if (arm, seed) not in keys
    ]
    for arm in args.arms.split(","):  # before anything trains: every run kept is of these flags
        for seed in range(args.seeds):
            cfg = run_config(folder, arm, seed, args)
            check_same_run(args.out / f"{arm}-s{seed}", cfg, recorded=(arm, seed) in keys)
    start = time.perf_counter()
    done += run_all(
        run_one,
        [(args.out, folder, held_out, a, s, args) for a, s in todo],
        args.jobs,
        results,
        lambda rec: (
            f"{rec['arm']} seed {rec['seed']}: {rec['train_s']} s, FD-random {rec['fd_random']:.2f}"
        ),
    )
    print(
        f"\nquick preset, unconditional, lr {args.lr:g}, {args.steps} steps, folder {folder} "
        f"({len(list(folder.glob('*.png')))} images), final n={args.final_n}; "
        f"{platform.processor() or platform.machine()}, {args.jobs} job(s), "
        f"torch {torch.__version__}; this invocation {time.perf_counter() - start:.0f} s\n"
    )
    print(table([r for r in done if r["arm"] in args.arms.split(",")]))


if __name__ == "__main__":
    main()
