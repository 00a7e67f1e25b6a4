"""The one training engine under all three applications, tested the same way for each:
bit-exact resume, kill -9 during training and during a save, SIGTERM, a NaN streak that rolls
back, an existing --out refused, 2-process torchrun, bf16 end to end; and the device-side
non-finite guard on its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import TINY_TRAIN_ARGS
from sagan.cli import main
from sagan.training import find_checkpoints, load_checkpoint
from sagan.training.guard import GuardedOptimizers
from sagan.training.precision import Precision

APPS = {
    "images": (["train"], TINY_TRAIN_ARGS),
    "levels": (
        ["levels", "train"],
        ["--batch-size", "4", "--ch", "8", "--z-dim", "8", "--embed", "4", "--device", "cpu",
         "--bootstrap-every", "2", "--bootstrap-samples", "4", "--eval-every", "0",
         "--no-progress"],
    ),
    "pose": (
        ["pose", "train"],
        ["--stacks", "2", "--features", "16", "--depth", "2", "--d-features", "8",
         "--d-depth", "2", "--resolution", "32", "--batch-size", "2", "--train-size", "20",
         "--device", "cpu", "--no-progress"],
    ),
}  # fmt: skip
"""app -> (command, flags of a model whose iteration takes milliseconds)."""


def _argv(app: str, *extra: str) -> list[str]:
    command, flags = APPS[app]
    return [*command, *flags, *extra]


def _newest(run: Path, app: str) -> dict:
    return load_checkpoint(find_checkpoints(run)[-1], kind=app)


def _tensors(ckpt: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's networks, EMA copies and optimiser states, by path."""
    out: dict[str, torch.Tensor] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)

    for key, value in ckpt.items():
        if key in ("rng", "config", "version", "noise_rng", "data_rng", "bootstrap_rng"):
            continue
        walk(key, value)
    return out


app_names = pytest.mark.parametrize("app", list(APPS))


@app_names
def test_resume_is_bit_identical_to_straight_training(app: str, tmp_path: Path) -> None:
    a, b = tmp_path / "straight", tmp_path / "halves"
    assert main(_argv(app, "--steps", "4", "--save-every", "2", "--out", str(a))) == 0
    assert main(_argv(app, "--steps", "2", "--save-every", "2", "--out", str(b))) == 0
    assert main([*APPS[app][0], "--resume", str(b), "--steps", "4", "--no-progress"]) == 0
    straight, resumed = _tensors(_newest(a, app)), _tensors(_newest(b, app))
    assert _newest(b, app)["step"] == 4
    assert straight.keys() == resumed.keys() and len(straight) > 10
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    # and training moved the weights: the comparison is not between two untouched models
    first = _tensors(load_checkpoint(b / "ckpt-0000002.pt", kind=app))
    assert any(not torch.equal(first[k], resumed[k]) for k in first if k.startswith("G/"))


