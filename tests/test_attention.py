"""SelfAttention2d: equal to the explicit formulation, gamma = 0 is the identity, fused path."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import sagan.nn.attention as attention_module
from sagan.nn import SelfAttention2d, attention_gammas
from sagan.nn.attention import EXPLICIT_MAX


def explicit_attention(layer: SelfAttention2d, x: torch.Tensor) -> torch.Tensor:
    """The reference implementations' formulation: bmm, softmax, bmm (no 1/sqrt(d) scale)."""
    b, _, h, w = x.shape
    f = layer.key(x)
    g = layer.query(x)
    hv = layer.value(x)
    if layer.pool:
        f, hv = torch.nn.functional.max_pool2d(f, 2), torch.nn.functional.max_pool2d(hv, 2)
    g = g.view(b, -1, h * w)  # (B, Ck, N)
    f = f.view(b, layer.key_channels, -1)  # (B, Ck, N')
    hv = hv.view(b, layer.value_channels, -1)  # (B, Cv, N')
    s = torch.bmm(g.transpose(1, 2), f)  # (B, N, N')
    beta = torch.softmax(s, dim=-1)
    o = torch.bmm(hv, beta.transpose(1, 2)).view(b, layer.value_channels, h, w)
    return layer.gamma * layer.out(o) + x


def _layer(pool: bool, **kw: int) -> SelfAttention2d:
    """C = 32; ``kw`` as SelfAttention2d's (explicit_max=0 forces the fused path)."""
    torch.manual_seed(0)
    layer = SelfAttention2d(32, pool=pool, **kw).eval()  # eval: fixed spectral-norm vectors
    with torch.no_grad():
        layer.gamma.fill_(0.7)
    return layer


@pytest.mark.parametrize("explicit_max", [0, EXPLICIT_MAX], ids=["fused", "small-explicit"])
@pytest.mark.parametrize("pool", [True, False])
@pytest.mark.parametrize(
    "kw", [{}, {"key_channels": 8, "value_channels": 8}, {"value_channels": 4}]
)
def test_matches_explicit_forward_and_gradients(
    pool: bool, kw: dict[str, int], explicit_max: int
) -> None:
    layer = _layer(pool, explicit_max=explicit_max, **kw)
    x = torch.randn(3, 32, 8, 12) * 3  # large inputs: peaked softmax, no scaling
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y1 = layer(x1)
    y2 = explicit_attention(layer, x2)
    assert (y1 - y2).abs().max() <= 1e-5
    w = torch.randn_like(y1)
    g1 = torch.autograd.grad((y1 * w).sum(), [x1, *layer.parameters()])
    g2 = torch.autograd.grad((y2 * w).sum(), [x2, *layer.parameters()])
    for a, b in zip(g1, g2, strict=True):
        assert (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item())


def test_gamma_zero_returns_input_exactly() -> None:
    layer = SelfAttention2d(16)
    assert layer.gamma.item() == 0.0  # the paper's initialisation
    x = torch.randn(2, 16, 8, 8) * 100
    assert torch.equal(layer(x), x)
    y, _ = layer(x, return_attention=True)
    assert torch.equal(y, x)


@pytest.mark.parametrize("pool", [True, False])
def test_attention_map_shape_rows_and_consistency(pool: bool) -> None:
    layer = _layer(pool)
    x = torch.randn(2, 32, 8, 8)
    y, beta = layer(x, return_attention=True)
    keys = 16 if pool else 64
    assert beta.shape == (2, 64, keys)
    torch.testing.assert_close(beta.sum(-1), torch.ones(2, 64))
    assert (beta >= 0).all()
    fused = _layer(pool, explicit_max=0)  # the same weights, the training path
    torch.testing.assert_close(y, fused(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(beta, layer.attention_map(x))


def test_no_scaling_of_logits() -> None:
    """beta = softmax(f(x)^T g(x)) over positions, without the 1/sqrt(d) of transformers."""
    layer = _layer(False, key_channels=8)
    x = torch.randn(1, 32, 4, 4) * 3
    q = layer.query(x).flatten(2)  # (1, 8, 16)
    k = layer.key(x).flatten(2)  # (1, 8, 16)
    logits = torch.einsum("bcn,bcm->bnm", q, k)  # (1, 16 queries, 16 keys)
    beta = layer.attention_map(x)
    torch.testing.assert_close(beta, torch.softmax(logits, dim=-1))
    assert not torch.allclose(beta, torch.softmax(logits / 8**0.5, dim=-1), atol=1e-3)


@pytest.mark.parametrize(
    ("size", "pool", "explicit_max", "fused"),
    [
        (16, True, EXPLICIT_MAX, False),  # 256 x 64 entries: explicit
        (16, False, EXPLICIT_MAX, True),  # 256 x 256
        (32, True, EXPLICIT_MAX, True),  # 1024 x 256
        (8, True, 0, True),  # 0: always fused
        (32, True, 1024 * 256, False),
    ],
)
def test_small_maps_are_explicit_larger_ones_fused(
    size: int, pool: bool, explicit_max: int, fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    sdpa = attention_module.F.scaled_dot_product_attention

    def counting(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", counting)
    layer = SelfAttention2d(16, pool=pool, explicit_max=explicit_max)
    layer(torch.randn(2, 16, size, size))
    assert len(calls) == int(fused)
    with pytest.raises(ValueError, match="explicit_max must be >= 0"):
        SelfAttention2d(16, explicit_max=-1)


def test_training_path_runs_on_the_fused_cpu_kernel() -> None:
    """The flash kernel never materialises the N x N' map; forcing it must not fail."""
    layer = SelfAttention2d(64, explicit_max=0).train()
    x = torch.randn(2, 64, 16, 16, requires_grad=True)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        y = layer(x)
        y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_bfloat16_autocast_matches_float32() -> None:
    layer = _layer(True)
    x = torch.randn(2, 32, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    # the attention branch gamma * o, not the residual x, which would hide its errors (the
    # old atol 0.1 passed a branch 10% off); bfloat16 keeps it within 0.6% here
    branch = layer(x) - x
    assert (y.float() - x - branch).abs().max() <= 0.03 * branch.abs().max()


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="even H and W"):
        SelfAttention2d(16)(torch.randn(1, 16, 5, 6))
    with pytest.raises(ValueError, match=r"expects \(B, 16, H, W\)"):
        SelfAttention2d(16)(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="at least 1 key"):
        SelfAttention2d(4)


def test_attention_gammas_names_layers_by_key() -> None:
    net = torch.nn.Module()
    net.attention = torch.nn.ModuleDict({"16": SelfAttention2d(16), "32": SelfAttention2d(16)})
    with torch.no_grad():
        net.attention["32"].gamma.fill_(0.25)
    assert attention_gammas(net, "G") == {"G16": 0.0, "G32": 0.25}
