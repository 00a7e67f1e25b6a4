"""MPII annotations in the JSON layout of mmpose / pytorch-pose: a list of people, each with
``image``, ``joints`` [16][2], ``joints_vis`` [16], ``center`` [2] and ``scale``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sagan.errors import SaganError

__all__ = ["PersonAnnotation", "read_mpii_json"]


@dataclass(frozen=True)
class PersonAnnotation:
    """One annotated person: ``joints`` (16, 2) pixels, ``visible`` (16,) bool."""

    image: str
    joints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: float


def read_mpii_json(path: str | Path) -> list[PersonAnnotation]:
    """Read an MPII JSON annotation file; one-line errors naming the entry at fault."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SaganError(f"{path}: no such annotation file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SaganError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(entries, list):
        raise SaganError(f"{path}: expected a JSON list of people")
    people = []
    for i, e in enumerate(entries):
        try:
            joints = np.asarray(e["joints"], dtype=np.float64)
            visible = np.asarray(e["joints_vis"]) > 0
            center = np.asarray(e["center"], dtype=np.float64)
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
