"""Exponential moving average of a network's weights (Yazici et al. 2019; BigGAN)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps ``shadow``, a frozen copy of ``model`` whose parameters track an EMA of the model's.

    ``decay_at(step) = min(decay, (1 + step) / (10 + step))``: the warm-up keeps early, short
    runs from being dominated by the random initial weights. Buffers (BatchNorm statistics,
    spectral-norm power-iteration vectors) are copied, not averaged, as in BigGAN.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay used for the update after ``step`` optimiser steps."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """shadow <- d * shadow + (1 - d) * model for parameters; buffers copied."""
        d = self.decay_at(step)
        shadow_params = list(self.shadow.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(shadow_params, params, 1.0 - d)
        for b_shadow, b in zip(self.shadow.buffers(), model.buffers(), strict=True):
            b_shadow.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The shadow model's state dict."""
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a shadow state dict saved by :meth:`state_dict`."""
        self.shadow.load_state_dict(state)
