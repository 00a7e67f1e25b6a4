"""The condition vector of CESAGAN: the share of the level's tiles of each type.

``condition = tile_counts / (H * W)``, 8 numbers in [0, 1] in the channel order of
:data:`~sagan.levels.tiles.TILES`. A request such as ``"enemies=3,key=1"`` fixes some counts;
the others are taken from a random training level, and floor fills what is left.
"""

from __future__ import annotations

import numpy as np

from sagan.errors import SaganError
from sagan.levels.encoding import tile_counts
from sagan.levels.tiles import ENEMIES, FLOOR, NAMES

__all__ = [
    "REQUEST_NAMES",
    "condition_vectors",
    "matches_request",
    "parse_condition",
    "parse_request",
    "requested_counts",
    "shares",
]

_ALIASES = {"walls": "wall", "keys": "key", "doors": "door", "goal": "door", "avatars": "avatar"}
REQUEST_NAMES = (*NAMES, "enemies")
"""What ``--condition`` may fix: a tile type, or ``enemies`` (the three kinds together)."""


def shares(counts: np.ndarray, area: int) -> np.ndarray:
    """Tile counts ``(N, 8)`` of levels of ``area`` tiles -> condition vectors ``(N, 8)``."""
    return (np.asarray(counts) / area).astype(np.float32)


def condition_vectors(levels: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Levels ``(N, H, W)`` -> their condition vectors ``(N, 8)`` float32; with their solution
    ``lengths`` (N,) in moves, ``(N, 9)``: the length stored as moves / area, like a share."""
    levels = np.asarray(levels)
    area = levels.shape[-2] * levels.shape[-1]
    c = shares(tile_counts(levels), area)
    if lengths is None:
        return c
    return np.concatenate([c, shares(np.asarray(lengths)[:, None], area)], axis=1)


def parse_condition(text: str | None) -> tuple[dict[str, int], tuple[int, int] | None]:
    """``"enemies=3, length=20..30"`` -> (tile counts ``{"enemies": 3}``, the solution-length
    range ``(20, 30)`` in moves, inclusive; ``length=25`` is ``(25, 25)``); one-line errors."""
    if not text or not text.strip():
        return {}, None
    parts, length = [], None
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip().lower() not in ("length", "solution"):
            parts.append(part)
            continue
        lo, dots, hi = value.strip().partition("..")
        try:
            length = (int(lo), int(hi) if dots else int(lo))
        except ValueError:
            raise SaganError(
                f"--condition {part.strip()!r}: write length=MIN..MAX (moves), e.g. length=20..30"
            ) from None
        if length[0] < 1 or length[1] < length[0]:
            raise SaganError(
                f"--condition {part.strip()!r}: the range must be 1 <= MIN <= MAX moves"
            )
    return parse_request(",".join(parts)), length


def parse_request(text: str | None) -> dict[str, int]:
    """``"enemies=3, key=1"`` -> ``{"enemies": 3, "key": 1}``; one-line errors."""
    if not text or not text.strip():
        return {}
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if not sep or name not in REQUEST_NAMES:
            raise SaganError(
                f"--condition {part.strip()!r}: write NAME=COUNT with NAME one of "
                f"{', '.join(REQUEST_NAMES)}, or length=MIN..MAX"
            )
        try:
            count = int(value)
        except ValueError:
            raise SaganError(
                f"--condition {part.strip()!r}: the count must be a whole number"
            ) from None
        if count < 0:
            raise SaganError(f"--condition {part.strip()!r}: counts cannot be negative")
        out[name] = count
    if "enemies" in out and any(NAMES[e] in out for e in ENEMIES):
        raise SaganError("--condition: give either enemies=N or enemy1/2/3 counts, not both")
    return out


def requested_counts(
    request: dict[str, int],
    base: np.ndarray,
    n: int,
    rng: np.random.Generator,
    rows_out: list[np.ndarray] | None = None,
) -> np.ndarray:
    """``(n, 8)`` tile counts: rows of ``base`` (``(M, 8)`` counts of training levels) drawn at
    random, with ``request`` applied; ``enemies=N`` keeps the drawn level's mix of enemy kinds
    (largest remainders); floor absorbs the difference so that every row keeps its total."""
    base = np.asarray(base, dtype=np.int64)
    total = int(base[0].sum())
    drawn = rng.integers(0, len(base), n)
    if rows_out is not None:  # which base rows were drawn (to pair other properties with)
        rows_out.append(drawn)
    rows = base[drawn].copy()  # (n, 8)
    for name, count in request.items():
        if name == "enemies":
            mix = rows[:, list(ENEMIES)].astype(np.float64)  # (n, 3)
            share = np.where(mix.sum(1, keepdims=True) > 0, mix, 1.0)
            share = share / share.sum(1, keepdims=True) * count
            floor_part = np.floor(share).astype(np.int64)
            short = count - floor_part.sum(1)
            order = np.argsort(-(share - floor_part), axis=1)
            for i in range(n):
                floor_part[i, order[i, : short[i]]] += 1
            rows[:, list(ENEMIES)] = floor_part
        else:
            rows[:, NAMES.index(name)] = count
    rows[:, FLOOR] = 0
    rows[:, FLOOR] = total - rows.sum(1)
    if (rows[:, FLOOR] < 0).any():
        raise SaganError(
            f"--condition {request}: asks for more tiles than a level of {total} tiles holds"
        )
    return rows


def matches_request(counts: np.ndarray, request: dict[str, int]) -> np.ndarray:
    """``(N,)`` bool: which levels, by their tile counts ``(N, 8)``, have every count that
    ``request`` fixes (``enemies`` is the three kinds together); the others may be anything."""
    counts = np.asarray(counts)
    ok = np.ones(len(counts), dtype=bool)
    for name, count in request.items():
        got = counts[:, list(ENEMIES)].sum(1) if name == "enemies" else counts[:, NAMES.index(name)]
        ok &= got == count
    return ok
