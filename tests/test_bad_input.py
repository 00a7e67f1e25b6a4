"""Property-based: nonsense settings and flags give a one-line error, never a traceback."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sagan.images.train as train_module
from sagan.cli import main
from sagan.config import add_config_flags
from sagan.errors import SaganError
from sagan.images.config import RunConfig

# every flag of `sagan train` made from the schema: (flag, (section, field))
FIELDS = sorted(
    (f.flag[2:].replace("-", "_"), (f.section, f.field))
    for f in add_config_flags(argparse.ArgumentParser(), RunConfig)
)

values = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-(10**30), max_value=10**30),  # beyond 64 bits too
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(min_value=-300, max_value=300), max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), values)
def test_any_config_value_is_accepted_or_named(
    field: tuple[str, tuple[str, str]], value: Any
) -> None:
    flag, (section, key) = field
    path = f"{section}.{key}" if section else key  # "preset" sits at the top
    try:
        cfg = RunConfig.from_dict({section: {key: value}} if section else {key: value})
    except SaganError as exc:
        text = str(exc)
        assert "\n" not in text
        # names the setting: its config path or its flag (a bare key such as "ch" would also
        # match "arch" or "batch")
        assert path in text or f"--{flag.replace('_', '-')}" in text, text
        return
    accepted = getattr(getattr(cfg, section), key) if section else getattr(cfg, key)
    if isinstance(accepted, float):
        assert math.isfinite(accepted)


@pytest.fixture()
def no_training(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    seen: list[RunConfig] = []

    def fake_train(cfg: RunConfig | None = None, **kwargs: object) -> str:
        if cfg is not None:
            seen.append(cfg)
        return "runs/fake"

    monkeypatch.setattr(train_module, "train", fake_train)
    return seen


argv_values = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="abcxyz0123456789.-,e", min_size=1, max_size=8),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flag=st.sampled_from([f for f, _ in FIELDS if f not in ("conditional", "g_spectral_norm")]),
    value=argv_values,
)
def test_any_flag_value_gives_a_run_or_a_one_line_error(
    flag: str, value: str, no_training: list[RunConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    option = f"--{flag.replace('_', '-')}={value}"
    trained = len(no_training)  # the fixture lives across hypothesis' examples
    try:
        code = main(["train", option])
    except SystemExit as exc:  # argparse: the value is not of the flag's type
        code = exc.code
    err = capsys.readouterr().err
    if code == 0:
        assert len(no_training) == trained + 1 and err == ""
    else:
        assert code == 2
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert "error: " in err


def test_writing_turns_write_failures_into_one_line_errors(tmp_path: Path) -> None:
    from PIL import Image

    from sagan.errors import writing

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with (
        pytest.raises(SaganError, match=r"cannot write .*x\.png: Not a directory"),
        writing(blocker / "x.png"),
    ):
        Image.new("RGB", (2, 2)).save(blocker / "x.png")
    with (
        pytest.raises(SaganError, match=r"unknown file extension.*name the image \.png"),
        writing(tmp_path / "x.abc"),
    ):
        Image.new("RGB", (2, 2)).save(tmp_path / "x.abc")
    with pytest.raises(ValueError, match="a bug, not a write"), writing(tmp_path / "y.png"):
        raise ValueError("a bug, not a write")
    assert not (tmp_path / "x.abc").exists()


def test_a_sagan_error_from_a_worker_process_prints_its_own_line() -> None:
    """torch re-raises a worker's exception with the worker's traceback as its message; the
    command line prints the original line, or failing that the message joined onto one."""
    wrapped = SaganError(
        "Caught SaganError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 1, in f\n    g()\n'
        "sagan.errors.SaganError: a.jpg: could not decode it; replace it\n"
    )
    assert wrapped.line == "a.jpg: could not decode it; replace it"
    assert SaganError("no such file; pass --images").line == "no such file; pass --images"
    odd = SaganError("first\n  second\n")
    assert odd.line == "first second"
