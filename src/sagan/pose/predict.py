"""Joints on a user's own image, and the skeleton drawn over it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from sagan.pose.joints import LSP_JOINTS, MPII_JOINTS
from sagan.pose.networks import StackedHourglass
from sagan.pose.transforms import PADDING, crop_affine, crop_person, transform_points

__all__ = ["LIMBS", "LSP_LIMBS", "draw_skeleton", "predict_image"]

LIMBS = (
    ("r_ankle", "r_knee"), ("r_knee", "r_hip"), ("r_hip", "pelvis"), ("l_hip", "pelvis"),
    ("l_knee", "l_hip"), ("l_ankle", "l_knee"), ("pelvis", "thorax"), ("thorax", "upper_neck"),
    ("upper_neck", "head_top"), ("r_wrist", "r_elbow"), ("r_elbow", "r_shoulder"),
    ("r_shoulder", "thorax"), ("l_shoulder", "thorax"), ("l_elbow", "l_shoulder"),
    ("l_wrist", "l_elbow"),
)  # fmt: skip
"""MPII's skeleton (16 joints)."""

LSP_LIMBS = (
    ("r_ankle", "r_knee"), ("r_knee", "r_hip"), ("r_hip", "l_hip"), ("l_knee", "l_hip"),
    ("l_ankle", "l_knee"), ("r_hip", "r_shoulder"), ("l_hip", "l_shoulder"),
    ("r_shoulder", "neck"), ("l_shoulder", "neck"), ("neck", "head_top"),
    ("r_wrist", "r_elbow"), ("r_elbow", "r_shoulder"), ("l_elbow", "l_shoulder"),
    ("l_wrist", "l_elbow"),
)  # fmt: skip
"""LSP's skeleton (14 joints)."""


def predict_image(
    G: StackedHourglass,
    image: Image.Image,
    resolution: int,
    heatmap: int,
    box: Sequence[float] | None = None,
    flip: bool = True,
) -> np.ndarray:
    """Joints ``(K, 2)`` (x, y) in ``image`` pixels, in the model's order (MPII's 16 or LSP's
    14). ``box`` (x, y, w, h) frames the person, and the crop around it is 1.25 times its
    longer side, as in training; without a box, the whole image is the crop."""
    from sagan.pose.train import predict_joints

    w, h = image.size
    if box is None:
        x0, y0, bw, bh = 0.0, 0.0, float(w), float(h)
        scale = max(bw, bh) / (200.0 * PADDING)  # the crop is the image's longer side
    else:
        x0, y0, bw, bh = (float(v) for v in box)
        scale = max(bw, bh) / 200.0  # MPII's scale: the person's size / 200 px
    center = np.array([x0 + bw / 2 - 0.5, y0 + bh / 2 - 0.5])
    crop, _, _ = crop_person(image, np.zeros((1, 2)), np.zeros(1), center, scale, resolution)
    x = torch.from_numpy(crop.copy()).permute(2, 0, 1).float()[None] / 255  # (1, 3, R, R)
    joints = predict_joints(G, x, flip)[0].numpy()  # (K, 2) heat-map pixels
    in_crop = (joints + 0.5) * resolution / heatmap - 0.5
    m = np.vstack([crop_affine(center, scale, 0.0, resolution), [0, 0, 1]])
    return transform_points(in_crop, np.linalg.inv(m)[:2])


def draw_skeleton(image: Image.Image, joints: np.ndarray) -> Image.Image:
    """A copy of ``image`` with the skeleton of ``joints`` ((16, 2) MPII or (14, 2) LSP)
    drawn: right side red, left blue, centre green."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 150))
    names, limbs = (MPII_JOINTS, LIMBS) if len(joints) == 16 else (LSP_JOINTS, LSP_LIMBS)
    if len(joints) != len(names):
        raise ValueError(f"expected 16 (MPII) or 14 (LSP) joints, got {len(joints)}")
    index = {n: i for i, n in enumerate(names)}
    for a, b in limbs:
        colour = (
            (230, 40, 40) if "r_" in a + b else (40, 90, 230) if "l_" in a + b else (40, 180, 60)
        )
        pa, pb = joints[index[a]], joints[index[b]]
        draw.line([tuple(pa), tuple(pb)], fill=colour, width=width)
    for x, y in joints:
        draw.ellipse((x - width, y - width, x + width, y + width), fill=(255, 255, 255))
    return out
