"""The adversarial losses of Chou et al. (2017), as Hg-SAGAN uses them: a BEGAN-style
discriminator that reconstructs heat-maps, with an equilibrium term k_t.

Sign convention: every function returns a loss to minimise.

* ``L_D = MSE(D(x, h_gt), h_gt) - k_t * MSE(D(x, h_fake), h_fake)``
* ``L_G = sum_i MSE(h_i, h_gt) + lambda_G * MSE(D(x, h_fake), h_fake)`` (all stacks supervised)
* ``k_{t+1} = clip(k_t + lambda_k * (gamma * L_real - L_fake), 0, 1)``

Paper defaults: lambda_G = 0.1, lambda_k = 0.001, gamma = 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["d_loss", "g_loss", "update_k"]


def d_loss(
    recon_real: torch.Tensor,
    real: torch.Tensor,
    recon_fake: torch.Tensor,
    fake: torch.Tensor,
    k: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(L_D, L_real, L_fake)``; maps ``(B, K, H, W)``. ``fake`` should be detached."""
    l_real = F.mse_loss(recon_real, real)
    l_fake = F.mse_loss(recon_fake, fake)
    return l_real - k * l_fake, l_real, l_fake


def g_loss(
    stacks: Sequence[torch.Tensor],
    target: torch.Tensor,
    recon_fake: torch.Tensor,
    fake: torch.Tensor,
    lambda_g: float = 0.1,
) -> torch.Tensor:
    """Intermediate supervision of every stack ``(B, K, H, W)`` plus the adversarial term."""
    supervised = sum(F.mse_loss(h, target) for h in stacks)
    return supervised + lambda_g * F.mse_loss(recon_fake, fake)  # type: ignore[return-value]


def update_k(
    k: float | torch.Tensor,
    l_real: float | torch.Tensor,
    l_fake: float | torch.Tensor,
    lambda_k: float = 0.001,
    gamma: float = 0.5,
) -> Any:
    """The equilibrium update of k_t, clipped to [0, 1]: a float for floats, a (device) tensor
    when any input is a tensor (the training loop keeps k_t on the device, with no sync)."""
    value = k + lambda_k * (gamma * l_real - l_fake)
    if isinstance(value, torch.Tensor):
        return value.clamp(0.0, 1.0)
    return float(min(1.0, max(0.0, value)))
