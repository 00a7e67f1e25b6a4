"""GAN losses as pure functions.

Sign convention, everywhere in this package: the discriminator outputs a real-valued score per
sample (a logit, no sigmoid) and scores REAL data HIGH. Each function returns the scalar that its
network minimises.

* hinge (Lim & Ye 2017; SAGAN's loss):
  L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],   L_G = -E[D(G(z))]
* non-saturating (Goodfellow et al. 2014):
  L_D = E[softplus(-D(x))] + E[softplus(D(G(z)))],    L_G = E[softplus(-D(G(z)))]
* LeCam regularisation of D (Tseng et al. 2021), added to L_D with a weight:
  R = E[relu(D(x) - a_fake)^2] + E[relu(a_real - D(G(z)))^2], with a_real, a_fake moving
  averages of D's scores on real and generated images (the penalty's form is that of the
  authors' released code; the anchors are ours: they start at 0, move with decay 0.99 from
  the first step, without debiasing, and the penalty uses them as they were before the
  batch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "LOSSES",
    "GANLoss",
    "LeCamAnchors",
    "d_hinge",
    "d_nonsaturating",
    "g_hinge",
    "g_nonsaturating",
    "lecam_penalty",
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


def lecam_penalty(
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    anchor_real: torch.Tensor,
    anchor_fake: torch.Tensor,
) -> torch.Tensor:
    """LeCam regularisation of D: ``mean(relu(real - anchor_fake)^2) + mean(relu(anchor_real -
    fake)^2)``; scores ``(B,)``, anchors 0-d (moving averages, not differentiated). It keeps
    D's scores of reals from running away above the fakes' average, and the reverse."""
    return (
        F.relu(real_scores - anchor_fake.detach()).square().mean()
        + F.relu(anchor_real.detach() - fake_scores).square().mean()
    )


class LeCamAnchors:
    """The moving averages of D's mean scores on real and generated images that
    :func:`lecam_penalty` pulls toward (ours: start 0, decay 0.99, no debiasing; see the module
    docstring); kept on the device. A batch with a non-finite score leaves them as they are."""

    def __init__(
        self, decay: float = 0.99, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        self.decay = decay
        self.reduce = reduce
        """Averages the batch means over processes under torchrun (every rank, one anchor)."""
        self.real: torch.Tensor = torch.zeros(())
        self.fake: torch.Tensor = torch.zeros(())

    def update(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> None:
        """Move the anchors toward this batch's mean scores ``(B,)``."""
        means = torch.stack([real_scores.detach().mean(), fake_scores.detach().mean()]).float()
        if self.reduce is not None:
            means = self.reduce(means)
        d = self.decay
        ok = torch.isfinite(means).all()  # on the device: a skipped step changes nothing
        self.real = torch.where(ok, self.real.to(means.device) * d + means[0] * (1 - d),
                                self.real.to(means.device))  # fmt: skip
        self.fake = torch.where(ok, self.fake.to(means.device) * d + means[1] * (1 - d),
                                self.fake.to(means.device))  # fmt: skip

    def state_dict(self) -> dict[str, float]:
        return {"real": float(self.real), "fake": float(self.fake)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.real, self.fake = torch.tensor(state["real"]), torch.tensor(state["fake"])
