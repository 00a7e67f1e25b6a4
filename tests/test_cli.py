"""The command line: complete help, one-line errors, and train -> sample -> attention -> export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sagan
from sagan.cli import build_parser, main

TINY = [
    "--arch", "dcgan", "--ch", "8", "--z-dim", "16", "--attention", "8", "16",
    "--batch-size", "8", "--steps", "2", "--save-every", "2", "--sample-every", "2",
    "--device", "cpu", "--no-progress",
]  # fmt: skip


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["--help"], capsys)
    for command in ("train", "sample", "attention", "export"):
        assert command in text
    assert _help(["--version"], capsys).strip() == f"torch-sagan {sagan.__version__}"


def _schema_fields(cls: type, section: str = "") -> list[tuple[str, str, str]]:
    """(section, field, flag) of every config field that has a flag, read off the dataclasses."""
    import dataclasses
    import typing

    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _schema_fields(hints[f.name], f.name)
        elif f.metadata.get("cli", True):
            out.append((section, f.name, f.metadata.get("flag", "--" + f.name.replace("_", "-"))))
    return out


@pytest.mark.parametrize(
    ("argv", "config"),
    [
        (["train"], "sagan.images.config:RunConfig"),
        (["levels", "train"], "sagan.levels.config:LevelRunConfig"),
        (["pose", "train"], "sagan.pose.config:PoseRunConfig"),
    ],
)
def test_train_flags_come_from_the_schema(
    argv: list[str], config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every config field of each app is a flag whose help is the field's docstring."""
    import importlib

    from sagan.config import field_docs

    module, name = config.split(":")
    cls = getattr(importlib.import_module(module), name)
    text = " ".join(_help([*argv, "--help"], capsys).split())
    fields = _schema_fields(cls)
    assert len(fields) > 10
    for section, field, flag in fields:
        assert flag in text, flag
        owner = cls if not section else typing_hint(cls, section)
        doc = " ".join(field_docs(owner).get(field, "").replace("``", "").split())
        assert doc, f"{section}.{field} has no docstring"
        assert doc[:40] in text, (flag, doc[:40])
    for flag in ("--config", "--out", "--resume", "--runs", "--progress"):
        assert flag in text
    # every option has a help text
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[argv[0]]  # type: ignore[union-attr]
    if len(argv) == 2:
        sub = sub._subparsers._group_actions[0].choices[argv[1]]  # type: ignore[union-attr]
    for action in sub._actions:
        assert action.help, f"{action.option_strings} has no help"


def typing_hint(cls: type, section: str) -> type:
    import typing

    return typing.get_type_hints(cls)[section]


