"""MPII's official .mat and LSP's joints.mat: read back exactly what was written, in the
release formats and with their quirks; real-data samples and splits."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from conftest import shared_data
from pose_files import MPII_TO_LSP, write_lsp_mat, write_mpii_mat
from sagan.errors import SaganError
from sagan.pose.data import (
    PersonAnnotation,
    annotation_format,
    read_annotations,
    read_lsp_mat,
    read_mpii_json,
    read_mpii_mat,
)
from sagan.pose.datasets import AnnotatedPoseDataset, _open_reduced
from sagan.pose.heatmaps import decode_heatmaps
from sagan.pose.joints import LSP_JOINTS
from sagan.pose.metrics import head_size_from_box, torso_size
from sagan.pose.synthetic import render_person
from sagan.pose.train import (
    PoseDataConfig,
    PoseRunConfig,
    datasets,
    holdout,
    real_people,
    resolve_config,
)
from sagan.pose.transforms import crop_person


def _boxes(people) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A head box around each person's head top and upper neck."""
    out = []
    for p in people:
        a, b = p.joints[9], p.joints[8]
        lo, hi = np.minimum(a, b) - 10, np.maximum(a, b) + 10
        out.append(np.stack([lo, hi]))
    return np.array(out)


@pytest.fixture(scope="module")
def mpii_mat(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = shared_data("mpii-sample")
    people = read_mpii_json(folder / "test_mpii.json")
    path = tmp_path_factory.mktemp("mpii") / "mpii_human_pose_v1_u12_1.mat"
    write_mpii_mat(path, people, _boxes(people))
    return folder, people, path


def test_mpii_json_is_read_as_zero_based_pixels() -> None:
    folder = shared_data("mpii-sample")
    raw = __import__("json").loads((folder / "test_mpii.json").read_text())
    people = read_mpii_json(folder / "test_mpii.json")
    np.testing.assert_allclose(people[0].joints, np.array(raw[0]["joints"]) - 1)
    np.testing.assert_allclose(people[0].center, np.array(raw[0]["center"]) - 1)


def test_the_official_mpii_mat_reads_back_the_people_written(mpii_mat) -> None:  # type: ignore[no-untyped-def]
    _, people, path = mpii_mat
    assert annotation_format(path) == "mpii"
    read = read_mpii_mat(path)
    # people without joints or centres, the empty image and the test image are left out
    assert [p.image for p in read] == [p.image for p in people] + ["lone.jpg"]
    lone = read[-1]
    assert lone.visible.sum() == 1 and lone.visible[9]  # the point without an id is skipped
    np.testing.assert_allclose(lone.joints[9], [10.0, 20.0])
    np.testing.assert_allclose(lone.center, [29.0, 39.0])
    for got, want, box in zip(read, people, _boxes(people), strict=False):
        np.testing.assert_allclose(got.joints[want.visible], want.joints[want.visible])
        assert np.array_equal(got.visible, want.visible)
        np.testing.assert_allclose(got.center, want.center)
        assert got.scale == pytest.approx(want.scale)
        assert got.head_box is not None
        np.testing.assert_allclose(got.head_box, box)
    assert read_annotations(path)[0].image == people[0].image


def test_lsp_and_lsp_extended_mats(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    joints = rng.uniform(10, 140, size=(6, 14, 2))
    path = tmp_path / "joints.mat"
    write_lsp_mat(path, joints)
    assert annotation_format(path) == "lsp"
    every = read_lsp_mat(path)
    assert [p.image for p in every] == [f"im{i:04d}.jpg" for i in range(1, 7)]
    np.testing.assert_allclose(every[4].joints, joints[4])
    assert all(p.visible.all() and p.head_box is None for p in every)
    lo, hi = joints[2].min(0), joints[2].max(0)
    np.testing.assert_allclose(every[2].center, (lo + hi) / 2)
    assert every[2].scale == pytest.approx((hi - lo).max() / 200)
    assert [p.image for p in read_lsp_mat(path, "train")] == [p.image for p in every[:3]]
    assert [p.image for p in read_lsp_mat(path, "test")] == [p.image for p in every[3:]]

    joints[1, 5] = -1  # LSP-extended: an unannotated joint (flag 0, no position)
    ext = tmp_path / "lspet.mat"
    write_lsp_mat(ext, joints, extended=True)
    flags = scipy.io.loadmat(str(ext))["joints"]
    flags[5, 2, 1] = 0
    scipy.io.savemat(str(ext), {"joints": flags})
    people = read_lsp_mat(ext)
    assert people[0].image == "im00001.jpg" and len(people) == 6
    assert not people[1].visible[5] and people[1].visible.sum() == 13
    assert read_lsp_mat(ext, "test") == []  # LSP-extended is all training images


def test_bad_annotation_files_are_one_line_errors(tmp_path: Path) -> None:
    cases = {
        "missing.mat": (None, "no such annotation file"),
        "broken.mat": (b"not a mat file at all", "not a readable MATLAB file"),
        "other.mat": ({"something": np.zeros(3)}, "neither MPII's RELEASE struct nor LSP"),
        "shape.mat": ({"joints": np.zeros((2, 14, 5))}, r"joints has shape \(2, 14, 5\)"),
        "notes.txt": (b"hello", "must be MPII .json / .mat or LSP joints.mat"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, dict):
            scipy.io.savemat(str(path), content)
        with pytest.raises(SaganError, match=message) as info:
            read_annotations(path)
        assert "\n" not in str(info.value)
    with pytest.raises(SaganError, match="choose one of train, test, all"):
        read_lsp_mat(tmp_path / "shape.mat", "val")


def test_mpii_samples_use_the_head_box_and_score_every_annotated_joint(mpii_mat) -> None:  # type: ignore[no-untyped-def]
    folder, _, path = mpii_mat
    people = read_mpii_mat(path)[:5]
    for res, heat in ((64, 16), (256, 64)):  # 64 px crops decode the JPEGs at 1/2 to 1/8
        ds = AnnotatedPoseDataset(people, folder, res, heat)
        assert ds.joints == 16 and len(ds) == 5 and not ds.estimated_reference
        for i, p in enumerate(people):
            x, maps, joints, vis, ref = ds[i]
            assert x.shape == (3, res, res) and maps.shape == (16, heat, heat)
            side = p.scale * 200 * 1.25
            want = float(head_size_from_box(p.head_box[None])[0]) * res / side * heat / res
            assert float(ref) == pytest.approx(want, rel=1e-5)
            assert torch.equal(vis, torch.from_numpy(p.visible))  # every annotated joint
            inside = ((joints >= -0.5) & (joints < heat - 0.5)).all(1) & vis
            coords, peaks = decode_heatmaps(maps[None])
            assert float((coords[0] - joints).norm(dim=1)[inside].max()) <= 0.75
            # sigma >= half a pixel: a real peak wherever the joint falls within its pixel
            assert float(peaks[0][inside].min()) >= math.exp(-1) - 1e-6
            assert float(maps[~inside].abs().sum()) == 0.0  # no target for a cut-off joint
    # a tight crop cuts the legs off: they still count (as misses), with empty targets
    tight = [dataclasses.replace(p, scale=p.scale * 0.4) for p in people]
    _, maps, joints, vis, _ = AnnotatedPoseDataset(tight, folder, 64, 16)[0]
    outside = vis & ~((joints >= -0.5) & (joints < 15.5)).all(1)
    assert outside.any() and float(maps[outside].abs().sum()) == 0.0
    estimated = AnnotatedPoseDataset.from_file(folder / "test_mpii.json", folder, 64, 16)
    assert estimated.estimated_reference


def test_reduced_jpeg_decoding_maps_pixels_exactly(tmp_path: Path) -> None:
    """A sharp marker in a photo whose size does not divide by 8 lands where its joint does,
    when the decoder shrinks the image by 8."""
    w, h, mark = 1283, 725, np.array([1001.0, 600.0])
    image = Image.new("RGB", (w, h), (30, 30, 30))
    from PIL import ImageDraw

    r = 40
    ImageDraw.Draw(image).ellipse((*(mark - r), *(mark + r)), fill=(0, 255, 0))
    image.save(tmp_path / "odd.jpg", quality=98)
    joints = np.zeros((16, 2))
    joints[0] = mark
    visible = np.zeros(16, dtype=bool)
    visible[0] = True
    # scale 4.5: the crop's source square is 1125 px for a 64 px crop -> decoded at 1/8
    person = PersonAnnotation("odd.jpg", joints, visible, mark - [0, 15 * 4.5], 4.5)
    _, shrink = _open_reduced(tmp_path / "odd.jpg", 4.5 * 200 * 1.25, 64)
    assert shrink == 1 / 8
    x, _, hj, _, _ = AnnotatedPoseDataset([person], tmp_path, 64, 16)[0]
    green = (x[1] > 0.6) & (x[0] < 0.4)  # (64, 64)
    ys, xs = torch.nonzero(green, as_tuple=True)
    centroid = np.array([xs.float().mean().item(), ys.float().mean().item()])
    np.testing.assert_allclose(centroid, (hj[0].numpy() + 0.5) * 4 - 0.5, atol=0.3)
    np.testing.assert_allclose(centroid, [32.0, 32.0], atol=0.3)  # crop_affine: centre -> size / 2


def test_augmented_samples_are_reproducible_by_key(mpii_mat) -> None:  # type: ignore[no-untyped-def]
    folder, _, path = mpii_mat
    ds = AnnotatedPoseDataset(read_mpii_mat(path)[:5], folder, 64, 16, seed=3)
    a, b = ds.sample(0, key=7), ds.sample(0, key=7)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    keys = range(8)
    assert any(not torch.equal(ds.sample(0, key=k)[0], ds[0][0]) for k in keys)
    assert len({ds.sample(0, key=k)[2].sum().item() for k in keys}) > 1


def test_lsp_samples_from_rendered_figures(tmp_path: Path) -> None:
    """A round trip through LSP's format: figures saved as im0001.jpg..., their joints in
    joints.mat; samples decode back to the joints and measure the torso."""
    images, joints = tmp_path / "images", []
    images.mkdir()
    for i in range(4):
        p = render_person(96, np.random.default_rng(i))
        Image.fromarray(p.image).save(images / f"im{i + 1:04d}.jpg", quality=95)
        joints.append(p.joints[MPII_TO_LSP])
    write_lsp_mat(tmp_path / "joints.mat", np.array(joints))
    ds = AnnotatedPoseDataset.from_file(tmp_path / "joints.mat", images, 64, 16)
    assert ds.joints == 14 and len(ds) == 4
    for i in range(4):
        _, maps, hj, vis, ref = ds[i]
        assert maps.shape == (14, 16, 16)
        inside = ((hj >= -0.5) & (hj < 15.5)).all(1) & vis
        coords, _ = decode_heatmaps(maps[None])
        assert float((coords[0] - hj).norm(dim=1)[inside].max()) <= 0.75
        # the torso measured on the sample's own joints (in heat-map pixels)
        assert float(ref) == pytest.approx(float(torso_size(hj[None].numpy())[0]), rel=1e-3)
    # a flip puts each left joint's map where the plain crop's right joint mirrors to
    key = next(k for k in range(100) if ds.augmentation(0, k)[2])
    scale_factor, rotation, _ = ds.augmentation(0, key)
    _, flipped, _, _, _ = ds.sample(0, key)
    p = ds.people[0]
    with Image.open(images / p.image) as im:
        _, plain, _ = crop_person(im, p.joints, p.visible, p.center, p.scale, 64,
                                  rotation=rotation, scale_factor=scale_factor)  # fmt: skip
    decoded, _ = decode_heatmaps(flipped[None])
    checked = 0
    for left, right in (("l_wrist", "r_wrist"), ("l_ankle", "r_ankle"), ("l_hip", "r_hip")):
        mirrored = np.array([63 - plain[LSP_JOINTS.index(right), 0],
                             plain[LSP_JOINTS.index(right), 1]])  # fmt: skip
        if not (mirrored >= 0).all() or not (mirrored <= 63).all():
            continue
        want = (mirrored + 0.5) / 4 - 0.5
        got = decoded[0, LSP_JOINTS.index(left)].numpy()
        assert np.abs(got - want).max() <= 0.75, (left, got, want)
        checked += 1
    assert checked >= 2  # the crop keeps most of the figure: the check is not vacuous


def test_splits(tmp_path: Path, mpii_mat) -> None:  # type: ignore[no-untyped-def]
    folder, _, path = mpii_mat
    people = read_mpii_mat(path)
    train, val = holdout(people)
    assert {p.image for p in val} == {sorted(p.image for p in people)[0]}
    assert len(train) + len(val) == len(people)
    data = PoseDataConfig(str(path), str(folder))
    assert [p.image for p in real_people(data)[1]] == [p.image for p in val]
    rng = np.random.default_rng(1)
    write_lsp_mat(tmp_path / "joints.mat", rng.uniform(5, 90, size=(10, 14, 2)))
    lsp = PoseDataConfig(str(tmp_path / "joints.mat"), str(tmp_path))
    tr, te = real_people(lsp)
    assert [p.image for p in tr] == [f"im{i:04d}.jpg" for i in range(1, 6)]
    assert [p.image for p in te] == [f"im{i:04d}.jpg" for i in range(6, 11)]
    with pytest.raises(SaganError, match="go together"):
        PoseDataConfig(str(path), "")
    # MPII for training, LSP for validation: one line, not a traceback mid-training
    mpii = read_mpii_json(folder / "test_mpii.json")
    write_mpii_mat(tmp_path / "clean.mat", mpii, _boxes(mpii), extra=False)
    mixed = PoseDataConfig(
        str(tmp_path / "clean.mat"), str(folder), val_annotations=str(tmp_path / "joints.mat")
    )
    cfg = PoseRunConfig(data=mixed)
    with pytest.raises(SaganError, match="validation annotations have 14 joints but"):
        datasets(resolve_config(cfg))
