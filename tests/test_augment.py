"""Data-efficient training: DiffAugment's ops, ADA's adaptive probability and LeCam
regularisation, alone and inside the image training step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sagan.errors import SaganError
from sagan.images.config import TrainConfig
from sagan.images.train import ImageTask, train
from sagan.losses import LeCamAnchors, d_hinge, lecam_penalty
from sagan.training import find_checkpoints, load_checkpoint
from sagan.training.augment import POLICIES, AdaptiveAugment, diff_augment
from test_train import _assert_identical, _weights, tiny


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("op", list(POLICIES))
def test_every_op_is_differentiable(op: str) -> None:
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: diff_augment(t, [op], _gen(1)), (x,))
    y = diff_augment(x, [op], _gen(1))
    assert y.shape == x.shape and not torch.equal(y, x)


def test_translation_shifts_whole_images_within_an_eighth() -> None:
    x = torch.arange(1, 1 + 4 * 16 * 16, dtype=torch.float32).view(4, 1, 16, 16)
    y = diff_augment(x, ["translation"], _gen(3))
    for a, b in zip(x[:, 0], y[:, 0], strict=True):
        (r, c) = (b == a[8, 8]).nonzero()[0].tolist() if (b == a[8, 8]).any() else (8, 8)
        dy, dx = r - 8, c - 8
        assert abs(dy) <= 2 and abs(dx) <= 2  # 16 / 8 = 2 pixels at most
        shifted = torch.roll(a, (dy, dx), (0, 1))
        kept = b != 0
        assert torch.equal(b[kept], shifted[kept])  # moved content, zeros where it came in
        assert int((~kept).sum()) == 16 * abs(dx) + 16 * abs(dy) - abs(dx * dy)


def test_cutout_blanks_a_square_of_half_the_side() -> None:
    x = torch.ones(64, 1, 16, 16)
    y = diff_augment(x, ["cutout"], _gen(4))
    holes = (y == 0).sum(dim=(1, 2, 3))
    assert holes.max() == 64 and holes.min() > 0  # 8 x 8, less where it hangs over the border


def test_probability_decides_per_image() -> None:
    x = torch.randn(200, 3, 8, 8)
    assert torch.equal(diff_augment(x, p=0.0, generator=_gen()), x)
    y = diff_augment(x, ["color"], _gen(), p=0.5)
    changed = (y != x).flatten(1).any(1).float().mean()
    assert 0.35 < float(changed) < 0.65
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        diff_augment(x, ["blur"])


def test_ada_raises_p_on_an_overfitting_d_and_lowers_it_otherwise() -> None:
    ada = AdaptiveAugment(target=0.6, kimg=0.1, interval=4)  # 100 images from 0 to 1
    for _ in range(8):
        ada.observe(torch.ones(10))  # every real scored positive: r_t = 1 > 0.6
    assert ada.r_t == 1.0 and ada.p == pytest.approx(0.8)
    saved = ada.state_dict()
    ada.observe(torch.ones(10))  # mid-interval: what a checkpoint must carry
    mid = ada.state_dict()
    for _ in range(3):
        ada.observe(torch.tensor([1.0, -1.0] * 5))  # r_t = (1 + 0 + 0 + 0) / 4 < 0.6
    assert ada.r_t == 0.25 and ada.p == pytest.approx(0.4)  # less augmentation
    again = AdaptiveAugment(target=0.6, kimg=0.1, interval=4)
    again.load_state_dict(mid)
    for _ in range(3):
        again.observe(torch.tensor([1.0, -1.0] * 5))
    assert again.p == pytest.approx(ada.p) and saved["p"] == pytest.approx(0.8)
    for _ in range(40):
        ada.observe(-torch.ones(10))
    assert ada.p == 0.0  # clipped


def test_lecam_pulls_scores_toward_the_other_sides_average() -> None:
    real = torch.tensor([2.0, 0.5], requires_grad=True)
    fake = torch.tensor([-2.0, 0.0], requires_grad=True)
    anchor_real, anchor_fake = torch.tensor(1.0), torch.tensor(-1.0)
    penalty = lecam_penalty(real, fake, anchor_real, anchor_fake)
    # real over the fakes' average: (2 + 1)^2 and (0.5 + 1)^2; fake under the reals': (1 + 2)^2, 1
    assert float(penalty) == pytest.approx((9 + 2.25) / 2 + (9 + 1) / 2)
    penalty.backward()
    assert real.grad is not None and (real.grad > 0).all() and (fake.grad < 0).all()
    calm = lecam_penalty(torch.tensor([-2.0]), torch.tensor([2.0]), anchor_real, anchor_fake)
    assert float(calm) == 0.0
    anchors = LeCamAnchors(decay=0.5)
    anchors.update(torch.tensor([2.0, 4.0]), torch.tensor([-2.0]))
    assert float(anchors.real) == 1.5 and float(anchors.fake) == -1.0


def test_the_step_shows_d_augmented_reals_and_fakes_alike(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[int] = []
    real_augment = ImageTask.augment

    def spy(self: ImageTask, x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return real_augment(self, x)

    monkeypatch.setattr(ImageTask, "augment", spy)
    train(tiny(1, augment="diffaugment"), out=tmp_path / "r", progress=False)
    assert seen == [16, 8]  # D's update: 8 reals and 8 fakes together; G's: 8 fakes


def test_lecam_reaches_d_update_with_its_weight(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each D update backpropagates the hinge plus ``--lecam`` times the penalty of its scores;
    G's update has no penalty."""
    import sagan.images.train as image_train
    from sagan.training.guard import GuardedOptimizers

    penalties: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    updates: list[tuple[str, torch.Tensor]] = []

    def penalty_spy(real, fake, anchor_real, anchor_fake):  # type: ignore[no-untyped-def]
        out = lecam_penalty(real, fake, anchor_real, anchor_fake)
        penalties.append((real.detach().clone(), fake.detach().clone(), out.detach().clone()))
        return out

    real_update = GuardedOptimizers.update

    def update_spy(self: GuardedOptimizers, name: str, loss: torch.Tensor) -> None:
        updates.append((name, loss.detach().clone()))
        real_update(self, name, loss)

    monkeypatch.setattr(image_train, "lecam_penalty", penalty_spy)
    monkeypatch.setattr(GuardedOptimizers, "update", update_spy)
    train(tiny(2, lecam=0.3), out=tmp_path / "r", progress=False)
    d_losses = [loss for name, loss in updates if name == "d"]
    assert len(d_losses) == len(penalties) == 2 and [n for n, _ in updates] == ["d", "g"] * 2
    for loss, (real, fake, penalty) in zip(d_losses, penalties, strict=True):
        assert float(penalty) > 0  # so a dropped or unweighted penalty would show
        torch.testing.assert_close(loss, d_hinge(real, fake) + 0.3 * penalty)


