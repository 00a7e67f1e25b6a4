"""Sigmoid attention, ``out = V · sigmoid(Qᵀ K)``, without the N x N map.

The self-attention residual modules of Hg-SAGAN (Wang et al. 2019; the authors' Lua code,
``SARM_A`` / ``SARM_B``) weight every position by an element-wise **sigmoid** of dot
products, not a softmax: no normalisation over positions, no scale, no gamma. At 64x64
features that map has 4096 x 4096 entries, 64 MiB per image in float32, and autograd keeps it
(and more) for backward.

:func:`sigmoid_attention` computes the same function in blocks of output positions and
recomputes each block's map in backward (a custom :class:`torch.autograd.Function`), so memory
grows with N x ``block``, not N x N. When the same tensor is both queries and keys (SARM_A's
``sigmoid(XᵀX)``) the map is symmetric, and a second Function works on pairs of blocks
(I <= J), each tile serving both (I, J) and (J, I): with d key and c value channels that is
2d + 3c multiply-adds per map entry for forward and backward together, against the explicit
form's 3d + 3c, so it is faster as well as smaller when d = c (SARM_A: 256 and 256).
:func:`sigmoid_attention_explicit` is the plain form, kept as the reference the tests and the
benchmark compare against.

Shapes (B batch, d key channels, c value channels, N positions)::

    q (B, d, N), k (B, d, N), v (B, c, N) -> out (B, c, N)
    out[b, :, j] = sum_i v[b, :, i] * sigmoid(q[b, :, i] · k[b, :, j])
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["DEFAULT_BLOCK", "sigmoid_attention", "sigmoid_attention_explicit"]

DEFAULT_BLOCK = 64
"""Output positions per block (our choice). Measured on 2 CPU cores at 64x64 features, batch 6,
with 16 key and value channels (SARM_B's): 1.9x the explicit form's speed at 1/50 of its
memory (``benchmarks/sigmoid_attention.py``)."""


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
            a = torch.bmm(qt, k[:, :, s : s + block]).sigmoid_()  # (B, N, b)
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
            a = torch.bmm(qt, kj).sigmoid_()  # (B, N, b): the block's map, recomputed
            dv.baddbmm_(gj, a.transpose(1, 2))  # dv[:, :, i] += sum_j g[:, j] a[i, j]
            ds = torch.bmm(vt, gj)  # (B, N, b): d out / d a
            ds.mul_(a)
            ds.mul_(a.neg_().add_(1.0))  # sigmoid' = a (1 - a); a now holds 1 - a
            dq.baddbmm_(kj, ds.transpose(1, 2))  # dq[:, i] += sum_j k[:, j] ds[i, j]
            dk[:, :, s : s + block] = torch.bmm(q, ds)  # dk[:, j] = sum_i q[:, i] ds[i, j]
        return dq, dk, dv, None


class _SymmetricBlockedSigmoidAttention(torch.autograd.Function):
    """``v · sigmoid(xᵀ x)``: the map A is symmetric, so forward and backward visit each pair
    of blocks (I, J), I <= J, once and use the tile for both A[I, J] and A[J, I] = A[I, J]ᵀ.

    With G = vᵀ g (g the upstream gradient), dS = G ⊙ A (1 - A) and dX = X (dS + dSᵀ); the
    symmetric M = dS + dSᵀ has the tile M[I, J] = (v_Iᵀ g_J + g_Iᵀ v_J) ⊙ A'[I, J].
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, v: torch.Tensor, block: int) -> torch.Tensor:  # type: ignore[override]
        n = x.shape[2]
        out = torch.zeros_like(v)
        xt = x.transpose(1, 2)  # (B, N, d)
        for i in range(0, n, block):
            vi, oi = v[:, :, i : i + block], out[:, :, i : i + block]  # (B, c, bI)
            for j in range(i, n, block):
                a = torch.bmm(xt[:, i : i + block], x[:, :, j : j + block]).sigmoid_()
                out[:, :, j : j + block].baddbmm_(vi, a)  # out_J += v_I A[I, J]
                if j != i:
                    oi.baddbmm_(v[:, :, j : j + block], a.transpose(1, 2))  # out_I += v_J A[J, I]
        ctx.save_for_backward(x, v)
        ctx.block = block
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, v = ctx.saved_tensors
        block, n = ctx.block, x.shape[2]
        grad = grad.to(v.dtype)
        xt, vt, gt = x.transpose(1, 2), v.transpose(1, 2), grad.transpose(1, 2)  # (B, N, ·)
        dx, dv = torch.zeros_like(x), torch.zeros_like(v)
        for i in range(0, n, block):
            I = slice(i, i + block)  # noqa: E741
            for j in range(i, n, block):
                J = slice(j, j + block)
                a = torch.bmm(xt[:, I], x[:, :, J]).sigmoid_()  # (B, bI, bJ): A[I, J]
                dv[:, :, I].baddbmm_(grad[:, :, J], a.transpose(1, 2))  # dv_I += g_J A[J, I]
                m = torch.bmm(vt[:, I], grad[:, :, J])  # (B, bI, bJ): G[I, J]
                if j != i:
                    dv[:, :, J].baddbmm_(grad[:, :, I], a)  # dv_J += g_I A[I, J]
                    m.baddbmm_(gt[:, I], v[:, :, J])  # + G[J, I]ᵀ
                else:
                    m = m + m.transpose(1, 2)
                m.mul_(a)
                m.mul_(a.neg_().add_(1.0))  # M[I, J] = (G + Gᵀ)[I, J] ⊙ a (1 - a)
                dx[:, :, J].baddbmm_(x[:, :, I], m)  # dX_J += X_I M[I, J]
                if j != i:
                    dx[:, :, I].baddbmm_(x[:, :, J], m.transpose(1, 2))  # dX_I += X_J M[J, I]
        return dx, dv, None


def sigmoid_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int = DEFAULT_BLOCK
) -> torch.Tensor:
    """``v · sigmoid(qᵀ k)`` in blocks of ``block`` output positions: ``q, k`` (B, d, N),
    ``v`` (B, c, N) -> (B, c, N), with memory O(B · N · block) in forward and backward.

    Passing the same tensor as ``q`` and ``k`` (``sigmoid_attention(x, x, v)``) takes the
    symmetric path, which visits each pair of blocks once.

    Inputs are brought to one dtype (under autocast, the autocast dtype), so the function
    runs in float32, bfloat16 or float16 alike. The sums over N positions are not
    normalised: in float16 a result above 65504 is inf (the engine's guard and gradient
    scaler then skip that update); bfloat16 has float32's range.
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
    same = q is k
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    with torch.autocast(q.device.type, enabled=False):
        if same:
            out = _SymmetricBlockedSigmoidAttention.apply(q, v, block)
        else:
            out = _BlockedSigmoidAttention.apply(q, k, v, block)
    return out
