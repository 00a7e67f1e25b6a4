"""Improved precision and recall of generative models (Kynkäänniemi et al., NeurIPS 2019).

Each set of feature vectors defines a manifold: the union of balls around its points, each
with the radius of the distance to that point's k-th nearest neighbour in the same set.
Precision is the share of generated points inside the real manifold (fidelity); recall is the
share of real points inside the generated manifold (diversity). The paper uses k = 3 in
InceptionV3 (or VGG-16) features with 50,000 samples per side.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["knn_radii", "manifold_coverage", "precision_recall"]

_CHUNK = 1024


def _tensor(x: npt.ArrayLike | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    t = t.detach().to("cpu", torch.float64)
    if t.ndim != 2 or t.shape[0] < 2:
        raise ValueError(f"{name}: expected features (N, D) with N >= 2, got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: features must be finite")
    return t


def knn_radii(feats: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``feats`` (N, D) to its k-th nearest other row -> (N,)."""
    n = feats.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1} for {n} points, got {k}")
    radii = torch.empty(n, dtype=feats.dtype)
    for start in range(0, n, _CHUNK):
        d = torch.cdist(feats[start : start + _CHUNK], feats)  # (chunk, N)
        # the point itself is at distance 0 and comes first: the k-th neighbour is index k
        radii[start : start + _CHUNK] = d.kthvalue(k + 1, dim=1).values
    return radii


def manifold_coverage(
    manifold: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor
) -> torch.Tensor:
    """For each query (M, D): is it within ``radii[i]`` of some ``manifold[i]`` (N, D)? -> (M,)."""
    inside = torch.empty(queries.shape[0], dtype=torch.bool)
    for start in range(0, queries.shape[0], _CHUNK):
        d = torch.cdist(queries[start : start + _CHUNK], manifold)  # (chunk, N)
        inside[start : start + _CHUNK] = (d <= radii.unsqueeze(0)).any(dim=1)
    return inside


def precision_recall(
    real: npt.ArrayLike | torch.Tensor, fake: npt.ArrayLike | torch.Tensor, *, k: int = 3
) -> tuple[float, float]:
    """``(precision, recall)`` of ``fake`` (M, D) against ``real`` (N, D), both in [0, 1].

    Distances are Euclidean, computed in float64 in chunks (memory O(chunk * N)).
    """
    r, f = _tensor(real, "real"), _tensor(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: real {r.shape[1]}, fake {f.shape[1]}")
    precision = manifold_coverage(r, knn_radii(r, k), f).double().mean()
    recall = manifold_coverage(f, knn_radii(f, k), r).double().mean()
    return float(precision), float(recall)
