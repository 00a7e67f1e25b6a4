"""Hourglass networks with attention, and Chou et al.'s losses, on tiny sizes."""

from __future__ import annotations

import pytest
import torch

from sagan.nn import SelfAttention2d
from sagan.pose.losses import d_loss, g_loss, update_k
from sagan.pose.networks import (
    HourglassDiscriminator,
    SARMHead,
    SARMSkip,
    SigmoidAttention2d,
    StackedHourglass,
)


@pytest.mark.parametrize("attention", ["sagan", "ours-sigmoid", "none"])
def test_stacks_output_one_heatmap_set_each(attention: str) -> None:
    torch.manual_seed(0)
    g = StackedHourglass(joints=16, stacks=3, features=32, depth=2, attention=attention)
    out = g(torch.randn(2, 3, 64, 64))
    assert len(out) == 3 and all(o.shape == (2, 16, 16, 16) for o in out)
    kinds = [type(m).__name__ for m in g.attention]
    # no attention in the first stack; the chosen kind in every later one
    expected = {
        "sagan": "SelfAttention2d",
        "ours-sigmoid": "SigmoidAttention2d",
        "none": "Identity",
    }
    assert kinds == ["Identity"] + [expected[attention]] * 2
    sum(o.sum() for o in out).backward()
    assert all(p.grad is not None for p in g.heads[0].parameters())


def test_attention_modules_start_as_their_skip_branches() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)
    sig = SigmoidAttention2d(16).eval()
    torch.testing.assert_close(sig(x), x + sig.bottleneck(x), rtol=0, atol=0)  # gamma = 0
    sa = SelfAttention2d(16, spectral=False).eval()
    assert torch.equal(sa(x), x)
    with torch.no_grad():
        sig.gamma.fill_(1.0)
    assert not torch.allclose(sig(x), x + sig.bottleneck(x))


def test_discriminator_reconstructs_maps_with_attention_on_skips() -> None:
    d = HourglassDiscriminator(joints=16, features=16, depth=2, attention="sagan", arch="v0.1")
    maps = d(torch.randn(2, 3, 16, 16), torch.rand(2, 16, 16, 16))
    assert maps.shape == (2, 16, 16, 16)
    assert sum(isinstance(m, SelfAttention2d) for m in d.modules()) == 2  # one per skip
    with pytest.raises(ValueError, match="attention must be one of"):
        StackedHourglass(attention="softmax")


def test_losses_and_k_by_hand() -> None:
    real, fake = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    recon_real = torch.full((1, 1, 2, 2), 0.5)  # MSE 0.25
    recon_fake = torch.full((1, 1, 2, 2), 3.0)  # MSE 4
    loss, l_real, l_fake = d_loss(recon_real, real, recon_fake, fake, k=0.5)
    assert (float(l_real), float(l_fake), float(loss)) == (0.25, 4.0, 0.25 - 2.0)
    stacks = [torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), 2.0)]  # MSE 1 + 4
    assert float(g_loss(stacks, real, recon_fake, fake, lambda_g=0.1)) == pytest.approx(5.4)
    assert update_k(0.5, 0.25, 4.0, lambda_k=0.001, gamma=0.5) == pytest.approx(
        0.5 + 0.001 * (0.125 - 4.0)
    )
    assert update_k(0.0, 0.0, 1.0) == 0.0 and update_k(1.0, 100.0, 0.0) == 1.0  # clipped


# --- the authors' modules (idotc/Hg-SAGAN: SARM_B.lua, SARM_A.lua, hg-atten.lua) -----------


def _explicit_sarm_b(m: SARMHead, x: torch.Tensor) -> torch.Tensor:
    """SARM_B written out: bottleneck + 1x1 skip + V · sigmoid(Qᵀ K), the map built whole."""
    b, _, h, w = x.shape
    q, k, v = (
        m.q(x).reshape(b, -1, h * w),
        m.k(x).reshape(b, -1, h * w),
        m.v(x).reshape(b, -1, h * w),
    )
    att = torch.sigmoid(torch.einsum("bci,bcj->bij", q, k))  # (B, N, N), entry [i, j]
    o = torch.einsum("bci,bij->bcj", v, att).reshape(b, -1, h, w)
    return m.bottleneck(x) + m.skip(x) + o


