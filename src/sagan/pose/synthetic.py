"""A synthetic pose data set made on the fly: articulated figures in MPII's 16-joint order.

Each figure has human proportions (bone lengths as fractions of the pelvis-thorax length T),
joint angles drawn within human limits, a random similarity transform (size, rotation,
position), limbs drawn as thick capsules, a quadrilateral torso and a head ellipse, in random
colours, over a cluttered background. Random occluders are drawn last; a joint they cover, or
one outside the image, is not visible. Each sample has a head box (for PCKh) and MPII-style
``center`` / ``scale`` (height / 200 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from sagan.pose.joints import MPII_JOINTS

__all__ = ["BONES", "SyntheticPerson", "render_person"]


J = {name: i for i, name in enumerate(MPII_JOINTS)}

BONES: tuple[tuple[str, str, float], ...] = (
    ("pelvis", "thorax", 1.0),
    ("thorax", "upper_neck", 0.25),
    ("upper_neck", "head_top", 0.45),
    ("pelvis", "r_hip", 0.25),
    ("pelvis", "l_hip", 0.25),
    ("r_hip", "r_knee", 0.9),
    ("l_hip", "l_knee", 0.9),
    ("r_knee", "r_ankle", 0.85),
    ("l_knee", "l_ankle", 0.85),
    ("thorax", "r_shoulder", 0.38),
    ("thorax", "l_shoulder", 0.38),
    ("r_shoulder", "r_elbow", 0.55),
    ("l_shoulder", "l_elbow", 0.55),
    ("r_elbow", "r_wrist", 0.5),
    ("l_elbow", "l_wrist", 0.5),
)
"""(parent, child, length / T): the kinematic tree, rooted at the pelvis."""

# (child, range of its bone's angle in degrees, relative to the parent bone's direction)
_LIMITS = {
    "upper_neck": (-25, 25),
    "head_top": (-30, 30),
    "r_knee": (-20, 70),  # hip: the thigh's angle from straight down, outward positive
    "l_knee": (-20, 70),
    "r_ankle": (-140, 0),  # knee: bends backwards only
    "l_ankle": (-140, 0),
    "r_elbow": (-30, 170),  # shoulder: the upper arm's angle from down
    "l_elbow": (-30, 170),
    "r_wrist": (0, 150),  # elbow: bends one way only
    "l_wrist": (0, 150),
}


@dataclass(frozen=True)
class SyntheticPerson:
    """One sample: ``image`` (R, R, 3) uint8, ``joints`` (16, 2) pixels (x, y), ``visible``
    (16,), ``head_box`` (2, 2) as [[x1, y1], [x2, y2]], ``center`` (2,), ``scale``."""

    image: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    head_box: np.ndarray
    center: np.ndarray
    scale: float


def _unit(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([np.sin(a), np.cos(a)])  # 0 degrees points down the image (+y)


def _skeleton(rng: np.random.Generator) -> np.ndarray:
    """Joints (16, 2) of a figure with T = 1, pelvis at the origin, upright."""
    pts = np.zeros((16, 2))
    lean = rng.uniform(-20, 20)
    up = lean + 180.0  # thorax above the pelvis
    direction = {"thorax": up}
    pts[J["thorax"]] = _unit(up)
    side = {"r": -1.0, "l": 1.0}  # facing the camera: the person's right is on image left
    for parent, child, length in BONES[1:]:
        if child in ("r_hip", "l_hip", "r_shoulder", "l_shoulder"):
            d = lean + 90.0 * side[child[0]]  # sideways from the spine
        elif child in ("r_knee", "l_knee", "r_elbow", "l_elbow"):
            lo, hi = _LIMITS[child]
            d = lean + side[child[0]] * rng.uniform(lo, hi)
        else:
            lo, hi = _LIMITS[child]
            d = direction[parent] + side.get(child[0], 1.0) * rng.uniform(lo, hi)
        direction[child] = d
        pts[J[child]] = pts[J[parent]] + length * _unit(d)
    return pts


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def render_person(resolution: int, rng: np.random.Generator, occluders: int = 2) -> SyntheticPerson:
    """Draw one figure at ``resolution`` px with ``rng`` (numpy ``Generator``)."""
    r = resolution
    pts = _skeleton(rng)
    size = rng.uniform(0.16, 0.24) * r  # T in pixels
    angle = np.deg2rad(rng.uniform(-30, 30))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = pts @ rot.T * size
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    room = np.maximum(r - (hi - lo), 1.0)
    pts = pts - lo + rng.uniform(0, 1, 2) * room  # the figure mostly inside the image
    img = Image.new("RGB", (r, r), _colour(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(4, 10)):  # clutter
        x0, y0 = rng.uniform(0, r, 2)
        w, h = rng.uniform(0.05, 0.4, 2) * r
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=_colour(rng))
    width = max(2, int(0.18 * size))
    torso = [pts[J[n]] for n in ("r_shoulder", "l_shoulder", "l_hip", "r_hip")]
    draw.polygon([tuple(p) for p in torso], fill=_colour(rng))
    for parent, child, _ in BONES[3:]:
        if child.endswith(("hip", "shoulder")):
            continue
        a, b = tuple(pts[J[parent]]), tuple(pts[J[child]])
        colour = _colour(rng)
        draw.line([a, b], fill=colour, width=width)
        for p in (a, b):  # round caps: capsules
            draw.ellipse(
                (p[0] - width / 2, p[1] - width / 2, p[0] + width / 2, p[1] + width / 2),
                fill=colour,
            )
    neck, top = pts[J["upper_neck"]], pts[J["head_top"]]
    centre, radius = (neck + top) / 2, np.linalg.norm(top - neck) / 2
    head_box = np.stack([centre - radius, centre + radius])  # (2, 2)
    draw.ellipse(tuple(head_box.flatten()), fill=_colour(rng))
    visible = ((pts >= 0) & (pts <= r - 1)).all(axis=1)
    for _ in range(occluders):
        if rng.random() < 0.5:
            continue
        x0, y0 = rng.uniform(0, r, 2)
        w, h = rng.uniform(0.1, 0.3, 2) * r
        draw.rectangle((x0, y0, x0 + w, y0 + h), fill=_colour(rng))
        covered = (
            (pts[:, 0] >= x0) & (pts[:, 0] <= x0 + w) & (pts[:, 1] >= y0) & (pts[:, 1] <= y0 + h)
        )
        visible &= ~covered
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return SyntheticPerson(
        image=np.asarray(img),
        joints=pts,
        visible=visible,
        head_box=head_box,
        center=(lo + hi) / 2,
        scale=float((hi - lo).max() * 1.1 / 200),
    )
