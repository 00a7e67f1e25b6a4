"""Blocked sigmoid attention: the same function and gradients as the explicit N x N form, in
every block size, dtype and under autocast, with memory that grows with N x block."""

from __future__ import annotations

import pytest
import torch

from sagan.nn import sigmoid_attention, sigmoid_attention_explicit


def _inputs(b: int, d: int, c: int, n: int, dtype: torch.dtype = torch.float64):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    return [torch.randn(b, ch, n, generator=g, dtype=dtype).requires_grad_() for ch in (d, d, c)]


@pytest.mark.parametrize("block", [1, 7, 16, 50, 64, 1000])
def test_equals_the_explicit_map_forward_and_backward(block: int) -> None:
    q, k, v = _inputs(2, 4, 3, 50)
    out = sigmoid_attention(q, k, v, block=block)
    ref = sigmoid_attention_explicit(q, k, v)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    upstream = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), upstream)
    want = torch.autograd.grad(ref, (q, k, v), upstream)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_gradcheck_and_the_same_tensor_as_queries_and_keys() -> None:
    """SARM_A attends with one tensor X as both sides: sigmoid(Xᵀ X)."""
    q, k, v = _inputs(1, 3, 2, 19)
    assert torch.autograd.gradcheck(lambda a, b, c: sigmoid_attention(a, b, c, 5), (q, k, v))
    assert torch.autograd.gradcheck(lambda x, c: sigmoid_attention(x, x, c, 4), (q, v))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_float32_bfloat16_and_autocast(dtype: torch.dtype) -> None:
    q, k, v = (t.detach().float() for t in _inputs(2, 8, 8, 64))
    ref = sigmoid_attention_explicit(q.double(), k.double(), v.double())
    got = sigmoid_attention(q.to(dtype), k.to(dtype), v.to(dtype), block=16)
    assert got.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 0.05
    assert (got.double() - ref).abs().max() <= tol * ref.abs().max()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = sigmoid_attention(q, k, v, block=16)
    assert auto.dtype == torch.bfloat16
    assert (auto.double() - ref).abs().max() <= 0.05 * ref.abs().max()


def test_autograd_keeps_no_n_by_n_tensor() -> None:
    """Saved for backward: q, k and v only, never a (B, N, N) map."""
    q, k, v = (t.detach().float().requires_grad_() for t in _inputs(2, 4, 4, 256))
    saved: list[tuple[int, ...]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sigmoid_attention(q, k, v, block=32).sum().backward()
    assert saved and all(s[-1] * s[-2] < 256 * 256 for s in saved if len(s) == 3)
    assert (256, 256) not in {s[-2:] for s in saved}
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sigmoid_attention_explicit(q, k, v).sum().backward()
    assert (256, 256) in {s[-2:] for s in saved}  # the check can fail: the explicit form does


def test_bad_shapes_and_block() -> None:
    q, k, v = (t.detach() for t in _inputs(1, 2, 2, 8))
    with pytest.raises(ValueError, match="block must be >= 1"):
        sigmoid_attention(q, k, v, block=0)
    with pytest.raises(ValueError, match=r"expected q, k \(B, d, N\)"):
        sigmoid_attention(q, k[:, :, :4], v)


@pytest.mark.parametrize("block", [1, 6, 16, 50, 64])
def test_one_tensor_as_queries_and_keys_takes_the_symmetric_path(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sigmoid(Xᵀ X) is symmetric: the pairwise-block Function gives the explicit form's
    output and gradients, ragged last block included, and is the one used."""
    import importlib

    module = importlib.import_module("sagan.nn.sigmoid_attention")
    x, _, v = _inputs(2, 5, 3, 50)
    calls: list[str] = []
    sym = module._SymmetricBlockedSigmoidAttention.apply
    monkeypatch.setattr(
        module._SymmetricBlockedSigmoidAttention,
        "apply",
        lambda *a: calls.append("symmetric") or sym(*a),
    )
    out = module.sigmoid_attention(x, x, v, block=block)
    assert calls == ["symmetric"]
    ref = sigmoid_attention_explicit(x, x, v)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    upstream = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, v), upstream)
    want = torch.autograd.grad(ref, (x, v), upstream)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
