"""The BigGAN / official-SAGAN ResNet generator and projection discriminator.

Channel multipliers per resolution follow BigGAN-PyTorch's ``G_arch`` / ``D_arch`` tables.
Attention sits after the block whose output has the requested feature resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sagan.nn import ConditionalBatchNorm2d, DBlock, GBlock, SelfAttention2d
from sagan.nn.spectral import sn_conv2d, sn_embedding, sn_linear

__all__ = [
    "RESNET_RESOLUTIONS",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "attention_slots",
    "resnet_feature_sizes",
]

# resolution -> (input multipliers, output multipliers) of the G blocks (each doubles H, W).
_G_ARCH: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    32: ((4, 4, 4), (4, 4, 4)),
    64: ((16, 16, 8, 4), (16, 8, 4, 2)),
    128: ((16, 16, 8, 4, 2), (16, 8, 4, 2, 1)),
    256: ((16, 16, 8, 8, 4, 2), (16, 8, 8, 4, 2, 1)),
}
# resolution -> (output multipliers, downsample flags) of the D blocks.
_D_ARCH: dict[int, tuple[tuple[int, ...], tuple[bool, ...]]] = {
    32: ((4, 4, 4, 4), (True, True, False, False)),
    64: ((1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((1, 2, 4, 8, 16, 16), (True, True, True, True, True, False)),
    256: ((1, 2, 4, 8, 8, 16, 16), (True, True, True, True, True, True, False)),
}
RESNET_RESOLUTIONS = tuple(sorted(_G_ARCH))


def resnet_feature_sizes(resolution: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Feature resolutions after each block of (G, D) at an image ``resolution``."""
    g = tuple(4 * 2 ** (i + 1) for i in range(len(_G_ARCH[resolution][0])))
    d, size = [], resolution
    for down in _D_ARCH[resolution][1]:
        size = size // 2 if down else size
        d.append(size)
    return g, tuple(d)


def attention_slots(sizes: tuple[int, ...], attention: tuple[int, ...]) -> list[str | None]:
    """Per block, the attention key (its feature resolution) that follows it, or None.

    Attention follows the first block whose output has a requested resolution.
    """
    firsts = {sizes.index(r): str(r) for r in attention if r in sizes}
    return [firsts.get(i) for i in range(len(sizes))]


class ResNetGenerator(nn.Module):
    """z (B, z_dim), y (B,) or None -> images (B, out_channels, R, R) in [-1, 1].

    Linear to 4x4, up-sampling residual blocks with (class-conditional) BN, self-attention at the
    requested feature resolutions, then BN-ReLU-conv3-tanh.
    """

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
        ins, outs = _G_ARCH[resolution]
        self.resolution, self.z_dim, self.num_classes = resolution, z_dim, num_classes
        self.out_channels = out_channels
        self.bottom_channels = ins[0] * ch
        self.linear = sn_linear(z_dim, 4 * 4 * self.bottom_channels, spectral=spectral)
        sizes, _ = resnet_feature_sizes(resolution)
        self.slots = attention_slots(sizes, attention)
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        for cin, cout, slot in zip(ins, outs, self.slots, strict=True):
            self.blocks.append(GBlock(cin * ch, cout * ch, num_classes, spectral=spectral))
            if slot is not None:
                self.attention[slot] = SelfAttention2d(cout * ch, spectral=spectral)
        self.out_bn = ConditionalBatchNorm2d(outs[-1] * ch, 0)
        self.out_conv = sn_conv2d(outs[-1] * ch, out_channels, 3, padding=1, spectral=spectral)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.bottom_channels, 4, 4)  # (B, C0, 4, 4)
        for block, slot in zip(self.blocks, self.slots, strict=True):
            h = block(h, y)
            if slot is not None:
                h = self.attention[slot](h)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class ResNetDiscriminator(nn.Module):
    """images (B, C, R, R), y (B,) or None -> scores (B,), real scored high.

    Down-sampling residual blocks, self-attention at the requested feature resolutions, ReLU, sum
    pooling over positions, a linear output and, with classes, the projection term <embed(y), h>.
    """

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
        outs, downs = _D_ARCH[resolution]
        self.resolution, self.num_classes = resolution, num_classes
        _, sizes = resnet_feature_sizes(resolution)
        self.slots = attention_slots(sizes, attention)
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        cin = in_channels
        for i, (mult, down, slot) in enumerate(zip(outs, downs, self.slots, strict=True)):
            block = DBlock(cin, mult * ch, downsample=down, preactivation=i > 0, spectral=spectral)
            self.blocks.append(block)
            cin = mult * ch
            if slot is not None:
                self.attention[slot] = SelfAttention2d(cin, spectral=spectral)
        self.linear = sn_linear(cin, 1, spectral=spectral)
        self.embed = sn_embedding(num_classes, cin, spectral=spectral) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for block, slot in zip(self.blocks, self.slots, strict=True):
            h = block(h)
            if slot is not None:
                h = self.attention[slot](h)
        h = F.relu(h).sum(dim=(2, 3))  # (B, C)
        out = self.linear(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if y is None:
                raise ValueError("a class-conditional discriminator needs labels y of shape (B,)")
            out = out + (self.embed(y) * h).sum(dim=1)
        return out
