"""PCKh (MPII) and PCK (LSP): the share of joints predicted within a fraction of a body-size
reference of the ground truth.

* PCKh@0.5 (Andriluka et al. 2014; the standard MPII evaluation): the reference is the head
  size, 0.6 x the diagonal of the annotated head box (:func:`head_size_from_box`). ``total``
  is taken over every visible joint except pelvis and thorax, i.e. the per-joint scores
  weighted by how many visible instances each joint has.
* PCK@0.2 (LSP): the reference is the torso size, the distance between the left shoulder and
  the right hip (:func:`torso_size`); ``total`` is over every visible joint.

Both return ``{joint name: percent, ..., "total": percent}``; a joint never visible scores
NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sagan.pose.joints import LSP_JOINTS, MPII_JOINTS

__all__ = ["PoseMetric", "head_size_from_box", "metric_for", "pck", "pckh", "torso_size"]

_MPII_EXCLUDED = ("pelvis", "thorax")


def head_size_from_box(boxes: npt.ArrayLike) -> np.ndarray:
    """Head boxes ``(N, 2, 2)`` as ``[[x1, y1], [x2, y2]]`` -> head sizes ``(N,)``:
    0.6 x the box diagonal, as in MPII's evaluation code."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 3 or b.shape[1:] != (2, 2):
        raise ValueError(f"expected head boxes (N, 2, 2), got {b.shape}")
    return 0.6 * np.linalg.norm(b[:, 1] - b[:, 0], axis=1)


def torso_size(gt: npt.ArrayLike) -> np.ndarray:
    """LSP ground truth ``(N, 14, 2)`` -> torso sizes ``(N,)``: |left shoulder - right hip|."""
    g = np.asarray(gt, dtype=np.float64)
    if g.ndim != 3 or g.shape[1:] != (len(LSP_JOINTS), 2):
        raise ValueError(f"expected LSP joints (N, 14, 2), got {g.shape}")
    return np.linalg.norm(
        g[:, LSP_JOINTS.index("l_shoulder")] - g[:, LSP_JOINTS.index("r_hip")], axis=1
    )


def _scores(
    pred: npt.ArrayLike,
    gt: npt.ArrayLike,
    visible: npt.ArrayLike,
    reference: npt.ArrayLike,
    threshold: float,
    names: tuple[str, ...],
    excluded: tuple[str, ...],
) -> dict[str, float]:
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    v = np.asarray(visible).astype(bool)
    ref = np.asarray(reference, dtype=np.float64)
    n, k = len(g), len(names)
    if p.shape != (n, k, 2) or g.shape != (n, k, 2):
        raise ValueError(f"expected pred and gt of shape (N, {k}, 2), got {p.shape} and {g.shape}")
    if v.shape != (n, k):
        raise ValueError(f"expected visible of shape ({n}, {k}), got {v.shape}")
    if ref.shape != (n,):
        raise ValueError(f"expected one reference size per person ({n},), got {ref.shape}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    if (ref[v.any(axis=1)] <= 0).any() or not np.isfinite(ref[v.any(axis=1)]).all():
        raise ValueError("reference sizes must be positive and finite for people with joints")
    dist = np.linalg.norm(p - g, axis=2)  # (N, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        correct = (dist / ref[:, None] <= threshold) & v  # (N, K)
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        seen = int(v[:, j].sum())
        out[name] = 100.0 * correct[:, j].sum() / seen if seen else float("nan")
    keep = np.array([name not in excluded for name in names])
    seen = int(v[:, keep].sum())
    out["total"] = 100.0 * correct[:, keep].sum() / seen if seen else float("nan")
    return out


def pckh(
    pred: npt.ArrayLike,
    gt: npt.ArrayLike,
    visible: npt.ArrayLike,
    head_size: npt.ArrayLike,
    threshold: float = 0.5,
) -> dict[str, float]:
    """PCKh of MPII predictions.

    Args:
        pred: predicted joints ``(N, 16, 2)`` in pixels, MPII order (:data:`MPII_JOINTS`).
        gt: annotated joints ``(N, 16, 2)`` in pixels, the same order.
        visible: ``(N, 16)``, the annotated (visible) joints that are scored.
        head_size: ``(N,)``, e.g. :func:`head_size_from_box` of the head boxes.
        threshold: the fraction of the head size (0.5 for PCKh@0.5).

    Returns:
        ``{joint name: percent}`` and ``"total"``: over visible joints except pelvis/thorax.
    """
    return _scores(pred, gt, visible, head_size, threshold, MPII_JOINTS, _MPII_EXCLUDED)


def pck(
    pred: npt.ArrayLike,
    gt: npt.ArrayLike,
    visible: npt.ArrayLike,
    threshold: float = 0.2,
    reference: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """PCK of LSP predictions ``(N, 14, 2)``; the reference defaults to :func:`torso_size`
    of ``gt``. Returns ``{joint name: percent}`` and ``"total"`` over every visible joint."""
    ref = torso_size(gt) if reference is None else reference
    return _scores(pred, gt, visible, ref, threshold, LSP_JOINTS, ())


@dataclass(frozen=True)
class PoseMetric:
    """The standard measure for one joint set: ``key`` for logs (``pckh``), ``label`` for people
    (``PCKh@0.5``); calling it scores ``(pred, gt, visible, reference)`` as :func:`pckh` or
    :func:`pck` do."""

    key: str
    label: str
    joints: int

    def __call__(
        self,
        pred: npt.ArrayLike,
        gt: npt.ArrayLike,
        visible: npt.ArrayLike,
        reference: npt.ArrayLike,
    ) -> dict[str, float]:
        if self.joints == len(LSP_JOINTS):
            return pck(pred, gt, visible, threshold=0.2, reference=reference)
        return pckh(pred, gt, visible, reference)


def metric_for(joints: int) -> PoseMetric:
    """PCKh@0.5 with head sizes for MPII's 16 joints, PCK@0.2 with torso sizes for LSP's 14."""
    if joints == len(MPII_JOINTS):
        return PoseMetric("pckh", "PCKh@0.5", joints)
    if joints == len(LSP_JOINTS):
        return PoseMetric("pck", "PCK@0.2", joints)
    raise ValueError(f"no standard pose metric for {joints} joints (MPII has 16, LSP 14)")
