"""Feature networks: the InceptionV3 path through a stand-in torch-fidelity module (the real
one needs torchvision, which this machine cannot install beside the CPU torch), its weight
resolution and offline errors, and the offline networks."""

from __future__ import annotations

import sys
import textwrap
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sagan.errors import SaganError
from sagan.images.features import INCEPTION_FILE, DigitFeatures, RandomFeatures

FAKE_FIDELITY = '''
import torch
from torch import nn

CALLS = []


class FeatureExtractorInceptionV3(nn.Module):
    """Stand-in with torch-fidelity's constructor and forward contract."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__()
        assert name == "inception-v3-compat"
        assert features_list == ["2048", "logits_unbiased"]
        assert feature_extractor_weights_path is not None  # we always resolve the file
        self.proj = nn.Linear(3 * 8 * 8, 2048)
        self.fc = nn.Linear(2048, 1008)
        self.load_state_dict(torch.load(feature_extractor_weights_path, weights_only=False))
        CALLS.append(feature_extractor_weights_path)

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3, (x.dtype, x.shape)
        x = nn.functional.interpolate((x.float() - 128) / 128, size=(8, 8), mode="area")
        pool = torch.tanh(self.proj(x.flatten(1)))
        return pool, self.fc(pool)
'''


@pytest.fixture
def fidelity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in torch_fidelity package on sys.path and a weights file for it."""
    pkg = tmp_path / "site" / "torch_fidelity"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    # torchmetrics imports these when it finds a torch_fidelity package
    (pkg / "helpers.py").write_text(
        "def vassert(truecond, message):\n    assert truecond, message\n"
    )
    (pkg / "interpolate_compat_tensorflow.py").write_text(
        "def interpolate_bilinear_2d_like_tensorflow1x(*a, **k):\n    raise NotImplementedError\n"
    )
    (pkg / "feature_extractor_inceptionv3.py").write_text(textwrap.dedent(FAKE_FIDELITY))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m.startswith("torch_fidelity")]:
        monkeypatch.delitem(sys.modules, name)
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(0)
    net = torch.nn.Module()
    net.proj, net.fc = torch.nn.Linear(192, 2048), torch.nn.Linear(2048, 1008)
    weights = tmp_path / "inception.pth"
    torch.save(net.state_dict(), weights)
    assert FeatureExtractorInceptionV3.__module__ == "torch_fidelity.feature_extractor_inceptionv3"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    yield weights
    for name in [m for m in sys.modules if m.startswith("torch_fidelity")]:
        del sys.modules[name]  # later tests must see the machine without torch-fidelity


def _offline(*args: object, **kwargs: object) -> None:
    raise urllib.error.URLError("no network")


def test_offline_without_weights_says_which_file_and_where(
    fidelity: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sagan.images.features import InceptionFeatures

    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    with pytest.raises(SaganError) as e:
        InceptionFeatures()
    msg = str(e.value)
    assert "\n" not in msg and INCEPTION_FILE in msg and "--inception-weights" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg
    with pytest.raises(SaganError, match=r"--inception-weights .*: no such file"):
        InceptionFeatures(weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SaganError, match="is not a usable InceptionV3 weights file"):
        InceptionFeatures(weights=bad)


def test_weights_from_flag_then_from_the_hub_cache(fidelity: Path) -> None:
    import torch_fidelity.feature_extractor_inceptionv3 as fake

    from sagan.images.features import InceptionFeatures

    net = InceptionFeatures(weights=fidelity)
    out = net(torch.rand(5, 1, 16, 16))  # grey images are repeated to RGB, quantised to uint8
    assert out["features"].shape == (5, 2048) and out["logits"].shape == (5, 1008)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(fidelity.read_bytes())
    InceptionFeatures()
    assert [str(fidelity), str(cached)] == fake.CALLS


def test_default_metrics_skip_inception_when_offline(
    fidelity: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagan.images.evaluate import evaluate

    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)

    class Noise:
        num_classes, channels, resolution, data = 0, 3, 16, "longrange"

        def sample(self, n, labels=None, generator=None):  # type: ignore[no-untyped-def]
            return torch.rand(n, 3, 16, 16, generator=generator)

    result = evaluate(Noise(), n=50)
    assert {"fid", "kid", "is", "pr"} <= set(result.skipped)
    assert "cannot download the InceptionV3 weights" in result.skipped["fid"]
    assert {"fd_random", "constraint"} <= set(result.values)
    with pytest.raises(SaganError, match="cannot compute fid: cannot download"):
        evaluate(Noise(), n=50, metrics=["fid"])


def test_inception_metrics_through_evaluate(fidelity: Path) -> None:
    from sagan.images.data import load_dataset
    from sagan.images.evaluate import evaluate

    ds = load_dataset("longrange", 16)

    class Replay:
        num_classes, channels, resolution, data = 0, 3, 16, "longrange"

        def sample(self, n, labels=None, generator=None):  # type: ignore[no-untyped-def]
            idx = torch.randint(len(ds), (n,), generator=generator)
            return ds.images[idx].float() / 255

    result = evaluate(Replay(), n=200, inception_weights=fidelity)
    v = result.values
    assert {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"} <= set(v)
    assert "fid" not in result.skipped
    noise = Replay()
    noise.sample = lambda n, labels=None, generator=None: torch.rand(n, 3, 16, 16)  # type: ignore[method-assign]
    w = evaluate(noise, metrics=["fid", "kid"], n=200, inception_weights=fidelity).values
    assert w["fid"] > 5 * v["fid"] and w["kid"] > 5 * abs(v["kid"])


def test_offline_networks_are_fixed_and_shaped() -> None:
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b = RandomFeatures(), RandomFeatures()
    assert a.key == b.key
    torch.testing.assert_close(a(x)["features"], b(x)["features"], rtol=0, atol=0)
    assert a(x)["features"].shape == (4, 512)
    assert RandomFeatures(seed=1).key != a.key
    d = DigitFeatures()(x[:, :1])
    assert d["features"].shape == (4, 128) and d["logits"].shape == (4, 10)
    assert DigitFeatures().key.startswith("digits-")