def test_ada_and_lecam_train_resume_exactly_and_log_p(tmp_path: Path) -> None:
    # a low target and a fast rate, so that p leaves 0 within the run and the resumed half
    # trains with augmentation on
    kw = {"augment": "ada", "ada_kimg": 0.05, "ada_target": 0.1, "lecam": 0.3}
    straight = train(tiny(6, **kw), out=tmp_path / "a", progress=False)
    half = train(tiny(3, save_every=3, **kw), out=tmp_path / "b", progress=False)
    train(resume=str(half), overrides={"train": {"steps": 6}}, progress=False)
    _assert_identical(_weights(straight), _weights(half))
    a = load_checkpoint(find_checkpoints(straight)[-1], kind="images")
    b = load_checkpoint(find_checkpoints(half)[-1], kind="images")
    assert a["ada"] == b["ada"] and a["lecam"] == b["lecam"]
    records = [json.loads(x) for x in (straight / "stats.jsonl").read_text().splitlines()]
    p = [r["ada_p"] for r in records]
    assert p[2] < p[-1] <= 1.0 and a["ada"]["p"] == pytest.approx(p[-1])  # rose in the 2nd half
    plain = train(tiny(2), out=tmp_path / "c", progress=False)
    assert "ada" not in load_checkpoint(find_checkpoints(plain)[-1], kind="images")


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(SaganError, match=r"train\.augment"):
        TrainConfig(augment="ADA")
    with pytest.raises(SaganError, match=r"train\.augment_policy"):
        TrainConfig(augment_policy="color,blur")
    with pytest.raises(SaganError, match=r"train\.lecam"):
        TrainConfig(lecam=-1.0)


