"""The levels a run starts from: the package's own Zelda levels, or a folder of level files."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import numpy as np

from sagan.levels.format import common_shape, parse_level, read_levels

__all__ = ["BUILTIN", "load_levels", "with_mirrors"]

BUILTIN = "builtin"


def _builtin() -> list[tuple[str, np.ndarray]]:
    folder = resources.files("sagan.levels") / "assets"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".txt")), key=lambda f: f.name)
    return [(f.name, parse_level(f.read_text(encoding="utf-8"), f.name)) for f in files]


def load_levels(source: str | Path | None = None) -> list[tuple[str, np.ndarray]]:
    """``[(name, level (H, W) tile indices)]`` from ``source``: None or ``"builtin"`` for the
    8 levels shipped with the package, else a folder of ``*.txt`` level files (files that are
    not levels are left out with one line on stderr). All levels must share one size."""
    if source is None or str(source) == BUILTIN:
        levels = _builtin()
    else:
        found, skipped = read_levels(source)
        levels = [(p.name, lv) for p, lv in found]
        if skipped:
            print(
                f"levels: left out {len(skipped)} file(s) that are not levels, e.g. {skipped[0]}",
                file=sys.stderr,
            )
    common_shape(lv for _, lv in levels)
    return levels


def with_mirrors(levels: np.ndarray, on: bool = True) -> np.ndarray:
    """Levels ``(N, H, W)`` -> ``(4N, H, W)``: the levels, then all of them mirrored left to
    right, then top to bottom, then both (a half turn), in that order; with ``on`` False (a
    run without ``train.mirror``), the levels as they are. Zelda's rules know no
    left or right, up or down (the avatar and the enemies move in four directions), so a
    mirrored level plays as the level does, with a solution of the same length (``--mirror``,
    our addition)."""
    levels = np.asarray(levels)
    if not on:
        return levels
    return np.concatenate(
        [levels, levels[:, :, ::-1], levels[:, ::-1, :], levels[:, ::-1, ::-1]]
    ).copy()
