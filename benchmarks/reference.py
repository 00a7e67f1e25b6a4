"""The reference implementations' attention, written faithfully as the benchmarks' baseline.

The official TensorFlow SAGAN, the popular PyTorch port, StudioGAN, BigGAN-PyTorch, mimicry and
torchgan all compute attention by materialising the N x N' map: bmm, softmax, bmm. This module
holds that formulation as a drop-in ``forward`` for :class:`sagan.nn.SelfAttention2d`, so that
the same weights run both ways.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from sagan.nn import SelfAttention2d


def explicit_forward(layer: SelfAttention2d, x: torch.Tensor) -> torch.Tensor:
    """BigGAN-PyTorch's ``Attention.forward`` with SAGAN's channel split, on ``layer``'s weights."""
    b, _, h, w = x.shape
    theta = layer.query(x)  # (B, Ck, H, W)
    phi = layer.key(x)
    g = layer.value(x)
    if layer.pool:
        phi, g = F.max_pool2d(phi, 2), F.max_pool2d(g, 2)
    theta = theta.view(b, layer.key_channels, h * w)  # (B, Ck, N)
    phi = phi.view(b, layer.key_channels, -1)  # (B, Ck, N')
    g = g.view(b, layer.value_channels, -1)  # (B, Cv, N')
    beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)  # (B, N, N'): the full map
    o = torch.bmm(g, beta.transpose(1, 2)).view(b, layer.value_channels, h, w)  # (B, Cv, H, W)
    return layer.gamma * layer.out(o) + x


@contextlib.contextmanager
def explicit_attention(model: nn.Module) -> Iterator[None]:
    """Within the block, every SelfAttention2d in ``model`` runs the explicit formulation."""
    layers = [m for m in model.modules() if isinstance(m, SelfAttention2d)]
    for layer in layers:
        layer.forward = lambda x, *a, _l=layer, **k: explicit_forward(_l, x)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
