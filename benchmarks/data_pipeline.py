"""Does the training loop wait on data? Share of iteration time spent in ``next(batches)``.

Run by hand; prints a Markdown table. Trains the default model for a few iterations on the
built-in digits (in memory) and on a folder of JPEG photos-like images that this script
writes (decoded, resized and cropped on the fly), and reads ``data_wait_share`` from the
run's ``stats.jsonl`` (the first logged window, which holds start-up, is left out).

    python benchmarks/data_pipeline.py
    python benchmarks/data_pipeline.py --images 2000 --size 256 --resolution 64 --steps 30
    python benchmarks/data_pipeline.py --device cuda --workers 0 2 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from sagan.images.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from sagan.images.train import train


def write_folder(folder: Path, n: int, size: int) -> None:
    """``n`` JPEGs of ``size`` px: random ellipses and rectangles over a gradient."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    for i in range(n):
        base = np.stack([np.add.outer(ramp, ramp) / 2 * rng.random() for _ in range(3)], -1)
        img = Image.fromarray(base.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(size // 8, size // 2, 2)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=colour)
        img.save(folder / f"{i:05d}.jpg", quality=90)


def run(data: str, workers: int, args: argparse.Namespace, root: Path) -> tuple[float, float]:
    cfg = RunConfig(
        model=ModelConfig(
            arch="resnet", resolution=args.resolution, ch=args.ch, g_spectral_norm=True
        ),
        data=DataConfig(data=data, num_workers=workers),
        train=TrainConfig(
            batch_size=args.batch_size,
            steps=args.steps,
            log_every=args.log_every,
            save_every=10**9,
            sample_every=10**9,
            device=args.device,
        ),
    )
    out = train(cfg, out=root / f"{Path(data).name}-{workers}", progress=False)
    records = [json.loads(x) for x in (out / "stats.jsonl").read_text().splitlines()][1:]
    share = statistics.mean(r["data_wait_share"] for r in records)
    per_iter = statistics.mean(args.batch_size / r["img_per_s"] for r in records)
    return per_iter, share


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=600)
    p.add_argument("--size", type=int, default=256, help="side of the written JPEGs")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--ch", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--device", default="cpu", help="cpu or cuda (pinned memory, async copies)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "photos"
        write_folder(folder, args.images, args.size)
        print(
            f"{args.images} JPEGs of {args.size} px -> {args.resolution} px, batch "
            f"{args.batch_size}, resnet ch {args.ch}, device {args.device}"
        )
        print("| data | loader processes | s / iteration | share of time waiting for data |")
        print("|---|---|---|---|")
        per_iter, share = run("digits", 0, args, root)
        print(f"| digits (in memory) | 0 | {per_iter:.3f} | {share:.1%} |", flush=True)
        for workers in args.workers:
            per_iter, share = run(str(folder), workers, args, root)
            print(f"| JPEG folder | {workers} | {per_iter:.3f} | {share:.1%} |", flush=True)


if __name__ == "__main__":
    main()
