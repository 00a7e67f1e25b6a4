"""Levels as asked, ours: ``model.fixed_places`` (G puts the avatar, key and door on the
cells asked for) and ``train.rank_weight`` (a loss on the decoded enemy total)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ReplayG, SpyG, small_level_model
from sagan.errors import SaganError
from sagan.levels.conditions import PLACED, place_maps, places_as_asked, random_places
from sagan.levels.config import (
    ADDED_OFF,
    BootstrapConfig,
    LevelRunConfig,
    TrainConfig,
    upgrade_config,
)
from sagan.levels.data import load_levels
from sagan.levels.encoding import decode
from sagan.levels.networks import LevelGenerator, fix_places
from sagan.levels.tiles import ENEMIES, FLOOR, WALL
from sagan.levels.train import bootstrap, build_state, rank_loss, train_step

LEVELS = np.stack([lv for _, lv in load_levels()])  # (8, 9, 13)
AREA = 9 * 13


def _asked(n: int, seed: int = 0) -> torch.Tensor:
    """``(n, 14)`` conditions: built-in levels' shares, cells drawn inside, one key left out."""
    g = torch.Generator().manual_seed(seed)
    shares = torch.rand(n, 8, generator=g)
    cells = torch.from_numpy(random_places(n, 9, 13, g))
    cells[0, 2:4] = -1  # the first level is asked for no key
    return torch.cat([shares, cells], dim=1)


def test_fixed_places_put_each_tile_on_its_cell_and_nowhere_else() -> None:
    c = _asked(16)
    for fixed in (False, True):
        torch.manual_seed(0)
        G = LevelGenerator(small_level_model(condition_places=True, fixed_places=fixed))
        with torch.no_grad():
            for t in PLACED:  # a G that would rather make avatars, keys and doors everywhere
                G.out.bias[t] += 5.0
        probs = G(torch.randn(16, 8), c)  # (16, 8, 16, 16)
        levels = decode(probs.detach(), 9, 13)
        assert places_as_asked(levels[1:], c[1:, -6:].numpy()).all() == fixed
        if not fixed:
            continue
        assert (levels[0] != PLACED[1]).all()  # a tile not asked for appears nowhere
        assert torch.allclose(probs.sum(1), torch.ones(16, 16, 16))
        maps = place_maps(c[:, -6:], 9, 13, 16)  # (16, 3, 16, 16)
        asked = maps.sum(1) > 0  # (16, 16, 16)
        # no gradient reaches G through an asked cell; the other cells are G's own
        (grad,) = torch.autograd.grad(probs[:, FLOOR][asked].sum(), G.out.bias, allow_unused=True)
        assert grad is None or (grad == 0).all()
        (grad,) = torch.autograd.grad(G(torch.randn(16, 8), c)[:, FLOOR][~asked].sum(), G.out.bias)
        assert (grad != 0).any()
        assert (levels[:, 1:-1, 1:-1] != WALL).any()
    assert not LevelRunConfig.from_dict({"preset": "paper"}).model.places_fixed
    assert not small_level_model(fixed_places=True).places_fixed  # no cells in the condition


def test_fix_places_masks_the_three_tiles_and_keeps_a_softmax_elsewhere() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 8, 16, 16, generator=g)
    maps = place_maps(_asked(4, seed=1)[:, -6:], 9, 13, 16)
    probs = fix_places(logits, maps)
    asked = maps.sum(1, keepdim=True) > 0
    assert torch.equal(probs[:, list(PLACED)], maps)  # one-hot on their cells, 0 elsewhere
    other = [t for t in range(8) if t not in PLACED]
    expected = torch.softmax(logits[:, other], dim=1)  # the rest: a softmax over the others
    assert torch.allclose(probs[:, other], torch.where(asked, 0.0, expected))


def test_rank_loss_is_zero_only_when_the_decoded_total_is_as_asked() -> None:
    probs = torch.full((1, 8, 16, 16), 1e-3)
    probs[:, FLOOR] = 1.0
    probs[0, ENEMIES[0], 2, 3] = probs[0, ENEMIES[2], 5, 7] = 10.0  # two enemies by log 10
    probs = probs / probs.sum(1, keepdim=True)
    for total, zero in ((2, True), (1, False), (3, False), (0, False)):
        loss = rank_loss(probs, torch.tensor([float(total)]), 9, 13, margin=2.0)
        assert (float(loss) == 0.0) == zero, total
    weak = probs.clone()
    weak[0, ENEMIES[0], 2, 3] = weak[0, FLOOR, 2, 3] * 1.1  # an enemy by less than the margin
    assert float(rank_loss(weak, torch.tensor([2.0]), 9, 13, margin=2.0)) > 0
    assert float(rank_loss(probs, torch.tensor([2.0]), 9, 13, margin=3.0)) > 0  # log 10 < 3


