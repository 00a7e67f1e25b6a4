"""``sagan levels ...``: the level application's sub-commands.

Parsers import nothing heavy; each handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sagan.errors import int_in, refuse_existing, writing

__all__ = ["register"]

_LAST = "a run folder's newest checkpoint instead of its best.pt (kept by --eval-every)"


def _check(args: argparse.Namespace) -> int:
    from sagan.errors import SaganError
    from sagan.levels.format import read_level
    from sagan.levels.playability import check_playable

    all_ok = True
    for file in args.files:
        try:
            result = check_playable(read_level(file))
            line = result.line(str(file))
        except SaganError as exc:
            result, line = None, f"{file}: unplayable: not a level ({exc})"
        all_ok &= result is not None and result.playable
        print(line)
    return 0 if all_ok else 1


def _render(args: argparse.Namespace) -> int:
    from PIL import Image

    from sagan.levels.format import common_shape, level_to_text, read_level
    from sagan.levels.render import render_levels

    refuse_existing([args.out])
    levels = [read_level(f) for f in args.files]
    common_shape(levels)
    image = render_levels(levels, tile_size=args.tile_size, ncol=args.ncol)
    with writing(args.out):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(args.out)
    if args.text:
        print("\n".join(level_to_text(lv) for lv in levels), end="")
    print(f"wrote {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from sagan.errors import SaganError
    from sagan.levels.config import CONDITION_ADDITIONS, VARIANTS, LevelRunConfig
    from sagan.levels.train import train_levels
    from sagan.training.cli import run_train

    extra: dict[str, Any] = {}
    if args.variant is not None:
        if args.variant not in VARIANTS:
            raise SaganError(f"--variant {args.variant!r}: use one of {', '.join(VARIANTS)}")
        attention, conditional = VARIANTS[args.variant]
        extra["model"] = {"attention": attention, "conditional": conditional}
        if not conditional:  # no condition: the default preset's conditioning additions go
            extra["model"] |= dict.fromkeys(CONDITION_ADDITIONS, False)
            weights = ("place_weight", "request_weight", "rank_weight", "count_weight")
            extra["train"] = dict.fromkeys(weights, 0.0)
    if args.no_bootstrap:
        extra["bootstrap"] = {"every": 0}
    return run_train(args, args.flags, train_levels, LevelRunConfig.from_dict, extra)


def _load(args: argparse.Namespace) -> Any:
    """The run's best.pt (unless --last) or newest checkpoint; says which on stderr."""
    from sagan.levels.evaluate import load_level_gan

    gan = load_level_gan(args.source, best=not args.last)
    if gan.path is not None and gan.path.name == "best.pt" and Path(args.source).is_dir():
        print(f"using {gan.path} (step {gan.step}; --last for the newest checkpoint)",
              file=sys.stderr)  # fmt: skip
    return gan


