"""The ``train`` sub-command of every application, built from its config schema.

:func:`add_train_parser` adds one flag per config field (help from the field's docstring, see
:func:`sagan.config.add_config_flags`) and the run-folder flags; :func:`run_train` turns the
parsed flags into a new run's config (defaults < ``--config`` YAML < flags) or a resume's
overrides, and calls the engine. Parsers import nothing heavy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagan.config import ConfigFlag, add_config_flags, flag_overrides

__all__ = ["add_train_parser", "run_train"]


def add_train_parser(
    commands: Any,
    name: str,
    *,
    config_class: type,
    help: str,
    description: str,
    runs_default: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """Add sub-command ``name`` with the flags of ``config_class`` and the run flags; the
    parsed namespace carries ``handler`` and ``flags`` (the :class:`ConfigFlag` list)."""
    p = commands.add_parser(name, help=help, description=description)
    flags = add_config_flags(p, config_class)
    r = p.add_argument_group("run folder")
    r.add_argument("--config", type=Path, metavar="FILE", help="YAML file of settings, by section")
    r.add_argument(
        "--out", type=Path, metavar="DIR", help=f"run folder (default: {runs_default}/NNNNN-...)"
    )
    r.add_argument(
        "--runs", type=Path, default=Path(runs_default), metavar="DIR",
        help=f"root of numbered runs ({runs_default})",
    )  # fmt: skip
    r.add_argument(
        "--resume",
        metavar="auto|PATH",
        help="continue the newest run under --runs (auto), a run folder or a checkpoint file; "
        "only schedule and device settings may change",
    )
    r.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when the terminal is interactive)",
    )
    p.set_defaults(handler=handler, flags=flags)
    return p


def run_train(
    args: argparse.Namespace,
    flags: list[ConfigFlag],
    train: Callable[..., Path],
    config_from_dict: Callable[[dict[str, Any]], Any],
    extra: dict[str, Any] | None = None,
) -> int:
    """Start or resume a run from parsed flags; ``extra`` holds overrides made by flags that
    are not config fields (merged under the typed ones)."""
    from sagan.config import load_yaml, merge
    from sagan.errors import SaganError

    overrides = merge(extra or {}, flag_overrides(args, flags))
    if args.resume is not None:
        if args.out is not None or args.config is not None:
            raise SaganError(
                "--resume continues a run in its own folder with its own config; "
                "drop --out/--config"
            )
        run = train(
            resume=args.resume, runs_root=args.runs, overrides=overrides, progress=args.progress
        )
    else:
        base = load_yaml(args.config) if args.config is not None else {}
        cfg = config_from_dict(merge(base, overrides))
        run = train(cfg, out=args.out, runs_root=args.runs, progress=args.progress)
    print(f"run folder: {run}")
    return 0
