"""Losses against hand-computed values; one sign convention: D scores real data high."""

from __future__ import annotations

import math

import torch

from sagan.losses import LOSSES, d_hinge, d_nonsaturating, g_hinge, g_nonsaturating

REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-2.0, 0.0, 1.5])


def test_hinge_by_hand() -> None:
    # real: relu(1-2)=0, relu(0.5)=0.5, relu(2)=2 -> mean 2.5/3
    # fake: relu(1-2)=0, relu(1)=1, relu(2.5)=2.5 -> mean 3.5/3
    assert math.isclose(d_hinge(REAL, FAKE).item(), 2.5 / 3 + 3.5 / 3, rel_tol=1e-6)
    assert math.isclose(g_hinge(FAKE).item(), -(-2.0 + 0.0 + 1.5) / 3, rel_tol=1e-6)


def test_nonsaturating_by_hand() -> None:
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    d = sum(sp(-r) for r in REAL.tolist()) / 3 + sum(sp(f) for f in FAKE.tolist()) / 3
    g = sum(sp(-f) for f in FAKE.tolist()) / 3
    assert math.isclose(d_nonsaturating(REAL, FAKE).item(), d, rel_tol=1e-6)
    assert math.isclose(g_nonsaturating(FAKE).item(), g, rel_tol=1e-6)


def test_sign_convention_real_high_is_good_for_d() -> None:
    for loss in LOSSES.values():
        confident = loss.d(torch.full((4,), 5.0), torch.full((4,), -5.0))
        confused = loss.d(torch.full((4,), -5.0), torch.full((4,), 5.0))
        assert confident < confused
        # G wants its samples scored high
        assert loss.g(torch.full((4,), 5.0)) < loss.g(torch.full((4,), -5.0))


def test_hinge_zero_at_margin_and_gradients() -> None:
    real = torch.tensor([1.0, 3.0], requires_grad=True)
    fake = torch.tensor([-1.0, -4.0], requires_grad=True)
    loss = d_hinge(real, fake)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(real.grad == 0) and torch.all(fake.grad == 0)
