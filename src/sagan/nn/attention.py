"""The self-attention layer of SAGAN (Zhang et al. 2018), as in the authors' official code.

For a feature map x of shape (B, C, H, W) with N = H*W positions:

* f (keys), g (queries) and h (values) are 1x1 convolutions to C/8, C/8 and C/2 channels;
* with ``pool=True`` keys and values are 2x2 max-pooled (N' = N/4), as the official code does;
* beta = softmax over key positions of g(x)^T f(x), with NO 1/sqrt(d) scaling;
* o = v(beta h(x)) where v is a 1x1 convolution back to C channels;
* y = gamma * o + x with a learnable scalar gamma that starts at 0.

All four convolutions are spectrally normalised and have no bias. The attention product runs
through :func:`torch.nn.functional.scaled_dot_product_attention`, which never builds the N x N'
map on the fused paths. Queries and keys are zero-padded to the value width when narrower: every
dot product is unchanged, and equal head sizes let the CPU flash kernel run instead of the math
fallback (which would materialise the map).

Small maps (at most ``explicit_max`` = 256 x 64 entries per image: 16x16 features with pooled
keys, or smaller) are computed explicitly instead (bmm, softmax, bmm): there the map is tiny and
the fused kernel's fixed costs (padding, the kernel's own blocking, more operations to launch)
made the layer slower than the explicit product, on the CPU (bfloat16, batch 64, 16x16 pooled:
0.037 s against 0.023 s) and on an H200, where such layers are bound by launch overhead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sagan.nn.spectral import sn_conv2d

__all__ = ["EXPLICIT_MAX", "SelfAttention2d", "attention_gammas"]

EXPLICIT_MAX = 256 * 64
"""Default size (N x N' entries per image) up to which the map is computed explicitly."""


class SelfAttention2d(nn.Module):
    """SAGAN self-attention block for (B, C, H, W) feature maps.

    Args:
        channels: C, the channels of the input and of the output.
        key_channels: channels of f (keys) and g (queries); default C // 8.
        value_channels: channels of h (values); default C // 2.
        pool: 2x2 max-pool keys and values (N x N/4 attention map); needs even H and W.
        spectral: spectral normalisation on the four 1x1 convolutions.
        explicit_max: maps of at most this many entries per image (N x N') are computed
            explicitly (bmm, softmax, bmm); larger ones through the fused SDPA kernels. 0: always
            fused.
    """

    def __init__(
        self,
        channels: int,
        *,
        key_channels: int | None = None,
        value_channels: int | None = None,
        pool: bool = True,
        spectral: bool = True,
        explicit_max: int = EXPLICIT_MAX,
    ) -> None:
        super().__init__()
        if explicit_max < 0:
            raise ValueError(f"SelfAttention2d: explicit_max must be >= 0, got {explicit_max}")
        key_channels = channels // 8 if key_channels is None else key_channels
        value_channels = channels // 2 if value_channels is None else value_channels
        if key_channels < 1 or value_channels < 1:
            raise ValueError(
                f"SelfAttention2d needs at least 1 key and 1 value channel; got {channels} "
                f"channels -> {key_channels} key / {value_channels} value channels "
                "(use channels >= 8 or pass key_channels/value_channels)"
            )
        self.channels = channels
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.pool = pool
        self.explicit_max = explicit_max
        self.query = sn_conv2d(channels, key_channels, 1, bias=False, spectral=spectral)  # g
        self.key = sn_conv2d(channels, key_channels, 1, bias=False, spectral=spectral)  # f
        self.value = sn_conv2d(channels, value_channels, 1, bias=False, spectral=spectral)  # h
        self.out = sn_conv2d(value_channels, channels, 1, bias=False, spectral=spectral)  # v
        self.gamma = nn.Parameter(torch.zeros(()))

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, key_channels={self.key_channels}, "
            f"value_channels={self.value_channels}, pool={self.pool}, "
            f"explicit_max={self.explicit_max}"
        )

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (B, N, Ck), keys (B, N', Ck) and values (B, N', Cv) of ``x`` (B, C, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"SelfAttention2d({self.channels}) expects (B, {self.channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        if self.pool and (x.shape[2] % 2 or x.shape[3] % 2):
            raise ValueError(
                f"SelfAttention2d(pool=True) needs even H and W, got {tuple(x.shape[2:])}"
            )
        q = self.query(x)  # (B, Ck, H, W)
        k = self.key(x)  # (B, Ck, H, W)
        v = self.value(x)  # (B, Cv, H, W)
        if self.pool:
            k = F.max_pool2d(k, 2)  # (B, Ck, H/2, W/2)
            v = F.max_pool2d(v, 2)  # (B, Cv, H/2, W/2)
        q = q.flatten(2).transpose(1, 2)  # (B, N, Ck)
        k = k.flatten(2).transpose(1, 2)  # (B, N', Ck)
        v = v.flatten(2).transpose(1, 2)  # (B, N', Cv)
        return q, k, v

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights beta, shape (B, N, N'): row n is a distribution over key positions.

        Key positions index the pooled (H/2, W/2) grid when ``pool=True``, else the (H, W) grid,
        both in row-major order. This materialises the map: use it for figures, not training.
        """
        q, k, _ = self._qkv(x)
        return torch.softmax(q @ k.transpose(1, 2), dim=-1)  # (B, N, N')

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """y = gamma * o + x, shape (B, C, H, W); with ``return_attention`` also beta (B, N, N')."""
        b, _, h, w = x.shape
        q, k, v = self._qkv(x)
        if return_attention or q.shape[1] * k.shape[1] <= self.explicit_max:
            beta = torch.softmax(q @ k.transpose(1, 2), dim=-1)  # (B, N, N')
            o = beta @ v  # (B, N, Cv)
        else:
            width = max(self.key_channels, self.value_channels)
            # (B, 1, N, D): one head; pad to equal head sizes (dot products are unchanged).
            q = F.pad(q, (0, width - self.key_channels)).unsqueeze(1).contiguous()
            k = F.pad(k, (0, width - self.key_channels)).unsqueeze(1).contiguous()
            v = F.pad(v, (0, width - self.value_channels)).unsqueeze(1).contiguous()
            o = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B, 1, N, D)
            o = o.squeeze(1)[..., : self.value_channels]  # (B, N, Cv)
        o = o.transpose(1, 2).reshape(b, self.value_channels, h, w)  # (B, Cv, H, W)
        y = self.gamma * self.out(o) + x  # (B, C, H, W)
        return (y, beta) if return_attention else y


def attention_gammas(model: nn.Module, prefix: str) -> dict[str, float]:
    """``{prefix + key: gamma}`` for every :class:`SelfAttention2d` in ``model``.

    The key is the last component of the layer's module path (the networks here name attention
    layers by feature resolution, so ``G16`` is G's attention at 16x16 features).
    """
    return {
        f"{prefix}{name.rsplit('.', 1)[-1]}": float(module.gamma.detach())
        for name, module in model.named_modules()
        if isinstance(module, SelfAttention2d)
    }
