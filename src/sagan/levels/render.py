"""Draw a level as an RGB image: our own tiles, one clear colour and glyph per tile type."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from sagan.levels.tiles import AVATAR, COLOURS, DOOR, FLOOR, KEY, WALL

__all__ = ["render_level", "render_levels"]


def _tile(draw: ImageDraw.ImageDraw, tile: int, x: int, y: int, s: int) -> None:
    box = (x, y, x + s - 1, y + s - 1)
    if tile == WALL:
        draw.rectangle(box, fill=COLOURS[WALL])
        draw.line((x, y + s // 2, x + s - 1, y + s // 2), fill=(95, 95, 108))  # brick course
        return
    draw.rectangle(box, fill=COLOURS[FLOOR])
    m = max(1, s // 6)
    inner = (x + m, y + m, x + s - 1 - m, y + s - 1 - m)
    colour = COLOURS[tile]
    if tile == AVATAR:
        draw.ellipse(inner, fill=colour, outline=(0, 0, 0))
    elif tile == KEY:
        r = s // 4
        draw.ellipse((x + m, y + m, x + m + 2 * r, y + m + 2 * r), fill=colour, outline=(0, 0, 0))
        draw.rectangle((x + m + r, y + m + r - 1, x + s - 1 - m, y + m + r + 1), fill=colour)
    elif tile == DOOR:
        draw.rectangle(inner, fill=colour, outline=(0, 0, 0))
        draw.line((x + s // 2, y + m, x + s // 2, y + s - 1 - m), fill=(0, 0, 0))
    elif tile != FLOOR:  # enemies: diamonds
        cx, cy, r = x + s // 2, y + s // 2, s // 2 - m
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)


def render_level(level: np.ndarray, tile_size: int = 16) -> np.ndarray:
    """``(H, W)`` tile indices -> ``(H * s, W * s, 3)`` uint8 image."""
    level = np.asarray(level)
    h, w = level.shape
    img = Image.new("RGB", (w * tile_size, h * tile_size))
    draw = ImageDraw.Draw(img)
    for r in range(h):
        for c in range(w):
            _tile(draw, int(level[r, c]), c * tile_size, r * tile_size, tile_size)
    return np.asarray(img)


def render_levels(
    levels: Sequence[np.ndarray], tile_size: int = 16, ncol: int = 4, gap: int = 4
) -> np.ndarray:
    """A grid of rendered levels (all one size), white gaps between them -> (H, W, 3) uint8."""
    tiles = [render_level(lv, tile_size) for lv in levels]
    th, tw, _ = tiles[0].shape
    ncol = min(ncol, len(tiles))
    nrow = -(-len(tiles) // ncol)
    out = np.full((nrow * (th + gap) - gap, ncol * (tw + gap) - gap, 3), 255, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncol)
        out[r * (th + gap) : r * (th + gap) + th, c * (tw + gap) : c * (tw + gap) + tw] = t
    return out
