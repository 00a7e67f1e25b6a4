"""A folder of images as a data set, decoded lazily so it works inside DataLoader workers.

Files are found recursively (extensions ``.jpg .jpeg .png .webp .bmp``, any case), sorted by
relative path, and checked cheaply once at construction; files that cannot be read or are smaller
than the resolution are left out and counted in ``skipped``. Each image becomes RGB: greyscale is
replicated, palette and CMYK are converted, 16-bit greyscale is scaled to 8 bits, and
**transparent pixels are composited over white**. It is then resized so that its short side
equals the resolution (PIL Lanczos) and centre-cropped to ``(3, R, R)``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from sagan.errors import SaganError
from sagan.images.data.base import ImageDataset, check_resolution, safe_name

__all__ = ["IMAGE_EXTENSIONS", "FolderImageDataset", "find_image_files", "load_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
UNREADABLE = "unreadable"
BACKGROUND = (255, 255, 255)  # transparent pixels are composited over white

_EXT_TEXT = ", ".join(IMAGE_EXTENSIONS)


def find_image_files(root: Path) -> list[Path]:
    """All files under ``root`` with an image extension, sorted by relative path.

    Symbolic links to folders are followed, but each real folder is visited once, so link loops
    cannot hang the search.
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames.sort()
        for fname in filenames:
            if os.path.splitext(fname)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / fname)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _check_file(path: Path) -> tuple[int, int] | None:
    """Cheap readability check; returns the image size ``(w, h)`` or None if unreadable."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        with Image.open(path) as im:
            size, fmt = im.size, im.format
            if fmt == "PNG":
                im.verify()  # checks every chunk's CRC, catches truncation
                return size
        if fmt == "JPEG":
            with open(path, "rb") as f:
                f.seek(max(0, st.st_size - 2))
                ends_ok = f.read(2) == b"\xff\xd9"
            if ends_ok:
                return size
        # No end marker (JPEG with a trailer, or truncated), or another format: decode it, at a
        # reduced scale where the format allows.
        with Image.open(path) as im:
            im.draft(None, (64, 64))
            im.load()
        return size
    except Exception:  # PIL raises many types for bad files (OSError, SyntaxError, ValueError...)
        return None


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB (alpha composited over white, 16-bit scaled to 8-bit)."""
    if im.mode == "RGB":
        return im
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16"):
            a = a / 257.0
        elif im.mode == "F" and a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0
        elif a.size and np.nanmax(a) > 255:
            a = a * (255.0 / (65535.0 if np.nanmax(a) <= 65535 else np.nanmax(a)))
        a = np.nan_to_num(np.clip(np.rint(a), 0, 255))
        return Image.fromarray(a.astype(np.uint8), "L").convert("RGB")
    if im.mode in ("LA", "La", "PA", "RGBA", "RGBa") or (
        im.mode in ("L", "RGB") and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def load_image(path: Path, resolution: int) -> torch.Tensor:
    """Decode one file to a ``(3, R, R)`` uint8 tensor: RGB, short side resized to R (Lanczos),
    centre-cropped. PIL errors propagate; :class:`FolderImageDataset` wraps them."""
    with Image.open(path) as im:
        w, h = im.size
        scale = resolution / min(w, h)
        # JPEG can decode at 1/2..1/8 scale; keep at least twice the target size for quality.
        im.draft("RGB" if im.mode == "RGB" else None, (int(w * scale * 2), int(h * scale * 2)))
        im = ImageOps.exif_transpose(im)
        im = _to_rgb(im)
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        im = im.resize(
            (resolution, resolution),
            Image.Resampling.LANCZOS,
            box=(left, top, left + side, top + side),
        )
        array = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


class FolderImageDataset(ImageDataset):
    """Images in a folder (recursively), decoded lazily in ``__getitem__``.

    The file list, labels and ``skipped`` (reason -> count) are fixed at construction. With
    ``conditional=True`` the label of a file is its first-level sub-folder under ``root``
    (``class_names`` sorted); otherwise the set is unlabeled (``num_classes == 0``). Items are
    ``(image (3, R, R) uint8, label int)``.
    """

    files: list[Path]
    labels: list[int]
    skipped: dict[str, int]

    def __init__(
        self, root: str | Path, resolution: int, *, conditional: bool | None = None
    ) -> None:
        resolution = check_resolution(resolution)
        root = Path(root).expanduser()
        if not root.exists():
            raise SaganError(
                f"folder {root} does not exist; point --data at a folder of images, "
                "or use digits, longrange, mnist or cifar10"
            )
        if not root.is_dir():
            raise SaganError(
                f"{root} is a file, not a folder; point --data at a folder of images, "
                "or use digits, longrange, mnist or cifar10"
            )
        root = root.resolve()
        self.root = root
        self.resolution = resolution
        self.channels = 3
        self.name = safe_name(root.name)
        candidates = find_image_files(root)
        if not candidates:
            raise SaganError(
                f"no images found in {root} (searched recursively for {_EXT_TEXT}); "
                "point --data at a folder of images"
            )

        too_small = f"smaller than {resolution} px"
        counts = {UNREADABLE: 0, too_small: 0}
        examples: dict[str, Path] = {}
        files: list[Path] = []
        stats: list[tuple[str, int, int]] = []
        for path in candidates:
            size = _check_file(path)
            reason = UNREADABLE if size is None else too_small if min(size) < resolution else ""
            if reason:
                counts[reason] += 1
                examples.setdefault(reason, path)
                continue
            st = path.stat()
            files.append(path)
            stats.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
        self.skipped = {k: v for k, v in counts.items() if v}
        self._skipped_examples = examples
        self._stats = stats
        if not files:
            detail = ", ".join(f"{n} {reason}" for reason, n in self.skipped.items())
            raise SaganError(
                f"none of the {len(candidates)} image files in {root} is usable ({detail}); "
                f"add readable images at least {resolution} px on the short side, "
                "or lower the resolution"
            )

        if conditional:
            at_root = [p for p in files if p.parent == root]
            if at_root:
                raise SaganError(
                    f"conditional training takes each image's label from its sub-folder, but "
                    f"{len(at_root)} images sit directly in {root} (e.g. {at_root[0].name}); "
                    "move them into one sub-folder per class, or train unconditionally"
                )
            folder_of = [p.relative_to(root).parts[0] for p in files]
            class_names = sorted(set(folder_of))
            if len(class_names) < 2:
                raise SaganError(
                    f"conditional training needs at least 2 classes (sub-folders with images) "
                    f"in {root}, found {len(class_names)}; add a sub-folder per class, "
                    "or train unconditionally"
                )
            index = {c: i for i, c in enumerate(class_names)}
            self.labels = [index[c] for c in folder_of]
            self.class_names = class_names
            self.num_classes = len(class_names)
        else:
            self.labels = [0] * len(files)
            self.class_names = []
            self.num_classes = 0
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """Decode file ``i`` -> ``(image (3, R, R) uint8, label int)``."""
        path = self.files[i]
        try:
            image = load_image(path, self.resolution)
        except Exception as e:
            raise SaganError(
                f"cannot read image {path} ({type(e).__name__}: {e}); "
                "it changed or broke after training started: fix or remove it and run again"
            ) from None
        return image, self.labels[i]

    def describe_skipped(self) -> str:
        """E.g. ``"skipped 3 files: 2 unreadable (e.g. a/b.png), 1 smaller than 64 px (e.g.
        c.jpg)"``; ``""`` when nothing was skipped."""
        total = sum(self.skipped.values())
        if not total:
            return ""
        parts = []
        for reason, n in self.skipped.items():
            example = self._skipped_examples.get(reason)
            where = f" (e.g. {example.relative_to(self.root).as_posix()})" if example else ""
            parts.append(f"{n} {reason}{where}")
        noun = "file" if total == 1 else "files"
        return f"skipped {total} {noun} in {self.root}: " + ", ".join(parts)

    def fingerprint(self) -> str:
        """sha256 (16 hex chars) over sorted relative paths, sizes, mtimes, labels and R."""
        h = hashlib.sha256(f"folder:{self.resolution}:{self.num_classes}".encode())
        for (rel, size, mtime), label in zip(self._stats, self.labels, strict=True):
            h.update(f"{rel}\0{size}\0{mtime}\0{label}\n".encode())
        return h.hexdigest()[:16]
