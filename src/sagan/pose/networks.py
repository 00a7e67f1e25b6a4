"""Stacked hourglasses with self-attention (Hg-SAGAN's generator) and the hourglass
discriminator of Chou et al. (2017).

Generator ``(B, 3, R, R) -> [(B, K, R/4, R/4)] * stacks``: a stem (7x7 stride-2 conv, residual,
max-pool, residuals) brings the image to R/4, then ``stacks`` hourglasses (``depth``
down-samplings each, residual modules of ``features`` channels), each followed by a heat-map
head whose output is supervised (intermediate supervision) and fed back into the next stack.
Where the attention sits, by ``attention``:

* ``"sarm"`` (the default; the authors' released code, ``models/hg-atten.lua`` and
  ``layers/SARM_B.lua``): the heat-map head of every stack after the first is
  :class:`SARMHead`, ``bottleneck(x) + skip(x) + V·sigmoid(QᵀK)`` with Q, K, V separate 1x1
  convs from the features to the joints, then a 1x1 conv joints -> joints; the first stack's
  head is a plain 1x1 conv;
* ``"sagan"`` (ours): the core :class:`~sagan.nn.SelfAttention2d` (softmax over positions,
  ``gamma * o + x`` with gamma starting at 0) on the output features of stacks 2..N;
* ``"ours-sigmoid"``: our earlier reading of the paper (0.1.0, then called ``sigmoid``),
  kept so that its runs still load: ``x + bottleneck(x) + gamma * o`` with
  ``o = v(h(x) · sigmoid(fᵀ g) / N)`` on the features of stacks 2..N; not the authors' module;
* ``"none"``: plain stacked hourglasses (Newell et al. 2016).

Discriminator ``(image at heat-map size (B, 3, H, W), heat-maps (B, K, H, W)) -> (B, K, H, W)``,
reconstructing the heat-maps it is given (BEGAN-style, Chou et al.). ``arch="released"``
(``models/discriminator.lua``): 3x3 conv of image + maps, three residual modules, one
hourglass whose skip branches are :class:`SARMSkip` (SARM_A: ``(bottleneck(x) + x) ·
sigmoid(XᵀX)``, X from a second bottleneck) for ``attention="sarm"``, a residual module, a
1x1 conv-BN-ReLU and a 1x1 conv to the joints. The released stem widths are 64 and 128 at 256
features; ours scale as features / 4 and / 2 (the same at 256). ``arch="v0.1"`` is this
library's discriminator before 0.2 (a 3x3 conv, one hourglass, a 1x1 conv), kept so that its
runs still load. Both attention products run through :func:`~sagan.nn.sigmoid_attention`,
blocked, so no N x N map is stored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sagan.nn import SelfAttention2d, sigmoid_attention
from sagan.nn.sigmoid_attention import DEFAULT_BLOCK

__all__ = [
    "ATTENTION_KINDS",
    "D_ARCHS",
    "HourglassDiscriminator",
    "SARMHead",
    "SARMSkip",
    "SigmoidAttention2d",
    "StackedHourglass",
]

ATTENTION_KINDS = ("sarm", "sagan", "ours-sigmoid", "none")
D_ARCHS = ("released", "v0.1")


def bottleneck(c_in: int, mid: int, c_out: int) -> nn.Sequential:
    """Newell's pre-activation bottleneck: BN-ReLU-1x1 (mid), BN-ReLU-3x3, BN-ReLU-1x1."""
    return nn.Sequential(
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


class Residual(nn.Module):
    """Newell's bottleneck residual module: BN-ReLU-1x1 (C/2), BN-ReLU-3x3, BN-ReLU-1x1 (C)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.branch = bottleneck(c_in, c_out // 2, c_out)
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


class SARMHead(nn.Module):
    """The authors' SARM_B, a heat-map head with self-attention: ``(B, C, H, W) -> (B, K, H, W)``,
    ``bottleneck(x) + skip(x) + V·sigmoid(QᵀK)``.

    The bottleneck goes C -> C/2 -> C/2 -> K, the skip is a 1x1 conv C -> K, and Q, K, V are
    separate 1x1 convs C -> K (with bias). The map is an element-wise sigmoid (no softmax, no
    scale, no gamma): output position j gets ``sum_i V_i sigmoid(Q_i · K_j)``.
    """

    def __init__(self, c_in: int, c_out: int, block: int = DEFAULT_BLOCK) -> None:
        super().__init__()
        self.bottleneck = bottleneck(c_in, c_in // 2, c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1)
        self.q, self.k, self.v = (nn.Conv2d(c_in, c_out, 1) for _ in range(3))
        self.block = block
        """Output positions per block of the attention product (:func:`sigmoid_attention`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (conv(x).flatten(2) for conv in (self.q, self.k, self.v))  # (B, K, N) each
        o = sigmoid_attention(q, k, v, self.block).view(b, -1, h, w)  # (B, K, H, W)
        return self.bottleneck(x) + self.skip(x) + o.to(x.dtype)


class SARMSkip(nn.Module):
    """The authors' SARM_A, on the discriminator's skip branches: ``(B, C, H, W) -> same``,
    ``(bottleneck(x) + x) · sigmoid(XᵀX)`` with X = a second bottleneck of x.

    No Q/K projections, no gamma, no outer residual: output position j gets
    ``sum_i R_i sigmoid(X_i · X_j)``, R = bottleneck(x) + x.
    """

    def __init__(self, c: int, block: int = 512) -> None:
        super().__init__()
        self.residual = bottleneck(c, c // 2, c)
        self.attend = bottleneck(c, c // 2, c)
        self.block = block
        """Positions per block of the symmetric attention product (:func:`sigmoid_attention`
        with X as both sides). 512 (our choice): at 64x64 features, 256 channels, on 2 CPU
        cores it beat 256 by 2% (AVX-512) and 15% (AVX2), and 128 by more; smaller blocks
        were slower than the explicit map (``benchmarks/sigmoid_attention.py``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = (self.residual(x) + x).flatten(2)  # (B, C, N)
        a = self.attend(x).flatten(2)  # (B, C, N): X, both sides of the map
        return sigmoid_attention(a, a, r, self.block).view_as(x).to(x.dtype)


def _attention(kind: str, channels: int) -> nn.Module:
    """The module on the features of stacks 2..N (``sagan``, ``ours-sigmoid``) or none."""
    if kind == "sagan":
        return SelfAttention2d(channels, spectral=False)
    if kind == "ours-sigmoid":
        return SigmoidAttention2d(channels)
    if kind in ("none", "sarm"):  # sarm sits in the heat-map head instead
        return nn.Identity()
    raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {kind!r}")


def _skip(kind: str, c: int) -> nn.Module:
    """A discriminator hourglass's skip branch for attention ``kind``."""
    if kind == "sarm":
        return SARMSkip(c)
    return nn.Sequential(Residual(c, c), _attention(kind, c))


class Hourglass(nn.Module):
    """A recursive hourglass of ``depth`` down-samplings; ``skip_attention`` puts
    self-attention on every skip branch (the discriminator's design: SARM_A for ``sarm``)."""

    def __init__(self, depth: int, c: int, skip_attention: str = "none") -> None:
        super().__init__()
        self.skip = _skip(skip_attention, c)
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
        # self-attention in every stack after the first: on the features, or (sarm) in the head
        self.attention = nn.ModuleList(
            _attention("none" if i == 0 else attention, c) for i in range(stacks)
        )
        self.heads = nn.ModuleList(
            nn.Sequential(SARMHead(c, joints), nn.Conv2d(joints, joints, 1))
            if attention == "sarm" and i > 0
            else nn.Conv2d(c, joints, 1)
            for i in range(stacks)
        )
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
        self,
        joints: int = 16,
        features: int = 256,
        depth: int = 4,
        attention: str = "sarm",
        arch: str = "released",
    ) -> None:
        super().__init__()
        f = features
        if arch == "v0.1":
            self.inp = nn.Sequential(nn.Conv2d(3 + joints, f, 3, padding=1), nn.ReLU())
            self.hourglass = Hourglass(depth, f, skip_attention=attention)
            self.out = nn.Conv2d(f, joints, 1)
            return
        if arch != "released":
            raise ValueError(f"arch must be one of {D_ARCHS}, got {arch!r}")
        self.inp = nn.Sequential(
            nn.Conv2d(3 + joints, f // 4, 3, padding=1),
            nn.BatchNorm2d(f // 4),
            nn.ReLU(),
            Residual(f // 4, f // 2),
            Residual(f // 2, f // 2),
            Residual(f // 2, f),
        )
        self.hourglass = Hourglass(depth, f, skip_attention=attention)
        self.out = nn.Sequential(
            Residual(f, f),
            nn.Conv2d(f, f, 1),
            nn.BatchNorm2d(f),
            nn.ReLU(),
            nn.Conv2d(f, joints, 1),
        )

    def forward(self, image: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        h = self.inp(torch.cat([image, maps], dim=1))  # (B, features, H, W)
        return self.out(self.hourglass(h))  # (B, K, H, W)
