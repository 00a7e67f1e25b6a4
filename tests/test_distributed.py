"""torchrun with 2 CPU processes (gloo): identical weights on every rank, a checkpoint that
loads in one process, and a resume on another number of processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import sagan
from conftest import TINY_TRAIN_ARGS
from sagan.images.train import train
from sagan.training import find_checkpoints, load_checkpoint

pytestmark = pytest.mark.slow

# Runs the CLI under torchrun and, when training ends, dumps each rank's G and D (test-only
# instrumentation around the training loop).
DRIVER = textwrap.dedent(
    """
    import os, sys
    import torch
    import sagan.images.train as t
    original = t._loop
    def loop(state, *args, **kwargs):
        out = original(state, *args, **kwargs)
        rank = os.environ.get("RANK", "0")
        torch.save({"G": state.G.state_dict(), "D": state.D.state_dict()},
                   os.path.join(sys.argv[1], f"rank{rank}.pt"))
        return out
    t._loop = loop
    from sagan.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)
TINY = [*TINY_TRAIN_ARGS, "--log-every", "1", "--save-every", "2", "--sample-every", "2"]


def _torchrun(tmp_path: Path, nproc: int, *args: str) -> subprocess.CompletedProcess[str]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", str(driver), str(tmp_path), "train", *args,
    ]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_two_processes_train_identical_weights(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = _torchrun(tmp_path, 2, *TINY, "--steps", "4", "--out", str(run))
    assert r.returncode == 0, r.stderr[-2000:]
    ranks = [torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in (0, 1)]
    for net in ("G", "D"):
        assert ranks[0][net].keys() == ranks[1][net].keys()
        for key, value in ranks[0][net].items():
            assert torch.equal(value, ranks[1][net][key]), f"{net}.{key} differs between ranks"
    # only rank 0 wrote: one stats line per logged step, checkpoints, samples
    assert (run / "stats.jsonl").read_text().count("\n") == 4
    assert [p.name for p in find_checkpoints(run)] == ["ckpt-0000002.pt", "ckpt-0000004.pt"]
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    assert ckpt["step"] == 4 and ckpt["batches_seen"] == 4
    # the checkpoint holds rank 0's weights and loads in a single process
    for key, value in ranks[0]["G"].items():
        assert torch.equal(ckpt["G"][key], value)
    assert sagan.load_generator(run).sample(2).shape == (2, 1, 32, 32)
    # and a 2-process run resumes in one process, up to a larger --steps
    train(resume=str(run), overrides={"train": {"steps": 6}}, progress=False)
    assert load_checkpoint(find_checkpoints(run)[-1], kind="images")["step"] == 6


def test_global_batch_must_divide_by_the_processes(tmp_path: Path) -> None:
    args = [a if a != "8" else "9" for a in TINY]
    r = _torchrun(tmp_path, 2, *args, "--steps", "2", "--out", str(tmp_path / "run"))
    assert r.returncode != 0
    assert "--batch-size 9 (the global batch) must divide by the 2 processes" in r.stderr


def test_sync_bn_on_cpu_is_a_clear_error(tmp_path: Path) -> None:
    r = _torchrun(tmp_path, 2, *TINY, "--steps", "2", "--sync-bn", "--out", str(tmp_path / "r"))
    assert r.returncode != 0
    assert "sagan: error: --sync-bn needs CUDA GPUs" in r.stderr
