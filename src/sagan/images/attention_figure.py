"""The SAGAN paper's attention figure: where chosen query points of generated images attend."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from sagan.errors import SaganError
from sagan.images.export import LoadedGenerator
from sagan.images.grid import to_uint8
from sagan.nn import SelfAttention2d

__all__ = ["DEFAULT_POINTS", "attention_figure", "last_attention_maps"]

DEFAULT_POINTS: tuple[tuple[float, float], ...] = ((0.3, 0.3), (0.5, 0.7), (0.75, 0.45))
"""Query points as (row, column) fractions of the image."""

_COLOURS = ((255, 64, 64), (64, 200, 255), (255, 220, 0), (120, 255, 120), (255, 120, 255))


def last_attention_maps(
    gen: LoadedGenerator, z: torch.Tensor, y: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Generate images and capture the attention of G's last (highest-resolution) layer.

    Returns images (B, C, R, R) in [-1, 1], beta (B, N, N'), the query grid (H, W) and the key
    grid (H', W') of that layer.
    """
    layers = [m for m in gen.net.modules() if isinstance(m, SelfAttention2d)]
    if not layers:
        raise SaganError(
            "this generator has no self-attention layer; give a run trained with --attention"
        )
    inputs: dict[int, torch.Tensor] = {}
    handles = [
        layer.register_forward_pre_hook(lambda module, args, i=i: inputs.__setitem__(i, args[0]))
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            images = gen(z, y)
    finally:
        for handle in handles:
            handle.remove()
    # the layer with the most positions: G's highest-resolution attention
    i = max(inputs, key=lambda k: inputs[k].shape[2] * inputs[k].shape[3])
    layer, x = layers[i], inputs[i]
    with torch.no_grad():
        beta = layer.attention_map(x)  # (B, N, N')
    h, w = x.shape[2:]
    kh, kw = (h // 2, w // 2) if layer.pool else (h, w)
    return images, beta, (h, w), (kh, kw)


def _heat(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8, black-red-yellow-white."""
    v = np.clip(values, 0, 1)[..., None]
    r = np.clip(3 * v, 0, 1)
    g = np.clip(3 * v - 1, 0, 1)
    b = np.clip(3 * v - 2, 0, 1)
    return (np.concatenate([r, g, b], axis=-1) * 255).astype(np.uint8)


def attention_figure(
    gen: LoadedGenerator,
    *,
    n: int = 4,
    points: tuple[tuple[float, float], ...] = DEFAULT_POINTS,
    seed: int = 0,
    labels: torch.Tensor | None = None,
    scale: int = 4,
) -> np.ndarray:
    """The figure as an (H, W, 3) uint8 array.

    One row per generated image: the image with coloured query markers, then for each query
    point the image overlaid with its attention map (upsampled from the key grid), normalised
    to its maximum.
    """
    if not points:
        raise SaganError("give at least one query point")
    for r, c in points:
        if not (0 <= r < 1 and 0 <= c < 1):
            raise SaganError(f"query point ({r}, {c}) must be fractions in [0, 1)")
    g = torch.Generator().manual_seed(seed)
    device = next(gen.parameters()).device
    z = torch.randn(n, gen.z_dim, generator=g).to(device)
    y = gen._labels(n, labels, g)
    images, beta, (h, w), (kh, kw) = last_attention_maps(gen, z, y)
    pics = to_uint8(images)  # (B, R, R, C)
    if pics.shape[-1] == 1:
        pics = np.repeat(pics, 3, axis=-1)
    res = pics.shape[1]
    size = res * scale
    rows = []
    for i in range(n):
        base = Image.fromarray(pics[i]).resize((size, size), Image.NEAREST)
        marked = base.copy()
        draw = ImageDraw.Draw(marked)
        overlays = []
        for j, (fr, fc) in enumerate(points):
            qr, qc = int(fr * h), int(fc * w)
            colour = _COLOURS[j % len(_COLOURS)]
            cy, cx = (qr + 0.5) * size / h, (qc + 0.5) * size / w
            rad = max(3, size // 40)
            draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=colour, outline=(0, 0, 0))
            weights = beta[i, qr * w + qc].reshape(kh, kw).float().cpu().numpy()
            weights = weights / max(float(weights.max()), 1e-12)
            heat = Image.fromarray(_heat(weights)).resize((size, size), Image.BILINEAR)
            over = Image.blend(base.convert("RGB"), heat, 0.6)
            od = ImageDraw.Draw(over)
            od.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=colour, outline=(0, 0, 0))
            overlays.append(over)
        cells = [marked, *overlays]
        row = np.concatenate([np.asarray(c.convert("RGB")) for c in cells], axis=1)
        rows.append(row)
    return np.concatenate(rows, axis=0)
