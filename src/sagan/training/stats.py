"""Training statistics: ``stats.jsonl`` always, TensorBoard when its package is installed."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StatsWriter", "tensorboard_available"]


def tensorboard_available() -> bool:
    """True when the optional ``tensorboard`` package (``torch-sagan[tensorboard]``) is here."""
    return importlib.util.find_spec("tensorboard") is not None


class StatsWriter:
    """Appends one JSON object per logged step to ``run_dir/stats.jsonl``; mirrors to TensorBoard.

    Args:
        run_dir: the run folder.
        tensorboard: write TensorBoard event files under ``run_dir/tensorboard`` (needs the
            extra); None = when available.
    """

    def __init__(self, run_dir: Path, *, tensorboard: bool | None = None) -> None:
        self.path = Path(run_dir) / "stats.jsonl"
        self._tb = None
        if tensorboard is None:
            tensorboard = tensorboard_available()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log ``values`` at ``step``; non-finite values are written as null."""
        record: dict[str, Any] = {"step": step}
        for k, v in values.items():
            record[k] = float(v) if math.isfinite(v) else None
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)

    def image(self, step: int, tag: str, image: np.ndarray) -> None:
        """Log an (H, W, C) uint8 image to TensorBoard (no-op without it)."""
        if self._tb is not None:
            self._tb.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        """Flush and close TensorBoard files."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
