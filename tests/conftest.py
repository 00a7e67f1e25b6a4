"""Shared fixtures: a private data cache per test session, tiny configs, the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
