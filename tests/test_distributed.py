"""torchrun with 2 CPU processes (gloo), image-specific: --sync-bn's error. Identical weights
on every rank and resumes on another number of processes are tested for every application in
test_engine.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_TRAIN_ARGS

pytestmark = pytest.mark.slow

DRIVER = "import sys\nfrom sagan.cli import main\nsys.exit(main(sys.argv[2:]))\n"
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


def test_sync_bn_on_cpu_is_a_clear_error(tmp_path: Path) -> None:
    r = _torchrun(tmp_path, 2, *TINY, "--steps", "2", "--sync-bn", "--out", str(tmp_path / "r"))
    assert r.returncode != 0
    assert "sagan: error: --sync-bn needs CUDA GPUs" in r.stderr
