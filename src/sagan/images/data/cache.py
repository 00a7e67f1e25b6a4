"""Where downloaded and pre-parsed data sets live, and crash-safe writes into that folder.

The cache folder is ``$SAGAN_CACHE`` if set, else ``$XDG_CACHE_HOME/sagan``, else
``~/.cache/sagan``. Every write goes to a temporary file in the same folder and is then moved into
place with :func:`os.replace`, so a crash never leaves a half-written cache file behind. A cache
file that cannot be read back (or holds arrays of the wrong shape) is deleted and rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from sagan.errors import SaganError

__all__ = [
    "atomic_write",
    "cache_dir",
    "ensure_dir",
    "load_arrays",
    "save_arrays",
    "temp_file_for",
]


def cache_dir() -> Path:
    """The cache folder (created on demand): ``$SAGAN_CACHE``, ``$XDG_CACHE_HOME/sagan`` or
    ``~/.cache/sagan``."""
    env = os.environ.get("SAGAN_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        path = base / "sagan"
    return ensure_dir(path)


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed; a :class:`SaganError` if that is impossible."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SaganError(
            f"cannot create cache folder {path} ({e.strerror or e}); "
            "set SAGAN_CACHE to a writable folder"
        ) from None
    if not path.is_dir():
        raise SaganError(
            f"cache folder {path} is not a folder; set SAGAN_CACHE to a writable folder"
        )
    return path


def temp_file_for(path: Path) -> tuple[int, str]:
    """Create a fresh hidden temporary file next to ``path``; return its open fd and its path.

    Unlike :func:`tempfile.mkstemp` the file gets the usual permissions (0666 minus umask), so
    the final cache file is readable by others where the umask allows it.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {path}")


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``path`` for binary writing; on success move it to ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = temp_file_for(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to one uncompressed ``.npz`` file atomically."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_arrays(
    path: Path, check: Callable[[dict[str, np.ndarray]], bool] | None = None
) -> dict[str, np.ndarray] | None:
    """Read a ``.npz`` written by :func:`save_arrays`.

    Returns ``None`` when the file is missing. When it cannot be read, or ``check`` (given the
    loaded arrays) returns False, the file is deleted and ``None`` is returned, so the caller
    rebuilds it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        ok = check is None or bool(check(arrays))
    except Exception:  # zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, ...
        ok = False
    if not ok:
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return arrays