@pytest.mark.parametrize("command", ["sample", "attention", "export"])
def test_model_command_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = _help([command, "--help"], capsys)
    assert "SOURCE" in text and "--out" in text
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert all(action.help for action in sub._actions)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--lr-g", "-1"], "train.lr_g: -1.0 is not allowed; it must be > 0"),
        (["train", "--resolution", "48"], "model.resolution (arch dcgan): 48 is not allowed"),
        (["train", "--attention", "64"], "model.attention (dcgan 32 px): 64 is not allowed"),
        (["train", "--data", "nosuchset"], "unknown data set 'nosuchset'"),
        (["train", "--data", "./missing/dir"], "does not exist"),
        (["train", "--device", "cuda:7"], "cuda"),
        (["train", "--resume", "auto", "--runs", "/nonexistent-sagan"], "no run with a checkpoint"),
        (["sample", "/nonexistent-sagan", "--out", "x.png"], "does not exist"),
        (["export", "/nonexistent-sagan", "--out", "x"], "does not exist"),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sagan: error: ")
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "flag", "bounds"),
    [
        (["sample", "RUN", "--out", "x.png", "--nrow", "-1"], "--nrow", "1..1000"),
        (["sample", "RUN", "--out", "x.png", "--n", "100000000000"], "--n", "1..10000"),
        (["attention", "RUN", "--out", "x.png", "--scale", "0"], "--scale", "1..32"),
        (["attention", "RUN", "--out", "x.png", "--n", "0"], "--n", "1..64"),
        (["levels", "generate", "RUN", "--out", "x.png", "--ncol", "0"], "--ncol", "1..1000"),
        (["levels", "render", "a.txt", "--out", "x.png", "--tile-size", "5000"], "--tile-size",
         "2..256"),
        (["pose", "eval", "RUN", "--n", "0"], "--n", "1..10000000"),
    ],
)  # fmt: skip
def test_counts_out_of_range_are_refused_before_anything_runs(
    argv: list[str], flag: str, bounds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """They ended in tracebacks (a 0 or negative grid width, a figure scale of 0, a sample
    too large to allocate) or were silently ignored (pose eval --n 0)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert f"argument {flag}: must be an integer in {bounds}" in err


def test_pose_weights_and_eval_real_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in ("--gamma", "--lambda-g", "--lambda-k"):
        assert main(["pose", "train", flag, "nan", "--steps", "1"]) == 2
        assert f"train.{flag[2:].replace('-', '_')}: nan is not allowed" in capsys.readouterr().err
    assert main(["pose", "train", "--resolution", "30", "--steps", "1"]) == 2
    assert "train.resolution: 30 is not allowed; it must be a multiple of 4" in (
        capsys.readouterr().err
    )
    run = tmp_path / "run"
    assert main(["train", "--steps", "1", "--ch", "8", "--batch-size", "8", "--out", str(run)]) == 0
    capsys.readouterr()
    argv = ["eval", str(run), "--metrics", "fd_digits", "--n", "8", "--real", str(tmp_path / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "point --real at a folder" in err and "--data" not in err


def test_config_file_and_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  seed: 3\n  steps: 99\n")
    out = tmp_path / "run"
    assert main(["train", *TINY, "--config", str(cfg), "--out", str(out)]) == 0
    text = (out / "config.yaml").read_text()
    assert "seed: 3" in text and "steps: 2" in text  # YAML < flags


@pytest.mark.slow
def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The installed `sagan` command: train, resume, sample, attention, export, load."""
    exe = Path(sys.executable).with_name("sagan")
    run = lambda *a: subprocess.run(  # noqa: E731
        [str(exe), *a], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    r = run("train", *TINY)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "runs" / "00000-digits-dcgan32-cond"
    assert run_dir.is_dir()
    r = run("train", "--resume", "auto", "--steps", "4", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (run_dir / "ckpt-0000004.pt").exists()

    r = run("sample", str(run_dir), "--n", "10", "--labels", "3", "--out", "grid.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "grid.png").size == (8 * 34 + 2, 2 * 34 + 2)
    r = run("sample", str(run_dir), "--n", "3", "--out", "pngs")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [
        "00000.png",
        "00001.png",
        "00002.png",
    ]
    assert Image.open(tmp_path / "pngs" / "00000.png").mode == "L"

    r = run("attention", str(run_dir), "--out", "attn.png", "--n", "2", "--scale", "2")
    assert r.returncode == 0, r.stderr
    fig = np.asarray(Image.open(tmp_path / "attn.png"))
    assert fig.shape == (2 * 64, 4 * 64, 3)  # 2 images x (marked image + 3 query points)

    r = run("export", str(run_dir), "--out", "export")
    assert r.returncode == 0, r.stderr
    exported = sagan.load_generator(tmp_path / "export")
    from_run = sagan.load_generator(run_dir)
    a = exported.sample(4, labels=[0, 1, 2, 3], generator=torch.Generator().manual_seed(1))
    b = from_run.sample(4, labels=[0, 1, 2, 3], generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.shape == (4, 1, 32, 32) and a.min() >= 0 and a.max() <= 1

    r = run("sample", str(run_dir), "--labels", "12", "--out", "bad.png")
    assert r.returncode == 2 and r.stderr.startswith("sagan: error: labels must be in 0..9")
