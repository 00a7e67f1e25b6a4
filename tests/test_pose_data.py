"""Pose pre-processing on real MPII images: crops, flips, heat-maps and their decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import shared_data
from sagan.errors import SaganError
from sagan.pose.data import read_mpii_json
from sagan.pose.heatmaps import decode_heatmaps, flip_heatmaps, gaussian_heatmaps
from sagan.pose.joints import MPII_SWAP
from sagan.pose.transforms import crop_person


@pytest.fixture(scope="module")
def mpii():  # type: ignore[no-untyped-def]
    folder = shared_data("mpii-sample")
    people = read_mpii_json(folder / "test_mpii.json")
    return folder, people


def test_reads_the_five_people(mpii) -> None:  # type: ignore[no-untyped-def]
    folder, people = mpii
    assert len(people) == 5
    for p in people:
        assert (folder / p.image).is_file()
        assert p.joints.shape == (16, 2) and p.visible.any() and p.scale > 0


def test_the_crop_keeps_every_visible_joint_and_maps_pixels_with_it(mpii) -> None:  # type: ignore[no-untyped-def]
    folder, people = mpii
    for p in people:
        image = Image.open(folder / p.image).convert("RGB")
        # mark one visible joint with a pure-green disc: it must land where its joint lands
        j = int(np.nonzero(p.visible)[0][0])
        marked = image.copy()
        x, y = p.joints[j]
        r = max(3, p.scale * 6)
        ImageDraw.Draw(marked).ellipse((x - r, y - r, x + r, y + r), fill=(0, 255, 0))
        crop, joints, vis = crop_person(marked, p.joints, p.visible, p.center, p.scale, 128)
        assert crop.shape == (128, 128, 3)
        assert np.array_equal(vis, p.visible)  # nothing visible fell outside the crop
        cx, cy = np.round(joints[j]).astype(int)
        assert tuple(crop[cy, cx]) == pytest.approx((0, 255, 0), abs=40)


def test_a_flip_twice_is_the_identity(mpii) -> None:  # type: ignore[no-untyped-def]
    folder, people = mpii
    p = people[0]
    image = Image.open(folder / p.image)
    size = 64
    plain, joints, vis = crop_person(image, p.joints, p.visible, p.center, p.scale, size)
    flipped, fj, fv = crop_person(
        image, p.joints, p.visible, p.center, p.scale, size, flip=True, swap=MPII_SWAP
    )
    # flipping the flipped joints back: mirror x, swap sides
    back = fj[list(MPII_SWAP)].copy()
    back[:, 0] = size - 1 - back[:, 0]
    np.testing.assert_allclose(back, joints, atol=1e-9)
    assert np.array_equal(fv[list(MPII_SWAP)], vis)
    # and the pixels: the flipped crop mirrored again is the plain crop (up to resampling)
    diff = np.abs(flipped[:, ::-1].astype(int) - plain.astype(int)).mean()
    assert diff < 0.5
    with pytest.raises(ValueError, match="needs the joint swap"):
        crop_person(image, p.joints, p.visible, p.center, p.scale, size, flip=True)


def test_augmentation_moves_joints_consistently(mpii) -> None:  # type: ignore[no-untyped-def]
    folder, people = mpii
    p = people[1]
    image = Image.open(folder / p.image)
    _, base, _ = crop_person(image, p.joints, p.visible, p.center, p.scale, 64)
    _, rot, _ = crop_person(image, p.joints, p.visible, p.center, p.scale, 64, rotation=30)
    _, big, _ = crop_person(image, p.joints, p.visible, p.center, p.scale, 64, scale_factor=1.25)
    centre = np.array([32.0, 32.0])
    # rotation about the crop centre keeps distances to it; zooming out shrinks them by 1.25
    np.testing.assert_allclose(
        np.linalg.norm(rot - centre, axis=1), np.linalg.norm(base - centre, axis=1), atol=1e-9
    )
    np.testing.assert_allclose(big - centre, (base - centre) / 1.25, atol=1e-9)


def test_heatmaps_decode_to_their_joints_within_a_quarter_pixel() -> None:
    joints = np.array([[10.3, 20.0], [5.0, 5.7], [40.0, 1.0], [70.0, 3.0]])
    visible = np.array([True, True, True, True])
    maps = gaussian_heatmaps(joints, visible, 64, sigma=1.0)
    assert maps.shape == (4, 64, 64) and maps[3].max() == 0  # outside the map: no target
    assert maps[2].max() == pytest.approx(1.0)
    coords, peak = decode_heatmaps(torch.from_numpy(maps)[None])
    np.testing.assert_allclose(coords[0, :3].numpy(), [[10.25, 20.0], [5.0, 5.75], [40.0, 1.0]])
    assert peak.shape == (1, 4)
    m = torch.from_numpy(maps)[None]
    assert torch.equal(flip_heatmaps(flip_heatmaps(m, (1, 0, 2, 3)), (1, 0, 2, 3)), m)


def test_bad_annotations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "a.json"
    f.write_text(
        '[{"image": "x.jpg", "joints": [[0, 0]], "joints_vis": [1], "center": [0, 0], "scale": 1}]'
    )
    with pytest.raises(SaganError, match=r"entry 0: expected joints \(16, 2\)"):
        read_mpii_json(f)
    f.write_text('[{"image": "x.jpg"}]')
    with pytest.raises(SaganError, match="entry 0 is missing or has a bad field"):
        read_mpii_json(f)
    with pytest.raises(SaganError, match="no such annotation file"):
        read_mpii_json(tmp_path / "none.json")
