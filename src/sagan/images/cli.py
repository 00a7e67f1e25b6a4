"""Command-line sub-commands of the image application: train, sample, attention, export.

Parsers import nothing heavy; each handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sagan.errors import int_in, refuse_existing, writing

__all__ = ["register"]


def _add_train(commands: Any) -> None:
    from sagan.images.config import RunConfig
    from sagan.training.cli import add_train_parser

    add_train_parser(
        commands,
        "train",
        config_class=RunConfig,
        help="train an image SAGAN (default: built-in digits, about 10 minutes on 2 CPU cores)",
        description=(
            "Train a Self-Attention GAN on images. Settings come from the defaults, then "
            "--config FILE (YAML with sections model, data, train), then these flags. The run "
            "folder gets config.yaml, stats.jsonl, samples/*.png and ckpt-*.pt."
        ),
        runs_default="runs",
        handler=_train,
    )


def _train(args: argparse.Namespace) -> int:
    from sagan.images.config import RunConfig
    from sagan.images.train import train
    from sagan.training.cli import run_train

    return run_train(args, args.flags, train, RunConfig.from_dict)


def _parse_labels(text: str) -> list[int]:
    try:
        labels = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        labels = []
    if not labels or not all(-(2**63) <= v < 2**63 for v in labels):  # the generator checks
        raise argparse.ArgumentTypeError(  # the class range
            f"labels are class numbers like 3 or 0,1,2; got {text!r}"
        )
    return labels


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="checkpoint file, run folder or export folder")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps, auto")


def _add_sample(commands: Any) -> None:
    p = commands.add_parser(
        "sample",
        help="generate images from a trained generator",
        description="Generate images with the (EMA) generator of SOURCE. --out FILE.png writes "
        "one grid; any other --out is a folder that gets one PNG per image.",
    )
    _add_source(p)
    p.add_argument("--n", type=int_in(1, 10_000), default=64, help="number of images (64)")
    p.add_argument("--labels", type=_parse_labels, help="class(es): one for all, or one per image")
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="noise seed (0)")
    p.add_argument("--out", type=Path, required=True, help="grid .png or folder")
    p.add_argument("--nrow", type=int_in(1, 1_000), default=8, help="images per grid row (8)")
    p.set_defaults(handler=_sample)


def _sample(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from sagan.images.export import load_generator
    from sagan.images.grid import save_grid, to_uint8
    from sagan.training import pick_device

    grid = args.out.suffix.lower() == ".png"
    files = [args.out] if grid else [args.out / f"{i:05d}.png" for i in range(args.n)]
    refuse_existing(files)
    gen = load_generator(args.source, device=pick_device(args.device))
    images = gen.sample(
        args.n, labels=args.labels, generator=torch.Generator().manual_seed(args.seed)
    )
    images = images * 2 - 1  # grid helpers take [-1, 1]
    with writing(args.out):
        if grid:
            save_grid(images, args.out, nrow=args.nrow)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            for path, pic in zip(files, to_uint8(images), strict=True):
                Image.fromarray(pic.squeeze(-1) if pic.shape[-1] == 1 else pic).save(path)
    print(f"wrote {args.n} images to {args.out}")
    return 0


def _add_attention(commands: Any) -> None:
    p = commands.add_parser(
        "attention",
        help="draw the paper's attention figure",
        description="Generate a few images and overlay the attention maps of chosen query "
        "points in the generator's last (highest-resolution) attention layer.",
    )
    _add_source(p)
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--n", type=int_in(1, 64), default=4, help="images, one per row (4)")
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="noise seed (0)")
    p.add_argument("--labels", type=_parse_labels, help="class(es) for a conditional generator")
    p.add_argument(
        "--points",
        metavar="R,C;R,C",
        help="query points as row,column fractions in [0,1), e.g. '0.3,0.3;0.5,0.7'",
    )
    p.add_argument("--scale", type=int_in(1, 32), default=4, help="pixel enlargement (4)")
    p.set_defaults(handler=_attention)


def _points(text: str | None) -> tuple[tuple[float, float], ...] | None:
    from sagan.errors import SaganError

    if text is None:
        return None
    try:
        pts = []
        for part in text.split(";"):
            r, c = part.split(",")
            pts.append((float(r), float(c)))
        return tuple(pts)
    except ValueError:
        raise SaganError(f"--points {text!r}: write row,column pairs separated by ';'") from None


def _attention(args: argparse.Namespace) -> int:
    from PIL import Image

    from sagan.images.attention_figure import DEFAULT_POINTS, attention_figure
    from sagan.images.export import load_generator
    from sagan.training import pick_device

    refuse_existing([args.out])
    gen = load_generator(args.source, device=pick_device(args.device))
    figure = attention_figure(
        gen,
        n=args.n,
        points=_points(args.points) or DEFAULT_POINTS,
        seed=args.seed,
        labels=args.labels,
        scale=args.scale,
    )
    with writing(args.out):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(figure).save(args.out)
    print(f"wrote {args.out}")
    return 0


def _add_export(commands: Any) -> None:
    p = commands.add_parser(
        "export",
        help="export the EMA generator as safetensors + JSON",
        description="Write SOURCE's (EMA) generator to DIR/generator.safetensors and "
        "DIR/generator.json; load it with sagan.load_generator(DIR).",
    )
    p.add_argument("source", metavar="SOURCE", help="checkpoint file, run folder or export folder")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from sagan.images.export import export_generator

    out = export_generator(args.source, args.out)
    print(f"exported to {out}")
    return 0


def _add_eval(commands: Any) -> None:
    p = commands.add_parser(
        "eval",
        help="metrics of a generator: FID/KID/IS/PR (InceptionV3) and offline ones",
        description="Evaluate SOURCE's (EMA) generator. With no --metrics, every metric that "
        "can run for this generator on this machine, with one line naming the skipped ones "
        "and why. InceptionV3 metrics (fid, kid, is, pr) need torch-sagan[inception] and the "
        "weights file; offline: fd_digits, kid_digits, is_digits, pr_digits, coverage, "
        "accuracy (digit generators), fd_random (any), constraint (--data longrange). Real "
        "features are cached per (data set, network, resolution, n). Papers use --n 50000.",
    )
    _add_source(p)
    p.add_argument("--metrics", help="comma list, e.g. fid,kid,pr (default: all that can run)")
    p.add_argument("--n", type=int, default=5000, help="generated images (5000)")
    p.add_argument("--n-real", type=int, help="real images (default: --n, at most all)")
    p.add_argument(
        "--real", help="real data set: name or folder (default: the one SOURCE trained on)"
    )
    p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="noise seed (0)")
    p.add_argument("--batch", type=int, default=250, help="images per forward pass (250)")
    p.add_argument(
        "--inception-weights",
        type=Path,
        metavar="PATH",
        help="InceptionV3 weights file (default: torch hub cache, else download)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object name -> value")
    p.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace) -> int:
    import json
    import sys

    from sagan.errors import SaganError
    from sagan.images.evaluate import evaluate
    from sagan.images.export import load_generator
    from sagan.training import pick_device

    for flag in ("n", "n_real", "batch"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SaganError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    device = pick_device(args.device)
    gen = load_generator(args.source, device=device)
    try:
        result = evaluate(
            gen,
            metrics=args.metrics.split(",") if args.metrics else None,
            real=args.real,
            n=args.n,
            n_real=args.n_real,
            batch=args.batch,
            seed=args.seed,
            device=device,
            inception_weights=args.inception_weights,
        )
    except SaganError as exc:
        if args.real is None or "--data" not in str(exc):
            raise
        # the data loader's messages name train's flag; here the folder came from --real
        raise SaganError(str(exc).replace("--data", "--real")) from None
    if result.skipped:
        print(result.skipped_line(), file=sys.stderr)
    if args.json:
        print(json.dumps(result.values))
    else:
        for name, value in result.values.items():
            print(f"{name}: {value:.4f}")
    return 0


def _add_report(commands: Any) -> None:
    p = commands.add_parser(
        "report",
        help="write one self-contained HTML page about a training run",
        description="Write an HTML page of RUN_DIR (images embedded, no external files): "
        "headline numbers, loss, attention-gamma and metric curves, sample grids, the "
        "attention figure of the newest checkpoint and the config.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run folder written by train")
    p.add_argument(
        "--out", type=Path, metavar="FILE", help="HTML file to write (RUN_DIR/report.html)"
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps, auto")
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from sagan.images.report import write_report
    from sagan.training import pick_device

    out = write_report(args.run_dir, args.out, device=pick_device(args.device))
    print(f"wrote {out}")
    return 0


def register(commands: Any) -> None:
    """Add the image sub-commands to the top-level ``sagan`` parser."""
    _add_train(commands)
    _add_sample(commands)
    _add_attention(commands)
    _add_export(commands)
    _add_eval(commands)
    _add_report(commands)
