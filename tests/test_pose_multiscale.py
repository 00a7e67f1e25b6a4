"""Multi-scale testing: crops of several widths, heat-maps brought back into the standard
crop's frame and fused (the released ``multiScaleTest``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import shared_data
from sagan.errors import SaganError
from sagan.pose.data import read_mpii_json
from sagan.pose.datasets import AnnotatedPoseDataset, SyntheticPoseDataset
from sagan.pose.heatmaps import gaussian_heatmaps
from sagan.pose.multiscale import RELEASED_SCALES, fuse_scales
from sagan.pose.train import evaluate_pose
from sagan.pose.transforms import crop_affine, transform_points


def _in_factor_frame(joints: np.ndarray, factor: float, res: int, heat: int) -> np.ndarray:
    """Heat-map pixels of the standard crop -> those of a crop ``factor`` times as wide."""
    k = heat / res
    x = (joints + 0.5) / k - 0.5
    return ((x - res / 2) / factor + res / 2 + 0.5) * k - 0.5


def test_the_crop_geometry_the_fusion_assumes() -> None:
    rng = np.random.default_rng(0)
    center, scale, res = rng.uniform(100, 300, 2), 1.7, 256
    points = rng.uniform(0, 400, (10, 2))
    base = transform_points(points, crop_affine(center, scale, 0.0, res))
    for f in RELEASED_SCALES:
        wide = transform_points(points, crop_affine(center, scale * f, 0.0, res))
        np.testing.assert_allclose(wide, (base - res / 2) / f + res / 2, atol=1e-9)


def test_fusing_consistent_maps_finds_the_joints() -> None:
    rng = np.random.default_rng(1)
    res, heat = 64, 16
    joints = rng.uniform(3, 12, (2, 16, 2))  # (B, K, 2) heat-map pixels of the standard crop

    def draw(j: np.ndarray, f: float) -> np.ndarray:
        return gaussian_heatmaps(_in_factor_frame(j, f, res, heat), np.ones(16), heat)

    maps = [torch.from_numpy(np.stack([draw(j, f) for j in joints])) for f in RELEASED_SCALES]
    got = fuse_scales(maps, RELEASED_SCALES, res).numpy()
    # bilinear up-sampling of sampled Gaussians pulls a peak toward grid points (as released)
    assert np.abs(got - joints).max() < 0.35
    reversed_ = fuse_scales(maps, [1 / f for f in RELEASED_SCALES], res).numpy()
    assert np.abs(reversed_ - joints).max() > 1.0  # the check can fail: the wrong way round
    with pytest.raises(ValueError, match="one set of maps per factor"):
        fuse_scales(maps[:2], RELEASED_SCALES, res)


class _Oracle(torch.nn.Module):
    """Answers each call of ``evaluate_pose`` with Gaussians at the true joints, drawn in the
    frame of the crop width being tested (calls come batch by batch, factor by factor)."""

    def __init__(self, data: SyntheticPoseDataset, batch: int, factors: tuple[float, ...]):
        super().__init__()
        self.data, self.batch, self.factors, self.calls = data, batch, factors, 0
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a device to be on

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b, f = divmod(self.calls, len(self.factors))
        self.calls += 1
        idx = range(b * self.batch, b * self.batch + len(x))
        h, r = self.data.heatmap, self.data.resolution
        maps = [
            gaussian_heatmaps(
                _in_factor_frame(self.data.sample(i)[2].numpy(), self.factors[f], r, h),
                np.ones(16), h,
            )
            for i in idx
        ]  # fmt: skip
        return [torch.from_numpy(np.stack(maps))]


def test_evaluate_with_scales_scores_a_perfect_predictor_fully() -> None:
    data = SyntheticPoseDataset(12, resolution=64, heatmap=16, seed=4)
    oracle = _Oracle(data, 8, RELEASED_SCALES)
    scores = evaluate_pose(oracle, data, n=12, flip=False, scales=RELEASED_SCALES)  # type: ignore[arg-type]
    assert scores["total"] == 100.0 and oracle.calls == 2 * len(RELEASED_SCALES)
    with pytest.raises(SaganError, match="positive crop-width factors"):
        evaluate_pose(oracle, data, n=2, scales=[0.0, 1.0])  # type: ignore[arg-type]


def test_wider_crops_show_the_same_person_smaller() -> None:
    """image_at(i, 1) is the standard crop; the middle half of image_at(i, 2), enlarged
    twice, looks like it (and unlike another figure)."""
    data = SyntheticPoseDataset(4, resolution=64, heatmap=16, seed=2)
    base = data.sample(0)[0]
    assert (data.image_at(0, 1.0) - base).abs().max() <= 1 / 255 + 1e-6
    wide = data.image_at(0, 2.0)
    small = F.avg_pool2d(base[None], 2)[0]  # (3, 32, 32)
    mid = wide[:, 16:48, 16:48]
    other = F.avg_pool2d(data.sample(1)[0][None], 2)[0]
    assert (mid - small).abs().mean() < 0.5 * (mid - other).abs().mean()


def test_real_people_at_every_scale() -> None:
    folder = shared_data("mpii-sample")
    data = AnnotatedPoseDataset(read_mpii_json(folder / "test_mpii.json"), folder, 64, 16)
    assert torch.equal(data.image_at(0, 1.0), data.sample(0)[0])
    assert data.image_at(0, 1.3).shape == (3, 64, 64)
    assert not torch.equal(data.image_at(0, 1.3), data.image_at(0, 0.8))
