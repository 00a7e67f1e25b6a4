"""Training samples for pose networks: ``(image (3, R, R) float in [0, 1], heat-maps
(16, H, H), joints (16, 2) in heat-map pixels, visible (16,), head size in heat-map pixels)``.

* :class:`SyntheticPoseDataset`: figures from :mod:`sagan.pose.synthetic`, made on the fly;
  item ``i`` is always the same figure (seeded by ``seed`` and ``i``).
* :class:`MPIIPoseDataset`: MPII people from the JSON layout, cropped around centre / scale
  (x 1.25), with the standard augmentation when ``train``: scale +-25%, rotation +-30 degrees
  (in 40% of samples), horizontal flip with the joint swap (half of them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sagan.errors import SaganError
from sagan.pose.data import read_mpii_json
from sagan.pose.heatmaps import gaussian_heatmaps
from sagan.pose.joints import MPII_SWAP
from sagan.pose.metrics import head_size_from_box
from sagan.pose.synthetic import render_person
from sagan.pose.transforms import crop_person

__all__ = ["MPIIPoseDataset", "PoseSample", "SyntheticPoseDataset"]

PoseSample = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _sample(
    image: np.ndarray, joints: np.ndarray, visible: np.ndarray, head: float, heat: int, sigma: float
) -> PoseSample:
    """Pack one sample; ``joints``/``head`` are in image pixels, returned in heat-map pixels."""
    res = image.shape[0]
    k = heat / res
    # pixel centres at integers on both grids: x_heat = (x + 0.5) * k - 0.5
    hj = (joints + 0.5) * k - 0.5
    maps = gaussian_heatmaps(hj, visible, heat, sigma)
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255  # (3, R, R), a copy
    return (
        x,
        torch.from_numpy(maps),
        torch.from_numpy(hj).float(),
        torch.from_numpy(np.asarray(visible, dtype=bool)),
        torch.tensor(head * k, dtype=torch.float32),
    )


class SyntheticPoseDataset(torch.utils.data.Dataset[PoseSample]):
    """``n`` synthetic figures at ``resolution`` px with ``heatmap`` px targets."""

    def __init__(
        self, n: int, resolution: int = 64, heatmap: int = 16, seed: int = 0, sigma: float = 1.0
    ) -> None:
        if n < 1 or resolution < 16 or heatmap < 4:
            raise SaganError("synthetic pose data needs n >= 1, resolution >= 16, heatmap >= 4")
        self.n, self.resolution, self.heatmap, self.seed = n, resolution, heatmap, seed
        self.sigma = sigma * heatmap / 64  # sigma 1 at 64x64 maps, scaled with the map

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> PoseSample:
        rng = np.random.Generator(np.random.PCG64([self.seed, i]))
        p = render_person(self.resolution, rng)
        head = float(head_size_from_box(p.head_box[None])[0])
        return _sample(p.image, p.joints, p.visible, head, self.heatmap, max(self.sigma, 0.5))


class MPIIPoseDataset(torch.utils.data.Dataset[PoseSample]):
    """People of an MPII JSON file whose images lie in ``image_dir``.

    The head size is not in this JSON layout; it is estimated as ``scale * 200 / 8`` (a head
    is about an eighth of a person's height) for training-time monitoring only. Report PCKh
    with the official head boxes.
    """

    def __init__(
        self,
        annotations: str | Path,
        image_dir: str | Path,
        resolution: int = 256,
        heatmap: int = 64,
        train: bool = False,
        seed: int = 0,
    ) -> None:
        self.people = read_mpii_json(annotations)
        self.image_dir = Path(image_dir)
        missing = [p.image for p in self.people if not (self.image_dir / p.image).is_file()]
        if missing:
            raise SaganError(
                f"{len(missing)} image(s) of {annotations} are not in {image_dir}, e.g. "
                f"{missing[0]}; point the image folder at MPII's images/"
            )
        self.resolution, self.heatmap, self.train, self.seed = resolution, heatmap, train, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.people)

    def __getitem__(self, i: int) -> PoseSample:
        p = self.people[i]
        scale_factor, rotation, flip = 1.0, 0.0, False
        if self.train:
            rng = np.random.Generator(np.random.PCG64([self.seed, self.epoch, i]))
            scale_factor = float(np.clip(rng.normal(1.0, 0.25), 0.75, 1.25))
            rotation = float(np.clip(rng.normal(0, 30), -30, 30)) if rng.random() < 0.4 else 0.0
            flip = bool(rng.random() < 0.5)
        with Image.open(self.image_dir / p.image) as image:
            crop, joints, vis = crop_person(
                image,
                p.joints,
                p.visible,
                p.center,
                p.scale,
                self.resolution,
                rotation=rotation,
                scale_factor=scale_factor,
                flip=flip,
                swap=MPII_SWAP,
            )
        # the head estimate follows the crop's zoom
        zoom = self.resolution / (p.scale * scale_factor * 200 * 1.25)
        head = p.scale * 200 / 8 * zoom
        return _sample(crop, joints, vis, head, self.heatmap, 1.0 * self.heatmap / 64)
