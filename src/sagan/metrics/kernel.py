"""Kernel Inception Distance and Inception Score over precomputed features, via torchmetrics.

torchmetrics' ``KernelInceptionDistance`` and ``InceptionScore`` run a feature network on
images; given an identity "network" they work on features computed (and cached) elsewhere,
so any feature network can be used (InceptionV3 for paper-comparable numbers, the project's
digit classifier offline). Their random subsets are drawn from a seeded, private RNG state.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = ["inception_score", "kernel_inception_distance"]


class _Features(nn.Module):
    """The identity: torchmetrics sees already-computed features as the network's output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _as_tensor(x: npt.ArrayLike | torch.Tensor) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.detach().to("cpu", torch.float64)


def kernel_inception_distance(
    real: npt.ArrayLike | torch.Tensor,
    fake: npt.ArrayLike | torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
    ``(x.y / D + 1)^3``, averaged over ``subsets`` random subsets. Returns ``(mean, std)``.

    ``real`` (N, D), ``fake`` (M, D); ``subset_size`` is capped at min(N, M).
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    r, f = _as_tensor(real), _as_tensor(fake)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"expected features (N, D) and (M, D), got {r.shape} and {f.shape}")
    size = min(subset_size, r.shape[0], f.shape[0])
    if size < 2:
        raise ValueError("KID needs at least 2 samples on each side")
    with warnings.catch_warnings():  # "saves all features in a buffer": that is the point
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Features(), subsets=subsets, subset_size=size)
    metric.update(r, real=True)
    metric.update(f, real=False)
    with torch.random.fork_rng(devices=[]):  # its subsets come from torch's global RNG
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(
    logits: npt.ArrayLike | torch.Tensor, *, splits: int = 10, seed: int = 0
) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) from classifier ``logits`` (N, K), as the
    mean and std over ``splits`` random splits (Salimans et al. 2016). At most K."""
    from torchmetrics.image.inception import InceptionScore

    x = _as_tensor(logits)
    if x.ndim != 2 or x.shape[0] < splits:
        raise ValueError(f"expected logits (N, K) with N >= splits={splits}, got {x.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        metric = InceptionScore(feature=_Features(), splits=splits)
    metric.update(x)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)  # it shuffles with torch's global RNG
        warnings.simplefilter("ignore", UserWarning)  # one split: no std, reported as 0
        mean, std = metric.compute()
    return float(mean), float(std) if splits > 1 else 0.0
