"""GAN losses as pure functions.

Sign convention, everywhere in this package: the discriminator outputs a real-valued score per
sample (a logit, no sigmoid) and scores REAL data HIGH. Each function returns the scalar that its
network minimises.

* hinge (Lim & Ye 2017; SAGAN's loss):
  L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],   L_G = -E[D(G(z))]
* non-saturating (Goodfellow et al. 2014):
  L_D = E[softplus(-D(x))] + E[softplus(D(G(z)))],    L_G = E[softplus(-D(G(z)))]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "LOSSES",
    "GANLoss",
    "d_hinge",
    "d_nonsaturating",
    "g_hinge",
    "g_nonsaturating",
]


def d_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge loss of D: mean(relu(1 - real)) + mean(relu(1 + fake)); scores of shape (B,)."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def g_hinge(fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge loss of G: -mean(fake)."""
    return -fake_scores.mean()


def d_nonsaturating(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Logistic loss of D: mean(softplus(-real)) + mean(softplus(fake))."""
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def g_nonsaturating(fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating loss of G: mean(softplus(-fake)) = -mean(log sigmoid(fake))."""
    return F.softplus(-fake_scores).mean()


@dataclass(frozen=True)
class GANLoss:
    """A pair of loss functions for D and G that share the sign convention above."""

    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]


LOSSES: dict[str, GANLoss] = {
    "hinge": GANLoss(d_hinge, g_hinge),
    "nonsaturating": GANLoss(d_nonsaturating, g_nonsaturating),
}
"""The losses a config may name."""
