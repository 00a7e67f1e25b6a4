"""The shipped digit classifier and the offline metrics it drives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sagan.cli import main
from sagan.errors import SaganError
from sagan.images.data import load_dataset
from sagan.images.digit_classifier import load_digit_classifier
from sagan.images.evaluate import offline_metrics


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
    """A 'generator' that returns real digits of the asked classes (or noise)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, noise: bool = False) -> None:
        self.images, self.labels, self.noise = images, labels, noise
        self.num_classes = 10

    def sample(self, n, labels=None, generator=None):  # type: ignore[no-untyped-def]
        if self.noise:
            return torch.rand(n, 1, 32, 32, generator=generator)
        out = []
        for c in labels.tolist():
            pool = (self.labels == c).nonzero().flatten()
            out.append(self.images[pool[torch.randint(len(pool), (1,), generator=generator)]])
        return torch.cat(out)


def test_real_digits_score_well_and_noise_scores_badly(digits) -> None:  # type: ignore[no-untyped-def]
    real = offline_metrics(_Replay(*digits), n=1000)
    noise = offline_metrics(_Replay(*digits, noise=True), n=1000)
    assert real["accuracy"] >= 0.97
    assert real["coverage"] == 1.0
    assert real["is_digits"] > 8.5  # at most 10
    assert noise["fd_digits"] > 20 * real["fd_digits"]
    assert noise["accuracy"] < 0.3 and noise["is_digits"] < 3


def test_unknown_metric_and_tiny_n() -> None:
    with pytest.raises(SaganError, match="unknown metric 'fid'"):
        offline_metrics(_Replay(torch.zeros(1), torch.zeros(1)), metrics=["fid"])
    with pytest.raises(SaganError, match="--n must be >= 2"):
        offline_metrics(_Replay(torch.zeros(1), torch.zeros(1)), n=1)


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
    assert set(values) == {"fd_digits", "is_digits", "coverage", "accuracy"}
    assert "skipped fid, kid, is, pr" in captured.err
