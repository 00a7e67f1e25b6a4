"""Joint heat-maps: Gaussian targets, and keypoints decoded from predicted maps.

Decoding follows the stacked-hourglass evaluation (Newell et al. 2016): the arg-max of each map,
moved a quarter of a pixel toward the higher of its two neighbours along x and along y.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["decode_heatmaps", "flip_heatmaps", "gaussian_heatmaps"]


def gaussian_heatmaps(
    joints: np.ndarray, visible: np.ndarray, size: int, sigma: float = 1.0
) -> np.ndarray:
    """Joints ``(K, 2)`` in heat-map pixels (x, y) -> maps ``(K, size, size)`` float32 with a
    unit-peak Gaussian at each visible joint inside the map (all zeros otherwise)."""
    joints = np.asarray(joints, dtype=np.float64)
    k = len(joints)
    maps = np.zeros((k, size, size), dtype=np.float32)
    ys, xs = np.mgrid[0:size, 0:size]  # (size, size) each
    for j in range(k):
        x, y = joints[j]
        if not visible[j] or not (-0.5 <= x < size - 0.5 and -0.5 <= y < size - 0.5):
            continue
        maps[j] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return maps


def decode_heatmaps(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Heat-maps ``(N, K, H, W)`` -> keypoints ``(N, K, 2)`` (x, y in heat-map pixels) and the
    peak values ``(N, K)``: arg-max plus a quarter-pixel shift toward the higher neighbour."""
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w)  # (N, K, H*W)
    peak, idx = flat.max(dim=2)  # (N, K)
    x, y = (idx % w).long(), (idx // w).long()
    coords = torch.stack([x, y], dim=2).to(maps.dtype)  # (N, K, 2)
    b = torch.arange(n)[:, None].expand(n, k)
    j = torch.arange(k)[None, :].expand(n, k)
    for axis, (pos, limit) in enumerate(((x, w), (y, h))):
        lo, hi = (pos - 1).clamp(0, limit - 1), (pos + 1).clamp(0, limit - 1)
        if axis == 0:
            diff = maps[b, j, y, hi] - maps[b, j, y, lo]
        else:
            diff = maps[b, j, hi, x] - maps[b, j, lo, x]
        inside = (pos > 0) & (pos < limit - 1)
        coords[..., axis] += 0.25 * torch.sign(diff) * inside
    return coords, peak


def flip_heatmaps(maps: torch.Tensor, swap: tuple[int, ...]) -> torch.Tensor:
    """The maps of the mirrored image ``(N, K, H, W)`` put back in place: flipped along x and
    left/right joints swapped, ready to average with the unflipped prediction."""
    return maps.flip(dims=[3])[:, list(swap)]
