"""Hourglass networks with attention, and Chou et al.'s losses, on tiny sizes."""

from __future__ import annotations

import pytest
import torch

from sagan.nn import SelfAttention2d
from sagan.pose.losses import d_loss, g_loss, update_k
from sagan.pose.networks import (
    HourglassDiscriminator,
    SigmoidAttention2d,
    StackedHourglass,
)


@pytest.mark.parametrize("attention", ["sagan", "sigmoid", "none"])
def test_stacks_output_one_heatmap_set_each(attention: str) -> None:
    torch.manual_seed(0)
    g = StackedHourglass(joints=16, stacks=3, features=32, depth=2, attention=attention)
    out = g(torch.randn(2, 3, 64, 64))
    assert len(out) == 3 and all(o.shape == (2, 16, 16, 16) for o in out)
    kinds = [type(m).__name__ for m in g.attention]
    # no attention in the first stack; the chosen kind in every later one
    expected = {"sagan": "SelfAttention2d", "sigmoid": "SigmoidAttention2d", "none": "Identity"}
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
    d = HourglassDiscriminator(joints=16, features=16, depth=2, attention="sagan")
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
