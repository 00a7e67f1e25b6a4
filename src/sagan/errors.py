"""The one exception type the command line turns into a one-line message, and the small
helpers the commands share to refuse bad input before doing anything."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["RunStopped", "SaganError", "int_in", "refuse_existing", "writing"]


class SaganError(Exception):
    """A problem with the user's input or environment, worded as one line that names the fix.

    The command line prints ``sagan: error: <message>`` and exits with status 2 instead of a
    traceback. Library callers can catch it like any other exception.
    """

    @property
    def line(self) -> str:
        """The one-line message, also for an error raised in a ``DataLoader`` worker process:
        torch re-raises it in the main process as a new ``SaganError`` whose message is the
        worker's whole traceback, ending with the original line."""
        text = str(self)
        if "\n" not in text:
            return text
        last = text.strip().splitlines()[-1].strip()
        for prefix in (f"{__name__}.{type(self).__name__}: ", f"{type(self).__name__}: "):
            if last.startswith(prefix):
                return last[len(prefix) :]
        return " ".join(text.split())


_WRITE_FIX = "; choose another --out (a writable place with free space)"


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failure to write ``path`` into a one-line :class:`SaganError`: an ``OSError``
    (no space, no permission, a file where a folder should be) or PIL's ``ValueError`` for an
    image name whose extension it cannot encode. Other errors pass through unchanged."""
    try:
        yield
    except OSError as exc:
        raise SaganError(f"cannot write {path}: {exc.strerror or exc}{_WRITE_FIX}") from None
    except ValueError as exc:
        if "unknown file extension" not in str(exc):
            raise
        raise SaganError(f"cannot write {path}: {exc}; name the image .png") from None


def refuse_existing(paths: Iterable[Path], fix: str = "choose another --out") -> None:
    """Raise a one-line :class:`SaganError` if any of ``paths`` (the files a command is about
    to write) exists, so that nothing already written is overwritten; ``fix`` ends the line."""
    targets = list(paths)
    taken = [p for p in targets if p.exists()]
    if taken:
        n = len(targets)
        some = f" ({len(taken)} of the {n} files to write do)" if n > 1 else ""
        raise SaganError(f"{taken[0]} already exists{some}; {fix}")


class RunStopped(Exception):
    """A signal (SIGINT, SIGTERM) stopped a training run before its last step; the checkpoint
    of the step it reached is saved and ``sagan ... --resume RUN`` continues it exactly. The
    CLI exits with 128 + the signal's number, so that a script does not go on as if the run
    had finished."""

    def __init__(self, run_dir: Path, signal: int, step: int) -> None:
        super().__init__(f"stopped by signal {signal} at step {step} ({run_dir})")
        self.run_dir, self.signal, self.step = run_dir, signal, step


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``low..high``, else argparse's one-line error
    (``argument --nrow: must be an integer in 1..1000, got -1``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}, got {text!r}")
        return value

    return parse
