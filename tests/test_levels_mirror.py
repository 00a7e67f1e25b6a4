"""Our two additions for levels a designer can ask for: mirror images of the training set
(``train.mirror``) and enemy requests the set never holds (``train.request_weight``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ReplayG, SpyG
from sagan.errors import SaganError
from sagan.levels.conditions import condition_vectors, with_random_enemies
from sagan.levels.config import BootstrapConfig, LevelRunConfig, ModelConfig, TrainConfig
from sagan.levels.data import load_levels, with_mirrors
from sagan.levels.encoding import tile_counts
from sagan.levels.evaluate import load_level_gan
from sagan.levels.networks import straight_through
from sagan.levels.playability import check_playable
from sagan.levels.tiles import ENEMIES, FLOOR
from sagan.levels.train import bootstrap, build_state, count_loss, train_levels, train_step

LEVELS = np.stack([lv for _, lv in load_levels()])  # (8, 9, 13)
MODEL = ModelConfig(ch=8, z_dim=8, embed=4, height=9, width=13)
AREA = 9 * 13


def test_mirror_images_play_alike_and_come_in_a_fixed_order() -> None:
    m = with_mirrors(LEVELS)
    assert m.shape == (32, 9, 13)
    assert np.array_equal(m[:8], LEVELS)
    assert np.array_equal(m[8:16], LEVELS[:, :, ::-1])  # left-right
    assert np.array_equal(m[16:24], LEVELS[:, ::-1, :])  # top-bottom
    assert np.array_equal(m[24:], LEVELS[:, ::-1, ::-1])  # both
    assert np.array_equal(tile_counts(m), np.tile(tile_counts(LEVELS), (4, 1)))
    lengths = [check_playable(lv).length for lv in m]
    assert lengths == [check_playable(lv).length for lv in LEVELS] * 4
    assert all((m[i] != m[i + 8]).sum() > 5 for i in range(8))  # a mirror is another layout


def test_random_enemy_requests_keep_every_other_count() -> None:
    c = torch.from_numpy(condition_vectors(LEVELS)).repeat(250, 1)  # (2000, 8)
    g = torch.Generator().manual_seed(0)
    asked = with_random_enemies(c, AREA, 5, g)
    counts = (asked * AREA).round().long()  # (2000, 8)
    base = (c * AREA).round().long()
    totals = counts[:, list(ENEMIES)].sum(1)
    assert set(totals.tolist()) == set(range(6))  # 0..5, each drawn
    assert abs((totals == 0).float().mean().item() - 1 / 6) < 0.04  # uniformly
    assert torch.equal(counts.sum(1), base.sum(1))  # floor takes up the difference
    others = [i for i in range(8) if i not in (*ENEMIES, FLOOR)]
    assert torch.equal(counts[:, others], base[:, others])  # walls, avatar, key, door kept
    assert (counts >= 0).all()
    # a level with enemies of one kind only gets that kind alone (its mix); one with none,
    # all three kinds
    one = torch.zeros(600, 8)
    one[:, ENEMIES[1]], one[:, FLOOR] = 3, AREA - 3
    got = (with_random_enemies(one / AREA, AREA, 5, g) * AREA).round()[:, list(ENEMIES)]
    assert (got[:, [0, 2]] == 0).all() and set(got[:, 1].tolist()) == set(range(6))
    none = torch.zeros(600, 8)
    none[:, FLOOR] = AREA
    got = (with_random_enemies(none / AREA, AREA, 5, g) * AREA).round()[:, list(ENEMIES)]
    assert (got.max(1).values - got.min(1).values <= 1).all() and (got.sum(0) > 0).all()
    extra = torch.cat([c[:4], torch.full((4, 1), 0.25)], 1)  # a length entry stays as it was
    assert (with_random_enemies(extra, AREA, 5, g)[:, 8] == 0.25).all()


def test_mirror_trains_on_four_times_the_set_and_bootstrap_rejects_mirrored_copies() -> None:
    flipped = LEVELS[2][:, ::-1].copy()  # a mirror image of a set level: no new level
    assert (flipped != LEVELS[2]).sum() >= 5  # far from every level by the plain test
    for mirror, joined in ((False, 1), (True, 0)):
        cfg = LevelRunConfig(
            model=MODEL,
            train=TrainConfig(batch_size=4, mirror=mirror),
            bootstrap=BootstrapConfig(samples=1, min_solution=0),
        )
        state = build_state(cfg, LEVELS[:3])
        assert state.x.shape[0] == (12 if mirror else 3) and state.c.shape[0] == state.x.shape[0]
        state.emas["G"].shadow = ReplayG(flipped[None])
        assert len(bootstrap(state, None)) == joined
    # with mirror, the reference for novelty holds the mirror images of the starting levels
    assert state.reference().shape == (12, 9, 13)
    out = train_step(state)
    assert torch.isfinite(out["loss_d"]) and torch.isfinite(out["loss_g"])


def test_a_mirror_run_measures_novelty_against_mirror_images(tmp_path: Path) -> None:
    cfg = LevelRunConfig(
        model=ModelConfig(ch=8, z_dim=8, embed=4),
        train=TrainConfig(batch_size=4, steps=2, save_every=2, sample_every=2, mirror=True),
    )
    run = train_levels(cfg, out=tmp_path / "run", progress=False)
    gan = load_level_gan(run)
    assert gan.originals.shape == (32, 9, 13)
    assert np.array_equal(gan.originals, with_mirrors(LEVELS))


def test_request_weight_asks_for_enemy_totals_and_its_loss_pushes_the_right_way() -> None:
    cfg = LevelRunConfig(model=MODEL, train=TrainConfig(batch_size=8, request_weight=1.0))
    state = build_state(cfg, LEVELS)
    out = train_step(state)
    assert out["request_error"] > 0 and torch.isfinite(out["request_error"])
    plain = ModelConfig(
        ch=8, z_dim=8, embed=4, height=9, width=13, conditional=False, condition_counts=False,
        condition_norm=False, condition_places=False,
    )  # fmt: skip
    unconditional = build_state(LevelRunConfig(model=plain, train=cfg.train), LEVELS)
    assert "request_error" not in train_step(unconditional)  # nothing to ask it for
    with pytest.raises(SaganError, match=r"train\.request_weight"):
        TrainConfig(request_weight=-1.0)
    paper = LevelRunConfig.from_dict({"preset": "paper", "train": {}})
    assert paper.train.request_weight == 0 and not paper.train.mirror
    # through the straight-through one-hots, the loss wants more of a tile G makes too few
    # of (asked 5 enemy1, made fewer) and less of one it makes too many of (asked 0, made some)
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(2, 8, 16, 16, generator=g), 1).requires_grad_(True)
    made = straight_through(probs)
    counts = made.detach()[:, :, :9, :13].sum(dim=(2, 3))  # (2, 8)
    asked = counts.clone()
    asked[0, ENEMIES[0]] = counts[0, ENEMIES[0]] + 5  # more than made
    asked[1, ENEMIES[1]] = 0  # fewer than made
    asked[:, FLOOR] += AREA - asked.sum(1)
    assert counts[1, ENEMIES[1]] > 0
    loss = count_loss(made, asked / AREA, 9, 13)
    assert float(loss.detach()) == pytest.approx((5 + counts[1, ENEMIES[1]].item()) / 12)
    loss.backward()
    assert probs.grad is not None
    grad = probs.grad[:, :, :9, :13]
    assert (grad[0, ENEMIES[0]] < 0).all() and (grad[1, ENEMIES[1]] > 0).all()
    assert (probs.grad[:, :, 9:, :] == 0).all()  # the padding is not counted
    assert (grad[0, ENEMIES[1]] == 0).all()  # counts that are as asked: no push


def test_request_weight_bootstrap_proposals_ask_for_enemy_totals_the_set_lacks() -> None:
    for weight in (0.0, 1.0):
        cfg = LevelRunConfig(
            model=MODEL,
            train=TrainConfig(request_weight=weight, rank_weight=weight),
            bootstrap=BootstrapConfig(samples=300),
        )
        state = build_state(cfg, LEVELS[:2])
        spy = SpyG(LEVELS[5])
        state.emas["G"].shadow = spy
        bootstrap(state, None)
        totals = (spy.asked[0][:, list(ENEMIES)] * AREA).round().sum(1)  # (300,)
        own = set((tile_counts(LEVELS[:2])[:, list(ENEMIES)]).sum(1).tolist())
        assert set(totals.tolist()) == (set(range(6)) if weight else own)
