"""Bad values a user types into the commands that read runs: one line on stderr, exit 2, no
traceback, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_TRAIN_ARGS
from sagan.cli import main

LEVEL_FLAGS = ["--batch-size", "4", "--ch", "8", "--z-dim", "8", "--embed", "4",
               "--bootstrap-every", "2", "--bootstrap-samples", "4", "--eval-every", "0",
               "--no-progress"]  # fmt: skip
POSE_FLAGS = ["--stacks", "2", "--features", "16", "--depth", "2", "--d-features", "8",
              "--d-depth", "2", "--resolution", "32", "--batch-size", "2",
              "--no-progress"]  # fmt: skip
HUGE = "99999999999999999999"  # beyond 64 bits


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    images, levels = root / "images", root / "levels"
    assert main(["train", *TINY_TRAIN_ARGS, "--steps", "2", "--out", str(images)]) == 0
    assert main(["levels", "train", *LEVEL_FLAGS, "--steps", "2", "--out", str(levels)]) == 0
    return {"images": images, "levels": levels, "root": root}


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["sample", "{images}", "--seed", HUGE, "--out", "{out}/s.png"], "--seed"),
        (["sample", "{images}", "--labels", HUGE, "--out", "{out}/s.png"], "labels are class"),
        (["train", *TINY_TRAIN_ARGS, "--seed", HUGE, "--out", "{out}/t"], "train.seed"),
        (["train", *TINY_TRAIN_ARGS, "--z-dim", HUGE, "--out", "{out}/t"], "model.z_dim"),
        (["eval", "{images}", "--metrics", "pr_digits", "--n", "3"], "3 nearest neighbours"),
        (["eval", "{images}", "--metrics", "fd_digits", "--n", "4", "--n-real", "1"], "--n-real"),
        (["levels", "generate", "{levels}", "--seed", "-1", "--out", "{out}/g"], "--seed"),
        (["levels", "eval", "{levels}", "--seed", "-1", "--n", "2"], "--seed"),
        (["levels", "generate", "{levels}", "--n", "0", "--playable", "--out", "{out}/g"], "--n"),
        (
            ["levels", "generate", "{levels}", "--condition", f"wall={HUGE}", "--out", "{out}/g"],
            "more tiles than a level",
        ),
    ],
)
def test_commands_name_the_bad_value(
    argv: list[str],
    says: str,
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    filled = [a.format(images=runs["images"], levels=runs["levels"], out=tmp_path) for a in argv]
    assert says in _one_line_error(filled, capsys)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_resume_with_nothing_to_do_leaves_the_run_as_it_was(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run = runs["images"]
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run), "--steps", "1", "--no-progress"]) == 0
    assert "already at step 2 of 1; raise --steps to go on" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def _pose_folder(root: Path, broken: str) -> tuple[Path, Path]:
    """Three annotated photos, one of which (``broken``) is not a readable image."""
    images = root / "images"
    images.mkdir()
    names = ["a.jpg", "b.jpg", "c.jpg"]
    for name in names:
        if name == broken:
            (images / name).write_text("not an image")
        else:
            Image.effect_noise((120, 160), 60).convert("RGB").save(images / name)
    person = {"joints": [[10 + k, 20 + k] for k in range(16)], "joints_vis": [1] * 16,
              "center": [30, 30], "scale": 0.3}  # fmt: skip
    annotations = root / "people.json"  # the MPII JSON layout of the common PyTorch ports
    annotations.write_text(json.dumps([{"image": name, **person} for name in names]))
    return annotations, images


def test_pose_names_an_unreadable_image_before_making_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mat, images = _pose_folder(tmp_path, broken="b.jpg")
    out = tmp_path / "run"
    argv = ["pose", "train", *POSE_FLAGS, "--steps", "2", "--annotations", str(mat),
            "--images", str(images), "--out", str(out)]  # fmt: skip
    err = _one_line_error(argv, capsys)
    assert "not readable images, e.g. b.jpg" in err
    assert not out.exists()  # no half-made run folder to refuse the next try


def test_pose_predict_refuses_a_nan_box_and_a_decompression_bomb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "person.png"
    Image.new("RGB", (40, 60)).save(photo)
    argv = ["pose", "predict", str(photo), "--model", "none", "--out", str(tmp_path / "p.png")]
    assert "finite" in _one_line_error([*argv, "--box", "nan,0,10,10"], capsys)
    run = tmp_path / "pose"
    assert main(["pose", "train", *POSE_FLAGS, "--steps", "1", "--train-size", "4",
                 "--out", str(run)]) == 0  # fmt: skip
    capsys.readouterr()
    bomb = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 M pixels: over twice Pillow's limit
    argv = ["pose", "predict", str(bomb), "--model", str(run), "--out", str(tmp_path / "p.png")]
    assert "not a readable image" in _one_line_error(argv, capsys)
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("workers", ["0", "1"])
def test_pose_names_a_truncated_photo_when_it_fails_to_decode(
    workers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cut-off JPEG has a good header, so it passes the check before the run and fails
    only when its pixels are decoded, in the loader: still one line naming it, also when a
    worker process decoded it (torch re-raises it with the worker's traceback inside)."""
    annotations, images = _pose_folder(tmp_path, broken="")
    data = (images / "b.jpg").read_bytes()
    (images / "b.jpg").write_bytes(data[: len(data) // 3])
    argv = ["pose", "train", *POSE_FLAGS, "--steps", "2", "--annotations", str(annotations),
            "--images", str(images), "--num-workers", workers,
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert "b.jpg: could not decode it" in _one_line_error(argv, capsys)
