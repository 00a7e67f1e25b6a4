"""Pose annotations: MPII (the official ``.mat`` release and the JSON layout of HRNet /
mmpose) and LSP (``joints.mat`` of LSP and of LSP-extended).

Every reader returns :class:`PersonAnnotation` records in 0-based pixel coordinates (pixel
centres at integers). The files themselves are MATLAB's 1-based: the readers subtract 1. The
``visible`` flag means "annotated", which is what the standard evaluations count (MPII's
``jnt_missing``); LSP annotates all 14 joints of every person, occluded ones included, and
its third row (a visibility flag) is not needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sagan.errors import SaganError

__all__ = [
    "LSP_SPLITS",
    "PersonAnnotation",
    "annotation_format",
    "read_annotations",
    "read_lsp_mat",
    "read_mpii_json",
    "read_mpii_mat",
]

LSP_SPLITS = ("train", "test", "all")
"""LSP's standard split: images 1-1000 train, 1001-2000 test. LSP-extended is all training."""


@dataclass(frozen=True)
class PersonAnnotation:
    """One annotated person: ``joints`` (K, 2) pixels, ``visible`` (K,) bool (annotated),
    ``center`` (2,) pixels, ``scale`` = height / 200 px, ``head_box`` ((x1, y1), (x2, y2))
    when the annotation has one, and ``video`` (MPII's video index) to keep the frames of one
    video on one side of a train / validation split (both from MPII's official file)."""

    image: str
    joints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: float
    head_box: np.ndarray | None = None
    video: int | None = None


def _json_entries(path: Path) -> list[Any]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SaganError(f"{path}: no such annotation file; check --annotations") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SaganError(
            f"{path}: not a readable JSON file ({exc}); give MPII annotations as .json or .mat"
        ) from None
    if not isinstance(entries, list):
        raise SaganError(f"{path}: expected a JSON list of people")
    return entries


