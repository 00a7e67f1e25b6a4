"""The shipped digit classifier and the offline metrics it drives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sagan.cli import main
from sagan.errors import SaganError
from sagan.images.data import load_dataset
from sagan.images.digit_classifier import load_digit_classifier
from sagan.images.evaluate import evaluate


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    ds = load_dataset("digits", 32)
    return ds.images.float() / 255.0, ds.labels  # images in [0, 1]


def test_shipped_classifier_recognises_the_digits(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    clf = load_digit_classifier()
    with torch.no_grad():
        pred = torch.cat([clf(images[i : i + 500] * 2 - 1).argmax(1) for i in range(0, 5000, 500)])
    assert (pred == labels).float().mean() >= 0.98


class _Replay:
    """A 'generator' that returns real images of the asked classes (or noise)."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, noise: bool = False, data: str = "digits"
    ) -> None:
        self.images, self.labels, self.noise = images, labels, noise
        self.num_classes = 10 if data == "digits" else 0
        self.channels, self.resolution = images.shape[1], images.shape[-1]
        self.data = data

    def sample(self, n, labels=None, generator=None):  # type: ignore[no-untyped-def]
        if self.noise:
            return torch.rand(
                n, self.channels, self.resolution, self.resolution, generator=generator
            )
        if labels is None:
            return self.images[torch.randint(len(self.images), (n,), generator=generator)]
        out = []
        for c in labels.tolist():
            pool = (self.labels == c).nonzero().flatten()
            out.append(self.images[pool[torch.randint(len(pool), (1,), generator=generator)]])
        return torch.cat(out)


def test_real_digits_score_well_and_noise_scores_badly(digits) -> None:  # type: ignore[no-untyped-def]
    real = evaluate(_Replay(*digits), n=1000).values
    noise = evaluate(_Replay(*digits, noise=True), n=1000).values
    assert real["accuracy"] >= 0.97
    assert real["coverage"] == 1.0
    assert real["is_digits"] > 8.5  # at most 10
    assert noise["fd_digits"] > 20 * real["fd_digits"]
    assert noise["fd_random"] > 20 * real["fd_random"]
    assert noise["kid_digits"] > 20 * abs(real["kid_digits"])
    assert noise["accuracy"] < 0.3 and noise["is_digits"] < 3
    # real samples lie on the real manifold and cover it; noise covers none of it and lies
    # on it far less often (noise features bunch up near a few large-radius real outliers)
    assert real["precision_digits"] > 0.8 and real["recall_digits"] > 0.8
    assert noise["recall_digits"] < 0.05 and noise["precision_digits"] < 0.6


def test_default_metrics_skip_what_cannot_run_and_say_why(digits) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(_Replay(*digits), n=100)
    assert {"fd_digits", "kid_digits", "is_digits", "precision_digits", "recall_digits"} <= set(
        result.values
    )
    assert {"coverage", "accuracy", "fd_random"} <= set(result.values)
    assert "constraint" in result.skipped and "fid" in result.skipped
    line = result.skipped_line()
    assert "\n" not in line and line.startswith("skipped ")
    assert "fid, kid, is, pr (needs torch-fidelity" in line  # it is not installed here
    assert "constraint (only for generators trained on --data longrange)" in line


def test_longrange_constraint_metric() -> None:
    ds = load_dataset("longrange", 32)
    images = ds.images.float() / 255
    real = evaluate(_Replay(images, ds.labels, data="longrange"), n=300).values
    assert real["constraint"] == 1.0 and real["wellformed"] == 1.0
    assert "fd_digits" not in real  # 3-channel: no digit metrics
    # right halves taken from other images: well-formed, but the constraint breaks
    swapped = images.clone()
    swapped[..., 16:] = images.roll(1, dims=0)[..., 16:]
    broken = evaluate(_Replay(swapped, ds.labels, data="longrange"), n=300).values
    assert broken["wellformed"] == 1.0 and broken["constraint"] < 0.1
    assert broken["fd_random"] > real["fd_random"]


def test_real_features_are_cached_by_key(tmp_path: Path) -> None:
    from sagan.images.evaluate import real_features
    from sagan.images.features import RandomFeatures

    ds = load_dataset("longrange", 16)
    calls = []

    class Counting(RandomFeatures):
        def __call__(self, images):  # type: ignore[no-untyped-def]
            calls.append(len(images))
            return super().__call__(images)

    net = Counting()
    a = real_features(ds, net, 300, cache=tmp_path)
    assert sum(calls) == 300 and a["features"].shape == (300, 512)
    b = real_features(ds, net, 300, cache=tmp_path)
    assert sum(calls) == 300  # from the cache
    np.testing.assert_array_equal(a["features"], b["features"])
    real_features(ds, net, 200, cache=tmp_path)  # another n: another key
    assert sum(calls) == 500
    files = sorted(p.name for p in (tmp_path / "metric-features").iterdir())
    assert len(files) == 2 and all(ds.fingerprint() in f and net.key in f for f in files)
    # a damaged cache file is recomputed, not trusted
    victim = tmp_path / "metric-features" / files[0]
    victim.write_bytes(b"garbage")
    again = real_features(ds, net, 200, cache=tmp_path)
    assert sum(calls) == 700 and again["features"].shape == (200, 512)


def test_unknown_metric_tiny_n_and_impossible_metric(digits) -> None:  # type: ignore[no-untyped-def]
    gen = _Replay(*digits)
    with pytest.raises(SaganError, match="unknown metric 'fdi'"):
        evaluate(gen, metrics=["fdi"])
    with pytest.raises(SaganError, match="--n must be >= 2"):
        evaluate(gen, n=1)
    with pytest.raises(SaganError, match="cannot compute constraint: only for generators"):
        evaluate(gen, metrics=["constraint"])
    with pytest.raises(SaganError, match="cannot compute fid: needs torch-fidelity"):
        evaluate(gen, metrics=["fid"])


def test_eval_command_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sagan.images.config import ModelConfig, RunConfig, TrainConfig
    from sagan.images.train import train

    cfg = RunConfig(
        model=ModelConfig(arch="dcgan", ch=8, z_dim=16, attention=(16,)),
        train=TrainConfig(batch_size=8, steps=1, device="cpu"),
    )
    run = train(cfg, out=tmp_path / "r", progress=False)
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "64", "--json"]) == 0
    captured = capsys.readouterr()
    values = json.loads(captured.out)
    assert set(values) == {
        "fd_digits",
        "kid_digits",
        "kid_digits_std",
        "is_digits",
        "precision_digits",
        "recall_digits",
        "coverage",
        "accuracy",
        "fd_random",
    }
    assert all(isinstance(v, float) for v in values.values())
    assert captured.err.count("\n") == 1 and "skipped fid, kid, is, pr" in captured.err
    assert main(["eval", str(run), "--n", "64", "--metrics", "fd_digits,coverage", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"fd_digits", "coverage"}
    assert main(["eval", str(run), "--metrics", "fid"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sagan: error: cannot compute fid") and err.count("\n") == 1
