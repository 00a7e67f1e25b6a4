"""Spectrally normalised layers (Miyato et al. 2018), as used on every layer of SAGAN's G and D.

Thin factories over PyTorch's spectral-norm parametrisation (the one
:func:`torch.nn.utils.parametrizations.spectral_norm` registers, here kept in float32 under
autocast), so that each network states per layer whether it is normalised, and so that the
whole codebase uses one power-iteration setting. The parametrisation keeps ``weight.original``
as the trained parameter and the power-iteration vectors ``_u``/``_v`` as buffers, so they
travel in ``state_dict`` (and checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

__all__ = [
    "SN_EPS",
    "maybe_spectral_norm",
    "sn_conv2d",
    "sn_conv_transpose2d",
    "sn_embedding",
    "sn_linear",
    "spectrally_normalised",
]

SN_EPS = 1e-6
"""Epsilon of the power iteration; BigGAN-PyTorch uses 1e-6 (PyTorch's default is 1e-12)."""

_LAYER_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


class _SpectralNormFP32(_SpectralNorm):
    """PyTorch's spectral-norm parametrisation, computed in float32 even under autocast.

    Under bf16/fp16 autocast the power iteration's matrix-vector products would otherwise run
    in low precision; sigma is then off by up to a percent and the u/v buffers drift. The
    state-dict layout (``weight.original``, ``weight.0._u``, ``weight.0._v``) is unchanged.
    """

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        with torch.autocast(weight.device.type, enabled=False):
            return super().forward(weight.float()).to(weight.dtype)


def maybe_spectral_norm(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Apply spectral normalisation to ``module``'s ``weight`` when ``enabled``.

    Transposed convolutions are normalised over their output dimension (``dim=1``), as PyTorch's
    default for them, so that sigma is that of the linear map they apply.
    """
    if not enabled:
        return module
    dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    sn = _SpectralNormFP32(module.weight, n_power_iterations=1, dim=dim, eps=SN_EPS)
    parametrize.register_parametrization(module, "weight", sn)
    return module


def sn_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    *,
    bias: bool = True,
    spectral: bool = True,
) -> nn.Module:
    """A ``Conv2d`` with (by default) spectral normalisation."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
    return maybe_spectral_norm(conv, spectral)


def sn_conv_transpose2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    *,
    bias: bool = True,
    spectral: bool = True,
) -> nn.Module:
    """A ``ConvTranspose2d`` with (by default) spectral normalisation."""
    conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
    return maybe_spectral_norm(conv, spectral)


def sn_linear(
    in_features: int, out_features: int, *, bias: bool = True, spectral: bool = True
) -> nn.Module:
    """A ``Linear`` with (by default) spectral normalisation."""
    return maybe_spectral_norm(nn.Linear(in_features, out_features, bias=bias), spectral)


def sn_embedding(num_embeddings: int, embedding_dim: int, *, spectral: bool = True) -> nn.Module:
    """An ``Embedding`` with (by default) spectral normalisation (projection D)."""
    return maybe_spectral_norm(nn.Embedding(num_embeddings, embedding_dim), spectral)


def spectrally_normalised(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(name, module)`` for every conv/linear/embedding in ``model`` with spectral norm."""
    for name, module in model.named_modules():
        if isinstance(module, _LAYER_TYPES) and parametrize.is_parametrized(module, "weight"):
            yield name, module
