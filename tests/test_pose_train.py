"""Pose training end to end on tiny models: resume, eval, predict on a real image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import shared_data
from pose_files import MPII_TO_LSP, write_lsp_mat, write_mpii_mat
from sagan.cli import main
from sagan.errors import SaganError
from sagan.pose.data import read_mpii_json
from sagan.pose.heatmaps import gaussian_heatmaps
from sagan.pose.predict import predict_image
from sagan.pose.synthetic import render_person
from sagan.pose.train import PoseModelConfig, PoseRunConfig, PoseTrainConfig, train_pose
from sagan.training import find_checkpoints, load_checkpoint


def tiny(steps: int, adversarial: bool = True, **train: float) -> PoseRunConfig:
    return PoseRunConfig(
        model=PoseModelConfig(stacks=2, features=16, depth=2, d_features=8, d_depth=2),
        train=PoseTrainConfig(
            adversarial=adversarial, batch_size=2, steps=steps, resolution=32, heatmap=8,
            train_size=50, save_every=2, log_every=1, **train,
        ),
    )  # fmt: skip


def test_resume_is_bit_identical_and_k_moves(tmp_path: Path) -> None:
    # a tiny D reconstructs fakes far worse than reals (l_fake ~ 100 l_real), so with the
    # default gamma 0.5 k stays at 0; gamma 200 lets it move within four steps
    moving = {"gamma": 200.0, "lambda_k": 0.01}
    straight = train_pose(tiny(4, **moving), out=tmp_path / "a")
    half = train_pose(tiny(2, **moving), out=tmp_path / "b")
    train_pose(resume=half, steps=4)
    a = load_checkpoint(find_checkpoints(straight)[-1], kind="pose")
    b = load_checkpoint(find_checkpoints(half)[-1], kind="pose")
    assert a["step"] == b["step"] == 4 and a["k"] == b["k"]
    for key in ("G", "D"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), (key, name)
    records = [json.loads(x) for x in (straight / "stats.jsonl").read_text().splitlines()]
    assert {"loss_d", "loss_g", "l_real", "l_fake", "k"} <= set(records[0])
    k = 0.0  # BEGAN's k_t = clip(k_{t-1} + lambda_k (gamma l_real - l_fake), 0, 1), per step
    for r in records:
        k = min(1.0, max(0.0, k + 0.01 * (200.0 * r["l_real"] - r["l_fake"])))
        assert r["k"] == pytest.approx(k, abs=1e-5), r
    assert max(r["k"] for r in records) > 0.0 and a["k"] == pytest.approx(records[-1]["k"])


def test_supervised_only_has_no_discriminator(tmp_path: Path) -> None:
    run = train_pose(tiny(2, adversarial=False), out=tmp_path / "s")
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="pose")
    assert "D" not in ckpt and "opt_d" not in ckpt


def test_bad_sizes_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pose", "train", "--resolution", "36", "--steps", "1"]) == 2
    assert "must divide by 2^3" in capsys.readouterr().err
    assert main(["pose", "train", "--attention", "softmax", "--steps", "1"]) == 2


class _Peak(torch.nn.Module):
    """A 'network' whose every heat-map peaks at heat-map pixel (5, 3)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = gaussian_heatmaps(np.tile([[5.0, 3.0]], (16, 1)), np.ones(16), 8)
        return [torch.from_numpy(maps)[None].expand(len(x), -1, -1, -1)]


def test_predictions_map_back_to_image_pixels() -> None:
    image = Image.new("RGB", (200, 100))
    # heat (5, 3) -> crop (5.5 * 4 - 0.5, 3.5 * 4 - 0.5) = (21.5, 13.5) of a 32 px crop
    crop_point = np.array([21.5, 13.5])
    # a 100 px person box: the crop spans 1.25 x 100 px around its centre (99.5, 49.5)
    joints = predict_image(_Peak(), image, 32, 8, box=(50, 0, 100, 100), flip=False)  # type: ignore[arg-type]
    expected = np.array([99.5, 49.5]) + (crop_point - 16) * 125 / 32
    np.testing.assert_allclose(joints, np.tile(expected, (16, 1)), atol=1e-6)
    # no box: the crop is the image's longer side, centred on the image
    joints = predict_image(_Peak(), image, 32, 8, flip=False)  # type: ignore[arg-type]
    expected = np.array([99.5, 49.5]) + (crop_point - 16) * 200 / 32
    np.testing.assert_allclose(joints, np.tile(expected, (16, 1)), atol=1e-6)


