"""Generator and discriminator families, chosen by name in :class:`ModelConfig`.

Every generator maps ``(z (B, z_dim), y (B,) | None)`` to images ``(B, C, R, R)`` in [-1, 1] and
every discriminator maps ``(x, y)`` to scores ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from sagan.images.networks.dcgan import (
    DCGAN_RESOLUTIONS,
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_feature_sizes,
)
from sagan.images.networks.resnet import (
    RESNET_RESOLUTIONS,
    ResNetDiscriminator,
    ResNetGenerator,
    resnet_feature_sizes,
)

if TYPE_CHECKING:  # pragma: no cover
    from sagan.images.config import ModelConfig

__all__ = ["ARCHITECTURES", "Architecture", "build_discriminator", "build_generator"]


@dataclass(frozen=True)
class Architecture:
    """A family of G/D pairs and the resolutions it supports."""

    resolutions: tuple[int, ...]
    feature_sizes: Callable[[int], tuple[tuple[int, ...], tuple[int, ...]]]
    generator: type[nn.Module]
    discriminator: type[nn.Module]


ARCHITECTURES: dict[str, Architecture] = {
    "resnet": Architecture(
        RESNET_RESOLUTIONS, resnet_feature_sizes, ResNetGenerator, ResNetDiscriminator
    ),
    "dcgan": Architecture(
        DCGAN_RESOLUTIONS, dcgan_feature_sizes, DCGANGenerator, DCGANDiscriminator
    ),
}


def _resolved(cfg: ModelConfig) -> tuple[int, int]:
    if cfg.channels is None or cfg.num_classes is None:
        raise ValueError("ModelConfig.channels and num_classes must be set (from the data set)")
    return cfg.channels, cfg.num_classes


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The generator described by ``cfg`` (channels and num_classes must be resolved)."""
    channels, num_classes = _resolved(cfg)
    return ARCHITECTURES[cfg.arch].generator(
        resolution=cfg.resolution,
        ch=cfg.ch,
        z_dim=cfg.z_dim,
        out_channels=channels,
        num_classes=num_classes,
        attention=cfg.attention,
        spectral=cfg.g_spectral_norm,
    )


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """The discriminator described by ``cfg`` (always spectrally normalised)."""
    channels, num_classes = _resolved(cfg)
    return ARCHITECTURES[cfg.arch].discriminator(
        resolution=cfg.resolution,
        ch=cfg.ch,
        in_channels=channels,
        num_classes=num_classes,
        attention=cfg.attention,
    )
