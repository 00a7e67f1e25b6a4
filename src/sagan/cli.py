"""The ``sagan`` command: one sub-command per job; each application registers its own.

Errors in the user's input surface as one line, ``sagan: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from sagan import __version__
from sagan.errors import RunStopped, SaganError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``sagan train: error: ...``), like the rest of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (importing only argparse-level code)."""
    from sagan.images import cli as images_cli
    from sagan.levels import cli as levels_cli
    from sagan.pose import cli as pose_cli

    parser = _Parser(
        prog="sagan",
        description=(
            "Self-Attention GANs (Zhang et al. 2018) in PyTorch: train, sample, visualise "
            "attention, evaluate and export image generators; 'sagan levels' for game levels."
        ),
        epilog="Run 'sagan COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"torch-sagan {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    images_cli.register(commands)
    levels_cli.register(commands)
    pose_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sagan`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SaganError as exc:
        print(f"sagan: error: {exc.line}", file=sys.stderr)
        return 2
    except RunStopped as exc:  # its line, with how to continue, is already printed
        return 128 + exc.signal
    except KeyboardInterrupt:
        print("sagan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
