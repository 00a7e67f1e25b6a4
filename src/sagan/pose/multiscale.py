"""Multi-scale testing after the authors' released code (``train.lua``,
``Trainer:multiScaleTest``; ``evalPyra.lua``): each person is cropped at the released six
widths, 0.8 to 1.3 times the standard crop
around the same centre; every crop's heat-maps (flip test included) are resampled into one
frame, averaged over the scales, and each joint is the arg-max of the average.

The released code fuses in the full image, bilinearly up-sampling every crop's 64x64 maps to
the crop's size in image pixels, and takes the integer arg-max there. Ours fuses on the pixel
grid of the standard (factor 1) crop, the network's input resolution (256 at the paper's
size): the same bilinear resampling and arg-max, at the crop's resolution instead of the
photo's, which keeps the memory per person fixed (our choice).

Geometry (:func:`sagan.pose.transforms.crop_affine`, rotation 0): a crop ``f`` times as wide
maps the point at crop pixel ``x`` of the standard crop to ``(x - R/2) / f + R/2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["RELEASED_SCALES", "fuse_scales", "to_crop_frame"]

RELEASED_SCALES = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)
"""``torch.range(0.8, 1.3, 0.1)`` of the released ``evalPyra.lua``."""


def to_crop_frame(maps: torch.Tensor, factor: float, resolution: int) -> torch.Tensor:
    """Heat-maps ``(B, K, H, H)`` of a crop ``factor`` times as wide as the standard one ->
    ``(B, K, R, R)`` on the standard crop's pixel grid (R = ``resolution``), bilinear, zero
    where that crop saw nothing."""
    b, _, h, _ = maps.shape
    x = torch.arange(resolution, dtype=torch.float32, device=maps.device)
    xf = (x - resolution / 2) / factor + resolution / 2  # pixels of the factor crop
    xh = (xf + 0.5) * (h / resolution) - 0.5  # its heat-map pixels (centres at integers)
    g = 2 * xh / (h - 1) - 1  # grid_sample's [-1, 1] with align_corners=True
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).expand(b, resolution, resolution, 2)
    return F.grid_sample(maps.float(), grid, mode="bilinear", align_corners=True)


def fuse_scales(
    maps: Sequence[torch.Tensor], factors: Sequence[float], resolution: int
) -> torch.Tensor:
    """The maps of each crop width, ``[(B, K, H, H)] * S`` for ``factors`` (S,) -> joints
    ``(B, K, 2)`` (x, y) in heat-map pixels of the standard crop: the arg-max of the average
    of all S maps on the standard crop's R x R grid."""
    if len(maps) != len(factors) or not maps:
        raise ValueError(f"one set of maps per factor: got {len(maps)} and {len(factors)}")
    fused = sum(to_crop_frame(m, f, resolution) for m, f in zip(maps, factors, strict=True))
    b, k, r, _ = fused.shape  # type: ignore[union-attr]
    idx = fused.reshape(b, k, r * r).argmax(dim=2)  # type: ignore[union-attr]
    xy = torch.stack([idx % r, idx // r], dim=2).float()  # (B, K, 2) crop pixels
    h = maps[0].shape[-1]
    return (xy + 0.5) * (h / resolution) - 0.5
