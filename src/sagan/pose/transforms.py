"""Crops around a person (centre, scale) with scale/rotation/flip augmentation, as for MPII.

MPII's ``scale`` is the person's height / 200 px. A crop covers ``scale * 200 * 1.25`` pixels
around ``center`` (the 1.25 leaves room around the body), rotated by ``rotation`` degrees, and
is resampled to ``size`` pixels; joints follow through the same affine map. A horizontal flip
mirrors the crop and swaps left and right joints. Coordinates put pixel centres at integers
(pixel (0, 0) covers [-0.5, 0.5] x [-0.5, 0.5]).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["crop_affine", "crop_person", "flip_joints", "transform_points"]

PADDING = 1.25


def crop_affine(
    center: np.ndarray, scale: float, rotation: float, size: int, flip: bool = False
) -> np.ndarray:
    """The 2x3 affine map from image pixels to crop pixels."""
    side = scale * 200.0 * PADDING
    a = np.deg2rad(rotation)
    s = size / side
    cos, sin = np.cos(a) * s, np.sin(a) * s
    # rotate about the centre, scale, then move the centre to the crop's middle
    m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
    m[:, 2] = np.array([size / 2, size / 2]) - m[:, :2] @ np.asarray(center, dtype=np.float64)
    if flip:
        m = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
    return m


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Points ``(K, 2)`` through the 2x3 affine ``m``."""
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def flip_joints(joints: np.ndarray, swap: tuple[int, ...]) -> np.ndarray:
    """Reorder joints ``(K, ...)`` after a horizontal flip: left becomes right."""
    return np.asarray(joints)[list(swap)]


def crop_person(
    image: Image.Image,
    joints: np.ndarray,
    visible: np.ndarray,
    center: np.ndarray,
    scale: float,
    size: int,
    *,
    rotation: float = 0.0,
    scale_factor: float = 1.0,
    flip: bool = False,
    swap: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop ``image`` around the person -> ``(crop (size, size, 3) uint8, joints (K, 2) in
    crop pixels, visible (K,))``. A joint that leaves the crop is marked not visible."""
    m = crop_affine(center, scale * scale_factor, rotation, size, flip)
    # PIL wants crop -> image, in its coordinates where pixel i's centre is at i + 0.5; ours
    # put pixel centres at integers: shift by half a pixel on both sides of the inverse
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    inv = half @ np.linalg.inv(np.vstack([m, [0, 0, 1]])) @ np.linalg.inv(half)
    crop = image.convert("RGB").transform(
        (size, size), Image.Transform.AFFINE, inv[:2].flatten().tolist(), Image.Resampling.BILINEAR
    )
    pts = transform_points(joints, m)
    vis = np.asarray(visible).astype(bool).copy()
    if flip:
        if swap is None:
            raise ValueError("a flip needs the joint swap (e.g. MPII_SWAP)")
        pts, vis = flip_joints(pts, swap), flip_joints(vis, swap)
    inside = (pts >= 0).all(axis=1) & (pts <= size - 1).all(axis=1)
    return np.asarray(crop), pts, vis & inside
