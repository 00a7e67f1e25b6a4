"""``sagan levels ...``: the level application's sub-commands.

Parsers import nothing heavy; each handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


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

    from sagan.errors import SaganError
    from sagan.levels.format import common_shape, level_to_text, read_level
    from sagan.levels.render import render_levels

    levels = [read_level(f) for f in args.files]
    common_shape(levels)
    if args.tile_size < 2:
        raise SaganError(f"--tile-size must be >= 2, got {args.tile_size}")
    image = render_levels(levels, tile_size=args.tile_size, ncol=args.ncol)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(args.out)
    except (OSError, ValueError) as exc:
        raise SaganError(f"cannot write {args.out}: {exc}") from None
    if args.text:
        print("\n".join(level_to_text(lv) for lv in levels), end="")
    print(f"wrote {args.out}")
    return 0


def register(commands: Any) -> None:
    """Add ``sagan levels`` and its sub-commands to the top-level parser."""
    p = commands.add_parser(
        "levels",
        help="CESAGAN levels for GVGAI Zelda: check, render",
        description="Conditional self-attention GAN levels for the GVGAI game Zelda "
        "(Torrado et al. 2020): playability checks and rendering.",
    )
    sub = p.add_subparsers(dest="levels_command", metavar="COMMAND", required=True)

    c = sub.add_parser(
        "check",
        help="is each level playable?",
        description="Print 'FILE: playable (solution length L)' or 'FILE: unplayable: REASON' "
        "for each file; exit 0 only when every file is playable (1 otherwise). Playable: "
        "closed wall border; exactly one avatar A, key + and door g; enemies on at most 60%% "
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
    r.add_argument("--tile-size", type=int, default=16, help="pixels per tile (16)")
    r.add_argument("--ncol", type=int, default=4, help="levels per row (4)")
    r.add_argument("--text", action="store_true", help="print the levels as text too")
    r.set_defaults(handler=_render)
