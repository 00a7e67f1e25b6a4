"""Joint orders of MPII (16 joints) and LSP (14 joints), and their left/right swaps."""

from __future__ import annotations

__all__ = ["LSP_JOINTS", "LSP_SWAP", "MPII_JOINTS", "MPII_SWAP"]

MPII_JOINTS = (
    "r_ankle",
    "r_knee",
    "r_hip",
    "l_hip",
    "l_knee",
    "l_ankle",
    "pelvis",
    "thorax",
    "upper_neck",
    "head_top",
    "r_wrist",
    "r_elbow",
    "r_shoulder",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
)
"""The MPII Human Pose order (index = joint id in the annotations)."""

LSP_JOINTS = (
    "r_ankle",
    "r_knee",
    "r_hip",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_wrist",
    "r_elbow",
    "r_shoulder",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "neck",
    "head_top",
)
"""The Leeds Sports Pose order (``joints.mat``)."""


def _swap(names: tuple[str, ...]) -> tuple[int, ...]:
    """For each joint, the index of its mirror image (itself for centre joints)."""
    index = {n: i for i, n in enumerate(names)}
    out = []
    for n in names:
        if n.startswith("r_"):
            out.append(index["l_" + n[2:]])
        elif n.startswith("l_"):
            out.append(index["r_" + n[2:]])
        else:
            out.append(index[n])
    return tuple(out)


MPII_SWAP = _swap(MPII_JOINTS)
"""``flipped[:, MPII_SWAP]`` puts a horizontally flipped pose's joints back in order."""
LSP_SWAP = _swap(LSP_JOINTS)
