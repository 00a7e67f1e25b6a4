"""``sagan pose ...``: train, eval and predict. Parsers import nothing heavy."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from sagan.errors import int_in, refuse_existing, writing

__all__ = ["register"]


def _train(args: argparse.Namespace) -> int:
    from sagan.pose.config import PoseRunConfig
    from sagan.pose.train import train_pose
    from sagan.training.cli import run_train

    return run_train(args, args.flags, train_pose, PoseRunConfig.from_dict)


def _eval(args: argparse.Namespace) -> int:
    import json

    from sagan.errors import SaganError
    from sagan.pose.datasets import AnnotatedPoseDataset
    from sagan.pose.metrics import metric_for
    from sagan.pose.multiscale import RELEASED_SCALES
    from sagan.pose.train import evaluate_pose, load_pose_model, validation_set

    G, cfg = load_pose_model(args.source)
    t = cfg.train
    if (args.annotations is None) != (args.images is None):
        raise SaganError("--annotations and --images go together")
    if args.annotations is not None:
        data = AnnotatedPoseDataset.from_file(
            args.annotations, args.images, t.resolution, t.heatmap, lsp_split="test"
        )
    else:
        data = validation_set(cfg, args.n or 200)
    if data.joints != cfg.model.joints:
        raise SaganError(
            f"the model predicts {cfg.model.joints} joints but the annotations have "
            f"{data.joints}; evaluate MPII-order models on MPII, LSP models on LSP"
        )
    n = args.n or len(data)
    scales = RELEASED_SCALES if args.multiscale else None
    values = evaluate_pose(G, data, n=n, flip=not args.no_flip, scales=scales)
    metric = metric_for(data.joints).label
    note = ""
    if data.estimated_reference:
        note = " (head sizes estimated: these annotations have no head boxes; not official)"
    how = " (multi-scale: " + ", ".join(map(str, RELEASED_SCALES)) + ")" if scales else ""
    print(f"{metric} on {min(n, len(data))} people{how}{note}", file=sys.stderr)
    if args.json:
        print(json.dumps(values))
    else:
        for name, value in values.items():
            print(f"{name}: {value:.1f}")
    return 0


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box {text!r}: write x,y,w,h in pixels") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise argparse.ArgumentTypeError(f"--box {text!r}: x,y,w,h must be finite numbers")
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"--box {text!r}: width and height must be > 0")
    return x, y, w, h


def _predict(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from sagan.errors import SaganError
    from sagan.pose.predict import draw_skeleton, predict_image
    from sagan.pose.train import load_pose_model

    refuse_existing([args.out])
    G, cfg = load_pose_model(args.model)
    try:
        image = Image.open(args.image).convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise SaganError(
            f"{args.image}: not a readable image ({exc}); give a JPEG or PNG photo"
        ) from None
    joints = predict_image(G, image, cfg.train.resolution, cfg.train.heatmap, args.box)
    with writing(args.out):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        draw_skeleton(image, joints).save(args.out)
    print(f"wrote {args.out}")
    return 0


def register(commands: Any) -> None:
    """Add ``sagan pose`` and its sub-commands."""
    p = commands.add_parser(
        "pose",
        help="pose estimation with self-attention hourglasses (Hg-SAGAN): train, eval, predict",
        description="Stacked hourglasses with self-attention and an adversarial hourglass "
        "discriminator (Wang et al. 2019), trained on built-in synthetic figures or on MPII / "
        "LSP annotations.",
    )
    sub = p.add_subparsers(dest="pose_command", metavar="COMMAND", required=True)
    from sagan.pose.config import PoseRunConfig
    from sagan.training.cli import add_train_parser

    add_train_parser(
        sub,
        "train",
        config_class=PoseRunConfig,
        help="train on the synthetic figures or on MPII / LSP",
        description="Train stacked hourglasses with self-attention and, unless "
        "--no-adversarial, the adversarial hourglass discriminator. Settings: defaults < "
        "--config FILE (YAML with sections model, train, data) < flags. The run folder gets "
        "config.yaml, stats.jsonl and ckpt-*.pt.",
        runs_default="runs/pose",
        handler=_train,
    )
    e = sub.add_parser(
        "eval", help="PCKh@0.5 (MPII order) or PCK@0.2 (LSP) on the run's held-out people"
    )
    e.add_argument("source", metavar="SOURCE", help="pose run folder or checkpoint")
    e.add_argument(
        "--annotations",
        type=Path,
        help="evaluate on every person of this file instead (LSP joints.mat: its test half; "
        "MPII's official .mat: every training-image person, so only for a model that did not "
        "train on them)",
    )
    e.add_argument("--images", type=Path, help="the folder of those annotations' images")
    e.add_argument("--n", type=int_in(1, 10**7), help="people (synthetic: 200; real: all)")
    e.add_argument("--no-flip", action="store_true", help="skip the flip test")
    e.add_argument(
        "--multiscale",
        action="store_true",
        help="multi-scale test with the released six crop widths (0.8 to 1.3 times as "
        "wide), heat-maps averaged in the standard crop's frame (ours; the released code "
        "fuses in the photo's); six times the work",
    )
    e.add_argument("--json", action="store_true", help="one JSON object: joint -> PCKh")
    e.set_defaults(handler=_eval)
    r = sub.add_parser("predict", help="draw the predicted skeleton on your image")
    r.add_argument("image", type=Path, metavar="IMAGE")
    r.add_argument("--model", required=True, help="pose run folder or checkpoint")
    r.add_argument(
        "--box",
        type=_box,
        help="x,y,w,h around the person; the crop adds a quarter around it, as in training "
        "(default: the whole image is the crop)",
    )
    r.add_argument("--out", type=Path, required=True, help="overlay PNG to write")
    r.set_defaults(handler=_predict)
