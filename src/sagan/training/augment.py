"""Data-efficient GAN training: differentiable augmentation of everything D sees, with a fixed or
an adaptive probability.

* :func:`diff_augment`: DiffAugment's policies (Zhao et al., NeurIPS 2020), ``color``
  (brightness, saturation, contrast), ``translation`` (up to 1/8 of the side, zero padding) and
  ``cutout`` (a square of half the side), written here from the paper's definitions. Every op
  is differentiable in the images, so G learns through them. Real and generated images go
  through the same policy, in D's update and in G's.
* :class:`AdaptiveAugment`: ADA's adaptive probability (Karras et al., NeurIPS 2020): each
  sample is augmented with probability ``p``, and ``p`` follows the over-fitting heuristic
  ``r_t = E[sign(D(real))]``: up when r_t is above the target (0.6), down when below (kept
  when equal), by ``batch x interval / (ada_kimg x 1000)`` per adjustment. Ours applies it to the
  DiffAugment policies above, not to ADA's 18-transform pipeline.

Images are ``(B, C, H, W)`` in [-1, 1]. Random draws come from a caller's generator, so a run
that saves it resumes exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["POLICIES", "AdaptiveAugment", "diff_augment"]


def _uniform(b: int, like: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(b, 1, 1, 1, generator=g, device=like.device, dtype=like.dtype)


def _color(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_uniform(b, x, g) - 0.5)  # brightness: +-0.5
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(b, x, g) * 2) + mean  # saturation: x0..2 around the pixel mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(b, x, g) + 0.5) + mean  # contrast: x0.5..1.5


def _translation(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b, 1, 1), generator=g, device=x.device)
    dx = torch.randint(-sx, sx + 1, (b, 1, 1), generator=g, device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - dy  # (B, H, 1): source row
    cols = torch.arange(w, device=x.device)[None, None, :] - dx  # (B, 1, W)
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).to(x.dtype)  # (B, H, W)
    index = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)  # (B, H, W) flat source pixel
    flat = x.flatten(2)  # (B, C, H*W)
    moved = flat.gather(2, index.flatten(1)[:, None].expand(-1, x.shape[1], -1))
    return moved.view_as(x) * inside[:, None]


def _cutout(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the square's top-left corner; it may hang over the border, as in DiffAugment
    y0 = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=g, device=x.device) - ch // 2
    x0 = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=g, device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    hole = (rows >= y0) & (rows < y0 + ch) & (cols >= x0) & (cols < x0 + cw)  # (B, H, W)
    return x * (~hole).to(x.dtype)[:, None]


POLICIES: dict[str, Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}
"""DiffAugment's policies by name."""


def diff_augment(
    x: torch.Tensor,
    policy: Sequence[str] = ("color", "translation", "cutout"),
    generator: torch.Generator | None = None,
    p: float = 1.0,
) -> torch.Tensor:
    """``x`` (B, C, H, W) through each op of ``policy`` in turn; with ``p`` < 1 each sample
    takes each op with probability ``p`` (ADA-style) and is left as it is otherwise."""
    unknown = [name for name in policy if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(POLICIES)}")
    for name in policy:
        if p >= 1.0:
            x = POLICIES[name](x, generator)
        elif p > 0.0:
            take = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device) < p
            x = torch.where(take, POLICIES[name](x, generator), x)
    return x


class AdaptiveAugment:
    """ADA's adaptive augmentation probability ``p``, driven by ``r_t = E[sign(D(real))]``.

    Call :meth:`observe` with D's scores of real images at every D update; every ``interval``
    updates, ``p`` moves toward more augmentation when r_t > ``target`` (D is sure of the
    reals: over-fitting) and toward less when r_t < ``target``, by ``sign(r_t - target) x
    images / (kimg x 1000)``, clipped to [0, 1]. ``state_dict`` / ``load_state_dict`` carry it
    through checkpoints.
    """

    def __init__(
        self,
        target: float = 0.6,
        kimg: float = 100.0,
        interval: int = 4,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if not 0.0 < target < 1.0 or kimg <= 0 or interval < 1:
            raise ValueError("need 0 < target < 1, kimg > 0 and interval >= 1")
        self.target, self.kimg, self.interval = target, kimg, interval
        self.reduce = reduce
        """Averages each batch's sign mean over processes under torchrun, so that every rank
        holds the same pending sum and p (``images`` then counts one rank's; the caller scales
        ``kimg`` by the world size)."""
        self.p = 0.0
        self.r_t = 0.0
        """r_t of the last adjustment (logged)."""
        self._sum: torch.Tensor | None = None  # sum of batch sign means, on the device
        self._batches = 0
        self._images = 0

    def observe(self, real_scores: torch.Tensor) -> None:
        """D's scores ``(B,)`` of a batch of real images. They stay on the device until the
        adjustment, which reads them: one host read per ``interval`` D updates."""
        mean = torch.sign(real_scores.detach().float()).mean()
        if self.reduce is not None:  # every rank sums the same means: one pending state
            mean = self.reduce(mean)
        self._sum = mean if self._sum is None else self._sum.to(mean.device) + mean
        self._batches += 1
        self._images += real_scores.shape[0]
        if self._batches >= self.interval:
            self.r_t = float(self._sum) / self._batches
            step = self._images / (self.kimg * 1000)
            direction = (self.r_t > self.target) - (self.r_t < self.target)  # ADA's sign()
            self.p = min(1.0, max(0.0, self.p + direction * step))
            self._sum, self._batches, self._images = None, 0, 0

    def state_dict(self) -> dict[str, float]:
        """p, r_t and what was gathered since the last adjustment (read to the host here)."""
        pending = 0.0 if self._sum is None else float(self._sum)
        return {"p": self.p, "r_t": self.r_t, "sum": pending, "batches": self._batches,
                "images": self._images}  # fmt: skip

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p, self.r_t = float(state["p"]), float(state["r_t"])
        self._batches, self._images = int(state["batches"]), int(state["images"])
        self._sum = torch.tensor(float(state["sum"])) if self._batches else None
