"""Pose training samples: targets decode back to their joints; MPII crops from real images."""

from __future__ import annotations

import pytest
import torch

from conftest import shared_data
from sagan.errors import SaganError
from sagan.pose.datasets import AnnotatedPoseDataset, SyntheticPoseDataset
from sagan.pose.heatmaps import decode_heatmaps


def test_synthetic_samples_and_their_targets() -> None:
    ds = SyntheticPoseDataset(20, resolution=64, heatmap=16, seed=3)
    x, maps, joints, vis, head = ds[4]
    assert x.shape == (3, 64, 64) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert maps.shape == (16, 16, 16) and joints.shape == (16, 2) and vis.shape == (16,)
    assert float(head) > 0
    again = ds[4]
    assert torch.equal(again[0], x) and torch.equal(again[2], joints)  # item i is fixed
    coords, _ = decode_heatmaps(maps[None])
    inside = vis & (joints >= 0).all(1) & (joints <= 15).all(1)
    err = (coords[0] - joints).norm(dim=1)[inside]
    assert err.numel() > 8 and float(err.max()) <= 0.75  # arg-max + quarter shift
    assert (maps[~vis].abs().sum() == 0).item()  # no target for hidden joints


def test_mpii_samples_from_real_images() -> None:
    folder = shared_data("mpii-sample")
    ds = AnnotatedPoseDataset.from_file(folder / "test_mpii.json", folder, 128, 32)
    assert len(ds) == 5
    for i in range(5):
        x, maps, joints, vis, head = ds[i]
        assert x.shape == (3, 128, 128) and maps.shape == (16, 32, 32)
        assert bool(vis.any()) and float(head) > 0
        coords, _ = decode_heatmaps(maps[None])
        err = (coords[0] - joints).norm(dim=1)[vis]
        assert float(err.max()) <= 0.75
    aug = AnnotatedPoseDataset.from_file(folder / "test_mpii.json", folder, 128, 32, seed=1)
    flipped_somewhere = any(not torch.equal(aug.sample(i, key=5)[0], ds[i][0]) for i in range(5))
    assert flipped_somewhere
    with pytest.raises(SaganError, match="are not in"):
        AnnotatedPoseDataset.from_file(folder / "test_mpii.json", folder / "nowhere")


def test_person_box_frames_mpii_people_below_their_annotated_centre() -> None:
    import numpy as np

    from sagan.pose.data import PersonAnnotation
    from sagan.pose.datasets import MPII_CENTRE_SHIFT, person_box, person_centre

    def person(joints: int) -> PersonAnnotation:
        return PersonAnnotation(
            image="x.jpg",
            joints=np.zeros((joints, 2)),
            visible=np.ones(joints, dtype=bool),
            center=np.array([100.0, 80.0]),
            scale=1.5,
        )

    mpii, lsp = person(16), person(14)
    assert person_centre(mpii).tolist() == [100.0, 80.0 + MPII_CENTRE_SHIFT * 1.5]
    assert person_centre(lsp).tolist() == [100.0, 80.0]
    x, y, w, h = person_box(mpii)
    assert w == h == 300.0  # scale x 200 px
    # edges: the box's middle is the crop centre's pixel centre, (c + 0.5)
    assert (x + w / 2, y + h / 2) == (100.5, 80.0 + 22.5 + 0.5)
