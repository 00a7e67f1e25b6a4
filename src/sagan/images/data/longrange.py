"""``longrange``: a procedural data set whose images carry a constraint that spans the image.

Every image is black with two objects: one in the left third-and-a-bit of the image and its
mirror image (about the vertical centre line) in the right part. The two must share shape
(square, plus or triangle, all left-right symmetric) and colour (one of six saturated colours)
and sit at mirrored positions, at least a quarter of the image apart. A generator that draws
plausible objects independently on each side (what a purely local model tends to do) breaks
the constraint; satisfying it needs information to travel across the image, which is what the
SAGAN paper claims attention provides.

:func:`check_longrange` decodes each half of a generated image back into (shape, colour,
position) by fitting the exact templates the renderer uses and says, image by image, whether
both halves are well-formed objects and whether they satisfy the constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sagan.images.data.base import TensorImageDataset

__all__ = [
    "COLOURS",
    "LONGRANGE_SIZE",
    "SHAPES",
    "LongRangeCheck",
    "check_longrange",
    "load_longrange",
    "render_longrange",
]

SHAPES = ("square", "plus", "triangle")
COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
}
LONGRANGE_SIZE = 10_000  # images in the built-in set
_PALETTE = np.array(list(COLOURS.values()), dtype=np.float64) / 255  # (6, 3)
_FG = 0.5  # a pixel is foreground when its brightest channel exceeds this (images in [0, 1])
_MIN_IOU = 0.6  # a half is a well-formed object when a template fits its foreground this well
_MAX_COLOUR_DIST = 0.35  # ... and its mean colour lies this close to a palette colour


def _half_size(resolution: int) -> int:
    """Objects span ``2 * h + 1`` pixels: 9 at 32 px, 17 at 64 px."""
    return max(2, round(resolution / 8))


def _template(shape: int, h: int) -> np.ndarray:
    """Boolean mask ``(2h+1, 2h+1)`` of a shape centred in its box; every shape is symmetric
    under a left-right flip, so a mirrored object is a translated copy."""
    d = np.arange(-h, h + 1)
    dr, dc = np.meshgrid(d, d, indexing="ij")  # (2h+1, 2h+1) row / column offsets
    if shape == 0:  # square
        return np.maximum(abs(dr), abs(dc)) <= h - 1
    if shape == 1:  # plus, arms a third of the half-size thick
        w = max(1, h // 3)
        return ((abs(dr) <= w) & (abs(dc) <= h)) | ((abs(dc) <= w) & (abs(dr) <= h))
    if shape == 2:  # triangle, apex up
        return abs(dc) * 2 <= dr + h
    raise ValueError(f"shape index {shape} out of range")


def _centre_ranges(resolution: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Inclusive ranges of the left object's centre row and column."""
    h = _half_size(resolution)
    rows = (h, resolution - 1 - h)
    # the left object lies wholly left of the centre, at least h pixels from it
    cols = (h, resolution // 2 - 2 * h - 1)
    return rows, cols


def render_longrange(
    n: int, resolution: int = 32, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` images.

    Returns ``images`` ``(n, 3, R, R)`` uint8, ``shapes`` ``(n,)`` and ``colours`` ``(n,)``
    (indices into :data:`SHAPES` and :data:`COLOURS`). Deterministic in ``seed`` (numpy's
    PCG64, stable across versions).
    """
    h = _half_size(resolution)
    (r0, r1), (c0, c1) = _centre_ranges(resolution)
    if c1 < c0:
        raise ValueError(f"resolution {resolution} is too small for the long-range set; use >= 16")
    rng = np.random.Generator(np.random.PCG64(seed))
    shapes = rng.integers(0, len(SHAPES), n)
    colours = rng.integers(0, len(COLOURS), n)
    rows = rng.integers(r0, r1 + 1, n)
    cols = rng.integers(c0, c1 + 1, n)
    palette = np.array(list(COLOURS.values()), dtype=np.uint8)  # (6, 3)
    templates = [_template(s, h) for s in range(len(SHAPES))]
    images = np.zeros((n, resolution, resolution, 3), dtype=np.uint8)  # (n, R, R, 3)
    for i in range(n):
        mask = templates[shapes[i]]
        r, c = rows[i], cols[i]
        mirror = resolution - 1 - c
        images[i, r - h : r + h + 1, c - h : c + h + 1][mask] = palette[colours[i]]
        images[i, r - h : r + h + 1, mirror - h : mirror + h + 1][mask] = palette[colours[i]]
    return images.transpose(0, 3, 1, 2).copy(), shapes, colours  # (n, 3, R, R)


def load_longrange(resolution: int, *, conditional: bool | None = None) -> TensorImageDataset:
    """The built-in long-range set: 10,000 images made on the fly (seed 0; under a second).

    Unconditional by default, so the generator itself must make the two halves agree;
    ``conditional=True`` labels each image by its (shape, colour) pair, 18 classes.
    """
    images, shapes, colours = render_longrange(LONGRANGE_SIZE, resolution, seed=0)
    labels = shapes * len(COLOURS) + colours
    names = [f"{s}-{c}" for s in SHAPES for c in COLOURS]
    if conditional:
        return TensorImageDataset(
            images, labels, name="longrange", num_classes=len(names), class_names=names
        )
    return TensorImageDataset(images, None, name="longrange")


@dataclass(frozen=True)
class LongRangeCheck:
    """Per-image verdicts of :func:`check_longrange` (boolean arrays of shape ``(N,)``).

    ``wellformed``: each half holds one object that fits a template (the local task);
    ``satisfied``: well-formed and the two objects share shape and colour at mirrored positions
    (the long-range task).
    """

    wellformed: np.ndarray
    satisfied: np.ndarray


def _decode_half(
    img: np.ndarray, fg: np.ndarray, col_offset: int, h: int, templates: list[np.ndarray]
) -> tuple[int, int, int, int] | None:
    """Fit the templates to one half: ``(shape, colour, row, col)`` of the centre, or None."""
    rr, cc = np.nonzero(fg)
    if rr.size == 0:
        return None
    best: tuple[float, int, int, int] | None = None
    for s, t in enumerate(templates):
        tr, tc = np.nonzero(t)
        # place the template so that its centroid matches the foreground's centroid
        r = round(rr.mean() - tr.mean() + h)
        c = round(cc.mean() - tc.mean() + h)
        placed = np.zeros_like(fg)
        rs, cs = tr + r - h, tc + c - h
        keep = (rs >= 0) & (rs < fg.shape[0]) & (cs >= 0) & (cs < fg.shape[1])
        placed[rs[keep], cs[keep]] = True
        iou = (placed & fg).sum() / (placed | fg).sum()
        if best is None or iou > best[0]:
            best = (float(iou), s, r, c)
    assert best is not None
    iou, s, r, c = best
    if iou < _MIN_IOU:
        return None
    colour = img[:, fg].mean(axis=1)  # (3,)
    dist = np.linalg.norm(_PALETTE - colour, axis=1)
    k = int(dist.argmin())
    if dist[k] > _MAX_COLOUR_DIST:
        return None
    return s, k, r, c + col_offset


def check_longrange(images: torch.Tensor | np.ndarray) -> LongRangeCheck:
    """Check the long-range constraint on generated images ``(N, 3, R, R)`` with values in [0, 1].

    Each half (columns ``< R/2`` and ``>= R/2``) is thresholded (brightest channel > 0.5) and
    the renderer's exact templates are fitted at the foreground's centroid; a half is
    well-formed when the best template reaches IoU >= 0.6 and its mean colour lies within 0.35
    of a palette colour. The constraint holds when both halves are well-formed, shapes and
    colours agree, the rows agree within 1 pixel, and the columns mirror within 1 pixel.
    """
    x = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else images
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"expected images (N, 3, R, R), got {x.shape}")
    n, _, res, _ = x.shape
    h = _half_size(res)
    templates = [_template(s, h) for s in range(len(SHAPES))]
    fg = x.max(axis=1) > _FG  # (N, R, R)
    mid = res // 2
    wellformed = np.zeros(n, dtype=bool)
    satisfied = np.zeros(n, dtype=bool)
    for i in range(n):
        left = _decode_half(x[i, :, :, :mid], fg[i, :, :mid], 0, h, templates)
        right = _decode_half(x[i, :, :, mid:], fg[i, :, mid:], mid, h, templates)
        if left is None or right is None:
            continue
        wellformed[i] = True
        (s1, k1, r1, c1), (s2, k2, r2, c2) = left, right
        satisfied[i] = s1 == s2 and k1 == k2 and abs(r1 - r2) <= 1 and abs((res - 1 - c1) - c2) <= 1
    return LongRangeCheck(wellformed=wellformed, satisfied=satisfied)
