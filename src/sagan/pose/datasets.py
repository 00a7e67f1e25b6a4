"""Training samples for pose networks: ``(image (3, R, R) float in [0, 1], heat-maps
(K, H, H), joints (K, 2) in heat-map pixels, visible (K,), reference size in heat-map
pixels)``. The reference size is what the metric divides by: the head size for PCKh (MPII
and the synthetic figures, K = 16), the torso size for PCK (LSP, K = 14).

* :class:`SyntheticPoseDataset`: figures from :mod:`sagan.pose.synthetic`, made on the fly;
  item ``i`` is always the same figure (seeded by ``seed`` and ``i``).
* :class:`AnnotatedPoseDataset`: people of a real data set (:mod:`sagan.pose.data`), cropped
  around centre / scale (x 1.25). :meth:`~AnnotatedPoseDataset.sample` with a key applies the
  standard augmentation: scale +-25%, rotation +-30 degrees (in 40% of samples), horizontal
  flip with the joint swap (half of them).

``visible`` is the scoring mask: for real data, every annotated joint, also one that falls
outside the crop (the standard evaluations count it, as a miss); heat-map targets are only
drawn for joints inside the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sagan.errors import SaganError
from sagan.pose.data import PersonAnnotation, read_annotations
from sagan.pose.heatmaps import gaussian_heatmaps
from sagan.pose.joints import LSP_JOINTS, LSP_SWAP, MPII_SWAP
from sagan.pose.metrics import head_size_from_box, torso_size
from sagan.pose.synthetic import render_person
from sagan.pose.transforms import PADDING, crop_person, flip_joints

__all__ = [
    "AnnotatedPoseDataset",
    "PoseSample",
    "SyntheticPoseDataset",
    "person_box",
    "person_centre",
]

PoseSample = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _sample(
    image: np.ndarray, joints: np.ndarray, visible: np.ndarray, ref: float, heat: int, sigma: float
) -> PoseSample:
    """Pack one sample; ``joints``/``ref`` are in image pixels, returned in heat-map pixels."""
    res = image.shape[0]
    k = heat / res
    # pixel centres at integers on both grids: x_heat = (x + 0.5) * k - 0.5
    hj = (joints + 0.5) * k - 0.5
    maps = gaussian_heatmaps(hj, visible, heat, sigma)
    return (
        _image_tensor(image),
        torch.from_numpy(maps),
        torch.from_numpy(hj).float(),
        torch.from_numpy(np.asarray(visible, dtype=bool)),
        torch.tensor(ref * k, dtype=torch.float32),
    )


def _image_tensor(image: np.ndarray) -> torch.Tensor:
    """(R, R, 3) uint8 -> (3, R, R) float in [0, 1], a copy."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255


class SyntheticPoseDataset(torch.utils.data.Dataset[PoseSample]):
    """``n`` synthetic figures at ``resolution`` px with ``heatmap`` px targets (MPII order)."""

    joints = 16
    swap = MPII_SWAP
    estimated_reference = False
    """Head sizes come from each figure's exact head box."""

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
        return self.sample(i)

    def sample(self, i: int, key: int | None = None) -> PoseSample:
        """Item ``i``; the figures are augmented by construction, so ``key`` is unused."""
        rng = np.random.Generator(np.random.PCG64([self.seed, i]))
        p = render_person(self.resolution, rng)
        head = float(head_size_from_box(p.head_box[None])[0])
        sigma = max(self.sigma, SIGMA_FLOOR)
        return _sample(p.image, p.joints, p.visible, head, self.heatmap, sigma)

    def image_at(self, i: int, factor: float) -> torch.Tensor:
        """Item ``i``'s image ``(3, R, R)`` seen through a crop ``factor`` times as wide
        (the same centre; black beyond the canvas), for multi-scale testing."""
        rng = np.random.Generator(np.random.PCG64([self.seed, i]))
        p = render_person(self.resolution, rng)
        r = self.resolution
        crop, _, _ = crop_person(
            Image.fromarray(p.image), p.joints, p.visible, np.array([r / 2, r / 2]),
            r / (200 * PADDING), r, scale_factor=factor,
        )  # fmt: skip
        return _image_tensor(crop)


MPII_CENTRE_SHIFT = 15.0
"""MPII's person centre moves down by 15 x scale pixels before cropping, as in the stacked
hourglass code and HRNet / mmpose: the annotated ``objpos`` sits high on the body."""


