"""CESAGAN: networks, conditions, the bootstrap step, training, resume, generate and eval."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import ReplayG, small_level_model
from sagan.cli import main
from sagan.errors import SaganError
from sagan.levels.conditions import (
    condition_vectors,
    count_of,
    parse_request,
    requested_counts,
)
from sagan.levels.config import BootstrapConfig, LevelRunConfig, ModelConfig, TrainConfig
from sagan.levels.data import load_levels
from sagan.levels.encoding import encode, tile_counts
from sagan.levels.evaluate import evaluate_levels, load_level_gan
from sagan.levels.networks import LevelDiscriminator, LevelGenerator
from sagan.levels.tiles import AVATAR, ENEMIES, FLOOR, TILES
from sagan.levels.train import (
    bootstrap,
    build_state,
    count_loss,
    train_levels,
    train_step,
)
from sagan.nn import SelfAttention2d, VectorConditionalBatchNorm2d, spectrally_normalised
from sagan.training import find_checkpoints, load_checkpoint

LEVELS = np.stack([lv for _, lv in load_levels()])  # (8, 9, 13)


def tiny(steps: int = 4, **bootstrap_kw: object) -> LevelRunConfig:
    return LevelRunConfig(
        model=ModelConfig(condition_places=False, ch=8, z_dim=8, embed=4),
        train=TrainConfig(
            batch_size=4,
            steps=steps,
            save_every=2,
            sample_every=2,
            log_every=1,
            mirror=False,
            eval_every=0,
        ),
        bootstrap=BootstrapConfig(**{"every": 2, "samples": 4, **bootstrap_kw}),  # type: ignore[arg-type]
    )


# --- networks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attention", "conditional"), [(True, True), (True, False), (False, False)]
)
def test_network_shapes_and_the_papers_layers(attention: bool, conditional: bool) -> None:
    cfg = ModelConfig(condition_places=False,
        ch=8, z_dim=8, embed=4, attention=attention, conditional=conditional, height=9, width=13,
        condition_counts=False, condition_norm=False,  # the paper's model
    )  # fmt: skip
    G, D = LevelGenerator(cfg), LevelDiscriminator(cfg)
    c = torch.rand(3, 8) if conditional else None
    x = G(torch.randn(3, 8), c)
    assert x.shape == (3, 8, 16, 16)
    torch.testing.assert_close(x.sum(dim=1), torch.ones(3, 16, 16))
    assert D(x, c).shape == (3,)
    # 1x1 transposed convolution out of G, 1x1 convolution into D, as in the paper
    assert isinstance(G.out, nn.ConvTranspose2d) and G.out.kernel_size == (1, 1)
    assert isinstance(D.inp, nn.Conv2d) and D.inp.kernel_size == (1, 1)
    # spectral norm on every conv / linear layer
    for net in (G, D):
        layers = [
            m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
        ]
        assert len(list(spectrally_normalised(net))) == len(layers)
        attn = [m for m in net.modules() if isinstance(m, SelfAttention2d)]
        assert len(attn) == int(attention) and all(a.gamma.item() == 0 for a in attn)
    assert (G.condition is not None) == conditional and (D.condition is not None) == conditional
    if conditional:  # the embedding is concatenated with the attention output: width ch + e
        assert G.out.in_channels == 8 + 4 and D.mix.in_channels == 8 + 4


def test_hard_output_is_one_hot_with_softmax_gradients() -> None:
    torch.manual_seed(0)
    cfg = small_level_model()
    G = LevelGenerator(cfg)
    z, c = torch.randn(2, 8), torch.rand(2, 8)
    hard = G(z, c, hard=True)
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(hard.sum(dim=1), torch.ones(2, 16, 16))
    # in training mode each forward moves spectral norm's power iteration, so compare two
    # forwards in eval mode, where the weights stay put
    G.eval()
    assert torch.equal(G(z, c, hard=True).argmax(dim=1), G(z, c).argmax(dim=1))
    G.train()
    (hard * torch.randn_like(hard)).sum().backward()
    assert G.out.parametrizations.weight.original.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pass a condition vector"):
        G(z)


# --- conditions ---------------------------------------------------------------------------


def test_count_loss_is_the_mean_tile_count_error_and_reaches_g() -> None:
    x = encode(LEVELS[:2])  # (2, 8, 16, 16) one-hot, wall-padded
    exact = torch.from_numpy(condition_vectors(LEVELS[:2]))
    assert float(count_loss(x, exact, 9, 13)) == pytest.approx(0.0, abs=1e-5)  # no padding
    off = exact.clone()
    off[0, AVATAR] += 3 / (9 * 13)  # ask for 3 more avatars in level 0
    off[0, FLOOR] -= 3 / (9 * 13)  # (floor and walls take what is left: not counted)
    off[1, ENEMIES[0]] += 2 / (9 * 13)  # and 2 more enemies in level 1
    # 2 levels x 6 counted tiles (avatar, key, door, three enemies)
    assert float(count_loss(x, off, 9, 13)) == pytest.approx((3 + 2) / 12)
    # through the straight-through one-hots, the loss moves every layer of G
    cfg = small_level_model()
    G = LevelGenerator(cfg)
    count_loss(
        G(torch.randn(4, 8), exact.repeat(2, 1), hard=True), exact.repeat(2, 1), 9, 13
    ).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.out.parameters())


def test_count_weight_trains_and_needs_a_conditional_model() -> None:
    base = tiny()
    cfg = LevelRunConfig(
        model=small_level_model(),
        train=TrainConfig(batch_size=4, count_weight=0.5),
        bootstrap=base.bootstrap,
    )
    losses = train_step(build_state(cfg, LEVELS))
    assert losses["count_error"] > 0
    plain = train_step(
        build_state(LevelRunConfig(model=cfg.model, train=TrainConfig(batch_size=4)), LEVELS)
    )
    assert "count_error" not in plain
    with pytest.raises(SaganError, match="needs a conditional model"):
        LevelRunConfig(
            model=ModelConfig(
                condition_places=False,
                conditional=False,
                condition_counts=False,
                condition_norm=False,
            ),
            train=TrainConfig(count_weight=1.0),
        )
    with pytest.raises(SaganError, match="count_weight"):
        TrainConfig(count_weight=-1.0)
    # the condition at G's input too: z and the embedding, concatenated
    wide = dataclasses.replace(cfg.model, condition_input=True)
    G = LevelGenerator(wide)
    c = torch.from_numpy(condition_vectors(LEVELS[:3]))
    assert G(torch.randn(3, 8), c).shape == (3, 8, 16, 16)
    assert G.body[0].in_channels == 8 + 4  # z_dim + embed
    G(torch.randn(3, 8), c).square().sum().backward()
    assert G.condition_in is not None
    assert all(float(p.grad.abs().sum()) > 0 for p in G.condition_in.parameters())
    with pytest.raises(SaganError, match="condition_input needs a conditional model"):
        ModelConfig(
            condition_places=False,
            conditional=False,
            condition_input=True,
            condition_counts=False,
            condition_norm=False,
        )


def test_condition_norm_lets_every_layer_of_g_see_the_condition() -> None:
    torch.manual_seed(0)
    plain = small_level_model(condition_norm=False, condition_counts=False)
    cfg = dataclasses.replace(plain, condition_norm=True, condition_counts=True)
    G = LevelGenerator(cfg)
    norms = [m for m in G.body if isinstance(m, VectorConditionalBatchNorm2d)]
    bns = [m for m in LevelGenerator(plain).body if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len(bns) == 3  # 16x16 canvas: 4x4, 8x8 and 16x16
    # every conv / linear is spectrally normalised except the norms' gain and bias maps
    tables = {id(t) for m in norms for t in (m.gain, m.bias)}
    layers = [
        m
        for m in G.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and id(m) not in tables
    ]
    assert len(list(spectrally_normalised(G))) == len(layers)
    z = torch.randn(2, 8)
    c = torch.from_numpy(condition_vectors(LEVELS[:2]))  # two levels' conditions
    seen: list[torch.Tensor] = []  # what reaches the last layer's concatenation: body + attention
    assert G.condition is not None
    G.condition.register_forward_hook(lambda m, args, out: seen.append(args[0]))

    def body(cond: torch.Tensor) -> torch.Tensor:
        G(z, cond)
        return seen.pop()

    # fresh, the norms are plain BatchNorm: before the last layer nothing depends on c
    torch.testing.assert_close(body(c[[0, 0]]), body(c[[0, 1]]))
    with torch.no_grad():
        for m in norms:
            m.gain.weight.normal_()
    same, other = body(c[[0, 0]]), body(c[[0, 1]])
    # BatchNorm mixes the batch, so compare the whole map: it now moves with the condition
    assert not torch.allclose(same, other)
    G.eval()  # running statistics: each row depends on its own condition only
    same, other = body(c[[0, 0]]), body(c[[0, 1]])
    torch.testing.assert_close(same[0], other[0])
    assert not torch.allclose(same[1], other[1])
    with pytest.raises(SaganError, match="condition_norm needs a conditional model"):
        ModelConfig(
            condition_places=False, conditional=False, condition_norm=True, condition_counts=False
        )


def test_condition_counts_give_the_embedding_a_usable_signal() -> None:
    """With spectral norm, the embedding moves by at most the input's change: one enemy more
    is 1/117 in shares, log(3/2) ~ 0.4 in log counts (2 -> 3 enemies)."""
    from sagan.levels.networks import _condition_features

    shares = torch.from_numpy(condition_vectors(LEVELS[:1]))  # (1, 8)
    more = shares.clone()
    more[0, ENEMIES[0]] += 1 / 117
    plain = ModelConfig(condition_places=False, height=9, width=13, condition_counts=False)
    counts = dataclasses.replace(plain, condition_counts=True)
    d_plain = (_condition_features(plain, more) - _condition_features(plain, shares)).norm()
    d_counts = (_condition_features(counts, more) - _condition_features(counts, shares)).norm()
    assert float(d_plain) == pytest.approx(1 / 117, rel=1e-4)
    n = float(shares[0, ENEMIES[0]] * 117)
    assert float(d_counts) == pytest.approx(math.log((n + 2) / (n + 1)), rel=1e-4)
    G = LevelGenerator(counts)
    assert G(torch.randn(2, 32), shares.repeat(2, 1)).shape == (2, 8, 16, 16)
    with pytest.raises(SaganError, match="condition_counts needs a conditional model"):
        ModelConfig(condition_places=False, conditional=False, condition_counts=True)


def test_conditions_and_requests() -> None:
    c = condition_vectors(LEVELS)
    assert c.shape == (8, 8) and np.allclose(c.sum(axis=1), 1.0)
    assert parse_request("enemies=3, Key=1") == {"enemies": 3, "key": 1}
    for bad, msg in [
        ("monsters=2", "NAME one of"),
        ("enemies=two", "whole number"),
        ("enemies=-1", "cannot be negative"),
        ("enemies=2,enemy1=1", "not both"),
        ("enemies=3,enemies=4", "enemies is given twice"),  # the last one silently won
        ("keys=1,key=2", "key is given twice"),
    ]:
        with pytest.raises(SaganError, match=msg):
            parse_request(bad)
    rng = np.random.Generator(np.random.PCG64(0))
    counts = requested_counts({"enemies": 4, "door": 1}, tile_counts(LEVELS), 50, rng)
    assert (counts.sum(axis=1) == 9 * 13).all()  # floor absorbs the difference
    assert (counts[:, list(ENEMIES)].sum(axis=1) == 4).all()
    assert (counts[:, TILES.index("g")] == 1).all() and (counts[:, FLOOR] > 0).all()
    with pytest.raises(SaganError, match="more tiles than a level"):
        requested_counts({"enemy1": 500}, tile_counts(LEVELS), 2, rng)


# --- bootstrapping ------------------------------------------------------------------------


def test_bootstrap_accepts_playable_novel_levels_once(tmp_path: Path) -> None:
    cfg = tiny(min_distance=3)
    cfg = LevelRunConfig(
        model=small_level_model(),
        train=cfg.train,
        bootstrap=cfg.bootstrap,
    )
    state = build_state(cfg, LEVELS[:2])
    new = LEVELS[2].copy()
    near = LEVELS[0].copy()
    near[1, 3], near[1, 4] = TILES.index("1"), TILES.index("1")  # 2 tiles from a training level
    broken = LEVELS[3].copy()
    broken[broken == TILES.index("+")] = FLOOR  # no key: unplayable
    # proposals: a novel playable level twice, a near-copy, an unplayable one
    state.emas["G"].shadow = ReplayG(np.stack([new, new, near, broken]))
    assert len(bootstrap(state, tmp_path)) == 1
    assert len(state.levels) == 3 and np.array_equal(state.levels[-1], new)
    assert state.x.shape[0] == 3 and state.c.shape == (3, 8)  # tensors follow the set
    assert state.proposed == 4 and state.accepted == 1
    written = sorted((tmp_path / "bootstrap").iterdir())
    assert len(written) == 1 and written[0].read_text().count("\n") == 9
    assert len(bootstrap(state, tmp_path)) == 0  # the same proposals again: nothing new


def test_bootstrap_min_solution_keeps_out_levels_solved_in_a_few_moves() -> None:
    from sagan.levels.playability import check_playable

    quick, slow = LEVELS[4], LEVELS[2]  # solved in 21 and 23 moves
    lengths = [check_playable(lv).length for lv in (quick, slow)]
    assert lengths == [21, 23]
    model = small_level_model()
    for min_solution, joined in ((0, 2), (22, 1), (24, 0)):
        cfg = LevelRunConfig(
            model=model, bootstrap=BootstrapConfig(samples=2, min_solution=min_solution)
        )
        state = build_state(cfg, LEVELS[:1])
        state.emas["G"].shadow = ReplayG(np.stack([quick, slow]))
        assert len(bootstrap(state, None)) == joined
        if joined == 1:
            assert np.array_equal(state.levels[-1], slow)
    with pytest.raises(SaganError, match=r"bootstrap\.min_solution"):
        BootstrapConfig(min_solution=-1)


def test_bootstrap_cell_cap_keeps_one_layout_from_taking_over() -> None:
    """With max_cell_share 0.1 (over at least 25 levels: 2.5 per cell), a level whose key,
    door or avatar would sit where two levels already have theirs stays out, however far it
    is by Hamming distance; a small set can still grow."""
    key = TILES.index("+")
    base = LEVELS[2]
    same = []  # four variants of one layout, far apart by Hamming distance (enemies moved)
    for k in range(4):
        v = base.copy()
        for rr, cc in np.argwhere(v == FLOOR)[k * 6 : k * 6 + 6]:
            v[rr, cc] = TILES.index("1")
        same.append(v)
    model = small_level_model()
    joined = {}
    for share in (0.0, 0.1):
        cfg = LevelRunConfig(
            model=model,
            bootstrap=BootstrapConfig(samples=4, min_distance=3, max_cell_share=share),
        )
        state = build_state(cfg, LEVELS[:1])
        state.emas["G"].shadow = ReplayG(np.stack(same))
        joined[share] = bootstrap(state, None)
    assert len(joined[0.0]) == 4  # off: every far, playable variant joins
    assert len(joined[0.1]) == 2  # on: two share the key cell, the third would be one too many
    capped = np.stack([LEVELS[0], *joined[0.1]])
    assert (capped == key).sum(axis=0).max() == 2
    # five starting levels whose cells a candidate shares: it still joins a small set
    cfg = LevelRunConfig(
        model=model, bootstrap=BootstrapConfig(samples=1, min_distance=3, max_cell_share=0.2)
    )
    state = build_state(cfg, LEVELS[:5])
    state.emas["G"].shadow = ReplayG(np.stack(same[:1]))
    assert len(bootstrap(state, None)) == 1
    with pytest.raises(SaganError, match=r"bootstrap\.max_cell_share"):
        BootstrapConfig(max_cell_share=1.5)


# --- training, resume, CLI ----------------------------------------------------------------


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    straight = train_levels(tiny(4), out=tmp_path / "a", progress=False)
    half = train_levels(tiny(2), out=tmp_path / "b", progress=False)
    resumed = train_levels(resume=half, steps=4, progress=False)
    assert resumed == half
    a = load_checkpoint(find_checkpoints(straight)[-1], kind="levels")
    b = load_checkpoint(find_checkpoints(resumed)[-1], kind="levels")
    assert a["step"] == b["step"] == 4
    for key in ("G", "D", "G_ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    assert torch.equal(a["levels"], b["levels"])


def test_run_folder(tmp_path: Path) -> None:
    run = train_levels(tiny(4), out=tmp_path / "r", progress=False)
    assert (run / "config.yaml").exists()
    records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert {"loss_d", "loss_g", "train_size", "acceptance", "gamma/G16", "gamma/D16"} <= set(
        records[0]
    )
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "levels-0000002.png",
        "levels-0000004.png",
    ]


def test_cli_train_generate_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = ["--steps", "2", "--batch-size", "4", "--ch", "8", "--z-dim", "8", "--no-progress"]
    assert main(["levels", "train", "--out", str(run), "--preset", "paper", *args]) == 0
    gan = load_level_gan(run)
    assert gan.conditional and gan.originals.shape == (8, 9, 13)
    # the paper's model exactly: none of our additions, recorded as such
    assert gan.cfg.preset == "paper" and not gan.cfg.train.ema
    assert not gan.cfg.model.condition_counts and not gan.cfg.model.condition_norm
    assert gan.cfg.bootstrap.min_solution == 0
    assert "preset: paper" in (run / "config.yaml").read_text()
    assert (
        main(
            [
                "levels",
                "generate",
                str(run),
                "--n",
                "3",
                "--condition",
                "enemies=2",
                "--out",
                str(tmp_path / "g"),
            ]
        )
        == 0
    )
    files = sorted((tmp_path / "g").iterdir())
    assert len(files) == 3 and all(f.read_text().count("\n") == 9 for f in files)
    # the paper's conditioning hardly follows counts: say so, and how to train one that does
    assert "train with --condition-counts --condition-norm" in capsys.readouterr().err
    assert main(["levels", "eval", str(run), "--n", "60", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert {
        "playable",
        "unique_playable",
        "duplicates",
        "novelty",
        "enemies_as_asked",
        "counts_as_asked",
        "novel_unique_playable",
    } <= set(values)
    assert 0 <= values["playable"] <= 100 and 0 <= values["enemies_as_asked"] <= 100
    # unconditional variants refuse --condition; resume refuses model changes
    plain = tmp_path / "plain"
    assert main(["levels", "train", "--variant", "dcgan", "--out", str(plain), *args]) == 0
    assert load_level_gan(plain).cfg.model.attention is False
    assert (
        main(
            [
                "levels",
                "generate",
                str(plain),
                "--condition",
                "enemies=2",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert "unconditional dcgan model" in capsys.readouterr().err
    assert main(["levels", "train", "--resume", str(run), "--variant", "sagan"]) == 2
    assert "model.conditional cannot change when resuming" in capsys.readouterr().err
    assert main(["levels", "train", "--variant", "gan", "--out", str(tmp_path / "y")]) == 2


def test_cli_conditioning_flags_reach_the_run_and_resume_keeps_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    run = tmp_path / "run"
    args = ["--steps", "2", "--batch-size", "4", "--ch", "8", "--z-dim", "8", "--no-progress"]
    args += ["--eval-every", "0"]  # no best.pt: generate says nothing about which checkpoint
    flags = ["--condition-norm", "--condition-counts", "--count-weight", "0.1"]
    assert main(["levels", "train", "--out", str(run), *args, *flags]) == 0
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert written["model"]["condition_norm"] and written["model"]["condition_counts"]
    assert written["train"]["count_weight"] == 0.1
    gan = load_level_gan(run)
    assert any(isinstance(m, VectorConditionalBatchNorm2d) for m in gan.G.modules())
    levels, asked = gan.generate(4, {"enemies": 1})
    assert levels.shape == (4, 9, 13) and asked is not None
    assert (asked[:, list(ENEMIES)].sum(1) == 1).all()
    capsys.readouterr()
    out = tmp_path / "g"
    asked = ["--n", "2", "--condition", "enemies=1", "--out", str(tmp_path / "c.png")]
    assert main(["levels", "generate", str(run), *asked]) == 0
    assert "note:" not in capsys.readouterr().err  # this model has the conditioning that works
    # 50 enemies fill more than 60% of the 77 cells inside a walled 9 x 13 level (the run has
    # --wall-border): none is playable; one line, nothing written
    filtered = ["--n", "3", "--playable", "--max-tries", "200", "--out", str(out)]
    filtered += ["--condition", "enemies=50"]
    assert main(["levels", "generate", str(run), *filtered]) == 2
    err = capsys.readouterr().err
    # the message says which test failed and that no training level has so many enemies
    most = int(count_of(tile_counts(gan.training_set), "enemies").max())
    assert "3 playable levels asked for in 200 generated (200 unplayable); " in err
    assert "enemies=50 is outside the training levels' " in err and f"..{most}; ask within" in err
    assert err.rstrip().endswith("raise --max-tries, ask for fewer, or train longer")
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert main(["levels", "generate", str(run), "--as-asked", "--out", str(out)]) == 2
    assert "--as-asked needs --condition" in capsys.readouterr().err
    impossible = ["--playable", "--condition", "key=2", "--out", str(out)]
    assert main(["levels", "generate", str(run), *impossible]) == 2
    assert "a playable level has exactly one avatar, key and door" in capsys.readouterr().err
    assert main(["levels", "train", "--resume", str(run), "--no-condition-norm"]) == 2
    assert "model.condition_norm cannot change when resuming" in capsys.readouterr().err
    # repeating a setting the run has is fine; --steps may change
    assert main(["levels", "train", "--resume", str(run), "--condition-norm", "--steps", "3"]) == 0


def test_generate_and_test_keeps_only_levels_that_pass() -> None:
    from sagan.levels.conditions import matches_request
    from sagan.levels.evaluate import LevelGAN

    cfg = LevelRunConfig(model=small_level_model())
    broken = LEVELS[1].copy()
    broken[broken == TILES.index("A")] = FLOOR  # no avatar
    pool = np.stack([LEVELS[0], broken, LEVELS[0], LEVELS[2], LEVELS[3]])
    enemies = tile_counts(pool)[:, list(ENEMIES)].sum(1)

    def gan() -> LevelGAN:
        return LevelGAN(ReplayG(pool), cfg, LEVELS, LEVELS, 0)

    kept, tried = gan().generate_passing(2, playable=True, batch=2)
    assert np.array_equal(kept, pool[[0, 2]]) and tried == 3  # broken one skipped
    kept, tried = gan().generate_passing(3, playable=True, distinct=True, batch=5)
    assert np.array_equal(kept, pool[[0, 3, 4]]) and tried == 5  # the repeat of 0 skipped
    kept, tried = gan().generate_passing(1, playable=True, batch=1000)
    assert tried == 1  # counts the levels examined, not the batch generated
    k = int(enemies[3])
    kept, _ = gan().generate_passing(1, {"enemies": k}, as_asked=True, batch=5)
    assert tile_counts(kept)[:, list(ENEMIES)].sum() == k
    assert matches_request(tile_counts(pool), {"enemies": k}).tolist() == (enemies == k).tolist()
    assert matches_request(tile_counts(pool), {"avatar": 0}).tolist() == [0, 1, 0, 0, 0]
    with pytest.raises(SaganError, match="found only 4 of the 5 playable levels asked for in 5 "):
        gan().generate_passing(5, playable=True, distinct=False, as_asked=False, max_tries=5)
    with pytest.raises(SaganError, match="--as-asked needs --condition"):
        gan().generate_passing(1, as_asked=True)
    with pytest.raises(SaganError, match="--max-tries"):
        gan().generate_passing(10, playable=True, max_tries=5)


def test_evaluate_counts_playable_unique_and_novel() -> None:
    from sagan.levels.evaluate import LevelGAN

    cfg = LevelRunConfig(
        model=small_level_model(conditional=False, condition_counts=False, condition_norm=False)
    )
    new = LEVELS[5].copy()
    new[1, 1], new[1, 2] = new[1, 2], new[1, 1]
    proposals = np.stack([LEVELS[0], new, new, LEVELS[6]])
    gan = LevelGAN(ReplayG(proposals), cfg, LEVELS[:5], LEVELS[:5], 0)
    v = evaluate_levels(gan, n=4)
    # every proposal is playable; 3 distinct (new twice); `new` and LEVELS[6] are not copies
    # of the 5 starting levels (LEVELS[0] is)
    assert v["playable"] == 100 and v["duplicates"] == 25
    assert v["unique_playable"] == 75 and v["novel_unique_playable"] == 2
    assert "enemies_as_asked" not in v


@pytest.mark.parametrize("enemies", [0, 2])
def test_evaluate_scores_enemy_requests_by_what_was_made(enemies: int) -> None:
    """A G that always makes one level, with ``enemies`` enemies and one avatar, key and door,
    meets exactly the requests (0..5 enemies, drawn by the evaluation's seed) for that many."""
    from sagan.levels.evaluate import LevelGAN

    level = LEVELS[0].copy()
    level[np.isin(level, ENEMIES)] = FLOOR
    floor = np.argwhere(level == FLOOR)
    for r, c in floor[:enemies]:
        level[r, c] = ENEMIES[0]
    assert tile_counts(level[None])[0, list(ENEMIES)].sum() == enemies
    cfg = LevelRunConfig(model=small_level_model())
    n, seed = 60, 3
    v = evaluate_levels(LevelGAN(ReplayG(level[None]), cfg, LEVELS, LEVELS, 0), n=n, seed=seed)
    wanted = np.random.Generator(np.random.PCG64(seed + 1)).integers(0, 6, n)
    share = 100.0 * float((wanted == enemies).mean())
    assert 0 < share < 100 and v["enemies_as_asked"] == pytest.approx(share)
    # all counts: avatar, key and door (one each, as every starting level) and each enemy
    # kind; a request for none is met in full, one for 2 only if it asks for kind 0 twice
    if enemies == 0:
        assert v["counts_as_asked"] == pytest.approx(share)
    else:
        assert 0 <= v["counts_as_asked"] <= share


def test_configs_of_older_runs_still_load() -> None:
    """Runs written before the shared engine lack its settings (eval_every, device, ...) and
    may carry ``train.device: cpu`` (once a dead setting, now a real one)."""
    from sagan.levels.config import upgrade_config

    old = LevelRunConfig().to_dict()
    for key in ("eval_every", "eval_n", "max_bad_steps", "precision", "compile"):
        del old["train"][key]
    old["train"]["device"] = "cpu"
    cfg = LevelRunConfig.from_dict(upgrade_config(old))
    assert cfg.train.device == "cpu" and cfg.train.eval_every == 0
    old["train"]["device"] = "tpu"
    with pytest.raises(SaganError, match=r"train\.device"):
        LevelRunConfig.from_dict(upgrade_config(old))


def test_presets_sit_under_explicit_settings_and_old_configs_keep_theirs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagan.levels.config import upgrade_config

    best = LevelRunConfig()
    assert best.preset == "default" and best.model.condition_counts and best.model.condition_norm
    assert best.bootstrap.min_solution == 15 and best.train.ema
    paper = LevelRunConfig.from_dict({"preset": "paper", "model": {"condition_norm": True}})
    assert paper.model.condition_norm  # a setting given beside the preset wins
    assert not paper.model.condition_counts and paper.bootstrap.min_solution == 0
    assert paper.train.eval_every == 0 and best.train.eval_every == 500  # the paper: last model
    assert paper.bootstrap.min_distance == 5 and not paper.model.wall_border
    assert not paper.train.mirror and paper.train.place_weight == paper.train.request_weight == 0
    assert LevelRunConfig.from_dict(paper.to_dict()) == paper  # round trip, preset recorded
    with pytest.raises(SaganError, match="preset"):
        LevelRunConfig.from_dict({"preset": "best"})
    # a 0.2 config: no preset, none of the settings added since; it keeps its behaviour
    old = LevelRunConfig.from_dict(paper.to_dict()).to_dict()
    del old["preset"], old["train"]["ema"], old["bootstrap"]["max_cell_share"]
    up = LevelRunConfig.from_dict(upgrade_config(old))
    assert up.preset == "none" and up.train.ema and up.bootstrap.max_cell_share == 0.0
    assert up.model == paper.model and up.bootstrap.min_solution == 0
    # a 0.3 config (presets, but none of the 0.4 settings): those load off, whatever the
    # defaults are now
    recent = LevelRunConfig().to_dict()
    del recent["model"]["wall_border"], recent["train"]["mirror"]
    del recent["train"]["request_weight"]
    recent["train"]["steps"] = 7
    up = LevelRunConfig.from_dict(
        upgrade_config({**recent, "model": {**recent["model"]}, "train": {**recent["train"]}})
    )
    assert not up.model.wall_border and not up.train.mirror and up.train.request_weight == 0
    assert up.train.steps == 7 and up.preset == "default"
    capsys.readouterr()
    assert main(["levels", "train", "--preset", "best", "--steps", "1"]) == 2
    assert "preset" in capsys.readouterr().err


def test_minibatch_std_sees_near_copies_and_never_mixes_reals_with_fakes() -> None:
    from sagan.levels.networks import minibatch_std

    h = torch.randn(8, 3, 4, 4)
    out = minibatch_std(h, 4)
    assert out.shape == (8, 4, 4, 4)
    same = minibatch_std(h[:1].repeat(8, 1, 1, 1), 4)
    assert float(same[:, 3].max()) < 1e-3 < float(out[:, 3].min())  # copies: no spread
    moved = h.clone()
    moved[0] += 5.0  # a change in the first half (the reals) ...
    assert torch.equal(minibatch_std(moved, 4)[4:], out[4:])  # ... leaves the fakes' alone
    with pytest.raises(ValueError, match="does not divide"):
        minibatch_std(torch.randn(6, 3, 4, 4), 4)
    cfg = LevelRunConfig(
        model=small_level_model(minibatch_std=2),
        train=TrainConfig(batch_size=4),
    )
    losses = train_step(build_state(cfg, LEVELS))
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(SaganError, match="minibatch_std 3"):
        LevelRunConfig(
            model=ModelConfig(condition_places=False, minibatch_std=3),
            train=TrainConfig(batch_size=32),
        )


def test_mode_seeking_rewards_latents_that_make_different_levels() -> None:
    from sagan.levels.train import mode_seeking_loss

    z1, z2 = torch.zeros(4, 8), torch.ones(4, 8)
    same = encode(LEVELS[:4]).float()
    other = encode(LEVELS[4:8]).float()
    assert float(mode_seeking_loss(same, same, z1, z2)) == pytest.approx(1e5)  # collapsed
    assert float(mode_seeking_loss(same, other, z1, z2)) < 100
    cfg = LevelRunConfig(
        model=small_level_model(),
        train=TrainConfig(batch_size=4, mode_seeking=1.0),
    )
    losses = train_step(build_state(cfg, LEVELS))
    assert float(losses["mode_seeking"]) > 0 and torch.isfinite(losses["loss_g"])


def test_every_weighted_term_reaches_g_update_with_its_weight() -> None:
    """The G loss that is backpropagated is the logged hinge plus each extra term times its
    weight (the logged ``loss_g`` is the hinge alone), and D's is the logged ``loss_d``."""
    weights = {
        "count_error": ("count_weight", 0.3),
        "place_loss": ("place_weight", 0.7),
        "request_error": ("request_weight", 1.3),
        "rank_loss": ("rank_weight", 0.4),
        "mode_seeking": ("mode_seeking", 0.2),
    }
    model = ModelConfig(
        ch=8, z_dim=8, embed=4, height=9, width=13, condition_places=True, fixed_places=False
    )  # fixed places would make the place loss moot
    train = TrainConfig(batch_size=8, **dict(weights.values()))
    state = build_state(LevelRunConfig(model=model, train=train), LEVELS)
    seen: dict[str, torch.Tensor] = {}
    update = state.updates.update

    def spy(name: str, loss: torch.Tensor) -> None:
        seen[name] = loss.detach().clone()
        update(name, loss)

    state.updates.update = spy  # type: ignore[method-assign]
    out = train_step(state)
    assert set(weights) <= set(out)  # all five terms are on in this configuration
    expected = out["loss_g"] + sum(w * out[term] for term, (_, w) in weights.items())
    torch.testing.assert_close(seen["g"], expected)
    torch.testing.assert_close(seen["d"], out["loss_d"])
    assert all(float(out[term]) != 0 for term in weights)  # so a dropped term would show
