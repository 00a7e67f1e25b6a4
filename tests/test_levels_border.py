"""``model.wall_border`` (ours): G makes the border wall and generates only the inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sagan.cli import main
from sagan.levels.config import LevelRunConfig, ModelConfig
from sagan.levels.data import load_levels
from sagan.levels.encoding import decode
from sagan.levels.format import write_level
from sagan.levels.networks import LevelGenerator
from sagan.levels.tiles import FLOOR, WALL

LEVELS = np.stack([lv for _, lv in load_levels()])  # (8, 9, 13)


def _border(h: int = 9, w: int = 13) -> np.ndarray:
    mask = np.ones((h, w), dtype=bool)
    mask[1:-1, 1:-1] = False
    return mask


def test_g_makes_the_border_wall_and_learns_only_the_inside() -> None:
    assert (LEVELS[:, _border()] == WALL).all()  # what the option relies on
    torch.manual_seed(0)
    c = torch.rand(6, 8)
    for on in (False, True):
        G = LevelGenerator(
            ModelConfig(
                ch=8, z_dim=8, embed=4, height=9, width=13, condition_places=False, wall_border=on
            )
        )
        with torch.no_grad():
            G.out.bias[WALL] -= 5.0  # a G that would rather not make walls
        probs = G(torch.randn(6, 8), c)
        levels = decode(probs.detach(), 9, 13)  # (6, 9, 13)
        assert (levels[:, _border()] == WALL).all() == on
        if on:
            assert (probs[:, WALL, 9:, :] == 1).all() and (probs[:, WALL, :, 13:] == 1).all()
            corner = G(torch.randn(6, 8), c)[:, FLOOR, 0, 0].sum()  # a border cell
            (grad,) = torch.autograd.grad(corner, G.out.bias, allow_unused=True)
            assert grad is None or (grad == 0).all()  # no gradient reaches G through the frame
            assert "frame" not in G.state_dict()  # checkpoints keep their keys
            assert (levels[:, 1:-1, 1:-1] != WALL).any()  # the inside is G's own
    paper = LevelRunConfig.from_dict({"preset": "paper", "model": {"wall_border": True}})
    assert paper.model.wall_border  # a flag overrides the preset
    assert not LevelRunConfig.from_dict({"preset": "paper"}).model.wall_border


def test_levels_with_an_open_border_get_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "levels"
    folder.mkdir()
    open_level = LEVELS[0].copy()
    open_level[0, 3] = FLOOR
    write_level(folder / "a.txt", LEVELS[1])
    write_level(folder / "b.txt", open_level)
    args = ["levels", "train", "--levels", str(folder), "--steps", "1", "--batch-size", "2"]
    args += ["--ch", "8", "--z-dim", "8", "--no-progress", "--out", str(tmp_path / "run")]
    assert main([*args, "--wall-border"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "b.txt" in err[0] and "--no-wall-border" in err[0]
    assert not (tmp_path / "run").exists()
    assert main([*args, "--no-wall-border", "--out", str(tmp_path / "run2")]) == 0