def test_rank_loss_pushes_only_enemies_and_teaches_exact_totals() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 8, 16, 16, generator=g).requires_grad_(True)
    probs = torch.softmax(logits, 1).detach().requires_grad_(True)
    totals = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    rank_loss(probs, totals, 9, 13, margin=2.0).backward()
    assert probs.grad is not None
    other = [t for t in range(8) if t not in ENEMIES]
    assert (probs.grad[:, other] == 0).all()  # the other tiles are never pushed up or down
    assert (probs.grad[:, :, 9:] == 0).all() and (probs.grad[:, :, :, 13:] == 0).all()
    # the loss alone teaches free logits to decode to exactly the asked totals
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        rank_loss(torch.softmax(logits, 1), totals, 9, 13, margin=2.0).backward()
        opt.step()
    levels = decode(torch.softmax(logits, 1).detach(), 9, 13)  # (6, 9, 13)
    made = np.isin(levels, ENEMIES).sum(axis=(1, 2))
    assert made.tolist() == [0, 1, 2, 3, 4, 5]


def test_rank_weight_trains_asks_for_enemies_and_is_off_where_it_should_be() -> None:
    model = small_level_model(condition_places=True)
    for weights, has in (({"rank_weight": 1.0, "request_weight": 0.0}, True),
                         ({"rank_weight": 0.0, "request_weight": 0.0}, False)):  # fmt: skip
        cfg = LevelRunConfig(model=model, train=TrainConfig(batch_size=8, **weights))
        assert cfg.train.requests_enemies == has
        out = train_step(build_state(cfg, LEVELS))
        assert ("rank_loss" in out) == has and "place_loss" not in out  # places are fixed
        assert all(torch.isfinite(v) for v in out.values())
        state = build_state(
            LevelRunConfig(model=model, train=cfg.train, bootstrap=BootstrapConfig(samples=300)),
            LEVELS[:2],
        )
        spy = SpyG(LEVELS[5])
        state.emas["G"].shadow = spy
        bootstrap(state, None)
        totals = (spy.asked[0][:, list(ENEMIES)] * AREA).round().sum(1)  # (300,)
        assert (set(totals.tolist()) == set(range(6))) == has  # proposals asked for 0..5
    with pytest.raises(SaganError, match=r"train\.rank_weight"):
        TrainConfig(rank_weight=-1.0)
    paper = LevelRunConfig.from_dict({"preset": "paper"})
    assert paper.train.rank_weight == 0 and not paper.model.fixed_places
    # a 0.4 config lacks both: it loads with them off, whatever the defaults are now
    recent = LevelRunConfig().to_dict()
    del recent["model"]["fixed_places"], recent["train"]["rank_weight"]
    up = LevelRunConfig.from_dict(upgrade_config(recent))
    assert not up.model.fixed_places and up.train.rank_weight == 0
    # the first runs with the rank loss recorded no margin: they had 0.5
    del recent["train"]["rank_margin"]
    assert LevelRunConfig.from_dict(upgrade_config(recent)).train.rank_margin == 0.5
    with pytest.raises(SaganError, match=r"train\.rank_margin"):
        TrainConfig(rank_margin=-1.0)
    assert ADDED_OFF["model"]["fixed_places"] is False


def test_anchor_draws_its_share_of_real_levels_from_the_starting_ones() -> None:
    from sagan.levels.data import with_mirrors
    from sagan.levels.train import anchor_indices

    for mirror in (False, True):
        cfg = LevelRunConfig(
            model=small_level_model(), train=TrainConfig(batch_size=8, mirror=mirror, anchor=0.5)
        )
        state = build_state(cfg, LEVELS[:3])
        state.levels = np.concatenate([LEVELS[:3], LEVELS[3:]])  # 5 levels joined the 3
        state._refresh()
        idx = anchor_indices(state, 4000, torch.Generator().manual_seed(0))
        starting = with_mirrors(LEVELS[:3], mirror)  # what the anchor may show
        shown = state.x[idx].argmax(1)[:, :9, :13].numpy()  # (4000, 9, 13)
        hits = (shown[:, None] == starting[None]).all(axis=(2, 3))  # (4000, 3 or 12)
        assert hits.any(axis=1).all()  # only starting levels (and their mirror images) ...
        assert (hits.sum(axis=0) > 250).all()  # ... each of them, about uniformly
        assert all(torch.isfinite(v) for v in train_step(state).values())
    with pytest.raises(SaganError, match=r"train\.anchor"):
        TrainConfig(anchor=1.5)


def test_enemy_cap_keeps_the_enemies_from_settling_on_a_few_cells() -> None:
    base = LEVELS[2].copy()
    base[np.isin(base, ENEMIES)] = FLOOR
    inner = [(r, c) for r, c in np.argwhere(base == WALL) if 0 < r < 8 and 0 < c < 12]
    same = []  # four levels with an enemy on one same cell, far apart (inner walls opened)
    for k in range(4):
        v = base.copy()
        v[4, 6] = ENEMIES[k % 3]
        for r, c in inner[k * 3 : k * 3 + 3]:
            v[r, c] = FLOOR
        same.append(v)
    joined = {}
    for share in (0.0, 0.1):
        cfg = LevelRunConfig(
            model=small_level_model(),
            bootstrap=BootstrapConfig(
                samples=4, min_distance=3, min_solution=0, max_enemy_share=share
            ),
        )
        state = build_state(cfg, LEVELS[:1])
        state.emas["G"].shadow = ReplayG(np.stack(same))
        joined[share] = bootstrap(state, None)
    assert len(joined[0.0]) == 4  # off: every far, playable level joins
    assert len(joined[0.1]) == 2  # at most 2.5 of 25 levels with an enemy on that cell
    with pytest.raises(SaganError, match=r"bootstrap\.max_enemy_share"):
        BootstrapConfig(max_enemy_share=-0.1)