def test_cli_eval_and_predict_on_a_real_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_data("mpii-sample")
    run = train_pose(tiny(2), out=tmp_path / "r")
    capsys.readouterr()
    assert main(["pose", "eval", str(run), "--n", "8", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert len(values) == 17 and "total" in values
    out = tmp_path / "overlay.png"
    image = folder / "004645041.jpg"
    assert main(["pose", "predict", str(image), "--model", str(run), "--out", str(out)]) == 0
    assert Image.open(out).size == Image.open(image).size
    with pytest.raises(SystemExit) as e:
        main(["pose", "predict", str(image), "--model", str(run), "--box", "1,2,0,4",
              "--out", str(out)])  # fmt: skip
    assert e.value.code == 2
    assert "width and height must be > 0" in capsys.readouterr().err


def _tiny_args(run: Path) -> list[str]:
    return ["--stacks", "1", "--features", "16", "--depth", "2", "--resolution", "32",
            "--batch-size", "2", "--steps", "2", "--out", str(run)]  # fmt: skip


def test_cli_trains_and_evaluates_on_mpii_annotations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_data("mpii-sample")
    people = read_mpii_json(folder / "test_mpii.json")
    boxes = np.array([[p.joints[9] - 12, p.joints[9] + 12] for p in people])
    mat = tmp_path / "mpii.mat"
    write_mpii_mat(mat, people, boxes, extra=False)
    run = tmp_path / "mpii-run"
    args = ["pose", "train", "--annotations", str(mat), "--images", str(folder),
            "--eval-every", "1", *_tiny_args(run)]  # fmt: skip
    assert main(args) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())  # resolved, written before step 0
    assert cfg["data"]["annotations"] == str(mat) and cfg["model"]["joints"] == 16
    records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert any("metric/pckh_total" in r for r in records)
    capsys.readouterr()
    # the run's held-out people (every 20th image), then every person of the JSON file
    assert main(["pose", "eval", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    assert "PCKh@0.5 on 1 people" in captured.err and "total" in json.loads(captured.out)
    json_file = folder / "test_mpii.json"
    assert main(["pose", "eval", str(run), "--annotations", str(json_file),
                 "--images", str(folder), "--json"]) == 0  # fmt: skip
    assert "PCKh@0.5 on 5 people" in capsys.readouterr().err
    assert main(["pose", "eval", str(run), "--annotations", str(json_file),
                 "--images", str(folder), "--json", "--multiscale"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "on 5 people (multi-scale: 0.8, 0.9, 1.0, 1.1, 1.2, 1.3)" in captured.err
    assert 0 <= json.loads(captured.out)["total"] <= 100
    # a wrong image folder: one line naming the fix, and the run is left as it was
    before = sorted(p.name for p in run.iterdir())
    assert main(["pose", "eval", str(run), "--annotations", str(json_file),
                 "--images", str(tmp_path)]) == 2  # fmt: skip
    assert "point --images at" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


def test_cli_trains_an_lsp_model_with_14_joints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    joints = []
    for i in range(4):
        p = render_person(64, np.random.default_rng(i))
        Image.fromarray(p.image).save(images / f"im{i + 1:04d}.jpg")
        joints.append(p.joints[MPII_TO_LSP])
    write_lsp_mat(tmp_path / "joints.mat", np.array(joints))
    run = tmp_path / "lsp-run"
    assert main(["pose", "train", "--annotations", str(tmp_path / "joints.mat"),
                 "--images", str(images), "--no-adversarial", *_tiny_args(run)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["pose", "eval", str(run), "--json"]) == 0  # LSP's test half: images 3 and 4
    captured = capsys.readouterr()
    values = json.loads(captured.out)
    assert "PCK@0.2 on 2 people" in captured.err
    assert len(values) == 15 and "neck" in values and "pelvis" not in values
    out = tmp_path / "lsp.png"
    assert main(["pose", "predict", str(images / "im0001.jpg"), "--model", str(run),
                 "--out", str(out)]) == 0  # fmt: skip
    assert Image.open(out).size == (64, 64)
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["pose", "predict", str(images / "im0002.jpg"), "--model", str(run),
                 "--out", str(out)]) == 2  # fmt: skip
    assert "lsp.png already exists; choose another --out" in capsys.readouterr().err
    assert out.read_bytes() == before
    # an MPII-order model cannot be scored on LSP's 14 joints
    mpii_run = train_pose(tiny(1, adversarial=False), out=tmp_path / "m")
    assert main(["pose", "eval", str(mpii_run), "--annotations", str(tmp_path / "joints.mat"),
                 "--images", str(images)]) == 2  # fmt: skip
    assert "predicts 16 joints but the annotations have 14" in capsys.readouterr().err


def _lsp_files(folder: Path, n: int) -> tuple[Path, Path]:
    """``n`` synthetic figures saved as LSP images and joints.mat under ``folder``."""
    images = folder / "images"
    images.mkdir(parents=True)
    joints = []
    for i in range(n):
        p = render_person(64, np.random.default_rng(i))
        Image.fromarray(p.image).save(images / f"im{i + 1:04d}.jpg")
        joints.append(p.joints[MPII_TO_LSP])
    write_lsp_mat(folder / "joints.mat", np.array(joints))
    return folder / "joints.mat", images


def test_a_run_whose_data_moved_resumes_with_annotations_and_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mat, images = _lsp_files(tmp_path / "lsp", 4)  # LSP's training half: 2 people
    run = tmp_path / "run"
    assert main(["pose", "train", "--annotations", str(mat), "--images", str(images),
                 "--no-adversarial", "--save-every", "1", *_tiny_args(run)]) == 0  # fmt: skip
    (tmp_path / "lsp").rename(tmp_path / "moved")
    capsys.readouterr()
    before = sorted(p.name for p in run.iterdir())
    # the data is gone: one line naming the fix, and the run is left as it was
    assert main(["pose", "train", "--resume", str(run), "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "resume with --annotations NEW_FILE --images NEW_FOLDER" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == before
    # other data is refused: other people, other joints, synthetic figures
    other_mat, other_images = _lsp_files(tmp_path / "other", 6)  # 3 training people
    assert main(["pose", "train", "--resume", str(run), "--steps", "3",
                 "--annotations", str(other_mat), "--images", str(other_images)]) == 2  # fmt: skip
    assert "hold 3 training people but this run started on 2" in capsys.readouterr().err
    mpii = tmp_path / "mpii.json"
    entry = {"joints": [[10.0, 10.0]] * 16, "joints_vis": [1] * 16, "center": [32.0, 32.0],
             "scale": 0.3}  # fmt: skip
    mpii.write_text(json.dumps([{"image": f"im{i:04d}.jpg", **entry} for i in range(1, 7)]))
    assert main(["pose", "train", "--resume", str(run), "--steps", "3",
                 "--annotations", str(mpii), "--images", str(other_images)]) == 2  # fmt: skip
    assert "has 16 joints but this run's model predicts 14" in capsys.readouterr().err
    synthetic = train_pose(tiny(1, adversarial=False), out=tmp_path / "synthetic")
    assert main(["pose", "train", "--resume", str(synthetic), "--steps", "2",
                 "--annotations", str(mpii), "--images", str(other_images)]) == 2  # fmt: skip
    assert "started on the synthetic figures" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before
    # the same data where it now is: the run continues
    moved = tmp_path / "moved"
    assert main(["pose", "train", "--resume", str(run), "--steps", "3", "--annotations",
                 str(moved / "joints.mat"), "--images", str(moved / "images")]) == 0  # fmt: skip
    assert load_checkpoint(find_checkpoints(run)[-1], kind="pose")["step"] == 3
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["images"] == str(moved / "images")


def test_g_learning_rate_drops_at_the_released_epochs(tmp_path: Path) -> None:
    """x lr_gamma after each of lr_epochs (20 people / batch 2 = 10 steps an epoch); D's
    rate stays (the released schedule drops G's); a resumed run follows the schedule."""
    cfg = tiny(25)
    cfg = PoseRunConfig.from_dict(
        cfg.to_dict() | {"train": cfg.to_dict()["train"] | {"train_size": 20, "lr_epochs": [1, 2]}}
    )
    run = train_pose(cfg, out=tmp_path / "r")
    records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    lr = {r["step"]: r["lr_g"] for r in records}
    assert lr[10] == pytest.approx(2.5e-4)  # the 10th step ran before epoch 1 ended
    assert lr[11] == pytest.approx(2.5e-4 * 0.4)
    assert lr[21] == pytest.approx(2.5e-4 * 0.16)
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="pose")
    assert ckpt["opt_d"]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)
    # stopped at step 6 (before the first drop) and resumed: the drops come at the same steps
    half = cfg.to_dict()
    half["train"]["steps"] = 6
    resumed = train_pose(PoseRunConfig.from_dict(half), out=tmp_path / "h")
    train_pose(resume=resumed, steps=25)
    records = [json.loads(x) for x in (resumed / "stats.jsonl").read_text().splitlines()]
    assert {r["step"]: r["lr_g"] for r in records if r["step"] > 6} == {
        s: v for s, v in lr.items() if s > 6
    }
    other = load_checkpoint(find_checkpoints(resumed)[-1], kind="pose")
    assert other["step"] == 25
    for key in ("opt_g", "opt_d"):
        assert other[key]["param_groups"][0]["lr"] == ckpt[key]["param_groups"][0]["lr"]
    with pytest.raises(SaganError, match=r"train\.lr_epochs"):
        PoseTrainConfig(lr_epochs=(0,))
