"""Data set classes shared by every image source, plus array resizing helpers.

Every item is ``(image, label)``: ``image`` a ``uint8`` tensor of shape ``(C, R, R)`` with values
0..255 (C is 1 or 3), ``label`` an ``int`` (always 0 for an unconditional data set).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from sagan.errors import SaganError

__all__ = [
    "ImageDataset",
    "TensorImageDataset",
    "check_resolution",
    "dataset_fingerprint",
    "pad_to",
    "resize_square_batch",
    "safe_name",
]


def check_resolution(resolution: object) -> int:
    """Return ``resolution`` as an int, or raise :class:`SaganError` unless it is an int >= 8."""
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise SaganError(
            f"resolution must be a whole number of pixels, got {resolution!r}; use e.g. 32 or 64"
        )
    if resolution < 8:
        raise SaganError(
            f"resolution must be at least 8 pixels, got {resolution}; use e.g. 32 or 64"
        )
    return int(resolution)


def safe_name(text: str) -> str:
    """``text`` reduced to ``[A-Za-z0-9_-]`` for use in run-folder names (``"data"`` if empty)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    return name or "data"


class ImageDataset(torch.utils.data.Dataset):
    """Base: items are ``(image, label)``: ``image`` uint8 tensor ``(C, R, R)``, ``label`` int
    (0 when unlabeled).

    Attributes: ``name`` (short, ``[A-Za-z0-9_-]``, used in run-folder names), ``resolution``,
    ``channels`` (1 or 3), ``num_classes`` (0 when unconditional), ``class_names``
    (``len == num_classes``) and ``skipped`` (reason -> count of source files left out; empty
    unless the data came from a folder).
    """

    name: str
    resolution: int
    channels: int
    num_classes: int
    class_names: list[str]
    skipped: dict[str, int]

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def describe_skipped(self) -> str:
        """One line about files that were left out, or ``""`` when none were."""
        return ""

    def fingerprint(self) -> str:
        """Hex digest identifying the content (see :func:`dataset_fingerprint`).

        The generic version hashes every item; subclasses override it with something cheaper.
        """
        h = hashlib.sha256(f"{type(self).__name__}:{self.resolution}:{len(self)}".encode())
        for i in range(len(self)):
            image, label = self[i]
            h.update(image.contiguous().numpy().tobytes())
            h.update(int(label).to_bytes(8, "little", signed=True))
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, n={len(self)}, "
            f"resolution={self.resolution}, channels={self.channels}, "
            f"num_classes={self.num_classes})"
        )


class TensorImageDataset(ImageDataset):
    """Everything in memory: ``images`` ``(N, C, R, R)`` uint8, ``labels`` ``(N,)`` int64.

    Use :meth:`batch` for a fast path that skips per-item indexing and collation.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray | None = None,
        *,
        name: str,
        num_classes: int = 0,
        class_names: Sequence[str] | None = None,
    ) -> None:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"images must be uint8 (N, C, R, R) with C in (1, 3), got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if images.shape[2] != images.shape[3]:
            raise ValueError(f"images must be square, got {tuple(images.shape)}")
        n = images.shape[0]
        if labels is None:
            labels = torch.zeros(n, dtype=torch.int64)
        labels = torch.as_tensor(labels).to(torch.int64).reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"got {n} images but {labels.shape[0]} labels")
        class_names = [str(c) for c in (class_names or [])]
        if num_classes and len(class_names) != num_classes:
            class_names = [str(i) for i in range(num_classes)]
        if not num_classes:
            class_names = []
            labels = torch.zeros_like(labels)
        elif n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(f"labels must lie in 0..{num_classes - 1}")
        self.images = images.contiguous()
        self.labels = labels.contiguous()
        self.name = safe_name(name)
        self.resolution = int(images.shape[-1])
        self.channels = int(images.shape[1])
        self.num_classes = int(num_classes)
        self.class_names = class_names
        self.skipped = {}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """Return ``(image (C, R, R) uint8, label int)``."""
        return self.images[i], int(self.labels[i])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fancy-index a batch: ``idx`` ``(B,)`` -> ``(B, C, R, R)`` uint8, ``(B,)`` int64."""
        return self.images[idx], self.labels[idx]

    def fingerprint(self) -> str:
        """sha256 (16 hex chars) over the shape, image bytes and labels."""
        h = hashlib.sha256(f"tensor:{tuple(self.images.shape)}".encode())
        h.update(self.images.numpy().tobytes())
        h.update(self.labels.numpy().astype("<i8").tobytes())
        return h.hexdigest()[:16]


def dataset_fingerprint(ds: ImageDataset) -> str:
    """A 16-hex-character sha256 digest identifying the data set's content.

    In-memory data sets hash their image bytes and labels; folders hash the sorted relative
    paths, file sizes, modification times and the resolution (cheap, no decoding). Used to key
    cached metric statistics.
    """
    return ds.fingerprint()


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Pad ``(N, H, W)`` uint8 images symmetrically with black to ``(N, size, size)``."""
    h, w = images.shape[1:]
    top, left = (size - h) // 2, (size - w) // 2
    return np.pad(images, ((0, 0), (top, size - h - top), (left, size - w - left)))


def resize_square_batch(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize square uint8 images ``(N, S, S)`` or ``(N, S, S, C)`` to ``resolution``.

    Uses PIL bicubic, which is antialiased when shrinking. Returns the same layout with the new
    size; the input is returned unchanged when it already has that size.
    """
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images
    out_shape = (images.shape[0], resolution, resolution, *images.shape[3:])
    out = np.empty(out_shape, dtype=np.uint8)
    size = (resolution, resolution)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
    return out
