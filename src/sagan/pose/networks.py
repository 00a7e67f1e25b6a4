"""Stacked hourglasses with self-attention (Hg-SAGAN's generator) and the hourglass
discriminator of Chou et al. (2017).

Generator ``(B, 3, R, R) -> [(B, K, R/4, R/4)] * stacks``: a stem (7x7 stride-2 conv, residual,
max-pool, residuals) brings the image to R/4, then ``stacks`` hourglasses (``depth``
down-samplings each, residual modules of ``features`` channels), each followed by a heat-map
head whose output is supervised (intermediate supervision) and fed back into the next stack.
Every stack after the first carries a self-attention module at its output features:

* ``attention="sagan"``: the core :class:`~sagan.nn.SelfAttention2d` (softmax over positions,
  ``gamma * o + x`` with gamma starting at 0);
* ``attention="sigmoid"``: our reading of Wang et al.'s module: the attention map is
  ``sigmoid(f^T g)`` (each entry in [0, 1], not normalised, so the output is divided by the
  number of positions), and its output is added to a bottleneck residual branch and the skip
  branch: ``y = x + bottleneck(x) + gamma * o`` (gamma starting at 0);
* ``attention="none"``: plain stacked hourglasses (Newell et al. 2016).

Discriminator ``(image at heat-map size (B, 3, H, W), heat-maps (B, K, H, W)) -> (B, K, H, W)``:
one hourglass whose skip branches carry self-attention, reconstructing the heat-maps it is
given (BEGAN-style: it learns to reconstruct real pairs well and generated ones badly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sagan.nn import SelfAttention2d

__all__ = ["ATTENTION_KINDS", "HourglassDiscriminator", "SigmoidAttention2d", "StackedHourglass"]

ATTENTION_KINDS = ("sagan", "sigmoid", "none")


class Residual(nn.Module):
    """Newell's bottleneck residual module: BN-ReLU-1x1 (C/2), BN-ReLU-3x3, BN-ReLU-1x1 (C)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_out // 2
        self.branch = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, c_out, 1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.branch(x)


class SigmoidAttention2d(nn.Module):
    """``y = x + bottleneck(x) + gamma * o`` with ``o = v(h(x) @ sigmoid(f(x)^T g(x))^T / N)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = max(1, channels // 8)
        self.f, self.g = nn.Conv2d(channels, k, 1), nn.Conv2d(channels, k, 1)
        self.h, self.v = nn.Conv2d(channels, channels, 1), nn.Conv2d(channels, channels, 1)
        self.bottleneck = Residual(channels, channels).branch
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        n = hgt * wid
        q = self.f(x).flatten(2)  # (B, k, N)
        k = self.g(x).flatten(2)  # (B, k, N)
        beta = torch.sigmoid(q.transpose(1, 2) @ k)  # (B, N, N): position i attends to j
        o = self.h(x).flatten(2) @ beta.transpose(1, 2) / n  # (B, C, N)
        o = self.v(o.reshape(b, c, hgt, wid))  # (B, C, H, W)
        return x + self.bottleneck(x) + self.gamma * o


def _attention(kind: str, channels: int) -> nn.Module:
    if kind == "sagan":
        return SelfAttention2d(channels, spectral=False)
    if kind == "sigmoid":
        return SigmoidAttention2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {kind!r}")


class Hourglass(nn.Module):
    """A recursive hourglass of ``depth`` down-samplings; ``skip_attention`` puts a
    self-attention module on every skip branch (the discriminator's design)."""

    def __init__(self, depth: int, c: int, skip_attention: str = "none") -> None:
        super().__init__()
        self.skip = nn.Sequential(Residual(c, c), _attention(skip_attention, c))
        self.down = Residual(c, c)
        self.inner = Hourglass(depth - 1, c, skip_attention) if depth > 1 else Residual(c, c)
        self.up = Residual(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))  # (B, C, H/2, W/2)
        return self.skip(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(nn.Module):
    """The generator: image ``(B, 3, R, R)`` -> heat-maps of every stack, each
    ``(B, joints, R/4, R/4)`` (the last one is the prediction)."""

    def __init__(
        self,
        joints: int = 16,
        stacks: int = 4,
        features: int = 256,
        depth: int = 4,
        attention: str = "sagan",
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        c = features
        self.stem = nn.Sequential(
            nn.Conv2d(3, c // 4, 7, stride=2, padding=3),
            nn.BatchNorm2d(c // 4),
            nn.ReLU(),
            Residual(c // 4, c // 2),
            nn.MaxPool2d(2),
            Residual(c // 2, c // 2),
            Residual(c // 2, c),
        )
        self.hourglasses = nn.ModuleList(Hourglass(depth, c) for _ in range(stacks))
        self.features = nn.ModuleList(
            nn.Sequential(Residual(c, c), nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU())
            for _ in range(stacks)
        )
        # self-attention in every stack after the first
        self.attention = nn.ModuleList(
            _attention("none" if i == 0 else attention, c) for i in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(c, joints, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(stacks - 1))
        self.merge_maps = nn.ModuleList(nn.Conv2d(joints, c, 1) for _ in range(stacks - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(x)  # (B, C, R/4, R/4)
        outputs = []
        for i, hourglass in enumerate(self.hourglasses):
            f = self.attention[i](self.features[i](hourglass(h)))  # (B, C, R/4, R/4)
            maps = self.heads[i](f)  # (B, K, R/4, R/4)
            outputs.append(maps)
            if i < len(self.hourglasses) - 1:
                h = h + self.merge_features[i](f) + self.merge_maps[i](maps)
        return outputs


class HourglassDiscriminator(nn.Module):
    """``(image (B, 3, H, W), maps (B, K, H, W)) -> reconstructed maps (B, K, H, W)``."""

    def __init__(
        self, joints: int = 16, features: int = 128, depth: int = 3, attention: str = "sagan"
    ) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(3 + joints, features, 3, padding=1), nn.ReLU())
        self.hourglass = Hourglass(depth, features, skip_attention=attention)
        self.out = nn.Conv2d(features, joints, 1)

    def forward(self, image: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        h = self.inp(torch.cat([image, maps], dim=1))  # (B, features, H, W)
        return self.out(self.hourglass(h))  # (B, K, H, W)
