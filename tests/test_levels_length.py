"""Solution length as a condition (``--condition-length``) and as a generate-and-test filter
(``--condition length=MIN..MAX``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import small_level_model
from sagan.cli import main
from sagan.errors import SaganError
from sagan.levels.conditions import condition_vectors, parse_condition
from sagan.levels.config import BootstrapConfig, LevelRunConfig, ModelConfig, TrainConfig
from sagan.levels.data import load_levels
from sagan.levels.encoding import encode
from sagan.levels.evaluate import LevelGAN
from sagan.levels.networks import LevelDiscriminator, LevelGenerator
from sagan.levels.train import bootstrap, build_state, solution_length, train_levels
from sagan.training import find_checkpoints, load_checkpoint

LEVELS = np.stack([lv for _, lv in load_levels()])  # (8, 9, 13)


def test_parse_a_length_range_beside_counts() -> None:
    assert parse_condition("enemies=3, length=20..30") == ({"enemies": 3}, (20, 30))
    assert parse_condition("length=25") == ({}, (25, 25))
    assert parse_condition(None) == ({}, None)
    for bad in ("length=30..20", "length=a..b", "length=0..4", "length=5,length=9"):
        with pytest.raises(SaganError, match="length"):
            parse_condition(bad)
    with pytest.raises(SaganError, match=r"or length=MIN\.\.MAX"):
        parse_condition("size=3")


def test_the_condition_carries_the_length_and_the_networks_take_it() -> None:
    lengths = np.array([solution_length(lv) for lv in LEVELS[:3]])
    assert (lengths > 0).all()
    c = condition_vectors(LEVELS[:3], lengths)
    assert c.shape == (3, 9)
    np.testing.assert_allclose(c[:, 8] * 117, lengths, rtol=1e-6)
    np.testing.assert_array_equal(c[:, :8], condition_vectors(LEVELS[:3]))
    cfg = small_level_model(condition_length=True)
    assert cfg.condition_dim == 9
    G, D = LevelGenerator(cfg), LevelDiscriminator(cfg)
    ct = torch.from_numpy(c)
    x = G(torch.randn(3, 8), ct)
    assert D(x, ct).shape == (3,)
    longer = ct.clone()
    longer[:, 8] += 20 / 117
    G.eval()  # the output moves with the length asked for
    assert not torch.allclose(G(torch.zeros(3, 8), ct), G(torch.zeros(3, 8), longer))
    with pytest.raises(SaganError, match="condition_length needs a conditional model"):
        ModelConfig(
            condition_places=False,
            conditional=False,
            condition_length=True,
            condition_counts=False,
            condition_norm=False,
        )


class _Recorder(nn.Module):
    """Replays given levels and records the conditions it was asked for."""

    def __init__(self, levels: np.ndarray) -> None:
        super().__init__()
        self.levels, self.i, self.asked = levels, 0, []  # type: ignore[var-annotated]
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, *, hard: bool = False
    ) -> torch.Tensor:
        self.asked.append(c)
        idx = [(self.i + k) % len(self.levels) for k in range(len(z))]
        self.i += len(z)
        return encode(self.levels[idx])


def test_generate_asks_for_the_length_and_filters_by_it() -> None:
    quick, slow = LEVELS[4], LEVELS[2]  # 21 and 23 moves
    assert [solution_length(quick), solution_length(slow)] == [21, 23]
    cfg = LevelRunConfig(model=small_level_model(condition_length=True))
    G = _Recorder(np.stack([quick, slow]))
    gan = LevelGAN(G, cfg, LEVELS[:5], LEVELS[:5], 0)
    gan.generate(50, length=(20, 30), seed=1)
    moves = G.asked[-1][:, 8].numpy() * 117
    assert moves.min() >= 20 - 1e-4 and moves.max() <= 30 + 1e-4 and moves.std() > 0
    gan.generate(10, seed=1)  # no request: the lengths of the starting levels drawn
    got = set(np.round(G.asked[-1][:, 8].numpy() * 117).astype(int))
    assert got <= set(gan.original_lengths.tolist())
    kept, tried = gan.generate_passing(3, as_asked=True, length=(22, 25), batch=4)
    assert all(solution_length(lv) == 23 for lv in kept) and tried >= 5
    plain = LevelRunConfig(model=small_level_model())
    other = LevelGAN(_Recorder(np.stack([quick, slow])), plain, LEVELS[:5], LEVELS[:5], 0)
    kept, _ = other.generate_passing(2, as_asked=True, length=(20, 21), batch=4)
    assert all(solution_length(lv) == 21 for lv in kept)  # filtered, though not asked


def test_training_with_the_length_condition_resumes_exactly(tmp_path: Path) -> None:
    def cfg(steps: int) -> LevelRunConfig:
        return LevelRunConfig(
            model=ModelConfig(
                condition_places=False, ch=8, z_dim=8, embed=4, condition_length=True
            ),
            train=TrainConfig(batch_size=4, steps=steps, save_every=2, log_every=1),
            bootstrap=BootstrapConfig(every=1, samples=4, min_solution=0),
        )

    straight = train_levels(cfg(4), out=tmp_path / "a", progress=False)
    half = train_levels(cfg(2), out=tmp_path / "b", progress=False)
    train_levels(resume=half, steps=4, progress=False)
    a = load_checkpoint(find_checkpoints(straight)[-1], kind="levels")
    b = load_checkpoint(find_checkpoints(half)[-1], kind="levels")
    for name, t in a["G"].items():
        assert torch.equal(t, b["G"][name]), name
    one = cfg(1)
    one = dataclasses.replace(one, model=dataclasses.replace(one.model, height=9, width=13))
    state = build_state(one, LEVELS[:2])
    assert state.c.shape == (8, 9) and len(state.lengths) == 2  # two levels, four ways each
    assert torch.equal(state.c[:2, 8], state.c[2:4, 8])  # a mirror image: the same length
    state.emas["G"].shadow = _Recorder(LEVELS[2:4])
    added = bootstrap(state, None)
    assert len(state.lengths) == len(state.levels) == 2 + len(added)
    assert state.lengths[-1] == solution_length(state.levels[-1])


def test_cli_reports_length_as_asked_and_notes_a_filter_only_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["levels", "train", "--ch", "8", "--z-dim", "8", "--embed", "4",
                 "--batch-size", "4", "--steps", "1", "--bootstrap-every", "0",
                 "--out", str(run)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["levels", "eval", str(run), "--n", "30", "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["length_as_asked"] <= 100
    assert main(["levels", "generate", str(run), "--n", "2", "--condition", "length=20..30",
                 "--out", str(tmp_path / "g")]) == 0  # fmt: skip
    assert "not trained with --condition-length" in capsys.readouterr().err


def test_length_as_asked_counts_levels_solved_within_two_moves() -> None:
    from sagan.levels.evaluate import _length_as_asked

    quick = LEVELS[4]  # 21 moves
    cfg = LevelRunConfig(model=small_level_model())
    near = LevelGAN(_Recorder(quick[None]), cfg, LEVELS[2:3], LEVELS[2:3], 0)  # asks 21..25
    assert _length_as_asked(near, 40, 0) == {"length_as_asked": 100.0}
    broken = quick.copy()
    broken[broken == 3] = 1  # no key: unplayable
    never = LevelGAN(_Recorder(broken[None]), cfg, LEVELS[2:3], LEVELS[2:3], 0)
    assert _length_as_asked(never, 40, 0) == {"length_as_asked": 0.0}
