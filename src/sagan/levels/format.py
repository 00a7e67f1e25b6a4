"""Read and write GVGAI level files: one row of tile characters per line.

A level is held as an ``int64`` array ``(H, W)`` of channel indices into :data:`TILES`. Any size
is accepted (the original game uses 9 x 13); unknown characters and ragged rows are rejected
with an error naming the file, line and column.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sagan.errors import SaganError
from sagan.levels.tiles import TILES, index_of

__all__ = [
    "GVGAI_SPRITES",
    "common_shape",
    "gvgai_alphabet",
    "level_to_text",
    "parse_level",
    "read_level",
    "read_level_mapping",
    "read_levels",
    "write_level",
]


def parse_level(text: str, source: str = "<text>") -> np.ndarray:
    """Parse level text into ``(H, W)`` int64 tile indices.

    Trailing blank lines and ``\\r`` are ignored; blank lines inside the level are not allowed.
    """
    rows = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    if not rows or rows == [""]:
        raise SaganError(f"{source}: empty level; write one row of tiles ({TILES}) per line")
    width = len(rows[0])
    out = np.empty((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        if len(row) != width:
            raise SaganError(
                f"{source}:{r + 1}: row has {len(row)} tiles, the first row {width}; "
                "every row must have the same length"
            )
        for c, ch in enumerate(row):
            idx = index_of(ch)
            if idx is None:
                raise SaganError(
                    f"{source}:{r + 1}:{c + 1}: unknown tile {ch!r}; Zelda tiles are {TILES}"
                )
            out[r, c] = idx
    return out


def level_to_text(level: np.ndarray) -> str:
    """``(H, W)`` tile indices -> level text (rows joined by newlines, final newline)."""
    level = np.asarray(level)
    if level.ndim != 2 or level.size == 0:
        raise ValueError(f"expected a non-empty (H, W) level, got shape {level.shape}")
    if level.min() < 0 or level.max() >= len(TILES):
        raise ValueError(f"tile indices must lie in 0..{len(TILES) - 1}")
    return "\n".join("".join(TILES[i] for i in row) for row in level.tolist()) + "\n"


def read_level(path: str | Path) -> np.ndarray:
    """Read one level file; :class:`SaganError` with a one-line reason on failure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SaganError(f"{path}: no such level file; check the path") from None
    except IsADirectoryError:
        raise SaganError(f"{path} is a folder; give a level file (or use --levels DIR)") from None
    except UnicodeDecodeError:
        raise SaganError(f"{path}: not a text file; levels are rows of {TILES}") from None
    except OSError as exc:
        raise SaganError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_level(text, str(path))


def read_levels(
    folder: str | Path, pattern: str = "*.txt"
) -> tuple[list[tuple[Path, np.ndarray]], list[str]]:
    """Every level file in ``folder`` matching ``pattern``, sorted by name, and the reasons of
    the files that are not levels (e.g. a game description beside them), which are left out.
    :class:`SaganError` when no file is a level."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SaganError(
            f"--levels {folder}: no such folder of level files; give the folder of the GVGAI "
            "level .txt files"
        )
    files = sorted(p for p in folder.glob(pattern) if p.is_file())
    levels, skipped = [], []
    for p in files:
        try:
            levels.append((p, read_level(p)))
        except SaganError as exc:
            skipped.append(str(exc))
    if not levels:
        first = f" ({skipped[0]})" if skipped else ""
        raise SaganError(
            f"--levels {folder}: no {pattern} level files in it{first}; give the folder of the "
            "GVGAI level .txt files"
        )
    return levels, skipped


def write_level(path: str | Path, level: np.ndarray, alphabet: str = TILES) -> None:
    """Write ``level`` as text (atomically: a partial file never replaces a good one), one
    character per tile from ``alphabet`` (in channel order; see :func:`gvgai_alphabet`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    text = level_to_text(level)
    if alphabet != TILES:
        text = text.translate(str.maketrans(TILES, alphabet))
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SaganError(
            f"cannot write {path}: {exc.strerror or exc}; choose another --out (a writable "
            "place with free space)"
        ) from None


def common_shape(levels: Iterable[np.ndarray]) -> tuple[int, int]:
    """The common ``(H, W)`` of ``levels``, or :class:`SaganError` when they differ."""
    shapes = {tuple(lv.shape) for lv in levels}
    if len(shapes) != 1:
        raise SaganError(
            f"levels differ in size ({', '.join(f'{h}x{w}' for h, w in sorted(shapes))}); "
            "give levels of one size"
        )
    ((h, w),) = shapes
    return h, w


GVGAI_SPRITES = (
    ("wall",), ("floor",), ("nokey",), ("key",), ("goal",),
    ("monsterQuick",), ("monsterNormal",), ("monsterSlow",),
)  # fmt: skip
"""The sprites of GVGAI's ``zelda.txt`` each tile channel stands for (besides the floor under
it): wall, floor, the avatar without key, key, goal (door), and the three monsters."""


def read_level_mapping(path: str | Path) -> dict[str, tuple[str, ...]]:
    """The ``LevelMapping`` of a VGDL game description (GVGAI's ``zelda.txt``): character ->
    the sprites it places, e.g. ``{"g": ("floor", "goal"), "w": ("wall",)}``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SaganError(
            f"--game {path}: cannot read a game description ({exc}); give the game's VGDL file, "
            "e.g. zelda.txt"
        ) from None
    mapping: dict[str, tuple[str, ...]] = {}
    inside, indent = False, 0
    for line in lines:
        text = line.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        depth = len(text) - len(text.lstrip())
        if text.strip() == "LevelMapping":
            inside, indent = True, depth
            continue
        if inside and depth <= indent:
            break
        if inside:
            char, sep, sprites = text.strip().partition(">")
            if sep and len(char.strip()) == 1:
                mapping[char.strip()] = tuple(sprites.split())
    if not mapping:
        raise SaganError(f"--game {path}: no LevelMapping section; give GVGAI's zelda.txt")
    return mapping


def gvgai_alphabet(mapping: dict[str, tuple[str, ...]]) -> str:
    """The character of each tile channel (in :data:`TILES` order) under a game's level
    ``mapping`` (:func:`read_level_mapping`): the one that places the channel's sprite (with
    or without the floor under it). For GVGAI's own ``zelda.txt`` this is :data:`TILES`."""
    by_sprites = {tuple(s for s in v if s != "floor") or ("floor",): k for k, v in mapping.items()}
    missing = [s[0] for s in GVGAI_SPRITES if s not in by_sprites]
    if missing:
        raise SaganError(
            f"the game's LevelMapping has no character for {', '.join(missing)}; use GVGAI's "
            "zelda.txt (or one with the same sprites)"
        )
    return "".join(by_sprites[s] for s in GVGAI_SPRITES)
