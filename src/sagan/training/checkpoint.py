"""Self-contained, atomically written, checksummed checkpoints.

A checkpoint is one ``torch.save`` file holding plain data and tensors only, so it loads with
``weights_only=True`` (no code runs on load). The state is serialised, its SHA-256 computed,
and both are saved together, so a flipped bit anywhere is caught on load (torch's own format
would load it silently). The file is written to a temporary name in the same folder, fsynced,
then renamed over the final name, so a crash or a full disk never leaves a half-written
``ckpt-*.pt`` behind and never touches the checkpoints already there.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch

from sagan.errors import SaganError

__all__ = [
    "CHECKPOINT_FORMAT",
    "checkpoint_name",
    "checkpoint_step",
    "find_checkpoints",
    "load_checkpoint",
    "load_newest_good",
    "load_source",
    "prune_checkpoints",
    "remove_stale_temp_files",
    "resolve_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "torch-sagan-checkpoint-v2"
_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint after ``step`` steps."""
    return f"ckpt-{step:07d}.pt"


def checkpoint_step(path: str | Path) -> int | None:
    """The step a checkpoint was saved after, read from its file name (the inverse of
    :func:`checkpoint_name`, without loading the file); None for any other name, such as
    ``best.pt``."""
    m = _NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically; on failure nothing at ``path`` changes."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    wrapped = {
        "format": CHECKPOINT_FORMAT,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": payload,
    }
    try:
        with open(tmp, "wb") as f:
            torch.save(wrapped, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = exc.strerror or str(exc)
        raise SaganError(
            f"could not write checkpoint {path}: {reason}; earlier checkpoints in "
            f"{path.parent} are intact (free space or fix permissions, then --resume auto)"
        ) from None
    _fsync_dir(path.parent)


def load_checkpoint(path: Path, *, kind: str) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` for application ``kind``."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SaganError(f"checkpoint {path} does not exist") from None
    except Exception:  # torch raises many types for truncated/foreign files
        raise SaganError(
            f"{path} is not a readable checkpoint (truncated, corrupt or not a torch file); "
            "give an earlier ckpt-*.pt, or the run folder (its newest checkpoint that verifies)"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SaganError(f"{path} is not a torch-sagan checkpoint (no {CHECKPOINT_FORMAT} tag)")
    payload = state.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != state.get("sha256"):
        raise SaganError(
            f"{path} is corrupt (checksum mismatch); give an earlier ckpt-*.pt, or the run "
            "folder (its newest checkpoint that verifies)"
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception:
        raise SaganError(f"{path} passed its checksum but does not load") from None
    found = state.get("kind") if isinstance(state, dict) else None
    if found != kind:
        raise SaganError(
            f"{path} is a torch-sagan '{found}' checkpoint, not '{kind}'; "
            "use the matching sagan sub-command"
        )
    return state


def find_checkpoints(run_dir: Path) -> list[Path]:
    """The ``ckpt-*.pt`` files in ``run_dir``, oldest step first."""
    found = []
    for p in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        step = checkpoint_step(p)
        if step is not None and p.is_file():
            found.append((step, p))
    return [p for _, p in sorted(found)]


def remove_stale_temp_files(run_dir: Path) -> int:
    """Delete temporary files left by saves that a crash interrupted; returns how many."""
    removed = 0
    for p in Path(run_dir).glob(".ckpt-*.pt.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed += 1
    return removed


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints of ``run_dir``."""
    for p in find_checkpoints(run_dir)[:-keep]:
        with contextlib.suppress(OSError):
            p.unlink()


def load_newest_good(run_dir: Path, *, kind: str) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of ``run_dir`` that loads and passes its checksum.

    Unreadable or corrupt newer ones are skipped with a warning on stderr (they are kept on
    disk for inspection).
    """
    ckpts = find_checkpoints(run_dir)
    if not ckpts:
        raise SaganError(
            f"no checkpoint (ckpt-*.pt) in {run_dir}; give a run folder that holds one, or a "
            "checkpoint file"
        )
    for path in reversed(ckpts):
        try:
            return path, load_checkpoint(path, kind=kind)
        except SaganError as exc:
            if "checkpoint, not" in str(exc):  # a foreign kind is not a corrupt file
                raise
            print(f"warning: skipping {path.name}: {exc}", file=sys.stderr)
    raise SaganError(
        f"every checkpoint in {run_dir} is unreadable or corrupt; give another run folder or "
        "checkpoint"
    )


def load_source(source: str | Path, *, kind: str) -> tuple[Path, dict[str, Any]]:
    """Load a checkpoint file, or the newest good checkpoint of a run folder."""
    source = Path(source)
    if source.is_dir():
        return load_newest_good(source, kind=kind)
    if source.is_file():
        return source, load_checkpoint(source, kind=kind)
    raise SaganError(f"{source} does not exist; give a checkpoint file or a run folder")


def resolve_checkpoint(source: str | Path) -> Path:
    """A checkpoint file as given, or the newest checkpoint of a run folder."""
    source = Path(source)
    if source.is_file():
        return source
    if source.is_dir():
        ckpts = find_checkpoints(source)
        if not ckpts:
            raise SaganError(
                f"no checkpoint (ckpt-*.pt) in {source}; give a run folder that holds one, or a "
                "checkpoint file"
            )
        return ckpts[-1]
    raise SaganError(f"{source} does not exist; give a checkpoint file or a run folder")
