"""condition_places (ours): the avatar, key and door cells as part of the condition."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SpyG
from sagan.cli import main
from sagan.errors import SaganError
from sagan.levels.conditions import (
    PLACED,
    condition_vectors,
    place_maps,
    place_vectors,
    places_as_asked,
    random_places,
)
from sagan.levels.config import (
    PLACE_DIM,
    BootstrapConfig,
    LevelRunConfig,
    ModelConfig,
    TrainConfig,
)
from sagan.levels.data import load_levels
from sagan.levels.encoding import encode
from sagan.levels.evaluate import LevelGAN, evaluate_levels, load_level_gan
from sagan.levels.networks import LevelDiscriminator, LevelGenerator, _condition_features
from sagan.levels.tiles import AVATAR, DOOR, FLOOR, KEY
from sagan.levels.train import bootstrap, build_state

LEVELS = np.stack([lv for _, lv in load_levels()])  # (8, 9, 13)
MODEL = ModelConfig(
    ch=8, z_dim=8, embed=4, height=9, width=13, condition_places=True, fixed_places=False
)  # the place loss, which fixed places make moot


def test_place_vectors_and_maps_mark_each_tiles_cell() -> None:
    v = place_vectors(LEVELS)  # (8, 6)
    assert v.shape == (8, 2 * len(PLACED)) and ((v > 0) & (v < 1)).all()
    maps = place_maps(torch.from_numpy(v), 9, 13, 16)  # (8, 3, 16, 16)
    assert maps.shape == (8, 3, 16, 16) and (maps.sum(dim=(2, 3)) == 1).all()
    for j, tile in enumerate(PLACED):
        cells = np.argwhere(np.equal(LEVELS, tile))  # one per level: (8, 3) rows (level, r, c)
        assert len(cells) == len(LEVELS)
        for n, r, c in cells:
            assert maps[n, j, r, c] == 1
    assert places_as_asked(LEVELS, v).all()
    shifted = np.roll(v, 1, axis=0)  # each level asked for another level's cells
    assert not places_as_asked(LEVELS, shifted).all()
    no_key = LEVELS[:1].copy()
    no_key[no_key == KEY] = FLOOR
    w = place_vectors(no_key)
    assert (w[0, 2:4] == -1).all() and place_maps(torch.from_numpy(w), 9, 13, 16)[0, 1].sum() == 0
    assert not places_as_asked(no_key, v[:1]).any()
    two = condition_vectors(LEVELS[:2], places=True)
    assert two.shape == (2, 8 + PLACE_DIM) and np.array_equal(two[:, 8:], v[:2])


def test_random_places_are_distinct_inside_cells_spread_over_the_level() -> None:
    g = torch.Generator().manual_seed(0)
    p = random_places(3000, 9, 13, g)
    rows = np.floor(p[:, 0::2] * 9).astype(int)  # (3000, 3)
    cols = np.floor(p[:, 1::2] * 13).astype(int)
    assert rows.min() == 1 and rows.max() == 7 and cols.min() == 1 and cols.max() == 11
    cells = rows * 13 + cols
    assert (cells[:, 0] != cells[:, 1]).all() and (cells[:, 1] != cells[:, 2]).all()
    assert (cells[:, 0] != cells[:, 2]).all()
    for j in range(3):  # every inside cell is used, none by more than about 1/77 x 2
        counts = np.bincount(cells[:, j], minlength=9 * 13)
        assert (counts > 0).sum() == 7 * 11 and counts.max() < 2 * 3000 / 77
    again = random_places(3000, 9, 13, torch.Generator().manual_seed(0))
    assert np.array_equal(p, again)
    with pytest.raises(SaganError, match="no room inside"):
        random_places(1, 3, 3, g)


def test_networks_see_the_cells_and_counts_stay_log_counts() -> None:
    torch.manual_seed(0)
    G, D = LevelGenerator(MODEL).eval(), LevelDiscriminator(MODEL).eval()
    c = torch.from_numpy(condition_vectors(LEVELS[:4], places=True))  # (4, 14)
    assert MODEL.condition_dim == c.shape[1] == 14
    feats = _condition_features(MODEL, c)
    assert torch.allclose(feats[:, :8], torch.log1p(c[:, :8] * 117))
    assert torch.equal(feats[:, 8:], c[:, 8:])  # the cells are not counts
    z = torch.randn(4, 8)
    out = G(z, c)
    assert out.shape == (4, 8, 16, 16)
    moved = c.clone()
    moved[:, 8:] = torch.from_numpy(random_places(4, 9, 13, torch.Generator().manual_seed(1)))
    assert not torch.allclose(G(z, moved), out)  # G follows the cells
    x = encode(LEVELS[:4])
    assert D(x, c).shape == (4,) and not torch.allclose(D(x, moved), D(x, c))
    with pytest.raises(ValueError, match="pass a condition"):
        D(x)
    assert D.inp.weight.shape[1] == 8 + 3


def test_bootstrap_proposals_ask_for_cells_anywhere_inside() -> None:
    cfg = LevelRunConfig(
        model=MODEL,
        train=TrainConfig(request_weight=0.0, rank_weight=0.0),
        bootstrap=BootstrapConfig(samples=64),
    )
    state = build_state(cfg, LEVELS[:2])
    spy = SpyG(LEVELS[5])
    state.emas["G"].shadow = spy
    bootstrap(state, None)
    asked = spy.asked[0]  # (64, 14)
    own = set(map(tuple, np.round(place_vectors(LEVELS[:2]), 4)))
    cells = set(map(tuple, np.round(asked[:, 8:].numpy(), 4)))
    assert len(cells) > 50 and not cells <= own  # not only the training set's placements
    counts = torch.from_numpy(condition_vectors(LEVELS[:2]))
    assert all(any(torch.equal(a[:8], k) for k in counts) for a in asked)  # counts: its own


def test_generate_asks_for_training_set_cells_and_eval_reports_them() -> None:
    cfg = LevelRunConfig(model=MODEL)
    spy = SpyG(LEVELS[6])
    gan = LevelGAN(spy, cfg, LEVELS[:2], LEVELS, 0)
    _, asked = gan.generate(200, seed=3)
    c, counts = gan.conditions(200, seed=3)
    assert c is not None and counts is not None and np.array_equal(counts, asked)
    assert torch.equal(spy.asked[0], torch.from_numpy(c))
    cells = set(map(tuple, np.round(c[:, 8:], 4)))
    assert cells == set(map(tuple, np.round(place_vectors(LEVELS), 4)))  # all 8 levels' cells
    v = evaluate_levels(gan, n=40)
    own = places_as_asked(np.repeat(LEVELS[6][None], 40, axis=0), gan.conditions(40)[0][:, 8:])
    assert v["places_as_asked"] == pytest.approx(100.0 * own.mean())
    assert 0 < v["places_as_asked"] < 100  # level 6's cells are asked for some of the time


def test_cli_trains_with_condition_places_and_the_paper_preset_has_none(tmp_path: Path) -> None:
    import yaml

    run = tmp_path / "run"
    args = ["--steps", "2", "--batch-size", "4", "--ch", "8", "--z-dim", "8", "--no-progress"]
    assert main(["levels", "train", "--out", str(run), *args, "--condition-places"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["condition_places"]
    gan = load_level_gan(run)
    levels, _ = gan.generate(3)
    assert levels.shape == (3, 9, 13)
    paper = LevelRunConfig.from_dict({"preset": "paper", "model": {}})
    assert not paper.model.condition_places
    with pytest.raises(SaganError, match="condition_places needs a conditional model"):
        ModelConfig(
            conditional=False, condition_counts=False, condition_norm=False, condition_places=True
        )
    assert AVATAR in PLACED and DOOR in PLACED


def test_place_loss_is_zero_on_the_asked_cells_and_teaches_g_any_cell() -> None:
    from sagan.levels.train import place_loss

    g = torch.Generator().manual_seed(0)
    cells = torch.from_numpy(random_places(4, 9, 13, g))
    exact = place_maps(cells, 9, 13, 16)  # (4, 3, 16, 16)
    probs = torch.zeros(4, 8, 16, 16)
    probs[:, FLOOR] = 1 - exact.sum(1)
    probs[:, list(PLACED)] = exact
    assert place_loss(probs, cells, 9, 13) < 1e-3  # exactly so (up to the clamp at 1e-6)
    uniform = torch.full((4, 8, 16, 16), 1 / 8)
    each = np.log(8) + (9 * 13 - 1) * -np.log(7 / 8)  # -log p at the cell, -log(1-p) elsewhere
    assert place_loss(uniform, cells, 9, 13).item() == pytest.approx(each, rel=1e-5)
    assert place_loss(torch.roll(probs, 1, dims=3), cells, 9, 13) > 10  # every tile one off
    # the loss alone teaches a small G to put the three tiles on cells it never saw asked
    torch.manual_seed(0)
    G = LevelGenerator(MODEL)
    opt = torch.optim.Adam(G.parameters(), lr=3e-3)
    counts = torch.from_numpy(condition_vectors(LEVELS))[:, :8]
    for _ in range(250):
        c = torch.cat([counts[torch.randint(0, 8, (16,))], torch.from_numpy(
            random_places(16, 9, 13, g))], dim=1)  # fmt: skip
        loss = place_loss(G(torch.randn(16, 8), c), c[:, 8:], 9, 13)
        opt.zero_grad()
        loss.backward()
        opt.step()
    G.eval()
    c = torch.cat([counts[torch.arange(64) % 8], torch.from_numpy(random_places(64, 9, 13, g))], 1)
    with torch.no_grad():
        made = G(torch.randn(64, 8), c).argmax(1)[:, :9, :13].numpy()
    assert places_as_asked(made, c[:, 8:].numpy()).mean() > 0.5


def test_place_weight_trains_and_acts_only_with_condition_places() -> None:
    from sagan.levels.train import train_step

    cfg = LevelRunConfig(model=MODEL, train=TrainConfig(batch_size=4, place_weight=1.0))
    state = build_state(cfg, LEVELS[:3])
    out = train_step(state)
    assert out["place_loss"] > 0 and torch.isfinite(out["place_loss"])
    plain = dataclasses.replace(MODEL, condition_places=False)  # --no-condition-places alone
    state = build_state(LevelRunConfig(model=plain, train=cfg.train), LEVELS[:3])
    assert "place_loss" not in train_step(state)
