"""Shared fixtures: a private data cache per test session, tiny configs, the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

TINY_TRAIN_ARGS = [
    "--arch",
    "dcgan",
    "--ch",
    "8",
    "--z-dim",
    "16",
    "--attention",
    "16",
    "--batch-size",
    "8",
    "--device",
    "cpu",
    "--no-progress",
]
"""`sagan train` flags for a model whose iteration takes milliseconds (tests add the rest)."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``browser`` marker."""
    config.addinivalue_line(
        "markers", "browser: renders a page in headless Chromium (skipped without it, not on CI)"
    )


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the user's ~/.cache/sagan out of the tests (digits are parsed once per session)."""
    os.environ["SAGAN_CACHE"] = str(tmp_path_factory.mktemp("sagan-cache"))


def shared_data(name: str) -> Path:
    """``../shared/data/<name>``: skip when absent, but fail under CI (CI=true) where it must be."""
    path = SHARED / name
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing; CI must run with ../shared beside the checkout")
        pytest.skip(f"{path} is absent (it holds real data beside the checkout, not in the repo)")
    return path


def small_level_model(**overrides: Any) -> Any:
    """A level ``ModelConfig`` of 9 x 13 levels whose networks take milliseconds (ch 8, z 8,
    embedding 4), without the cells in its condition unless ``overrides`` say so."""
    from sagan.levels.config import ModelConfig

    base: dict[str, Any] = {"ch": 8, "z_dim": 8, "embed": 4, "height": 9, "width": 13}
    return ModelConfig(**{**base, "condition_places": False, **overrides})


class ReplayG(nn.Module):
    """A level 'generator' whose samples are given levels ``(N, H, W)``, one after another."""

    def __init__(self, levels: np.ndarray) -> None:
        super().__init__()
        self.levels, self.i = levels, 0
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, *, hard: bool = False
    ) -> torch.Tensor:
        from sagan.levels.encoding import encode

        idx = [(self.i + k) % len(self.levels) for k in range(len(z))]
        self.i += len(z)
        return encode(self.levels[idx])


class SpyG(nn.Module):
    """A level 'generator' that records the conditions it is asked for and always makes one
    level ``(H, W)``."""

    def __init__(self, level: np.ndarray) -> None:
        super().__init__()
        self.level, self.asked = level, []
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, *, hard: bool = False
    ) -> torch.Tensor:
        from sagan.levels.encoding import encode

        assert c is not None
        self.asked.append(c.clone())
        return encode(np.repeat(self.level[None], len(z), axis=0))
