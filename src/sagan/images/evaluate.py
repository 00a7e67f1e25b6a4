"""Offline metrics for digit generators, with the project's own digit classifier as the feature
network: they need no download and run on the CPU.

* ``fd_digits``: Fréchet distance between the classifier's 128-d penultimate features of
  generated images and of the built-in digits (the FID recipe with another feature network);
* ``is_digits``: exp(E_x KL(p(y|x) || p(y))) of the classifier's predictions (at most 10);
* ``coverage``: the share of the 10 classes that receive at least 1% of the predictions;
* ``accuracy``: for class-conditional generators, how often the classifier predicts the class
  that was asked for (labels asked for in equal numbers).

The standard InceptionV3 metrics (FID, KID, IS, precision/recall) are not implemented yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from sagan.errors import SaganError
from sagan.images.data import load_dataset
from sagan.images.digit_classifier import load_digit_classifier
from sagan.metrics import frechet_distance, gaussian_stats

__all__ = ["OFFLINE_METRICS", "Sampler", "offline_metrics"]

OFFLINE_METRICS = ("fd_digits", "is_digits", "coverage", "accuracy")


class Sampler(Protocol):
    """What the metrics need of a generator (a :class:`LoadedGenerator` fits)."""

    num_classes: int

    def sample(
        self,
        n: int,
        labels: Sequence[int] | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...  # (n, C, R, R) in [0, 1]


@torch.no_grad()
def offline_metrics(
    gen: Sampler,
    *,
    n: int = 5000,
    batch: int = 250,
    seed: int = 0,
    metrics: Sequence[str] = OFFLINE_METRICS,
) -> dict[str, float]:
    """Compute ``metrics`` on ``n`` generated images; returns ``{name: value}``.

    ``accuracy`` is left out for unconditional generators.
    """
    unknown = sorted(set(metrics) - set(OFFLINE_METRICS))
    if unknown:
        raise SaganError(
            f"unknown metric {unknown[0]!r}; offline metrics: {', '.join(OFFLINE_METRICS)}"
        )
    if n < 2:
        raise SaganError(f"--n must be >= 2 to estimate statistics, got {n}")
    clf = load_digit_classifier()
    g = torch.Generator().manual_seed(seed)
    feats, probs, asked = [], [], []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        labels = (torch.arange(start, start + k) % gen.num_classes) if gen.num_classes else None
        x = gen.sample(k, labels=labels, generator=g).float().cpu() * 2 - 1  # (k, C, R, R)
        f = clf.features(x)  # (k, 128)
        feats.append(f)
        probs.append(torch.softmax(clf.fc2(f), dim=1))
        if labels is not None:
            asked.append(labels)
    fake = torch.cat(feats).double().numpy()
    p = torch.cat(probs).double()  # (n, 10)
    out: dict[str, float] = {}
    if "fd_digits" in metrics:
        real = load_dataset("digits", 32)
        real_x = real.images.float() / 127.5 - 1  # (5000, 1, 32, 32)
        real_f = torch.cat(
            [clf.features(real_x[i : i + batch]) for i in range(0, len(real_x), batch)]
        )
        out["fd_digits"] = frechet_distance(
            *gaussian_stats(fake), *gaussian_stats(real_f.double().numpy())
        )
    if "is_digits" in metrics:
        marginal = p.mean(dim=0, keepdim=True)
        kl = (p * (torch.log(p + 1e-12) - torch.log(marginal + 1e-12))).sum(dim=1)
        out["is_digits"] = float(torch.exp(kl.mean()))
    if "coverage" in metrics:
        counts = torch.bincount(p.argmax(dim=1), minlength=10).double()
        out["coverage"] = float((counts >= 0.01 * n).double().mean())
    if "accuracy" in metrics and asked:
        out["accuracy"] = float((p.argmax(dim=1) == torch.cat(asked)).double().mean())
    return out