@app_names
def test_an_existing_out_is_refused_and_left_untouched(
    app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(_argv(app, "--steps", "2", "--out", str(run))) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(_argv(app, "--steps", "3", "--seed", "5", "--out", str(run))) == 2
    err = capsys.readouterr().err
    assert "already holds checkpoints; continue it with --resume" in err
    assert len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # a non-empty folder without checkpoints is refused too
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(_argv(app, "--steps", "1", "--out", str(other))) == 2
    assert "is not empty and holds no run; choose another --out" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    # a file is not resumable: the message says to give a folder
    assert main(_argv(app, "--steps", "1", "--out", str(other / "notes.txt"))) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


def test_a_rejected_setting_leaves_no_run_folder_and_an_unwritable_one_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagan.training import engine

    run = tmp_path / "run"
    typo = ["--eval-every", "1", "--eval-n", "8", "--eval-metrics", "fd_digit"]
    assert main(_argv("images", "--steps", "2", *typo, "--out", str(run))) == 2
    assert "fd_digit" in capsys.readouterr().err
    assert not run.exists()  # so the corrected command can use the same --out

    def read_only(path: Path, data: object) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(engine, "write_yaml", read_only)
    assert main(_argv("images", "--steps", "1", "--out", str(run))) == 2
    err = capsys.readouterr().err
    assert "Operation not permitted; choose a writable --out" in err and err.count("\n") == 1


def test_networks_too_large_for_memory_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagan.images.train import ImageTask

    def too_large(*args: object, **kwargs: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 5e12")

    monkeypatch.setattr(ImageTask, "__init__", too_large)
    run = tmp_path / "run"
    assert main(_argv("images", "--steps", "1", "--out", str(run))) == 2
    err = capsys.readouterr().err
    assert "not enough CPU memory to build the networks" in err and err.count("\n") == 1
    assert not run.exists()


@app_names
def test_config_is_resolved_and_written_before_step_zero(
    app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagan.training import engine

    def boom(*args: object) -> None:
        raise RuntimeError("stop before the first step")

    monkeypatch.setattr(engine.GuardedOptimizers, "update", boom)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="first step"):
        main(_argv(app, "--steps", "2", "--out", str(run)))
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["train"]["steps"] == 2 and cfg["train"]["device"] == "cpu"
    assert not find_checkpoints(run)


def _poison(monkeypatch: pytest.MonkeyPatch, bad: set[int]) -> None:
    """Iterations (counted from 1, rollbacks included) in ``bad`` get NaN losses."""
    count = {"iteration": 1}
    update, end = GuardedOptimizers.update, GuardedOptimizers.end_iteration

    def poisoned(self: GuardedOptimizers, name: str, loss: torch.Tensor) -> None:
        update(self, name, loss * float("nan") if count["iteration"] in bad else loss)

    def counted(self: GuardedOptimizers) -> None:
        count["iteration"] += 1
        end(self)

    monkeypatch.setattr(GuardedOptimizers, "update", poisoned)
    monkeypatch.setattr(GuardedOptimizers, "end_iteration", counted)


@app_names
def test_a_nan_streak_is_skipped_then_rolled_back(
    app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _poison(monkeypatch, {3, 4})
    run = tmp_path / "run"
    flags = ["--steps", "6", "--save-every", "2", "--max-bad-steps", "2", "--log-every", "1"]
    assert main(_argv(app, *flags, "--out", str(run))) == 0
    err = capsys.readouterr().err
    assert "step 4: inside a non-finite streak; not saving" in err
    assert "2 non-finite iterations in a row; rolled back to ckpt-0000002.pt" in err
    final = _newest(run, app)
    assert final["step"] == 6 and final["skipped"] == 4  # two updates in each bad iteration
    assert all(torch.isfinite(v.float()).all() for v in _tensors(final).values())
    records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["skipped_updates"] for r in records][:4] == [0, 0, 2, 4]


def test_a_streak_before_any_checkpoint_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _poison(monkeypatch, {1, 2})
    flags = ["--steps", "6", "--save-every", "5", "--max-bad-steps", "2", "--log-every", "1"]
    assert main(_argv("levels", *flags, "--out", str(tmp_path / "r"))) == 2
    assert "diverged at step 2 (2 non-finite iterations in a row) before any checkpoint" in (
        capsys.readouterr().err
    )


@app_names
def test_bf16_end_to_end_keeps_float32_weights(app: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with _conv_output_dtypes() as seen:
        assert main(_argv(app, "--steps", "2", "--precision", "bf16", "--out", str(run))) == 0
    assert torch.bfloat16 in seen  # the convolutions did run in bfloat16
    ckpt = _newest(run, app)
    assert ckpt["step"] == 2 and ckpt["skipped"] == 0
    weights = [v for k, v in _tensors(ckpt).items() if k.startswith(("G/", "D/"))]
    assert weights and all(v.dtype in (torch.float32, torch.int64) for v in weights)
    assert all(torch.isfinite(v.float()).all() for v in weights)
    # and the float32 run continues it, in float32
    with _conv_output_dtypes() as seen:
        argv = [*APPS[app][0], "--resume", str(run), "--steps", "3", "--precision", "32"]
        assert main(argv) == 0
    assert seen == {torch.float32}
    assert _newest(run, app)["step"] == 3


@contextlib.contextmanager
def _conv_output_dtypes() -> Iterator[set[torch.dtype]]:
    """The dtypes of every convolution's output while the block runs (a global forward hook)."""
    seen: set[torch.dtype] = set()

    def hook(module: torch.nn.Module, args: object, output: object) -> None:
        if isinstance(module, torch.nn.modules.conv._ConvNd) and torch.is_tensor(output):
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@app_names
def test_eval_every_keeps_best_and_resume_auto_continues(
    app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    extra = {"images": ["--eval-n", "16", "--eval-metrics", "fd_random"],
             "levels": ["--eval-n", "20"], "pose": ["--eval-n", "4"]}[app]  # fmt: skip
    flags = ["--steps", "2", "--eval-every", "1", *extra, "--keep-checkpoints", "1"]
    assert main(_argv(app, *flags, "--runs", str(runs))) == 0
    run = next(runs.iterdir())
    best = load_checkpoint(run / "best.pt", kind=app)["best"]
    records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    scored = [(r["step"], r[f"metric/{best['metric']}"]) for r in records if "metric/fd_random" in r
              or f"metric/{best['metric']}" in r]  # fmt: skip
    assert [step for step, _ in scored] == [1, 2]
    # best.pt holds the first step with the best primary value: FD lower, PCKh and the
    # levels' score higher
    sign = 1.0 if best["metric"].startswith("fd") else -1.0
    want = min(scored, key=lambda sv: (sign * sv[1], sv[0]))
    assert (best["step"], best["value"]) == pytest.approx(want), (scored, best)
    assert [p.name for p in find_checkpoints(run)] == ["ckpt-0000002.pt"]  # keep 1
    assert main([*APPS[app][0], "--resume", "auto", "--runs", str(runs), "--steps", "3"]) == 0
    assert _newest(run, app)["step"] == 3


# --- real processes: kill -9, signals, torchrun --------------------------------------------

# Runs the CLI in a child whose os.fsync (used only by checkpoint saves) announces itself
# through a marker file and then sleeps: the parent kills it while a save is half done.
SLOW_SAVE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    marker, slow_from = Path(sys.argv[1]), int(sys.argv[2])
    real_fsync, calls = os.fsync, [0]
    def fsync(fd):
        calls[0] += 1
        if calls[0] >= slow_from:
            marker.write_text("saving")
            time.sleep(60)
        real_fsync(fd)
    os.fsync = fsync
    from sagan.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from sagan.cli import main; sys.exit(main())", *argv]


@pytest.mark.slow
@app_names
def test_kill_9_during_training_loses_at_most_save_every(app: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = _argv(app, "--steps", "100000", "--save-every", "3", "--log-every", "1")
    proc = subprocess.Popen(
        _cli(*argv, "--out", str(run)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: _lines(run / "stats.jsonl") >= 8, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _lines(run / "stats.jsonl")
    last = _newest(run, app)["step"]
    assert done - last <= 3 + 2  # at most save_every steps lost (+ lines being written)
    assert main([*APPS[app][0], "--resume", str(run), "--steps", str(last + 2)]) == 0
    assert _newest(run, app)["step"] == last + 2


@pytest.mark.slow
@app_names
def test_kill_9_in_the_middle_of_a_save(app: str, tmp_path: Path) -> None:
    run, marker = tmp_path / "run", tmp_path / "saving"
    # each save calls os.fsync twice (the file, then its folder): the 3rd call is the second
    # checkpoint's file, written but not yet renamed into place
    argv = _argv(app, "--steps", "100", "--save-every", "2", "--out", str(run))
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, str(marker), "3", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(marker.exists, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    names = sorted(p.name for p in run.iterdir())
    assert any(n.startswith(".ckpt-") and n.endswith(".tmp") for n in names), names  # cut off
    assert [p.name for p in find_checkpoints(run)] == ["ckpt-0000002.pt"]  # complete
    assert main([*APPS[app][0], "--resume", str(run), "--steps", "5"]) == 0
    assert _newest(run, app)["step"] == 5
    assert not list(run.glob(".*.tmp"))  # the partial file was removed


@pytest.mark.slow
@app_names
def test_sigterm_writes_a_checkpoint_and_prints_the_continue_line(app: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = _argv(app, "--steps", "100000", "--save-every", "1000", "--log-every", "1")
    proc = subprocess.Popen(
        _cli(*argv, "--out", str(run)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: _lines(run / "stats.jsonl") >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err  # not finished: a script stops here
    command = " ".join(APPS[app][0])
    assert "stopped by signal" in out and f"continue with: sagan {command} --resume {run}" in out
    step = _newest(run, app)["step"]
    assert step >= 3 and not list(run.glob(".*.tmp"))


@pytest.mark.slow
def test_a_second_sigterm_still_saves(tmp_path: Path) -> None:
    """``timeout`` signals the process group and the ablation's parent signals its workers
    again: the run must still save. (A second SIGTERM after the save, once the loop has given
    the handlers back, may end the process by the signal itself; the checkpoint is written.)"""
    run = tmp_path / "run"
    argv = _argv("images", "--steps", "100000", "--save-every", "1000", "--log-every", "1")
    proc = subprocess.Popen(
        _cli(*argv, "--out", str(run)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: _lines(run / "stats.jsonl") >= 3, proc)
    for _ in range(5):  # apart, so that Python does not merge them into one
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.005)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err, err
    assert _newest(run, "images")["step"] >= 3 and not list(run.glob(".*.tmp"))


def test_best_checkpoint_rule_in_both_directions() -> None:
    from sagan.training.engine import _improves

    fd = {"metric": "fd_random", "value": 5.0, "step": 3}
    assert _improves(fd, "fd_random", 4.0, False) and not _improves(fd, "fd_random", 6.0, False)
    assert not _improves(fd, "fd_random", 5.0, False)  # a tie keeps the earlier step
    pck = {"metric": "pckh", "value": 50.0, "step": 3}
    assert _improves(pck, "pckh", 60.0, True) and not _improves(pck, "pckh", 40.0, True)
    assert not _improves(pck, "pckh", 50.0, True)
    assert _improves(None, "pckh", 0.0, True) and _improves(fd, "pckh", 0.0, True)


def test_only_a_second_ctrl_c_stops_at_once() -> None:
    from sagan.training.engine import _StopRequest

    stop = _StopRequest()
    stop._handle(signal.SIGTERM, None)
    stop._handle(signal.SIGTERM, None)  # a repeated SIGTERM: still a clean stop
    assert stop.signal == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGINT, None)
    first_ctrl_c = _StopRequest()
    first_ctrl_c._handle(signal.SIGINT, None)
    assert first_ctrl_c.signal == signal.SIGINT


# Runs the CLI under torchrun and, when training ends, dumps each rank's networks (test-only
# instrumentation around the engine's loop).
DRIVER = textwrap.dedent(
    """
    import os, sys
    import torch
    from sagan.training import engine
    original = engine._Loop.run
    def run(self):
        out = original(self)
        rank = os.environ.get("RANK", "0")
        torch.save({k: n.state_dict() for k, n in self.task.nets.items()},
                   os.path.join(sys.argv[1], f"rank{rank}.pt"))
        return out
    engine._Loop.run = run
    from sagan.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def _torchrun(tmp_path: Path, nproc: int, *args: str) -> subprocess.CompletedProcess[str]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", str(driver), str(tmp_path), *args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
@app_names
def test_two_processes_train_identical_weights_and_resume_in_one(app: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = _argv(app, "--steps", "4", "--save-every", "2", "--log-every", "1", "--out", str(run))
    r = _torchrun(tmp_path, 2, *argv)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and "G" in ranks[0]
    for net, state in ranks[0].items():
        for key, value in state.items():
            assert torch.equal(value, ranks[1][net][key]), f"{net}.{key} differs between ranks"
    # only rank 0 wrote: one stats line per logged step, the checkpoints
    assert _lines(run / "stats.jsonl") >= 4
    assert [p.name for p in find_checkpoints(run)] == ["ckpt-0000002.pt", "ckpt-0000004.pt"]
    ckpt = _newest(run, app)
    for key, value in ranks[0]["G"].items():
        assert torch.equal(ckpt["G"][key], value)
    # a 2-process run resumes in one process
    assert main([*APPS[app][0], "--resume", str(run), "--steps", "6"]) == 0
    assert _newest(run, app)["step"] == 6


@pytest.mark.slow
def test_global_batch_must_divide_by_the_processes(tmp_path: Path) -> None:
    argv = _argv("levels", "--steps", "2", "--batch-size", "5", "--out", str(tmp_path / "r"))
    r = _torchrun(tmp_path, 2, *argv)
    assert r.returncode != 0
    assert "--batch-size 5 (the global batch) must divide by the 2 processes" in r.stderr


# --- the guard on its own ------------------------------------------------------------------


def _guarded(fused: bool, float16: bool = False) -> tuple[GuardedOptimizers, torch.nn.Linear]:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = (
        torch.optim.Adam(net.parameters(), lr=0.1, fused=True)
        if fused
        else torch.optim.RMSprop(net.parameters(), lr=0.1)
    )
    precision = Precision("16", "cpu", torch.float16) if float16 else Precision("32", "cpu", None)
    return GuardedOptimizers({"g": opt}, precision, torch.device("cpu")), net


@pytest.mark.parametrize("fused", [True, False])
def test_guard_skips_a_nan_update_and_counts_on_the_device(fused: bool) -> None:
    guard, net = _guarded(fused)
    x = torch.randn(4, 3)
    guard.update("g", net(x).square().mean())  # a good update: moves the weights
    guard.end_iteration()
    weights = [p.detach().clone() for p in net.parameters()]
    state = {k: v.clone() for k, v in guard.optimizers["g"].state[net.weight].items()}
    guard.update("g", net(x).square().mean() * float("nan"))
    guard.end_iteration()
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))
    after = guard.optimizers["g"].state[net.weight]
    assert all(torch.equal(state[k], after[k]) for k in state)  # moments and step untouched
    assert guard._skipped.device.type == "cpu" and guard._skipped.dtype == torch.int64
    counts = guard.read()
    assert (counts.skipped, counts.streak, counts.worst_streak) == (1, 1, 1)
    guard.update("g", net(x).square().mean())
    guard.end_iteration()
    assert not all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))
    counts = guard.read()
    assert (counts.skipped, counts.streak, counts.worst_streak) == (1, 0, 1)
    assert guard.read().worst_streak == 0  # a new window starts at each read


@pytest.mark.parametrize("fused", [True, False])
def test_float16_scaler_skips_are_counted_apart_from_the_guards(fused: bool) -> None:
    """An update whose loss is finite but whose scaled gradient overflows is skipped by the
    gradient scaler (float16's path, run on the CPU): counted in ``scaler_skipped``, not in
    ``skipped`` or the streak that triggers rollbacks."""
    guard, net = _guarded(fused, float16=True)
    assert guard.scaling
    x = torch.randn(4, 3)
    weights = [p.detach().clone() for p in net.parameters()]
    loss = (net.weight * 1e34).sum()  # finite (~1e34); its gradient x 2**16 overflows float32
    assert torch.isfinite(loss)
    guard.update("g", loss)
    guard.end_iteration()
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))
    assert guard.scalers["g"].get_scale() == 2.0**15  # halved at the skip
    counts = guard.read()
    assert (counts.skipped, counts.streak, counts.scaler_skipped) == (0, 0, 1)
    guard.update("g", net(x).square().mean())  # an ordinary update goes through
    guard.end_iteration()
    assert not all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))
    guard.restore_skipped(5, 7)  # a resumed run's counts go on from its checkpoint
    assert (guard.read().skipped, guard.read().scaler_skipped) == (5, 8)
    assert not _guarded(fused)[0].scaling  # float32: no scaler, nothing to count


def test_guard_with_a_fused_optimiser_never_reads_the_verdict_on_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The per-step path of fused optimisers takes no host decision: Tensor.__bool__ (what a
    ``bool(isfinite(...))`` check calls) is never reached during updates."""
    guard, net = _guarded(fused=True)
    x = torch.randn(4, 3)

    def no_bool(self: torch.Tensor) -> bool:
        raise AssertionError("host sync: a tensor was read as a bool during an update")

    monkeypatch.setattr(torch.Tensor, "__bool__", no_bool)
    for loss_scale in (1.0, float("nan"), 1.0):
        guard.update("g", net(x).square().mean() * loss_scale)
        guard.end_iteration()
    monkeypatch.undo()
    assert guard.read().skipped == 1


@app_names
def test_compile_reaches_every_trained_network_and_leaves_state_dicts_plain(app: str) -> None:
    """--compile wraps the trained networks' forward with torch.compile (compiled lazily, on
    the first call: not paid here) and keeps the EMA copy eager and the state dicts plain."""
    from sagan.cli import build_parser
    from sagan.config import flag_overrides
    from sagan.training.engine import build_task

    parser_args = build_parser().parse_args(_argv(app, "--compile"))
    overrides = flag_overrides(parser_args, parser_args.flags)
    task_cls, cfg_cls = {
        "images": ("sagan.images.train:ImageTask", "sagan.images.config:RunConfig"),
        "levels": ("sagan.levels.train:LevelTask", "sagan.levels.config:LevelRunConfig"),
        "pose": ("sagan.pose.train:PoseTask", "sagan.pose.config:PoseRunConfig"),
    }[app]
    import importlib

    def load(path: str):  # type: ignore[no-untyped-def]
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)

    task_class = load(task_cls)
    cfg, data = task_class.prepare(load(cfg_cls).from_dict(overrides), resuming=False)
    assert cfg.train.compile
    task = build_task(task_class, cfg, data, torch.device("cpu"))
    assert task.nets
    for net in task.nets.values():  # torch.compile's wrapper around the bound forward
        assert getattr(net.forward, "_torchdynamo_orig_callable", None) is not None
    for ema in task.emas.values():
        assert "forward" not in vars(ema.shadow)  # the EMA copy stays eager
    for net in task.nets.values():
        assert not any("_orig_mod" in k for k in net.state_dict())