def test_exact_enemies_makes_the_asked_total_on_free_cells_only() -> None:
    from sagan.levels.networks import exact_enemies

    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(12, 8, 16, 16, generator=g), 1).requires_grad_(True)
    free = torch.zeros(12, 16, 16, dtype=torch.bool)
    free[:, 1:8, 1:12] = True  # a 9 x 13 level's inside
    free[:, 3, 4] = False  # e.g. an asked key cell
    totals = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 20.0, 40.0, 0.0, 1.0, 100.0])
    tiles = exact_enemies(probs, totals, free)  # (12, 8, 16, 16)
    assert torch.equal(tiles.detach().sum(1), torch.ones(12, 16, 16))  # one-hot
    enemy = tiles.detach()[:, list(ENEMIES)].sum(1) > 0  # (12, 16, 16)
    assert enemy.sum((1, 2)).tolist() == [min(int(t), 76) for t in totals]  # 76 free cells
    assert not (enemy & ~free).any()  # never on the border or an asked cell
    # each enemy is its cell's most likely enemy, each other cell its most likely other tile
    others = [t for t in range(8) if t not in ENEMIES]
    kind = tiles.detach().argmax(1)
    best_enemy = torch.tensor(ENEMIES)[probs.detach()[:, list(ENEMIES)].argmax(1)]
    best_other = torch.tensor(others)[probs.detach()[:, others].argmax(1)]
    assert torch.equal(kind, torch.where(enemy, best_enemy, best_other))
    # the chosen cells are the most enemy-like ones, so a total G already makes is its arg-max
    plain = probs.detach().argmax(1)
    made = torch.isin(plain, torch.tensor(ENEMIES)) & free
    as_made = exact_enemies(probs.detach(), made.sum((1, 2)).float(), free).argmax(1)
    assert torch.equal(as_made[free], plain[free])
    w = torch.randn(12, 8, 16, 16, generator=g)
    (tiles * w).sum().backward()
    assert probs.grad is not None and torch.equal(probs.grad, w)  # straight-through


def test_fixed_enemies_generate_exactly_the_asked_total() -> None:
    from sagan.levels.conditions import condition_vectors, with_random_enemies, with_random_places
    from sagan.levels.train import generate_levels

    g = torch.Generator().manual_seed(3)
    c = torch.from_numpy(condition_vectors(LEVELS[np.arange(60) % 8], places=True))
    c = with_random_places(with_random_enemies(c, AREA, 5, g), 9, 13, g)  # (60, 14)
    asked = (c[:, list(ENEMIES)] * AREA).round().sum(1).long()  # (60,), 0..5
    cells = place_maps(c[:, -6:], 9, 13, 16).sum(1)[:, :9, :13].numpy() > 0  # (60, 9, 13)
    for fixed in (False, True):
        torch.manual_seed(0)
        m = small_level_model(condition_places=True, fixed_enemies=fixed, wall_border=True)
        G = LevelGenerator(m)
        with torch.no_grad():
            G.out.bias[ENEMIES[1]] += 3.0  # a G that would rather make enemies everywhere
        levels = generate_levels(G, 60, 9, 13, 8, c, torch.Generator().manual_seed(0))
        made = np.isin(levels, ENEMIES)  # (60, 9, 13)
        assert (made.sum((1, 2)) == asked.numpy()).all() == fixed
        if fixed:
            assert not made[:, [0, -1]].any() and not made[:, :, [0, -1]].any()  # border
            assert not (made & cells).any()  # never on an asked avatar, key or door cell
            assert places_as_asked(levels, c[:, -6:].numpy()).all()
            full = c.clone()
            full[:, ENEMIES[0]] = 100 / AREA  # more enemies than the 74 free inside cells
            levels = generate_levels(G, 60, 9, 13, 8, full, torch.Generator().manual_seed(0))
            assert (np.isin(levels, ENEMIES).sum((1, 2)) == 74).all()
            assert places_as_asked(levels, c[:, -6:].numpy()).all()  # the three kept their cells
    assert not small_level_model(conditional=False, condition_counts=False,
                                 condition_norm=False).enemies_fixed  # fmt: skip
    assert not LevelRunConfig.from_dict({"preset": "paper"}).model.enemies_fixed
    recent = LevelRunConfig().to_dict()
    del recent["model"]["fixed_enemies"]  # a 0.5 config: it loads with them off
    assert not LevelRunConfig.from_dict(upgrade_config(recent)).model.fixed_enemies
