"""Novelty of generated levels: distance to the training set and duplicates among themselves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["NoveltyReport", "hamming_to_nearest", "novelty_report"]


def _stack(levels: Sequence[np.ndarray] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(levels) if not isinstance(levels, np.ndarray) else levels
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"{name}: expected levels (N, H, W) with N >= 1, got {arr.shape}")
    return arr.reshape(len(arr), -1)  # (N, H*W)


def hamming_to_nearest(
    levels: Sequence[np.ndarray] | np.ndarray, reference: Sequence[np.ndarray] | np.ndarray
) -> np.ndarray:
    """For each level (N, H, W): the fewest tiles in which it differs from any reference level
    (M, H, W) -> (N,) int. 0 means it copies a reference level."""
    a, b = _stack(levels, "levels"), _stack(reference, "reference")
    if a.shape[1] != b.shape[1]:
        raise ValueError("levels and reference differ in size")
    out = np.empty(len(a), dtype=np.int64)
    for start in range(0, len(a), 512):
        diff = (a[start : start + 512, None, :] != b[None, :, :]).sum(axis=2)  # (n, M)
        out[start : start + 512] = diff.min(axis=1)
    return out


@dataclass(frozen=True)
class NoveltyReport:
    """Counts over a set of generated levels (see :func:`novelty_report`)."""

    n: int
    playable: int
    unique: int
    """Distinct levels among all generated ones."""
    unique_playable: int
    """Distinct levels among the playable ones."""
    novel_playable: int
    """Distinct playable levels that are not a copy of a training level."""
    mean_novelty: float
    """Mean Hamming distance to the nearest training level, over all generated levels."""
    mean_novelty_playable: float


def novelty_report(
    levels: Sequence[np.ndarray] | np.ndarray,
    playable: Sequence[bool] | np.ndarray,
    training: Sequence[np.ndarray] | np.ndarray,
    distances: np.ndarray | None = None,
) -> NoveltyReport:
    """Uniqueness and novelty of ``levels`` (N, H, W) with their playability flags (N,)
    against the ``training`` levels (M, H, W); ``distances`` (N,): their
    :func:`hamming_to_nearest` to ``training`` when the caller has it already."""
    flat = _stack(levels, "levels")
    ok = np.asarray(playable, dtype=bool)
    if ok.shape != (len(flat),):
        raise ValueError(f"playable: expected ({len(flat)},) flags, got {ok.shape}")
    dist = hamming_to_nearest(levels, training) if distances is None else distances
    keys = [row.tobytes() for row in flat]
    unique_playable = {k for k, p in zip(keys, ok, strict=True) if p}
    novel = {k for k, p, d in zip(keys, ok, dist, strict=True) if p and d > 0}
    return NoveltyReport(
        n=len(flat),
        playable=int(ok.sum()),
        unique=len(set(keys)),
        unique_playable=len(unique_playable),
        novel_playable=len(novel),
        mean_novelty=float(dist.mean()),
        mean_novelty_playable=float(dist[ok].mean()) if ok.any() else float("nan"),
    )