def person_centre(p: PersonAnnotation) -> np.ndarray:
    """The centre ``(2,)`` (pixel centres) that a crop of ``p`` is taken around: MPII's
    annotated centre moved down by :data:`MPII_CENTRE_SHIFT` x scale (16 joints), LSP's as
    it is."""
    if len(p.joints) == 16:
        return p.center + np.array([0.0, MPII_CENTRE_SHIFT * p.scale])
    return np.asarray(p.center, dtype=np.float64)


def person_box(p: PersonAnnotation) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` in pixel-edge coordinates: the ``scale x 200`` px square around
    :func:`person_centre` that training crops (with a quarter more around it); the box
    ``sagan pose predict --box`` takes."""
    side = float(p.scale) * 200
    cx, cy = person_centre(p)
    return float(cx) + 0.5 - side / 2, float(cy) + 0.5 - side / 2, side, side


SIGMA_FLOOR = 0.5
"""The smallest Gaussian sigma, in heat-map pixels: sigma 1 at 64x64 maps shrinks with the
map, and below half a pixel the target would be a spike whose height depends on where the
joint falls within its pixel."""


def _opens(path: Path) -> bool:
    """Whether PIL reads ``path``'s header as an image (cheap: no pixels are decoded)."""
    try:
        with Image.open(path):
            return True
    except Exception:  # PIL raises many types for bad files (OSError, SyntaxError, bombs...)
        return False


def _open_reduced(path: Path, source_side: float, size: int) -> tuple[Image.Image, float]:
    """Open an image, letting the JPEG decoder shrink it by 2, 4 or 8 while the crop's source
    square (``source_side`` pixels) stays at least twice the output ``size``. Returns the
    image and its shrink factor ``s`` (reduced pixel = (x + 0.5) * s - 0.5, exactly: the
    decoder scales by 1/2, 1/4 or 1/8 and rounds the size up). Decoding a 1280x720 photo at an
    eighth is several times faster, and the DCT's box filter avoids aliasing."""
    image = Image.open(path)
    w, h = image.size
    factor = 1
    while factor < 8 and source_side / (2 * factor) >= 2 * size:
        factor *= 2
    if factor == 1 or image.format != "JPEG":
        return image, 1.0
    drafted = image.draft("RGB", (max(1, w // factor), max(1, h // factor)))
    if drafted is None:
        return image, 1.0
    _, box = drafted  # (0, 0, w / scale, h / scale) in the reduced image
    return image, float(box[2]) / w


class AnnotatedPoseDataset(torch.utils.data.Dataset[PoseSample]):
    """Annotated people (16 MPII joints or 14 LSP joints) whose images lie in ``image_dir``.

    The reference size: for MPII, the head size of the official head box (0.6 x its
    diagonal) when the annotation has one, otherwise an estimate, ``scale * 200 / 8`` (a
    head is about an eighth of a person's height), for monitoring only: report PCKh with
    the official head boxes. For LSP, the torso size of the ground truth (estimated as 0.3 x
    the person's height when the left shoulder or right hip is not annotated).
    """

    def __init__(
        self,
        people: Sequence[PersonAnnotation],
        image_dir: str | Path,
        resolution: int = 256,
        heatmap: int = 64,
        seed: int = 0,
    ) -> None:
        if not people:
            raise SaganError(
                "no annotated people to train or evaluate on; check --annotations (and its "
                "training/test split)"
            )
        self.joints = len(people[0].joints)
        if self.joints not in (14, 16) or any(len(p.joints) != self.joints for p in people):
            raise SaganError("annotations must all have 16 (MPII) or all 14 (LSP) joints")
        self.swap = MPII_SWAP if self.joints == 16 else LSP_SWAP
        self.people = list(people)
        self.image_dir = Path(image_dir)
        missing = [p.image for p in self.people if not (self.image_dir / p.image).is_file()]
        if missing:
            raise SaganError(
                f"{len(missing)} of {len(self.people)} annotated images are not in "
                f"{image_dir}, e.g. {missing[0]}; point --images at the data set's image folder"
            )
        names = dict.fromkeys(p.image for p in self.people)  # each image once, in order
        unreadable = [name for name in names if not _opens(self.image_dir / name)]
        if unreadable:
            raise SaganError(
                f"{len(unreadable)} of {len(names)} annotated images in {image_dir} are not "
                f"readable images, e.g. {unreadable[0]}; replace them or drop their annotations"
            )
        self.resolution, self.heatmap, self.seed = resolution, heatmap, seed

    @property
    def estimated_reference(self) -> bool:
        """Whether some reference sizes are estimates (MPII people without head boxes)."""
        return self.joints == 16 and any(p.head_box is None for p in self.people)

    @classmethod
    def from_file(
        cls,
        annotations: str | Path,
        image_dir: str | Path,
        resolution: int = 256,
        heatmap: int = 64,
        seed: int = 0,
        lsp_split: str = "all",
    ) -> AnnotatedPoseDataset:
        """The people of any annotation file :func:`~sagan.pose.data.read_annotations` reads."""
        people = read_annotations(annotations, lsp_split)
        return cls(people, image_dir, resolution, heatmap, seed)

    def __len__(self) -> int:
        return len(self.people)

    def __getitem__(self, i: int) -> PoseSample:
        return self.sample(i)

    def sample(self, i: int, key: int | None = None) -> PoseSample:
        """Person ``i``: plain with ``key`` None, else augmented by a draw seeded by
        (``seed``, ``key``), so that a training step's augmentation is reproducible."""
        p = self.people[i]
        scale_factor, rotation, flip = self.augmentation(i, key)
        crop, joints, side = self._crop(p, scale_factor, rotation, flip)
        # score every annotated joint, also one the crop cut off (its target map stays empty)
        annotated = flip_joints(p.visible, self.swap) if flip else p.visible
        zoom = self.resolution / side  # image pixels -> crop pixels
        ref = self._reference(p) * zoom
        sigma = max(self.heatmap / 64, SIGMA_FLOOR)  # sigma 1 at 64x64 maps
        return _sample(crop, joints, annotated, ref, self.heatmap, sigma)

    def image_at(self, i: int, factor: float) -> torch.Tensor:
        """Person ``i``'s image ``(3, R, R)`` cropped ``factor`` times as wide around the same
        centre, without augmentation, for multi-scale testing."""
        return _image_tensor(self._crop(self.people[i], factor, 0.0, False)[0])

    def _crop(
        self, p: PersonAnnotation, scale_factor: float, rotation: float, flip: bool
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """-> (crop (R, R, 3) uint8, joints (K, 2) in crop pixels, the crop's source side in
        image pixels)."""
        center = person_centre(p)
        side = p.scale * scale_factor * 200 * PADDING  # the crop's source square, pixels
        path = self.image_dir / p.image
        image, shrink = _open_reduced(path, side, self.resolution)
        try:
            with image:
                # pixel centres at integers: x' = (x + 0.5) * s - 0.5
                crop, joints, _ = crop_person(
                    image,
                    (p.joints + 0.5) * shrink - 0.5,
                    p.visible,
                    (center + 0.5) * shrink - 0.5,
                    p.scale * shrink,
                    self.resolution,
                    rotation=rotation,
                    scale_factor=scale_factor,
                    flip=flip,
                    swap=self.swap,
                )
        except OSError as exc:  # e.g. a truncated JPEG, found only when its pixels decode
            raise SaganError(
                f"{path}: could not decode it ({exc}); replace it or drop its annotation"
            ) from None
        return crop, joints, side

    def augmentation(self, i: int, key: int | None) -> tuple[float, float, bool]:
        """(scale factor, rotation in degrees, flip) of person ``i`` under ``key``."""
        if key is None:
            return 1.0, 0.0, False
        rng = np.random.Generator(np.random.PCG64([self.seed, key, i]))
        scale_factor = float(np.clip(rng.normal(1.0, 0.25), 0.75, 1.25))
        rotation = float(np.clip(rng.normal(0, 30), -30, 30)) if rng.random() < 0.4 else 0.0
        return scale_factor, rotation, bool(rng.random() < 0.5)

    def _reference(self, p: PersonAnnotation) -> float:
        """The metric's reference size in image pixels (see the class docstring)."""
        if self.joints == 14:
            l_sho, r_hip = LSP_JOINTS.index("l_shoulder"), LSP_JOINTS.index("r_hip")
            torso = float(torso_size(p.joints[None])[0])
            if p.visible[l_sho] and p.visible[r_hip] and torso > 0:
                return torso
            return 0.3 * p.scale * 200
        if p.head_box is not None:
            return float(head_size_from_box(p.head_box[None])[0])
        return p.scale * 200 / 8
