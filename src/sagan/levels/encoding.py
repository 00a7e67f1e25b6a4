"""Levels as network tensors: one-hot channels, padded to a size the networks like.

Padding: a level of H x W tiles is placed at the top-left of an S x S canvas (S the smallest
power of two >= max(H, W), at least 8; 16 for Zelda's 9 x 13) and the rest is filled with
wall tiles, which continue the level's own wall border; the generator learns to produce walls
there, and :func:`decode` crops them away. Powers of two let the generator double its feature
maps from 4 x 4 (4 -> 8 -> 16) and the discriminator halve them back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sagan.levels.tiles import TILES, WALL

__all__ = [
    "NUM_TILES",
    "canvas_size",
    "decode",
    "encode",
    "tile_counts",
]

NUM_TILES = len(TILES)


def canvas_size(height: int, width: int) -> int:
    """The padded side: the smallest power of two >= max(height, width), at least 8."""
    side = 8
    while side < max(height, width):
        side *= 2
    return side


def encode(levels: Sequence[np.ndarray] | np.ndarray, size: int | None = None) -> torch.Tensor:
    """``(N, H, W)`` tile indices -> one-hot ``(N, 8, S, S)`` float32, wall-padded."""
    arr = np.asarray(levels, dtype=np.int64)
    if arr.ndim == 2:
        arr = arr[None]
    n, h, w = arr.shape
    side = size or canvas_size(h, w)
    if side < max(h, w):
        raise ValueError(f"canvas {side} is smaller than the {h} x {w} levels")
    canvas = np.full((n, side, side), WALL, dtype=np.int64)  # (N, S, S)
    canvas[:, :h, :w] = arr
    onehot = F.one_hot(torch.from_numpy(canvas), NUM_TILES)  # (N, S, S, 8)
    return onehot.permute(0, 3, 1, 2).float().contiguous()  # (N, 8, S, S)


def decode(x: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Network output or one-hot ``(N, 8, S, S)`` -> ``(N, height, width)`` tile indices:
    arg-max over channels, cropped to the level's size."""
    if x.ndim != 4 or x.shape[1] != NUM_TILES:
        raise ValueError(f"expected (N, {NUM_TILES}, S, S), got {tuple(x.shape)}")
    return x[:, :, :height, :width].argmax(dim=1).cpu().numpy().astype(np.int64)


def tile_counts(levels: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """``(N, H, W)`` -> ``(N, 8)`` count of each tile type (channel order :data:`TILES`)."""
    arr = np.asarray(levels, dtype=np.int64)
    if arr.ndim == 2:
        arr = arr[None]
    flat = arr.reshape(len(arr), -1)  # (N, H*W)
    return np.stack([(flat == t).sum(axis=1) for t in range(NUM_TILES)], axis=1)
