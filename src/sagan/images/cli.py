"""Command-line sub-commands of the image application: train, sample, attention, export.

Parsers import nothing heavy; each handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sagan.errors import writing

__all__ = ["TRAIN_FLAGS", "register"]

S = argparse.SUPPRESS


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 16 or 16,32, got {text!r}"
        ) from None


# flag -> (config section, field); the config dataclasses validate every value.
TRAIN_FLAGS: dict[str, tuple[str, str]] = {
    "data": ("data", "data"),
    "conditional": ("data", "conditional"),
    "num_workers": ("data", "num_workers"),
    "arch": ("model", "arch"),
    "resolution": ("model", "resolution"),
    "ch": ("model", "ch"),
    "z_dim": ("model", "z_dim"),
    "attention": ("model", "attention"),
    "g_spectral_norm": ("model", "g_spectral_norm"),
    "batch_size": ("train", "batch_size"),
    "steps": ("train", "steps"),
    "lr_g": ("train", "lr_g"),
    "lr_d": ("train", "lr_d"),
    "beta1": ("train", "beta1"),
    "beta2": ("train", "beta2"),
    "n_dis": ("train", "n_dis"),
    "loss": ("train", "loss"),
    "ema_decay": ("train", "ema_decay"),
    "seed": ("train", "seed"),
    "save_every": ("train", "save_every"),
    "sample_every": ("train", "sample_every"),
    "log_every": ("train", "log_every"),
    "keep_checkpoints": ("train", "keep_checkpoints"),
    "eval_every": ("train", "eval_every"),
    "eval_n": ("train", "eval_n"),
    "eval_metrics": ("train", "eval_metrics"),
    "max_bad_steps": ("train", "max_bad_steps"),
    "sync_bn": ("train", "sync_bn"),
    "device": ("train", "device"),
    "precision": ("train", "precision"),
    "compile": ("train", "compile"),
}


def _add_train(commands: Any) -> None:
    p = commands.add_parser(
        "train",
        help="train an image SAGAN (default: built-in digits, about 10 minutes on 2 CPU cores)",
        description=(
            "Train a Self-Attention GAN on images. Settings come from the defaults, then "
            "--config FILE (YAML with sections model, data, train), then these flags. The run "
            "folder gets config.yaml, stats.jsonl, samples/*.png and ckpt-*.pt."
        ),
        argument_default=S,
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        metavar="NAME|DIR",
        help="digits (default, built in), mnist, cifar10 (downloaded) or a folder of images",
    )
    d.add_argument(
        "--conditional",
        action=argparse.BooleanOptionalAction,
        help="use class labels (conditional BN + projection D); folders: sub-folder names "
        "(default: when the data set has labels)",
    )
    d.add_argument("--num-workers", type=int, metavar="N", help="loader processes for folders")
    m = p.add_argument_group("model")
    m.add_argument("--arch", metavar="NAME", help="resnet (default) or dcgan")
    m.add_argument("--resolution", type=int, metavar="PX", help="image size (default 32)")
    m.add_argument("--ch", type=int, metavar="N", help="base width (default 16; the paper uses 64)")
    m.add_argument("--z-dim", type=int, metavar="N", help="latent size (default 128)")
    m.add_argument(
        "--attention",
        type=_int_list,
        nargs="*",
        metavar="RES",
        help="feature resolutions with self-attention, e.g. --attention 16 32; "
        "no value = none (default 16)",
    )
    m.add_argument(
        "--g-spectral-norm",
        action=argparse.BooleanOptionalAction,
        help="spectral norm in G (default on, as in the paper)",
    )
    t = p.add_argument_group("training")
    t.add_argument(
        "--batch-size", type=int, metavar="N", help="default 32 (sized for the 2-core quick start)"
    )
    t.add_argument("--steps", type=int, metavar="N", help="total iterations of the run")
    t.add_argument("--lr-g", type=float, metavar="LR", help="G learning rate (default 1e-4)")
    t.add_argument("--lr-d", type=float, metavar="LR", help="D learning rate (default 4e-4)")
    t.add_argument("--beta1", type=float, metavar="B", help="Adam beta1 (default 0)")
    t.add_argument("--beta2", type=float, metavar="B", help="Adam beta2 (default 0.9)")
    t.add_argument("--n-dis", type=int, metavar="N", help="D steps per G step (default 1)")
    t.add_argument("--loss", metavar="NAME", help="hinge (default) or nonsaturating")
    t.add_argument("--ema-decay", type=float, metavar="D", help="G EMA decay, 0 = off (0.999)")
    t.add_argument("--seed", type=int, metavar="S", help="random seed (default 0)")
    t.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda, cuda:N, mps")
    t.add_argument(
        "--precision",
        metavar="P",
        help="32 (default), bf16 (autocast; CPU with AMX/AVX-512 and CUDA) or 16 (CUDA)",
    )
    t.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="torch.compile G and D (off; pays on a GPU, not on a few CPU cores)",
    )
    b = p.add_argument_group("run folder")
    b.add_argument("--save-every", type=int, metavar="N", help="checkpoint period (500)")
    b.add_argument("--sample-every", type=int, metavar="N", help="sample-grid period (250)")
    b.add_argument("--log-every", type=int, metavar="N", help="stats period (10)")
    b.add_argument("--keep-checkpoints", type=int, metavar="K", help="checkpoints kept (3)")
    b.add_argument(
        "--eval-every",
        type=int,
        metavar="N",
        help="evaluate every N steps and keep best.pt by FID / FD-digits / FD-random (0 = off)",
    )
    b.add_argument("--eval-n", type=int, metavar="N", help="images per evaluation (1000)")
    b.add_argument(
        "--eval-metrics", metavar="LIST", help="comma list for --eval-every (default: all that run)"
    )
    t.add_argument(
        "--sync-bn",
        action=argparse.BooleanOptionalAction,
        help="under torchrun, synchronise G's BatchNorm statistics across processes (off)",
    )
    b.add_argument(
        "--max-bad-steps",
        type=int,
        metavar="K",
        help="roll back to the last good checkpoint after K non-finite iterations in a row (20)",
    )
    b.add_argument("--config", type=Path, metavar="FILE", help="YAML file of settings")
    b.add_argument("--out", type=Path, metavar="DIR", help="run folder (default: runs/NNNNN-...)")
    b.add_argument("--runs", type=Path, metavar="DIR", help="root of numbered runs (runs)")
    b.add_argument(
        "--resume",
        metavar="auto|PATH",
        help="continue the newest run (auto), a run folder or a checkpoint file",
    )
    b.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar (default: when the terminal is interactive)",
    )
    p.set_defaults(handler=_train)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    given = vars(args)
    out: dict[str, dict[str, Any]] = {}
    for flag, (section, key) in TRAIN_FLAGS.items():
        if flag in given:
            value = given[flag]
            if flag == "attention":  # nargs="*" of lists: flatten
                value = [r for part in value for r in part]
            out.setdefault(section, {})[key] = value
    return out


def _train(args: argparse.Namespace) -> int:
    from sagan.config import load_yaml, merge
    from sagan.errors import SaganError
    from sagan.images.config import RunConfig
    from sagan.images.train import train

    overrides = _overrides(args)
    resume = getattr(args, "resume", None)
    runs = getattr(args, "runs", Path("runs"))
    out = getattr(args, "out", None)
    if resume is not None:
        if out is not None or getattr(args, "config", None) is not None:
            raise SaganError(
                "--resume continues a run in its own folder with its own config; "
                "drop --out/--config"
            )
        run_dir = train(
            resume=resume,
            runs_root=runs,
            overrides=overrides,
            progress=getattr(args, "progress", None),
        )
    else:
        base = load_yaml(args.config) if getattr(args, "config", None) else {}
        cfg = RunConfig.from_dict(merge(base, overrides))
        run_dir = train(cfg, out=out, runs_root=runs, progress=getattr(args, "progress", None))
    print(f"run folder: {run_dir}")
    return 0


def _parse_labels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"labels are class numbers like 3 or 0,1,2; got {text!r}"
        ) from None


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
    p.add_argument("--n", type=int, default=64, help="number of images (64)")
    p.add_argument("--labels", type=_parse_labels, help="class(es): one for all, or one per image")
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument("--out", type=Path, required=True, help="grid .png or folder")
    p.add_argument("--nrow", type=int, default=8, help="images per grid row (8)")
    p.set_defaults(handler=_sample)


def _sample(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from sagan.images.export import load_generator
    from sagan.images.grid import save_grid, to_uint8
    from sagan.training import pick_device

    gen = load_generator(args.source, device=pick_device(args.device))
    images = gen.sample(
        args.n, labels=args.labels, generator=torch.Generator().manual_seed(args.seed)
    )
    images = images * 2 - 1  # grid helpers take [-1, 1]
    with writing(args.out):
        if args.out.suffix.lower() == ".png":
            save_grid(images, args.out, nrow=args.nrow)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            for i, pic in enumerate(to_uint8(images)):
                Image.fromarray(pic.squeeze(-1) if pic.shape[-1] == 1 else pic).save(
                    args.out / f"{i:05d}.png"
                )
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
    p.add_argument("--n", type=int, default=4, help="images, one per row (4)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument("--labels", type=_parse_labels, help="class(es) for a conditional generator")
    p.add_argument(
        "--points",
        metavar="R,C;R,C",
        help="query points as row,column fractions in [0,1), e.g. '0.3,0.3;0.5,0.7'",
    )
    p.add_argument("--scale", type=int, default=4, help="pixel enlargement (4)")
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
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
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
