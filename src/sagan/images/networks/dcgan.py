"""The DCGAN-style SAGAN of the popular PyTorch port (heykeetae/Self-Attention-GAN).

G: a 4x4 transposed conv from z, then stride-2 transposed convs with (class-conditional) BN and
ReLU, halving the width at each doubling, and a last transposed conv + tanh. D: stride-2 convs
with LeakyReLU(0.1) doubling the width, down to 4x4, then a 4x4 output (a linear map of the
flattened features) plus, with classes, the projection term. Every layer is spectrally normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sagan.nn import ConditionalBatchNorm2d, SelfAttention2d
from sagan.nn.spectral import sn_conv2d, sn_conv_transpose2d, sn_embedding, sn_linear

__all__ = ["DCGAN_RESOLUTIONS", "DCGANDiscriminator", "DCGANGenerator", "dcgan_feature_sizes"]

DCGAN_RESOLUTIONS = (32, 64)


def _stages(resolution: int) -> int:
    """Number of doublings from 4x4 to ``resolution``."""
    return resolution.bit_length() - 3  # log2(R / 4)


def dcgan_feature_sizes(resolution: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Hidden feature resolutions of (G, D): G 4..R/2, D R/2..4."""
    g = tuple(4 * 2**i for i in range(_stages(resolution)))
    return g, tuple(reversed(g))


class DCGANGenerator(nn.Module):
    """z (B, z_dim), y (B,) or None -> images (B, out_channels, R, R) in [-1, 1]."""

    def __init__(
        self,
        *,
        resolution: int,
        ch: int,
        z_dim: int,
        out_channels: int,
        num_classes: int,
        attention: tuple[int, ...],
        spectral: bool = True,
    ) -> None:
        super().__init__()
        n = _stages(resolution)
        self.resolution, self.z_dim, self.num_classes = resolution, z_dim, num_classes
        self.out_channels = out_channels
        widths = [ch * 2 ** (n - 1 - i) for i in range(n)]  # at 4, 8, ..., R/2
        sizes, _ = dcgan_feature_sizes(resolution)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self.attention = nn.ModuleDict()
        cin = z_dim
        for i, (width, size) in enumerate(zip(widths, sizes, strict=True)):
            if i == 0:
                conv = sn_conv_transpose2d(cin, width, 4, spectral=spectral)  # 1x1 -> 4x4
            else:
                conv = sn_conv_transpose2d(cin, width, 4, 2, 1, spectral=spectral)
            self.convs.append(conv)
            self.bns.append(ConditionalBatchNorm2d(width, num_classes))
            if size in attention:
                self.attention[str(size)] = SelfAttention2d(width, spectral=spectral)
            cin = width
        self.sizes = sizes
        self.out_conv = sn_conv_transpose2d(cin, out_channels, 4, 2, 1, spectral=spectral)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z[:, :, None, None]  # (B, z_dim, 1, 1)
        for conv, bn, size in zip(self.convs, self.bns, self.sizes, strict=True):
            h = F.relu(bn(conv(h), y))
            if str(size) in self.attention:
                h = self.attention[str(size)](h)
        return torch.tanh(self.out_conv(h))


class DCGANDiscriminator(nn.Module):
    """images (B, C, R, R), y (B,) or None -> scores (B,), real scored high."""

    def __init__(
        self,
        *,
        resolution: int,
        ch: int,
        in_channels: int,
        num_classes: int,
        attention: tuple[int, ...],
        spectral: bool = True,
    ) -> None:
        super().__init__()
        self.resolution, self.num_classes = resolution, num_classes
        _, sizes = dcgan_feature_sizes(resolution)
        self.convs = nn.ModuleList()
        self.attention = nn.ModuleDict()
        cin = in_channels
        for i, size in enumerate(sizes):
            width = ch * 2**i
            self.convs.append(sn_conv2d(cin, width, 4, 2, 1, spectral=spectral))
            if size in attention:
                self.attention[str(size)] = SelfAttention2d(width, spectral=spectral)
            cin = width
        self.sizes = sizes
        features = cin * 4 * 4
        self.linear = sn_linear(features, 1, spectral=spectral)  # == a 4x4 valid conv to 1
        self.embed = sn_embedding(num_classes, features, spectral=spectral) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for conv, size in zip(self.convs, self.sizes, strict=True):
            h = F.leaky_relu(conv(h), 0.1)
            if str(size) in self.attention:
                h = self.attention[str(size)](h)
        h = h.flatten(1)  # (B, C * 4 * 4)
        out = self.linear(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if y is None:
                raise ValueError("a class-conditional discriminator needs labels y of shape (B,)")
            out = out + (self.embed(y) * h).sum(dim=1)
        return out