def read_mpii_json(path: str | Path) -> list[PersonAnnotation]:
    """Read MPII people in the HRNet / mmpose JSON layout (``image``, ``joints``
    [16][2], ``joints_vis`` [16], ``center`` [2], ``scale``, all as in MPII's release, so
    1-based); one-line errors name the entry at fault."""
    path = Path(path)
    people = []
    for i, e in enumerate(_json_entries(path)):
        try:
            joints = np.asarray(e["joints"], dtype=np.float64) - 1  # (16, 2), to 0-based
            visible = np.asarray(e["joints_vis"]) > 0
            center = np.asarray(e["center"], dtype=np.float64) - 1
            person = PersonAnnotation(str(e["image"]), joints, visible, center, float(e["scale"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SaganError(f"{path}: entry {i} is missing or has a bad field ({exc})") from None
        if joints.shape != (16, 2) or visible.shape != (16,) or center.shape != (2,):
            raise SaganError(
                f"{path}: entry {i}: expected joints (16, 2), joints_vis (16,), center (2,)"
            )
        if not person.scale > 0:
            raise SaganError(f"{path}: entry {i}: scale must be > 0, got {person.scale}")
        people.append(person)
    return people


def _mat_errors() -> tuple[type[Exception], ...]:
    """What scipy raises on a damaged or unsupported file (a short one: IndexError)."""
    from scipy.io.matlab import MatReadError

    return (MatReadError, OSError, ValueError, TypeError, IndexError, NotImplementedError)


def _loadmat(path: Path) -> dict[str, Any]:
    import scipy.io

    try:
        return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except FileNotFoundError:
        raise SaganError(f"{path}: no such annotation file; check --annotations") from None
    except _mat_errors() as exc:
        raise SaganError(
            f"{path}: not a readable MATLAB file ({exc!r}); give the annotations as .mat or .json"
        ) from None


def _items(value: Any) -> list[Any]:
    """A MATLAB struct array loaded with ``squeeze_me``: one struct, an array, or empty."""
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _number(value: Any) -> float | None:
    """A MATLAB scalar (number, 1-element array or numeric string); None when empty,
    missing or not a number."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return float(value) if value else None
    arr = np.asarray(value, dtype=np.float64).ravel()
    return float(arr[0]) if arr.size and np.isfinite(arr[0]) else None


def read_mpii_mat(path: str | Path) -> list[PersonAnnotation]:
    """Read the annotated people of MPII's official release
    (``mpii_human_pose_v1_u12_1.mat``): every person of a training image (``img_train`` 1)
    with joints, a centre and a scale, with their head boxes. The test images carry no
    joints in the release; hold out part of the training images for validation."""
    path = Path(path)
    mat = _loadmat(path)
    if "RELEASE" not in mat:
        raise SaganError(f"{path}: no RELEASE struct; is this MPII's official .mat file?")
    release = mat["RELEASE"]
    try:
        annolist = _items(release.annolist)
        train = np.asarray(release.img_train).ravel()
    except AttributeError as exc:
        raise SaganError(f"{path}: RELEASE lacks annolist or img_train ({exc})") from None
    if len(annolist) != len(train):
        raise SaganError(f"{path}: {len(annolist)} images in annolist but {len(train)} flags")
    people = []
    for i, (anno, is_train) in enumerate(zip(annolist, train, strict=True)):
        if not is_train or not hasattr(anno, "annorect"):
            continue
        try:
            name = str(anno.image.name)
            video = _number(getattr(anno, "vididx", None))
            for rect in _items(anno.annorect):
                person = _mpii_person(rect, name, None if video is None else int(video))
                if person is not None:
                    people.append(person)
        except (AttributeError, TypeError, ValueError) as exc:
            raise SaganError(f"{path}: annolist entry {i + 1} is malformed ({exc})") from None
    if not people:
        raise SaganError(f"{path}: no annotated person in the training images")
    return people


def _mpii_person(rect: Any, image: str, video: int | None) -> PersonAnnotation | None:
    """One ``annorect`` -> a person, or None when it has no joints, centre or scale."""
    fields = getattr(rect, "_fieldnames", ())
    if not {"annopoints", "objpos", "scale"} <= set(fields):
        return None
    scale = _number(rect.scale)
    points = getattr(rect.annopoints, "point", None)
    objpos = rect.objpos
    if scale is None or not scale > 0 or points is None or not hasattr(objpos, "x"):
        return None
    joints = np.zeros((16, 2))
    visible = np.zeros(16, dtype=bool)
    for p in _items(points):
        jid, x, y = _number(p.id), _number(p.x), _number(p.y)
        if jid is not None and 0 <= jid < 16 and x is not None and y is not None:
            joints[int(jid)] = (x - 1, y - 1)
            visible[int(jid)] = True
    cx, cy = _number(objpos.x), _number(getattr(objpos, "y", None))
    if not visible.any() or cx is None or cy is None:
        return None
    center = np.array([cx, cy], dtype=np.float64) - 1
    head = None
    if {"x1", "y1", "x2", "y2"} <= set(fields):
        corners = [_number(getattr(rect, k)) for k in ("x1", "y1", "x2", "y2")]
        if all(c is not None for c in corners):
            head = np.array(corners, dtype=np.float64).reshape(2, 2) - 1  # ((x1, y1), (x2, y2))
    return PersonAnnotation(image, joints, visible, center, scale, head, video)


def read_lsp_mat(path: str | Path, split: str = "all") -> list[PersonAnnotation]:
    """Read LSP's ``joints.mat`` (3 x 14 x 2000; images ``im0001.jpg``...; every joint
    annotated) or LSP-extended's (14 x 3 x 10000; ``im00001.jpg``...). The third value is a
    visibility flag in both, not needed here; in LSP-extended a joint without a position
    (x or y <= 0) is taken as not annotated.

    ``split`` picks LSP's standard halves: ``train`` (images 1-1000), ``test`` (1001-2000) or
    ``all``; LSP-extended has training images only (its ``test`` split is empty). The
    person's centre is the middle of the joints' bounding box, ``scale`` its longer side /
    200 px.
    """
    path = Path(path)
    if split not in LSP_SPLITS:
        raise SaganError(f"LSP split {split!r}: choose one of {', '.join(LSP_SPLITS)}")
    mat = _loadmat(path)
    if "joints" not in mat:
        raise SaganError(f"{path}: no 'joints' matrix; is this LSP's joints.mat?")
    j = np.asarray(mat["joints"], dtype=np.float64)
    if j.ndim == 3 and j.shape[:2] == (3, 14):  # LSP: every joint annotated
        coords = j[:2].transpose(2, 1, 0)  # (3, 14, N) -> (N, 14, 2)
        annotated = np.ones(coords.shape[:2], dtype=bool)
        names = [f"im{i + 1:04d}.jpg" for i in range(j.shape[2])]
        half = j.shape[2] // 2
        keep = {"train": range(half), "test": range(half, j.shape[2]), "all": range(j.shape[2])}
        indices: Iterable[int] = keep[split]
    elif j.ndim == 3 and j.shape[:2] == (14, 3):  # LSP-extended
        coords = j[:, :2].transpose(2, 0, 1)  # (14, 3, N) -> (N, 14, 2)
        annotated = (coords > 0).all(axis=2)  # (N, 14): a position was given
        names = [f"im{i + 1:05d}.jpg" for i in range(j.shape[2])]
        indices = range(0) if split == "test" else range(j.shape[2])  # all training images
    else:
        raise SaganError(
            f"{path}: joints has shape {j.shape}; expected LSP's (3, 14, N) or "
            "LSP-extended's (14, 3, N)"
        )
    people = []
    for i in indices:
        vis = annotated[i]
        if not vis.any():
            continue
        pts = coords[i] - 1  # (14, 2), to 0-based
        lo, hi = pts[vis].min(axis=0), pts[vis].max(axis=0)
        scale = max(float((hi - lo).max()), 1.0) / 200.0
        people.append(PersonAnnotation(names[i], pts, vis, (lo + hi) / 2, scale))
    return people


def annotation_format(path: str | Path) -> str:
    """``mpii`` or ``lsp``, from the file: JSON is MPII's layout; a .mat holds either
    MPII's RELEASE struct or LSP's joints matrix."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return "mpii"
    if path.suffix.lower() != ".mat":
        raise SaganError(f"{path}: annotations must be MPII .json / .mat or LSP joints.mat")
    import scipy.io

    try:
        names = {name for name, _, _ in scipy.io.whosmat(str(path))}
    except FileNotFoundError:
        raise SaganError(f"{path}: no such annotation file; check --annotations") from None
    except _mat_errors() as exc:
        raise SaganError(
            f"{path}: not a readable MATLAB file ({exc!r}); give the annotations as .mat or .json"
        ) from None
    if "RELEASE" in names:
        return "mpii"
    if "joints" in names:
        return "lsp"
    raise SaganError(f"{path}: neither MPII's RELEASE struct nor LSP's joints matrix")


def read_annotations(path: str | Path, lsp_split: str = "all") -> list[PersonAnnotation]:
    """Read any supported annotation file (see :func:`annotation_format`)."""
    path = Path(path)
    kind = annotation_format(path)
    if kind == "lsp":
        return read_lsp_mat(path, lsp_split)
    return read_mpii_json(path) if path.suffix.lower() == ".json" else read_mpii_mat(path)
