"""How different a set of levels is from itself: measures that a set of near-copies of one
layout cannot pass.

Torrado et al. count duplicates (identical levels) only. A generator that has collapsed onto
one layout and varies a few enemies or walls makes thousands of "distinct" levels that a
designer would call one. These measures (our choice of measures, for this library) catch that:

* :func:`mean_pairwise_hamming`: the mean number of tiles in which two levels of the set
  differ, over all pairs (exact, from per-cell tile counts);
* :func:`placements`: distinct (avatar, key, door) placements;
* :func:`largest_cell_share`: the largest share of levels that have a given tile (the key,
  the door, an enemy of any kind) on one and the same cell;
* :func:`tile_entropy`: the Shannon entropy (bits) of the tile at each cell across the set,
  averaged over cells (0: every level identical);
* :func:`count_distinct`: how many levels remain when each kept level must differ from every
  other kept one in at least ``min_distance`` tiles (a greedy pass in order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sagan.levels.tiles import AVATAR, DOOR, ENEMIES, KEY, TILES

__all__ = [
    "DISTINCT_DISTANCE",
    "count_distinct",
    "diversity_report",
    "largest_cell_share",
    "mean_pairwise_hamming",
    "placements",
    "tile_entropy",
]

DISTINCT_DISTANCE = 10
"""Tiles (of 117 in Zelda's 9 x 13) in which two levels must differ to count as distinct in
the headline count (our choice: about a twelfth of the level; the five GVGAI levels differ
from each other in 31 on average)."""


def _flat(levels: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    arr = np.asarray(levels)
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"expected levels (N, H, W) with N >= 1, got {arr.shape}")
    return arr.reshape(len(arr), -1)  # (N, H*W)


def _cell_counts(flat: np.ndarray) -> np.ndarray:
    """(N, C) tiles -> (C, T) how many levels have tile t at cell c."""
    counts = np.zeros((flat.shape[1], len(TILES)), dtype=np.int64)
    for t in range(len(TILES)):
        counts[:, t] = (flat == t).sum(axis=0)
    return counts


def mean_pairwise_hamming(levels: Sequence[np.ndarray] | np.ndarray) -> float:
    """Mean Hamming distance (tiles) over all pairs of ``levels`` (N, H, W); 0 for N = 1.

    Exact in O(N x cells): two levels agree at a cell when both hold the same tile, so the
    share of agreeing pairs at a cell is sum_t n_t (n_t - 1) / (N (N - 1))."""
    flat = _flat(levels)
    n = len(flat)
    if n < 2:
        return 0.0
    counts = _cell_counts(flat).astype(np.float64)
    agree = (counts * (counts - 1)).sum(axis=1) / (n * (n - 1))  # (C,)
    return float((1.0 - agree).sum())


def placements(levels: Sequence[np.ndarray] | np.ndarray) -> int:
    """Distinct (avatar cells, key cells, door cells) among ``levels`` (N, H, W)."""
    flat = _flat(levels)
    seen = {tuple(tuple(np.flatnonzero(row == t)) for t in (AVATAR, KEY, DOOR)) for row in flat}
    return len(seen)


def largest_cell_share(
    levels: Sequence[np.ndarray] | np.ndarray, tile: int | Sequence[int]
) -> float:
    """The largest share (0..1) of ``levels`` (N, H, W) that hold ``tile`` (or any of several
    tiles, e.g. the enemy kinds) on one same cell."""
    flat = _flat(levels)
    return float(np.isin(flat, tile).mean(axis=0).max())


def tile_entropy(levels: Sequence[np.ndarray] | np.ndarray) -> float:
    """Entropy (bits) of the tile at each cell across ``levels`` (N, H, W), averaged over
    cells: 0 when every level is the same; at most log2(8) = 3."""
    flat = _flat(levels)
    p = _cell_counts(flat) / len(flat)  # (C, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    return float(h.mean())


def count_distinct(
    levels: Sequence[np.ndarray] | np.ndarray, min_distance: int = DISTINCT_DISTANCE
) -> int:
    """How many of ``levels`` (N, H, W) are kept by a greedy pass in order that keeps a level
    when it differs in at least ``min_distance`` tiles from every level kept before it.

    With ``min_distance`` 1 this is the number of distinct levels. Distances come from
    one-hot products in chunks, so 15,000 levels take seconds."""
    if min_distance < 1:
        raise ValueError(f"min_distance must be >= 1, got {min_distance}")
    flat = _flat(levels)
    cells = flat.shape[1]
    onehot = np.zeros((len(flat), cells * len(TILES)), dtype=np.float32)
    onehot[np.arange(len(flat))[:, None], np.arange(cells) * len(TILES) + flat] = 1.0
    kept = np.zeros((0, onehot.shape[1]), dtype=np.float32)
    for start in range(0, len(flat), 256):
        chunk = onehot[start : start + 256]
        far = (cells - chunk @ kept.T >= min_distance).all(axis=1)  # (b,) from earlier kept
        mutual = cells - chunk @ chunk.T  # (b, b) distances within the chunk
        take: list[int] = []
        for i in np.flatnonzero(far):
            if all(mutual[i, j] >= min_distance for j in take):
                take.append(int(i))
        kept = np.concatenate([kept, chunk[take]])
    return len(kept)


def diversity_report(levels: Sequence[np.ndarray] | np.ndarray) -> dict[str, float]:
    """All the measures of this module for ``levels`` (N, H, W), by name."""
    return {
        "pairwise_hamming": mean_pairwise_hamming(levels),
        "placements": float(placements(levels)),
        "key_cell_share": 100.0 * largest_cell_share(levels, KEY),
        "door_cell_share": 100.0 * largest_cell_share(levels, DOOR),
        "enemy_cell_share": 100.0 * largest_cell_share(levels, ENEMIES),
        "tile_entropy": tile_entropy(levels),
    }
