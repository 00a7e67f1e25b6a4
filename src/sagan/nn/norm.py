"""Conditional batch normalisation (de Vries et al. 2017; Miyato & Koyama 2018): by class, or
by a real-valued condition vector (as BigGAN's generator does with its shared embedding)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConditionalBatchNorm2d", "VectorConditionalBatchNorm2d"]


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d whose gain and bias are looked up per class.

    With ``num_classes == 0`` it is a plain affine ``BatchNorm2d`` and ``y`` is ignored. The
    per-class tables start at gain 1 and bias 0 and are normalisation parameters, not layer
    weights, so they are not spectrally normalised (as in the official SAGAN code).

    Args:
        num_features: C.
        num_classes: number of classes, 0 for unconditional.
        momentum: running-statistics momentum, as in ``nn.BatchNorm2d``.
        eps: as in ``nn.BatchNorm2d``.
    """

    def __init__(
        self, num_features: int, num_classes: int, *, momentum: float = 0.1, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(num_features, affine=num_classes == 0, momentum=momentum, eps=eps)
        if num_classes > 0:
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise ``x`` (B, C, H, W); ``y`` (B,) class indices when conditional."""
        out = self.bn(x)
        if self.num_classes == 0:
            return out
        if y is None:
            raise ValueError("ConditionalBatchNorm2d with classes needs labels y of shape (B,)")
        gain = self.gain(y)[:, :, None, None]  # (B, C, 1, 1)
        bias = self.bias(y)[:, :, None, None]  # (B, C, 1, 1)
        return out * gain + bias


class VectorConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d whose gain and bias are linear functions of a condition vector.

    ``out = BN(x) * (1 + W_g c + b_g) + (W_b c + b_b)``; both maps start at zero, so a fresh
    layer is a plain BatchNorm2d with gain 1 and bias 0. As with
    :class:`ConditionalBatchNorm2d`, these are normalisation parameters and are not spectrally
    normalised (BigGAN's generator does the same).

    Args:
        num_features: C.
        cond_dim: length of the condition vector.
        momentum: running-statistics momentum, as in ``nn.BatchNorm2d``.
        eps: as in ``nn.BatchNorm2d``.
    """

    def __init__(
        self, num_features: int, cond_dim: int, *, momentum: float = 0.1, eps: float = 1e-5
    ) -> None:
        super().__init__()
        if cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1, got {cond_dim}")
        self.bn = nn.BatchNorm2d(num_features, affine=False, momentum=momentum, eps=eps)
        self.gain = nn.Linear(cond_dim, num_features)
        self.bias = nn.Linear(cond_dim, num_features)
        for layer in (self.gain, self.bias):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (B, C, H, W) under conditions ``c`` (B, cond_dim)."""
        gain = 1.0 + self.gain(c)[:, :, None, None]  # (B, C, 1, 1)
        bias = self.bias(c)[:, :, None, None]  # (B, C, 1, 1)
        return self.bn(x) * gain + bias
