"""Sigmoid attention, ``out = V · sigmoid(Qᵀ K)``, without the N x N map.

The self-attention residual modules of Hg-SAGAN (Wang et al. 2019; the authors' Lua code,
``SARM_A`` / ``SARM_B``) weight every position by an element-wise **sigmoid** of dot
products, not a softmax: no normalisation over positions, no scale, no gamma. At 64x64
features that map has 4096 x 4096 entries, 64 MiB per image in float32, and autograd keeps it
(and more) for backward.

:func:`sigmoid_attention` computes the same function in blocks of output positions and
recomputes each block's map in backward (a custom :class:`torch.autograd.Function`), so memory
grows with N x ``block``, not N x N. :func:`sigmoid_attention_explicit` is the plain form,
kept as the reference the tests and the benchmark compare against.

Shapes (B batch, d key channels, c value channels, N positions)::

    q (B, d, N), k (B, d, N), v (B, c, N) -> out (B, c, N)
    out[b, :, j] = sum_i v[b, :, i] * sigmoid(q[b, :, i] · k[b, :, j])
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["DEFAULT_BLOCK", "sigmoid_attention", "sigmoid_attention_explicit"]

DEFAULT_BLOCK = 128
"""Output positions per block (our choice): 1/32 of the map at 64x64 features. Measured on 2
CPU cores with 16 key and value channels (SARM_B's), 128 gave 1/14 of the explicit form's
memory at 1.2x its speed (``benchmarks/sigmoid_attention.py``)."""


def sigmoid_attention_explicit(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The reference: builds the (B, N, N) map. ``q, k`` (B, d, N), ``v`` (B, c, N) ->
    (B, c, N)."""
    return torch.bmm(v, torch.sigmoid(torch.bmm(q.transpose(1, 2), k)))


class _BlockedSigmoidAttention(torch.autograd.Function):
    """Forward and backward over blocks of output positions; each block's map is recomputed
    in backward instead of stored."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int
    ) -> torch.Tensor:
        n = k.shape[2]
        out = v.new_empty(v.shape[0], v.shape[1], n)
        qt = q.transpose(1, 2)  # (B, N, d)
        for s in range(0, n, block):
            a = torch.sigmoid(torch.bmm(qt, k[:, :, s : s + block]))  # (B, N, b)
            out[:, :, s : s + block] = torch.bmm(v, a)  # (B, c, b)
        ctx.save_for_backward(q, k, v)
        ctx.block = block
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        q, k, v = ctx.saved_tensors
        block, n = ctx.block, k.shape[2]
        grad = grad.to(v.dtype)
        qt, vt = q.transpose(1, 2), v.transpose(1, 2)  # (B, N, d), (B, N, c)
        dq, dk, dv = torch.zeros_like(q), torch.empty_like(k), torch.zeros_like(v)
        for s in range(0, n, block):
            kj, gj = k[:, :, s : s + block], grad[:, :, s : s + block]  # (B, d, b), (B, c, b)
            a = torch.sigmoid(torch.bmm(qt, kj))  # (B, N, b): the block's map, recomputed
            dv.baddbmm_(gj, a.transpose(1, 2))  # dv[:, :, i] += sum_j g[:, j] a[i, j]
            ds = torch.bmm(vt, gj)  # (B, N, b): d out / d a
            ds.mul_(a)
            ds.mul_(a.neg_().add_(1.0))  # sigmoid' = a (1 - a); a now holds 1 - a
            dq.baddbmm_(kj, ds.transpose(1, 2))  # dq[:, i] += sum_j k[:, j] ds[i, j]
            dk[:, :, s : s + block] = torch.bmm(q, ds)  # dk[:, j] = sum_i q[:, i] ds[i, j]
        return dq, dk, dv, None


def sigmoid_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int = DEFAULT_BLOCK
) -> torch.Tensor:
    """``v · sigmoid(qᵀ k)`` in blocks of ``block`` output positions: ``q, k`` (B, d, N),
    ``v`` (B, c, N) -> (B, c, N), with memory O(B · N · block) in forward and backward.

    Inputs are brought to one dtype (under autocast, the autocast dtype), so the function
    runs in float32, bfloat16 or float16 alike.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if q.shape != k.shape or q.shape[0] != v.shape[0] or q.shape[2] != v.shape[2]:
        raise ValueError(
            f"expected q, k (B, d, N) and v (B, c, N); got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if torch.is_autocast_enabled(q.device.type):
        dtype = torch.get_autocast_dtype(q.device.type)
    else:
        dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    with torch.autocast(q.device.type, enabled=False):
        return _BlockedSigmoidAttention.apply(q, k, v, block)
