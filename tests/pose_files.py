"""Annotation files in the real MPII / LSP formats, written from known people for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from sagan.pose.data import PersonAnnotation
from sagan.pose.joints import LSP_JOINTS, MPII_JOINTS


def struct_array(records: list[dict[str, Any]]) -> np.ndarray:
    """A 1 x n MATLAB struct array (savemat writes numpy structured arrays as structs)."""
    keys = list(records[0])
    out = np.zeros((1, len(records)), dtype=[(k, "O") for k in keys])
    for i, r in enumerate(records):
        for k in keys:
            out[0, i][k] = r[k]
    return out


def write_mpii_mat(
    path: Path, people: list[PersonAnnotation], boxes: np.ndarray, extra: bool = True
) -> None:
    """MPII's official layout (RELEASE.annolist[i].annorect[j] ...), 1-based coordinates,
    with the release's quirks: points out of order, ``is_visible`` as a string, a number or
    empty; a person without joints beside the first; then ``lone.jpg`` (a person with one
    point, one point without an id and a person without a vertical centre), an image without
    people and a test image without joints (those three images only with ``extra``)."""
    annolist, train = [], []
    for k, (p, box) in enumerate(zip(people, boxes, strict=True)):
        visible_kinds = ["1", 1, np.zeros((0, 0)), "0"]
        points = [
            {"x": x + 1, "y": y + 1, "id": j, "is_visible": visible_kinds[j % 4]}
            for j, (x, y) in enumerate(p.joints)
            if p.visible[j]
        ][::-1]
        rect = {
            "x1": box[0, 0] + 1,
            "y1": box[0, 1] + 1,
            "x2": box[1, 0] + 1,
            "y2": box[1, 1] + 1,
            "annopoints": struct_array([{"point": struct_array(points)}]),
            "scale": p.scale,
            "objpos": struct_array([{"x": p.center[0] + 1, "y": p.center[1] + 1}]),
        }
        rects = [rect]
        if k == 0:  # a second person with no joints: skipped
            rects.append({**rect, "annopoints": np.zeros((0, 0))})
        annolist.append(
            {"image": struct_array([{"name": p.image}]), "annorect": struct_array(rects)}
        )
        train.append(1)
    if not extra:
        release = struct_array(
            [{"annolist": struct_array(annolist), "img_train": np.array([train], dtype=float)}]
        )
        scipy.io.savemat(str(path), {"RELEASE": release})
        return
    # a training image whose person has one point and one with an empty id (skipped), and
    # whose second person has no vertical centre (skipped)
    one = {"x": 11.0, "y": 21.0, "id": 9, "is_visible": 1}
    broken = {"x": 5.0, "y": 6.0, "id": np.zeros((0, 0)), "is_visible": 1}
    lone = {
        **rect,
        "annopoints": struct_array([{"point": struct_array([one, broken])}]),
        "objpos": struct_array([{"x": 30.0, "y": 40.0}]),
    }
    no_y = {**lone, "objpos": struct_array([{"x": 30.0, "y": np.zeros((0, 0))}])}
    annolist.append(
        {"image": struct_array([{"name": "lone.jpg"}]), "annorect": struct_array([lone, no_y])}
    )
    train.append(1)
    # a training image without people, and a test image whose person has no joints
    annolist.append({"image": struct_array([{"name": "empty.jpg"}]), "annorect": np.zeros((0, 0))})
    train.append(1)
    annolist.append(
        {
            "image": struct_array([{"name": "test-image.jpg"}]),
            "annorect": struct_array([{"scale": 1.0, "objpos": np.zeros((0, 0))}]),
        }
    )
    train.append(0)
    release = struct_array(
        [{"annolist": struct_array(annolist), "img_train": np.array([train], dtype=float)}]
    )
    scipy.io.savemat(str(path), {"RELEASE": release})


MPII_TO_LSP = [MPII_JOINTS.index("upper_neck" if n == "neck" else n) for n in LSP_JOINTS]
"""LSP joint i is MPII joint MPII_TO_LSP[i] (LSP's neck is MPII's upper neck)."""


def write_lsp_mat(path: Path, joints: np.ndarray, extended: bool = False) -> None:
    """``joints`` (N, 14, 2) 0-based -> LSP's (3, 14, N) or LSP-extended's (14, 3, N)."""
    n = len(joints)
    ones = np.ones((n, 14, 1))
    full = np.concatenate([joints + 1, ones], axis=2)  # (N, 14, 3), 1-based
    array = full.transpose(1, 2, 0) if extended else full.transpose(2, 1, 0)
    scipy.io.savemat(str(path), {"joints": array})
