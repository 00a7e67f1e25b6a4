"""Runs written before the shared training engine (torch-sagan 0.1.0, tests/data/runs-0.1.0)
still load for every command that reads a run, and resume under the engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import sagan
from sagan.cli import main
from sagan.training import find_checkpoints, load_checkpoint

OLD = Path(__file__).parent / "data" / "runs-0.1.0"


def _made_by_0_1_0(name: str) -> np.ndarray:
    """What 0.1.0's own code made from these runs (outputs.npz; how: the folder's ABOUT)."""
    with np.load(OLD / "outputs.npz") as f:
        return f[name]


@pytest.fixture()
def old(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A writable copy of the old runs (resuming writes into them)."""

    def copy(app: str) -> Path:
        shutil.copytree(OLD / app, tmp_path / app)
        return tmp_path / app

    return copy


def _resumes(command: list[str], run: Path, kind: str) -> None:
    assert load_checkpoint(find_checkpoints(run)[-1], kind=kind)["step"] == 2
    assert main([*command, "--resume", str(run), "--steps", "3", "--no-progress"]) == 0
    assert load_checkpoint(find_checkpoints(run)[-1], kind=kind)["step"] == 3


def test_an_old_image_run_samples_exports_evaluates_and_resumes(
    old, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = old("images")
    images = sagan.load_generator(run).sample(4, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(images.numpy(), _made_by_0_1_0("images"), atol=1e-5, rtol=0)
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "export")]) == 0
    assert sagan.load_generator(tmp_path / "export").sample(2).shape == (2, 1, 32, 32)
    capsys.readouterr()
    argv = ["eval", str(run), "--metrics", "fd_random", "--n", "16", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["fd_random"] > 0
    _resumes(["train"], run, "images")


def test_an_old_level_run_generates_evaluates_and_resumes(
    old, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagan.levels.evaluate import load_level_gan

    run = old("levels")
    levels, _ = load_level_gan(run).generate(4, seed=0)
    np.testing.assert_array_equal(levels, _made_by_0_1_0("levels"))
    argv = ["levels", "generate", str(run), "--n", "4", "--out", str(tmp_path / "lv")]
    assert main(argv) == 0
    assert len(list((tmp_path / "lv").iterdir())) == 4
    capsys.readouterr()
    assert main(["levels", "eval", str(run), "--n", "20", "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["playable"] <= 100
    _resumes(["levels", "train"], run, "levels")


def test_an_old_pose_run_evaluates_predicts_and_resumes(
    old, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from sagan.pose.train import load_pose_model

    run = old("pose")
    G, _ = load_pose_model(run)
    with torch.no_grad():
        heatmaps = G(torch.linspace(0, 1, 3 * 32 * 32).reshape(1, 3, 32, 32))[-1]
    np.testing.assert_allclose(heatmaps.numpy(), _made_by_0_1_0("heatmaps"), atol=1e-5, rtol=0)
    assert main(["pose", "eval", str(run), "--n", "4", "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["total"] <= 100
    picture = tmp_path / "person.png"
    Image.new("RGB", (48, 64), (90, 120, 150)).save(picture)
    argv = ["pose", "predict", str(picture), "--model", str(run), "--out", str(tmp_path / "o.png")]
    assert main(argv) == 0
    _resumes(["pose", "train"], run, "pose")
