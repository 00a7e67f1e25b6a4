"""The benchmarks that keep their runs in an ``--out`` folder (ablation.py, small_folder.py,
levels_experiment.py, pose_ablation.py) reuse a run only when it was trained with the settings
asked for, and continue a recorded run to a larger ``--steps`` instead of reporting it under a
length it did not train."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sagan.config import load_yaml, to_dict, write_yaml
from sagan.images.config import RunConfig
from sagan.training.checkpoint import checkpoint_name

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def pool(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _pool

    return _pool


def _cfg(**train: object) -> RunConfig:
    return RunConfig.from_dict({"preset": "quick", "train": {"steps": 100, **train}})


def _run_folder(tmp_path: Path, cfg: RunConfig, step: int) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    write_yaml(run / "config.yaml", to_dict(cfg))
    (run / checkpoint_name(step)).write_bytes(b"")
    return run


def test_same_settings_and_a_longer_run_pass(pool, tmp_path: Path) -> None:
    run = _run_folder(tmp_path, _cfg(), 100)
    pool.check_same_run(run, _cfg())
    longer = {"steps": 300, "keep_checkpoints": 3, "save_every": 50, "sample_every": 300}
    pool.check_same_run(run, _cfg(**longer, device="cuda"))
    pool.check_same_run(tmp_path / "never-made", _cfg(lr_g=1.0))


def test_other_settings_are_refused_by_name(pool, tmp_path: Path) -> None:
    run = _run_folder(tmp_path, _cfg(), 100)
    with pytest.raises(SystemExit, match=r"train\.lr_g 0\.0004 there, 0\.0002 asked.*fresh --out"):
        pool.check_same_run(run, _cfg(lr_g=2e-4))
    other_model = RunConfig.from_dict(
        {"preset": "quick", "model": {"attention": [8]}, "train": {"steps": 100}}
    )
    with pytest.raises(SystemExit, match=r"model\.attention"):
        pool.check_same_run(run, other_model)


def test_a_run_without_a_checkpoint_is_not_refused(pool, tmp_path: Path) -> None:
    run = _run_folder(tmp_path, _cfg(), 100)
    (run / checkpoint_name(100)).unlink()  # killed before its first checkpoint: moved aside
    pool.check_same_run(run, _cfg(lr_g=2e-4))
    with pytest.raises(SystemExit, match=r"train\.lr_g"):  # but its record would stand for it
        pool.check_same_run(run, _cfg(lr_g=2e-4), recorded=True)


def test_a_run_past_the_steps_asked_is_refused(pool, tmp_path: Path) -> None:
    run = _run_folder(tmp_path, _cfg(), 100)
    with pytest.raises(SystemExit, match="trained 100 steps, more than the 50 asked"):
        pool.check_same_run(run, _cfg(steps=50))
    pool.check_same_run(run, _cfg(steps=50), recorded=True)  # its record of 50 is kept
    with pytest.raises(SystemExit, match=r"train\.lr_g"):  # but not under other settings
        pool.check_same_run(run, _cfg(steps=50, lr_g=1e-3), recorded=True)


def test_records_stand_only_for_their_length(pool, tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    assert pool.read_records(results, 10) == []
    lines = [{"seed": 0, "steps": 10}, {"seed": 0, "steps": 20}, {"seed": 1, "steps": 10}]
    results.write_text("".join(json.dumps(r) + "\n" for r in lines) + "\n")
    assert pool.read_records(results, 10) == [lines[0], lines[2]]
    assert pool.read_records(results, 30) == []


def test_train_or_resume_refuses_before_training(pool, tmp_path: Path) -> None:
    run = _run_folder(tmp_path, _cfg(), 100)
    called = []
    with pytest.raises(SystemExit, match="other settings"):
        pool.train_or_resume(lambda *a, **k: called.append(1), _cfg(lr_d=1e-3, steps=200), run)
    assert not called


def _ablation(monkeypatch: pytest.MonkeyPatch, out: Path, *flags: str) -> list[dict]:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import ablation

    argv = ["ablation.py", "--out", str(out), "--preset", "quick", "--precision", "32"]
    argv += ["--data", "longrange", "--variants", "no-attention", "--seeds", "1"]
    argv += ["--final-n", "64", "--batch-size", "4", "--ch", "8", *flags]
    monkeypatch.setattr(sys, "argv", argv)
    ablation.main()
    lines = (out / "results.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def test_ablation_continues_to_more_steps_and_refuses_other_rates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "abl"
    first = _ablation(monkeypatch, out, "--steps", "2")
    assert [(r["steps"], r["scored_step"]) for r in first] == [(2, 2)]
    again = _ablation(monkeypatch, out, "--steps", "2")  # recorded: nothing trained
    assert len(again) == 1
    longer = _ablation(monkeypatch, out, "--steps", "3")  # continued, a new record
    assert [(r["steps"], r["scored_step"]) for r in longer] == [(2, 2), (3, 3)]
    config = (out / "longrange-no-attention-s0" / "config.yaml").read_text()
    for steps in ("3", "4"):  # recorded, and to be continued: refused before anything trains
        with pytest.raises(SystemExit, match=r"train\.lr_g 0\.0004 there, 0\.001 asked"):
            _ablation(monkeypatch, out, "--steps", steps, "--lr-g", "1e-3")
    assert (out / "longrange-no-attention-s0" / "config.yaml").read_text() == config
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    shorter = _ablation(monkeypatch, out, "--steps", "2")  # recorded at 2: reported, not refused
    assert len(shorter) == 2


def test_bad_input_in_a_run_ends_the_benchmark_with_one_line(pool, tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SystemExit, match=r"^error: cannot read config file .*missing\.yaml"):
        pool.run_all(load_yaml, [(missing,)], 1, results, str)
    assert not results.exists()


def _script(monkeypatch: pytest.MonkeyPatch, name: str, out: Path, *flags: str) -> list[dict]:
    """Run benchmarks/NAME.py's main with FLAGS; the records in OUT/results.jsonl after it."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = __import__(name)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--out", str(out), *flags])
    module.main()
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("name", "flags", "other", "run"),
    [
        (
            "levels_experiment",
            ["--seeds", "1", "--n", "20", "--variants", "dcgan", "--bootstrap", "no"],
            ["--ch", "16"],
            "dcgan-noboot-s0",
        ),
        (
            "pose_ablation",
            ["--seeds", "1", "--n", "4", "--variants", "hourglass", "--eval-every", "2"],
            ["--eval-every", "4"],
            "hourglass-s0",
        ),
    ],
)
def test_level_and_pose_benchmarks_continue_and_refuse(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    flags: list[str],
    other: list[str],
    run: str,
) -> None:
    out = tmp_path / name
    first = _script(monkeypatch, name, out, *flags, "--steps", "2")
    assert [r["steps"] for r in first] == [2]
    assert len(_script(monkeypatch, name, out, *flags, "--steps", "2")) == 1  # nothing trained
    longer = _script(monkeypatch, name, out, *flags, "--steps", "4")  # continued, a new record
    assert [r["steps"] for r in longer] == [2, 4]
    stats = [json.loads(x) for x in (out / run / "stats.jsonl").read_text().splitlines()]
    assert max(r.get("step", 0) for r in stats) == 4
    config = (out / run / "config.yaml").read_text()
    with pytest.raises(SystemExit, match="other settings"):
        _script(monkeypatch, name, out, *flags, *other, "--steps", "6")
    assert (out / run / "config.yaml").read_text() == config
    assert len(_script(monkeypatch, name, out, *flags, "--steps", "2")) == 2  # recorded at 2
