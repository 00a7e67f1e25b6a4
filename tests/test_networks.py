"""Generators and discriminators: shapes, spectral norm everywhere, attention placement, classes."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from sagan.errors import SaganError
from sagan.images.config import ModelConfig
from sagan.images.networks import ARCHITECTURES, build_discriminator, build_generator
from sagan.nn import (
    ConditionalBatchNorm2d,
    SelfAttention2d,
    VectorConditionalBatchNorm2d,
    spectrally_normalised,
)

CASES = [
    ("dcgan", 32, (16,)),
    ("dcgan", 64, (16, 32)),
    ("resnet", 32, (16,)),
    ("resnet", 64, (32,)),
    ("resnet", 128, (64,)),
]


def _cfg(arch: str, res: int, att: tuple[int, ...], classes: int, **kw: object) -> ModelConfig:
    return ModelConfig(
        arch=arch, resolution=res, ch=8, attention=att, channels=3, num_classes=classes, **kw
    )


@pytest.mark.parametrize(("arch", "res", "att"), CASES)
@pytest.mark.parametrize("classes", [0, 10])
def test_shapes_and_ranges(arch: str, res: int, att: tuple[int, ...], classes: int) -> None:
    torch.manual_seed(0)
    cfg = _cfg(arch, res, att, classes)
    G, D = build_generator(cfg), build_discriminator(cfg)
    z = torch.randn(2, cfg.z_dim)
    y = torch.tensor([1, 7]) if classes else None
    x = G(z, y)
    assert x.shape == (2, 3, res, res)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (2,)


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def _cbn_tables(model: nn.Module) -> set[int]:
    return {
        id(t)
        for m in model.modules()
        if isinstance(m, ConditionalBatchNorm2d) and m.num_classes
        for t in (m.gain, m.bias)
    }


def _sigma(module: nn.Module) -> float:
    w = module.weight.detach()
    if isinstance(module, nn.ConvTranspose2d):
        w = w.transpose(0, 1)  # (out, in, k, k): spectral_norm's dim=1 for transposed convs
    return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()


@pytest.mark.parametrize(("arch", "res", "att"), CASES[:3])
def test_every_layer_spectrally_normalised_with_sigma_near_one(
    arch: str, res: int, att: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    cfg = _cfg(arch, res, att, 10, g_spectral_norm=True)
    for net in (build_generator(cfg), build_discriminator(cfg)):
        tables = _cbn_tables(net)
        layers = [(n, m) for n, m in _layers(net) if id(m) not in tables]
        assert layers, "no layers found"
        normalised = dict(spectrally_normalised(net))
        assert set(normalised) == {n for n, _ in layers}, "a layer lacks spectral norm"
        net.train()
        for _ in range(30):  # power iterations run on every weight access in training mode
            for _, m in layers:
                _ = m.weight
        net.eval()
        for name, m in layers:
            sigma = _sigma(m)
            assert abs(sigma - 1) <= 0.05, f"{name}: sigma {sigma:.3f}"


def test_g_spectral_norm_can_be_turned_off_but_never_in_d() -> None:
    cfg = _cfg("dcgan", 32, (16,), 0, g_spectral_norm=False)
    assert not list(spectrally_normalised(build_generator(cfg)))
    D = build_discriminator(cfg)
    assert len(list(spectrally_normalised(D))) == len(_layers(D))


def _attention_sizes(model: nn.Module, x_or_z: torch.Tensor, y: torch.Tensor | None) -> list:
    seen = []
    hooks = [
        m.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape[1:])))
        for m in model.modules()
        if isinstance(m, SelfAttention2d)
    ]
    model(x_or_z, y)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_attention_sits_at_the_requested_feature_resolutions(arch: str) -> None:
    arch_spec = ARCHITECTURES[arch]
    g_sizes, d_sizes = arch_spec.feature_sizes(32)
    allowed = sorted(set(g_sizes) | set(d_sizes))
    for k in (0, 1, 2):
        for att in itertools.combinations(allowed, k):
            cfg = _cfg(arch, 32, att, 0)
            G, D = build_generator(cfg), build_discriminator(cfg)
            g_seen = _attention_sizes(G, torch.randn(2, cfg.z_dim), None)
            d_seen = _attention_sizes(D, torch.randn(2, 3, 32, 32), None)
            assert sorted(s[1] for s in g_seen) == sorted(r for r in att if r in g_sizes)
            assert sorted(s[1] for s in d_seen) == sorted(r for r in att if r in d_sizes)
            assert all(s[1] == s[2] for s in g_seen + d_seen)


def test_attention_at_a_missing_resolution_is_a_clear_error() -> None:
    with pytest.raises(SaganError, match=r"model.attention .*use one of: 8, 16, 32"):
        ModelConfig(arch="resnet", resolution=32, attention=(64,))
    with pytest.raises(SaganError, match=r"model.resolution .*use one of: 32, 64"):
        ModelConfig(arch="dcgan", resolution=128)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_class_conditioning_changes_g_and_d(arch: str) -> None:
    torch.manual_seed(0)
    cfg = _cfg(arch, 32, (16,), 10)
    G, D = build_generator(cfg), build_discriminator(cfg)
    # perturb the class tables so classes differ (they start equal: gain 1, bias 0)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm2d) and m.num_classes:
                m.gain.weight.normal_(1, 0.2)
                m.bias.weight.normal_(0, 0.2)
    z = torch.randn(1, cfg.z_dim).repeat(2, 1)
    G.train()
    x = G(z, torch.tensor([0, 3]))
    assert not torch.allclose(x[0], x[1])
    same = x[:1].repeat(2, 1, 1, 1)
    s = D(same, torch.tensor([0, 3]))
    assert not torch.isclose(s[0], s[1])
    with pytest.raises(ValueError, match="needs labels"):
        D(same, None)


def test_unconditional_has_plain_bn_and_no_projection() -> None:
    cfg = _cfg("resnet", 32, (), 0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert all(m.num_classes == 0 for m in G.modules() if isinstance(m, ConditionalBatchNorm2d))
    assert D.embed is None


def test_conditional_bn_starts_as_plain_bn_and_is_per_class() -> None:
    torch.manual_seed(0)
    cbn, bn = ConditionalBatchNorm2d(4, 3), nn.BatchNorm2d(4)
    x = torch.randn(6, 4, 5, 5)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(cbn(x, y), bn(x))
    with torch.no_grad():
        cbn.gain.weight[1] = 2.0
        cbn.bias.weight[1] = 0.5
    out = cbn(x, y)
    torch.testing.assert_close(out[1], bn(x)[1] * 2 + 0.5)
    torch.testing.assert_close(out[0], bn(x)[0])


def test_vector_conditional_bn_starts_as_plain_bn_and_follows_the_condition() -> None:
    torch.manual_seed(0)
    vbn, bn = VectorConditionalBatchNorm2d(4, 3), nn.BatchNorm2d(4)
    x, c = torch.randn(6, 4, 5, 5), torch.randn(6, 3)
    torch.testing.assert_close(vbn(x, c), bn(x))
    with torch.no_grad():
        vbn.gain.weight.zero_()
        vbn.gain.weight[2, 0] = 1.0  # channel 2's gain: 1 + c[:, 0]
        vbn.bias.bias.fill_(0.25)
    out, ref = vbn(x, c), bn(x)
    torch.testing.assert_close(out[:, 2], ref[:, 2] * (1 + c[:, 0, None, None]) + 0.25)
    torch.testing.assert_close(out[:, 0], ref[:, 0] + 0.25)
    out.square().sum().backward()
    assert all(float(p.grad.abs().sum()) > 0 for p in (vbn.gain.weight, vbn.bias.bias))
    with pytest.raises(ValueError, match="cond_dim"):
        VectorConditionalBatchNorm2d(4, 0)


def test_spectral_norm_stays_float32_under_autocast() -> None:
    from sagan.nn import sn_conv2d

    torch.manual_seed(0)
    conv = sn_conv2d(16, 32, 3)
    conv.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(30):
            w = conv.weight
    assert w.dtype == torch.float32 and conv.parametrizations.weight[0]._u.dtype == torch.float32
    assert abs(_sigma(conv) - 1) < 1e-3  # bf16 power iterations would be off by ~1e-2
