"""The one exception type the command line turns into a one-line message."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SaganError", "writing"]


class SaganError(Exception):
    """A problem with the user's input or environment, worded as one line that names the fix.

    The command line prints ``sagan: error: <message>`` and exits with status 2 instead of a
    traceback. Library callers can catch it like any other exception.
    """


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failure to write ``path`` into a one-line :class:`SaganError`: an ``OSError``
    (no space, no permission, a file where a folder should be) or PIL's ``ValueError`` for an
    image name whose extension it cannot encode. Other errors pass through unchanged."""
    try:
        yield
    except OSError as exc:
        raise SaganError(f"cannot write {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        if "unknown file extension" not in str(exc):
            raise
        raise SaganError(f"cannot write {path}: {exc}; name the image .png") from None