def _explicit_sarm_a(m: SARMSkip, x: torch.Tensor) -> torch.Tensor:
    """SARM_A written out: (bottleneck(x) + x) · sigmoid(Xᵀ X), X a second bottleneck of x."""
    b, c, h, w = x.shape
    r = (m.residual(x) + x).reshape(b, c, h * w)
    xx = m.attend(x).reshape(b, c, h * w)
    att = torch.sigmoid(torch.einsum("bci,bcj->bij", xx, xx))
    return torch.einsum("bci,bij->bcj", r, att).reshape(b, c, h, w)


def test_sarm_b_is_the_released_formula_with_gradients() -> None:
    torch.manual_seed(0)
    m = SARMHead(32, 16, block=7).double().eval()
    x = torch.randn(2, 32, 6, 6, dtype=torch.float64, requires_grad=True)
    out, ref = m(x), _explicit_sarm_b(m, x)
    assert out.shape == (2, 16, 6, 6)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    up = torch.randn_like(out)
    (ga,) = torch.autograd.grad(out, x, up)
    (gb,) = torch.autograd.grad(ref, x, up)
    torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-9)
    # Q, K and V are separate 1x1 convs to the joints; no gamma, no softmax
    assert [c.weight.shape for c in (m.q, m.k, m.v)] == [(16, 32, 1, 1)] * 3
    assert m.q.weight.data_ptr() != m.k.weight.data_ptr()
    assert not any("gamma" in name for name, _ in m.named_parameters())


def test_sarm_a_is_the_released_formula_with_gradients() -> None:
    torch.manual_seed(0)
    m = SARMSkip(8, block=5).double().eval()
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    out, ref = m(x), _explicit_sarm_a(m, x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    up = torch.randn_like(out)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, up)[0], torch.autograd.grad(ref, x, up)[0], rtol=1e-9, atol=1e-9
    )
    assert not any("gamma" in name for name, _ in m.named_parameters())


def test_sarm_generator_has_attention_only_in_the_heads_of_stacks_two_on() -> None:
    g = StackedHourglass(joints=16, stacks=3, features=32, depth=2, attention="sarm")
    assert isinstance(g.heads[0], torch.nn.Conv2d)  # stack 1: a plain 1x1 conv
    for head in g.heads[1:]:  # SARM_B, then a 1x1 conv joints -> joints
        assert isinstance(head[0], SARMHead) and head[1].weight.shape == (16, 16, 1, 1)
    assert all(isinstance(m, torch.nn.Identity) for m in g.attention)
    out = g(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in out] == [(2, 16, 16, 16)] * 3


def test_released_discriminator_has_sarm_a_on_every_skip() -> None:
    d = HourglassDiscriminator(joints=16, features=16, depth=3, attention="sarm")
    assert sum(isinstance(m, SARMSkip) for m in d.modules()) == 3  # skips at 32, 16, 8 px
    assert d.inp[0].in_channels == 19  # image + 16 heat-maps
    out = d(torch.randn(2, 3, 32, 32), torch.rand(2, 16, 32, 32))
    assert out.shape == (2, 16, 32, 32)


@pytest.mark.slow
def test_the_papers_sizes() -> None:
    """4 stacks x 256 features, depth 4, 256 px: heat-maps at 64 (the SARM_B maps are
    4096 x 4096); the released D of 256 features and depth 4 on image + maps at 64."""
    torch.manual_seed(0)
    g = StackedHourglass(joints=16, stacks=4, features=256, depth=4, attention="sarm").eval()
    d = HourglassDiscriminator(joints=16, features=256, depth=4, attention="sarm").eval()
    with torch.no_grad():
        out = g(torch.randn(1, 3, 256, 256))
        assert [o.shape for o in out] == [(1, 16, 64, 64)] * 4
        assert d(torch.randn(1, 3, 64, 64), out[-1]).shape == (1, 16, 64, 64)
    assert sum(isinstance(m, SARMHead) for m in g.modules()) == 3
    assert sum(isinstance(m, SARMSkip) for m in d.modules()) == 4  # skips at 64, 32, 16, 8
