"""Image grids as PNG files, with Pillow (no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["make_grid", "save_grid", "to_uint8"]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) floats in [-1, 1] -> (B, H, W, C) uint8, C = 1 or 3."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile (B, C, H, W) images in [-1, 1] into one (H', W', 3) uint8 array, ``nrow`` per row."""
    arr = to_uint8(images)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    b, h, w, c = arr.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / nrow)
    grid = np.zeros((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), np.uint8)
    for i in range(b):
        r, col = divmod(i, nrow)
        y0, x0 = padding + r * (h + padding), padding + col * (w + padding)
        grid[y0 : y0 + h, x0 : x0 + w] = arr[i]
    return grid


def save_grid(
    images: torch.Tensor, path: str | Path, nrow: int | None = None, *, scale: int = 1
) -> np.ndarray:
    """Write a grid of (B, C, H, W) images in [-1, 1] to ``path`` (PNG); returns the array.

    ``scale`` enlarges the picture by pixel repetition (nearest), handy for 32 px images.
    """
    grid = make_grid(images, nrow)
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return grid