def test_image_presets_sit_under_flags_and_are_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from sagan.cli import main
    from sagan.images.config import RunConfig
    from sagan.images.networks import build_discriminator, build_generator
    from sagan.nn import SelfAttention2d

    paper = RunConfig.from_dict({"preset": "paper"})
    m, t = paper.model, paper.train
    assert (m.arch, m.resolution, m.ch, m.attention) == ("resnet", 128, 64, (64,))
    assert (t.batch_size, t.steps, t.lr_g, t.lr_d, t.beta1, t.beta2) == (
        256, 1_000_000, 1e-4, 4e-4, 0.0, 0.9,
    )  # fmt: skip
    assert t.ema_decay == 0.0 and t.loss == "hinge"  # no EMA: it is ours, not the paper's
    from dataclasses import replace

    model = replace(m, channels=3, num_classes=1000)
    for net in (build_generator(model), build_discriminator(model)):
        attn = [a for a in net.modules() if isinstance(a, SelfAttention2d)]
        assert len(attn) == 1 and attn[0].query.out_channels == attn[0].value.in_channels // 8
    assert RunConfig().preset == "quick"
    run = tmp_path / "run"
    assert main(["train", "--preset", "paper", "--resolution", "32", "--ch", "4",
                 "--attention", "16", "--batch-size", "4", "--steps", "1", "--data", "digits",
                 "--out", str(run), "--no-progress"]) == 0  # fmt: skip
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["preset"] == "paper" and cfg["model"]["arch"] == "resnet"
    assert cfg["model"]["resolution"] == 32 and cfg["train"]["lr_d"] == 4e-4
    assert cfg["train"]["ema_decay"] == 0.0  # from the preset, not overridden
    capsys.readouterr()
    assert main(["train", "--preset", "fast", "--steps", "1"]) == 2
    assert "preset" in capsys.readouterr().err


def test_ada_keeps_p_at_the_target_and_sums_over_ranks() -> None:
    tie = AdaptiveAugment(target=0.5, kimg=0.1, interval=2)
    tie.p = 0.3
    for _ in range(2):
        tie.observe(torch.tensor([1.0, 1.0, 1.0, -1.0]))  # r_t = 0.5: exactly the target
    assert tie.r_t == 0.5 and tie.p == 0.3  # ADA's sign(): no move
    everyone = AdaptiveAugment(target=0.6, kimg=0.1, interval=2, reduce=lambda v: v * 0 + 1)
    for _ in range(2):
        everyone.observe(-torch.ones(10))  # this rank's reals look fake, the others' do not
    assert everyone.r_t == 1.0 and everyone.p > 0  # the averaged verdict decides


def test_lecam_anchors_skip_a_non_finite_batch() -> None:
    anchors = LeCamAnchors(decay=0.5)
    anchors.update(torch.tensor([2.0]), torch.tensor([-2.0]))
    anchors.update(torch.tensor([float("nan")]), torch.tensor([0.0]))
    assert float(anchors.real) == 1.0 and float(anchors.fake) == -1.0


def test_an_empty_policy_with_augment_on_is_an_error() -> None:
    with pytest.raises(SaganError, match="augment_policy is empty"):
        TrainConfig(augment="diffaugment", augment_policy=" , ")
    assert TrainConfig(augment="none", augment_policy="").policy == ()
