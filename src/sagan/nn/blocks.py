"""Residual blocks of the BigGAN / official-SAGAN ResNet generator and discriminator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sagan.nn.norm import ConditionalBatchNorm2d
from sagan.nn.spectral import sn_conv2d

__all__ = ["DBlock", "GBlock"]


class GBlock(nn.Module):
    """Up-sampling residual block: BN-ReLU-up-conv3-BN-ReLU-conv3, shortcut up-conv1.

    Input (B, C_in, H, W) -> output (B, C_out, 2H, 2W); BN is class-conditional when
    ``num_classes > 0``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_classes: int, *, spectral: bool = True
    ) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_channels, num_classes)
        self.conv1 = sn_conv2d(in_channels, out_channels, 3, padding=1, spectral=spectral)
        self.bn2 = ConditionalBatchNorm2d(out_channels, num_classes)
        self.conv2 = sn_conv2d(out_channels, out_channels, 3, padding=1, spectral=spectral)
        self.shortcut = sn_conv2d(in_channels, out_channels, 1, spectral=spectral)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.bn1(x, y))
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (B, C_in, 2H, 2W)
        h = self.conv1(h)
        h = self.conv2(F.relu(self.bn2(h, y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DBlock(nn.Module):
    """Down-sampling residual block: (ReLU)-conv3-ReLU-conv3-avgpool, shortcut conv1-avgpool.

    The first block of a discriminator (``preactivation=False``) takes the image, so it has no
    leading ReLU and pools its shortcut before the 1x1 conv (BigGAN's "optimized" block).
    Input (B, C_in, H, W) -> (B, C_out, H/2, W/2), or (B, C_out, H, W) without ``downsample``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        downsample: bool = True,
        preactivation: bool = True,
        spectral: bool = True,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.preactivation = preactivation
        self.conv1 = sn_conv2d(in_channels, out_channels, 3, padding=1, spectral=spectral)
        self.conv2 = sn_conv2d(out_channels, out_channels, 3, padding=1, spectral=spectral)
        self.learnable_shortcut = in_channels != out_channels or downsample
        if self.learnable_shortcut:
            self.shortcut = sn_conv2d(in_channels, out_channels, 1, spectral=spectral)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if not self.learnable_shortcut:
            return x
        if self.preactivation:
            x = self.shortcut(x)
            return F.avg_pool2d(x, 2) if self.downsample else x
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)  # (B, C_out, H/2, W/2)
        return h + self._shortcut(x)
