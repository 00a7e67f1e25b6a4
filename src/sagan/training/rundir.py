"""Auto-numbered run folders: ``runs/00000-digits-resnet32``, ``runs/00001-...``."""

from __future__ import annotations

import re
from pathlib import Path

from sagan.errors import SaganError
from sagan.training.checkpoint import find_checkpoints

__all__ = ["find_latest_run", "make_run_dir"]

_RUN = re.compile(r"^(\d{5,})-")


def _numbered(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    runs = []
    for p in root.iterdir():
        m = _RUN.match(p.name)
        if m and p.is_dir():
            runs.append((int(m.group(1)), p))
    return sorted(runs)


def make_run_dir(root: Path, desc: str) -> Path:
    """Create ``root/NNNNN-desc`` with the next free number and return it."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaganError(
            f"cannot create run root {root}: {exc.strerror or exc}; give --runs a writable folder"
        ) from None
    runs = _numbered(root)
    number = runs[-1][0] + 1 if runs else 0
    while True:
        path = root / f"{number:05d}-{desc}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1
        except OSError as exc:
            raise SaganError(
                f"cannot create run folder {path}: {exc.strerror or exc}; give --runs a writable "
                "folder"
            ) from None


def find_latest_run(root: Path) -> Path:
    """The highest-numbered run folder under ``root`` that holds a checkpoint."""
    for _, path in reversed(_numbered(Path(root))):
        if find_checkpoints(path):
            return path
    raise SaganError(f"--resume auto: no run with a checkpoint under {root}; start a new run")
