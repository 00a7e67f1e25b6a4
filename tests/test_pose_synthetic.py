"""The synthetic figures: proportions, determinism, visibility and the PCKh reference."""

from __future__ import annotations

import numpy as np

from sagan.pose.joints import MPII_JOINTS
from sagan.pose.metrics import head_size_from_box, pckh
from sagan.pose.synthetic import BONES, render_person

J = {n: i for i, n in enumerate(MPII_JOINTS)}


def _people(n: int, seed: int = 0, res: int = 96):  # type: ignore[no-untyped-def]
    rng = np.random.Generator(np.random.PCG64(seed))
    return [render_person(res, rng) for _ in range(n)]


def test_bone_lengths_follow_human_proportions() -> None:
    for p in _people(20):
        torso = np.linalg.norm(p.joints[J["thorax"]] - p.joints[J["pelvis"]])
        for parent, child, ratio in BONES:
            length = np.linalg.norm(p.joints[J[child]] - p.joints[J[parent]])
            assert abs(length / torso - ratio) < 1e-9, (parent, child)


def test_deterministic_and_in_mpii_order() -> None:
    a, b = _people(3, seed=5), _people(3, seed=5)
    for p, q in zip(a, b, strict=True):
        assert np.array_equal(p.image, q.image) and np.array_equal(p.joints, q.joints)
    p = a[0]
    assert p.image.shape == (96, 96, 3) and p.joints.shape == (16, 2) and p.visible.shape == (16,)
    # the person faces the camera: their right side is on the image's left, seen upright
    for p in a:
        spine = p.joints[J["thorax"]] - p.joints[J["pelvis"]]
        image_left = np.array([spine[1], -spine[0]])  # left of an upward spine
        for side, sign in (("r", 1), ("l", -1)):
            for joint in ("hip", "shoulder"):
                offset = (
                    p.joints[J[f"{side}_{joint}"]]
                    - p.joints[J["pelvis" if joint == "hip" else "thorax"]]
                )
                assert sign * np.dot(offset, image_left) > 0, (side, joint)


def test_invisible_joints_are_covered_or_outside() -> None:
    people = _people(60, seed=1)
    hidden = 0
    for p in people:
        inside = ((p.joints >= 0) & (p.joints <= 95)).all(axis=1)
        assert not (p.visible & ~inside).any()  # nothing outside counts as visible
        hidden += int((~p.visible & inside).sum())
    assert hidden > 0  # some joints inside the image are occluded
    assert np.mean([p.visible.mean() for p in people]) > 0.7


def test_head_box_gives_a_pckh_reference() -> None:
    people = _people(10, seed=2)
    heads = head_size_from_box(np.stack([p.head_box for p in people]))
    gt = np.stack([p.joints for p in people])  # (N, 16, 2)
    neck, top = gt[:, MPII_JOINTS.index("upper_neck")], gt[:, MPII_JOINTS.index("head_top")]
    # the drawn head is a disc on neck-top, its box a square of that side: MPII's head size
    # is 0.6 x the box diagonal
    np.testing.assert_allclose(heads, 0.6 * np.sqrt(2) * np.linalg.norm(top - neck, axis=1))
    vis = np.stack([p.visible for p in people])
    # PCKh@0.5 counts a joint within half a head size of the truth, per person
    direction = np.array([0.6, 0.8])  # a unit vector
    near = gt + 0.49 * heads[:, None, None] * direction
    far = gt + 0.51 * heads[:, None, None] * direction
    assert pckh(near, gt, vis, heads)["total"] == 100.0
    assert pckh(far, gt, vis, heads)["total"] == 0.0
    assert all(p.scale > 0 for p in people)
