"""PCKh / PCK against hand-computed cases, and the joint orders."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import shared_data
from sagan.pose.joints import LSP_JOINTS, LSP_SWAP, MPII_JOINTS, MPII_SWAP
from sagan.pose.metrics import head_size_from_box, metric_for, pck, pckh, torso_size


def test_joint_orders_and_swaps() -> None:
    assert len(MPII_JOINTS) == 16 and MPII_JOINTS[6:10] == (
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
    )
    assert MPII_SWAP == (5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10)
    assert LSP_SWAP == (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13)
    for swap in (MPII_SWAP, LSP_SWAP):
        assert all(swap[swap[i]] == i for i in range(len(swap)))  # swapping twice: identity
    assert len(LSP_JOINTS) == 14


def test_head_size_is_six_tenths_of_the_box_diagonal() -> None:
    boxes = np.array([[[10, 20], [40, 60]], [[0, 0], [6, 8]]])  # diagonals 50 and 10
    np.testing.assert_allclose(head_size_from_box(boxes), [30.0, 6.0])


def test_pckh_by_hand() -> None:
    gt = np.zeros((2, 16, 2))
    pred = gt.copy()
    head = np.array([10.0, 20.0])  # thresholds at 0.5: 5 px and 10 px
    visible = np.ones((2, 16), dtype=bool)
    pred[0, 0] = [3, 4]  # person 0, r_ankle: 5 px -> correct (<=, as MPII's code)
    pred[1, 0] = [6, 8.1]  # person 1, r_ankle: 10.08 px -> wrong
    pred[0, 10] = [0, 6]  # r_wrist 6 px > 5 -> wrong
    pred[1, 10] = [0, 6]  # 6 px <= 10 -> correct
    pred[:, 6] = [100, 100]  # pelvis always wrong, but it is not in the total
    visible[1, 15] = False  # l_wrist of person 1 not annotated: not scored
    pred[1, 15] = [500, 500]
    out = pckh(pred, gt, visible, head)
    assert out["r_ankle"] == 50.0 and out["r_wrist"] == 50.0
    assert out["pelvis"] == 0.0 and out["l_wrist"] == 100.0 and out["head_top"] == 100.0
    # total: 14 joints x 2 people - 1 invisible = 27 scored, 2 wrong
    assert out["total"] == pytest.approx(100 * 25 / 27)
    assert set(out) == {*MPII_JOINTS, "total"}


def test_a_joint_never_visible_is_nan_and_thresholds_scale() -> None:
    gt = np.zeros((1, 16, 2))
    pred = gt + np.array([0.0, 4.0])  # every joint 4 px off
    visible = np.ones((1, 16), dtype=bool)
    visible[0, 9] = False
    out = pckh(pred, gt, visible, [10.0])
    assert math.isnan(out["head_top"]) and out["total"] == 100.0
    assert pckh(pred, gt, visible, [10.0], threshold=0.3)["total"] == 0.0


def test_pck_with_the_torso() -> None:
    gt = np.zeros((1, 14, 2))
    gt[0, LSP_JOINTS.index("l_shoulder")] = [30, 0]
    gt[0, LSP_JOINTS.index("r_hip")] = [0, 40]  # torso 50 -> 0.2 x 50 = 10 px
    assert torso_size(gt).tolist() == [50.0]
    pred = gt.copy()
    pred[0, 0] += [6, 8]  # 10 px: correct
    pred[0, 13] += [0, 10.5]  # head_top wrong
    out = pck(pred, gt, np.ones((1, 14)))
    assert out["r_ankle"] == 100.0 and out["head_top"] == 0.0
    assert out["total"] == pytest.approx(100 * 13 / 14)


def test_metric_for_picks_the_standard_measure_by_joint_count() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 64, (3, 14, 2))
    pred = gt + rng.normal(0, 4, gt.shape)
    vis, ref = np.ones((3, 14)), torso_size(gt)
    lsp = metric_for(14)
    assert (lsp.key, lsp.label) == ("pck", "PCK@0.2")
    assert lsp(pred, gt, vis, ref) == pck(pred, gt, vis, threshold=0.2, reference=ref)
    gt16 = rng.uniform(0, 64, (3, 16, 2))
    pred16, heads = gt16 + rng.normal(0, 4, gt16.shape), np.full(3, 12.0)
    mpii = metric_for(16)
    assert (mpii.key, mpii.label) == ("pckh", "PCKh@0.5")
    assert mpii(pred16, gt16, np.ones((3, 16)), heads) == pckh(
        pred16, gt16, np.ones((3, 16)), heads
    )
    with pytest.raises(ValueError, match="no standard pose metric for 17 joints"):
        metric_for(17)


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match=r"pred and gt of shape \(N, 16, 2\)"):
        pckh(np.zeros((1, 14, 2)), np.zeros((1, 16, 2)), np.ones((1, 16)), [1.0])
    with pytest.raises(ValueError, match="one reference size per person"):
        pckh(np.zeros((2, 16, 2)), np.zeros((2, 16, 2)), np.ones((2, 16)), [1.0])
    with pytest.raises(ValueError, match="must be positive"):
        pckh(np.zeros((1, 16, 2)), np.zeros((1, 16, 2)), np.ones((1, 16)), [0.0])


def test_pckh_on_real_mpii_annotations() -> None:
    folder = shared_data("mpii-sample")
    people = json.loads((folder / "test_mpii.json").read_text())
    gt = np.array([p["joints"] for p in people], dtype=np.float64)  # (5, 16, 2)
    visible = np.array([p["joints_vis"] for p in people]) > 0
    # MPII's scale is the person height / 200 px; use a tenth of the height as a head size
    head = np.array([p["scale"] for p in people], dtype=np.float64) * 200 / 10
    assert pckh(gt, gt, visible, head)["total"] == 100.0
    # a left/right mix-up (the classic error) costs every limb joint whose sides lie apart
    swapped = pckh(gt[:, list(MPII_SWAP)], gt, visible, head)
    assert swapped["pelvis"] == 100.0 and swapped["head_top"] == 100.0
    assert swapped["total"] < 100.0