def _generate(args: argparse.Namespace) -> int:
    from PIL import Image

    from sagan.errors import SaganError
    from sagan.levels.conditions import parse_condition
    from sagan.levels.format import gvgai_alphabet, read_level_mapping, write_level
    from sagan.levels.render import render_levels
    from sagan.levels.tiles import TILES

    png = args.format == "text" and args.out.suffix.lower() == ".png"
    if png:
        targets = [args.out]
    elif args.format == "gvgai":
        targets = [args.out / f"zelda_lvl{args.first_index + i}.txt" for i in range(args.n)]
    else:
        targets = [args.out / f"level-{i:05d}.txt" for i in range(args.n)]
    if args.first_index < 0:
        raise SaganError(f"--first-index must be >= 0, got {args.first_index}")
    refuse_existing(
        targets, "choose another --out" + (" or --first-index" if args.format == "gvgai" else "")
    )
    alphabet = TILES if args.game is None else gvgai_alphabet(read_level_mapping(args.game))
    request, length = parse_condition(args.condition)
    single = {k: v for k, v in request.items() if k in ("avatar", "key", "door") and v != 1}
    if args.playable and single:
        name, count = next(iter(single.items()))
        raise SaganError(
            f"--condition {name}={count} with --playable: a playable level has exactly one "
            "avatar, key and door; ask for 1 or drop --playable"
        )
    gan = _load(args)
    if request and gan.conditional and not gan.cfg.model.condition_norm:
        print(
            "note: this model has the paper's conditioning, which hardly follows requested "
            "counts (README: Conditioning); train with --condition-counts --condition-norm",
            file=sys.stderr,
        )
    if length is not None and not gan.cfg.model.condition_length:
        print(
            "note: this model was not trained with --condition-length: length=... is not asked "
            "of it, only tested (with --as-asked)",
            file=sys.stderr,
        )
    if args.playable or args.as_asked or args.distinct:
        levels, tried = gan.generate_passing(
            args.n,
            request,
            seed=args.seed,
            playable=args.playable,
            as_asked=args.as_asked,
            distinct=args.distinct,
            max_tries=args.max_tries,
            length=length,
        )
        print(f"kept {args.n} of {tried} generated levels ({100 * args.n / tried:.1f}%)")
    else:
        levels, _ = gan.generate(args.n, request, seed=args.seed, length=length)
    with writing(args.out):
        if png:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(render_levels(list(levels), tile_size=16, ncol=args.ncol)).save(
                args.out
            )
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            for target, level in zip(targets, levels, strict=True):
                write_level(target, level, alphabet)
    print(f"wrote {args.n} levels to {args.out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from sagan.errors import SaganError
    from sagan.levels.evaluate import evaluate_levels

    if args.n < 1:
        raise SaganError(f"--n must be >= 1, got {args.n}")
    values = evaluate_levels(_load(args), n=args.n, seed=args.seed)
    if args.json:
        print(json.dumps(values))
    else:
        for name, value in values.items():
            print(f"{name}: {value:.4g}")
    return 0


def register(commands: Any) -> None:
    """Add ``sagan levels`` and its sub-commands to the top-level parser."""
    p = commands.add_parser(
        "levels",
        help="CESAGAN levels for GVGAI Zelda: train, generate, eval, check, render",
        description="Conditional self-attention GAN levels for the GVGAI game Zelda "
        "(Torrado et al. 2020), with bootstrapping: train, generate, evaluate, check "
        "playability and render.",
    )
    sub = p.add_subparsers(dest="levels_command", metavar="COMMAND", required=True)

    from sagan.levels.config import LevelRunConfig
    from sagan.training.cli import add_train_parser

    t = add_train_parser(
        sub,
        "train",
        config_class=LevelRunConfig,
        help="train a level GAN with bootstrapping",
        description="Train CESAGAN (default), SAGAN or a DCGAN-style level GAN on the built-in "
        "levels or --levels DIR. Every --bootstrap-every steps, generated levels that are "
        "playable and at least --min-distance tiles from every training level join the "
        "training set. Settings: defaults < --config FILE (YAML with sections model, train, "
        "bootstrap) < flags. The run folder gets config.yaml, stats.jsonl, samples/, "
        "bootstrap/ and ckpt-*.pt.",
        runs_default="runs/levels",
        handler=_train,
    )
    t.add_argument(
        "--variant",
        help="cesagan (default), sagan (no conditioning) or dcgan: sets --attention and "
        "--conditional",
    )
    t.add_argument("--no-bootstrap", action="store_true", help="train on the given levels only")

    g = sub.add_parser(
        "generate",
        help="generate levels",
        description="Generate levels with SOURCE's (EMA) generator. --condition fixes tile "
        "counts for a cesagan model, e.g. 'enemies=3' or 'enemy1=2,enemy2=0'; the other "
        "counts come from random training levels. --playable, --as-asked and --distinct "
        "generate and test: levels are drawn until --n pass. --out FILE.png draws them; any "
        "other --out is a folder that gets one level-NNNNN.txt per level (--format gvgai: "
        "zelda_lvlN.txt). Existing files are never overwritten.",
    )
    g.add_argument("source", metavar="SOURCE", help="level run folder or checkpoint")
    g.add_argument("--last", action="store_true", help=_LAST)
    g.add_argument("--n", type=int_in(1, 10**7), default=16, help="levels (16)")
    g.add_argument(
        "--condition",
        help="requested counts, NAME=COUNT[,NAME=COUNT], and/or a solution length, "
        "length=MIN..MAX (moves)",
    )
    g.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="0")
    g.add_argument("--playable", action="store_true", help="keep only playable levels")
    g.add_argument(
        "--as-asked",
        action="store_true",
        help="keep only levels whose counts (and solution length) match --condition",
    )
    g.add_argument("--distinct", action="store_true", help="keep no level twice")
    g.add_argument(
        "--max-tries",
        type=int,
        default=100_000,
        help="levels to generate at most when filtering (100000)",
    )
    g.add_argument("--ncol", type=int_in(1, 1_000), default=4, help="levels per row of the PNG (4)")
    g.add_argument(
        "--format",
        choices=["text", "gvgai"],
        default="text",
        help="text: level-NNNNN.txt (or a PNG); gvgai: zelda_lvlN.txt files a GVGAI build "
        "loads from examples/gridphysics/ (text)",
    )
    g.add_argument(
        "--first-index",
        type=int,
        default=5,
        help="N of the first zelda_lvlN.txt (5: after GVGAI's own levels 0-4)",
    )
    g.add_argument(
        "--game",
        type=Path,
        help="a VGDL game description (GVGAI's zelda.txt) whose LevelMapping gives the "
        "characters to write (default: GVGAI's zelda.txt mapping)",
    )
    g.add_argument("--out", type=Path, required=True, help="FILE.png or a folder")
    g.set_defaults(handler=_generate)

    e = sub.add_parser(
        "eval",
        help="%% playable, %% duplicates, novelty, diversity, requests met",
        description="Generate --n levels (the paper uses 15000) and report the paper's "
        "measures: % playable, % unique among playable, % duplicates, mean novelty (ours: "
        "Hamming distance to the nearest starting level); and ours: distinct novel playable "
        "levels (playable, at least 10 tiles from every starting level and every other "
        "counted one), mean solution length, the diversity of the levels (mean pairwise "
        "Hamming distance, avatar/key/door placements, the largest share of levels with the "
        "key or the door on one cell, tile entropy) and, for a conditional model, how often "
        "requested counts and solution lengths come out as asked.",
    )
    e.add_argument("source", metavar="SOURCE", help="level run folder or checkpoint")
    e.add_argument("--last", action="store_true", help=_LAST)
    e.add_argument("--n", type=int_in(1, 10**7), default=15000, help="levels (15000)")
    e.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0, help="0")
    e.add_argument("--json", action="store_true", help="print one JSON object name -> value")
    e.set_defaults(handler=_eval)

    c = sub.add_parser(
        "check",
        help="is each level playable?",
        description="Print 'FILE: playable (solution length L)' or 'FILE: unplayable: REASON' "
        "for each file; exit 0 only when every file is playable (1 otherwise). Playable: "
        "closed wall border; exactly one avatar A, key + and door g; enemies on at most 60% "
        "of open tiles; the avatar reaches the key (not through the door) and then the door.",
    )
    c.add_argument("files", metavar="FILE", nargs="+", type=Path, help="level text files")
    c.set_defaults(handler=_check)

    r = sub.add_parser(
        "render",
        help="draw levels as a PNG",
        description="Draw level files (all one size) as one PNG grid; --text also prints them.",
    )
    r.add_argument("files", metavar="FILE", nargs="+", type=Path, help="level text files")
    r.add_argument("--out", type=Path, required=True, help="PNG file to write")
    r.add_argument("--tile-size", type=int_in(2, 256), default=16, help="pixels per tile (16)")
    r.add_argument("--ncol", type=int_in(1, 1_000), default=4, help="levels per row (4)")
    r.add_argument("--text", action="store_true", help="print the levels as text too")
    r.set_defaults(handler=_render)
