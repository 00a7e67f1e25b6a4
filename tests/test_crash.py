"""Crash safety with real processes: kill -9 during training and in the middle of a save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import TINY_TRAIN_ARGS
from sagan.images.train import train
from sagan.training import find_checkpoints, load_checkpoint

pytestmark = pytest.mark.slow

TINY = [*TINY_TRAIN_ARGS, "--log-every", "1", "--sample-every", "1000"]

# Runs `sagan train` in a child whose os.fsync (used only by checkpoint saves) announces itself
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


def _resume_and_check(run: Path, steps: int) -> None:
    train(resume=str(run), overrides={"train": {"steps": steps}}, progress=False)
    assert load_checkpoint(find_checkpoints(run)[-1], kind="images")["step"] == steps
    assert not list(run.glob(".*.tmp"))


def test_kill_9_during_training_loses_at_most_save_every(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [Path(sys.executable).with_name("sagan"), "train", *TINY, "--steps", "100000",
         "--save-every", "3", "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stats = run / "stats.jsonl"
    _wait_for(lambda: stats.exists() and stats.read_text().count("\n") >= 8, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = stats.read_text().count("\n")
    last = load_checkpoint(find_checkpoints(run)[-1], kind="images")["step"]
    assert done - last <= 3 + 1  # at most save_every steps lost (+1: a line being written)
    _resume_and_check(run, last + 2)


def test_kill_9_in_the_middle_of_a_save(tmp_path: Path) -> None:
    run, marker = tmp_path / "run", tmp_path / "saving"
    # each save calls os.fsync twice (the file, then its folder): the 3rd call is the second
    # checkpoint's file, written but not yet renamed into place
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, str(marker), "3", "train", *TINY, "--steps", "100",
         "--save-every", "2", "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(marker.exists, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    names = sorted(p.name for p in run.iterdir())
    assert any(n.startswith(".ckpt-") and n.endswith(".tmp") for n in names), names  # cut off
    good = find_checkpoints(run)
    assert [p.name for p in good] == ["ckpt-0000002.pt"]  # the earlier one, complete
    load_checkpoint(good[0], kind="images")
    _resume_and_check(run, 5)
