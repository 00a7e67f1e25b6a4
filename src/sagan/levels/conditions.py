"""The condition vector of CESAGAN: the share of the level's tiles of each type.

``condition = tile_counts / (H * W)``, 8 numbers in [0, 1] in the channel order of
:data:`~sagan.levels.tiles.TILES`. A request such as ``"enemies=3,key=1"`` fixes some counts;
the others are taken from a random training level, and floor fills what is left.
"""

from __future__ import annotations

import numpy as np
import torch

from sagan.errors import SaganError
from sagan.levels.config import PLACE_DIM
from sagan.levels.encoding import tile_counts
from sagan.levels.tiles import AVATAR, DOOR, ENEMIES, FLOOR, KEY, NAMES

__all__ = [
    "PLACED",
    "REQUEST_NAMES",
    "condition_vectors",
    "count_of",
    "matches_request",
    "parse_condition",
    "parse_request",
    "place_maps",
    "place_vectors",
    "places_as_asked",
    "random_places",
    "requested_counts",
    "shares",
    "with_random_enemies",
    "with_random_places",
]

_ALIASES = {"walls": "wall", "keys": "key", "doors": "door", "goal": "door", "avatars": "avatar"}
REQUEST_NAMES = (*NAMES, "enemies")
"""What ``--condition`` may fix: a tile type, or ``enemies`` (the three kinds together)."""


def shares(counts: np.ndarray, area: int) -> np.ndarray:
    """Tile counts ``(N, 8)`` of levels of ``area`` tiles -> condition vectors ``(N, 8)``."""
    return (np.asarray(counts) / area).astype(np.float32)


def condition_vectors(
    levels: np.ndarray, lengths: np.ndarray | None = None, places: bool = False
) -> np.ndarray:
    """Levels ``(N, H, W)`` -> their condition vectors ``(N, 8)`` float32; with their solution
    ``lengths`` (N,) in moves, one more entry: the length stored as moves / area, like a
    share; with ``places``, six more: :func:`place_vectors`."""
    levels = np.asarray(levels)
    area = levels.shape[-2] * levels.shape[-1]
    parts = [shares(tile_counts(levels), area)]
    if lengths is not None:
        parts.append(shares(np.asarray(lengths)[:, None], area))
    if places:
        parts.append(place_vectors(levels))
    return np.concatenate(parts, axis=1)


PLACED = (AVATAR, KEY, DOOR)
"""The tiles whose cells ``condition_places`` holds, in this order."""


def place_vectors(levels: np.ndarray) -> np.ndarray:
    """Levels ``(N, H, W)`` -> ``(N, 6)`` float32: for the avatar, the key and the door, the
    (row, column) of its first cell in reading order as ``(index + 0.5) / size``, in (0, 1);
    -1, -1 where the level has no such tile."""
    levels = np.asarray(levels)
    n, h, w = levels.shape
    out = np.full((n, 2 * len(PLACED)), -1.0, dtype=np.float32)
    for j, tile in enumerate(PLACED):
        flat = (levels == tile).reshape(n, -1)  # (N, H * W)
        has = flat.any(axis=1)
        first = flat.argmax(axis=1)  # the first cell in reading order
        out[has, 2 * j] = (first[has] // w + 0.5) / h
        out[has, 2 * j + 1] = (first[has] % w + 0.5) / w
    return out


def random_places(n: int, height: int, width: int, generator: torch.Generator) -> np.ndarray:
    """``(n, 6)`` placements (as :func:`place_vectors`) of the avatar, key and door on three
    distinct cells drawn uniformly from the inside of a ``height x width`` level (not its
    border row or column)."""
    inside = [(r, c) for r in range(1, height - 1) for c in range(1, width - 1)]
    if len(inside) < len(PLACED):
        raise SaganError(f"a {height} x {width} level has no room inside for avatar, key, door")
    scores = torch.rand(n, len(inside), generator=generator)
    picks = scores.argsort(dim=1)[:, : len(PLACED)].numpy()  # (n, 3) distinct cells
    cells = np.asarray(inside)[picks]  # (n, 3, 2)
    out = (cells + 0.5) / np.array([height, width])  # (n, 3, 2)
    return out.reshape(n, -1).astype(np.float32)


def with_random_places(
    c: torch.Tensor, height: int, width: int, generator: torch.Generator
) -> torch.Tensor:
    """Condition vectors ``c`` ``(B, D)`` whose last 6 entries (the cells of
    ``condition_places``) are replaced by :func:`random_places` drawn with ``generator``."""
    cells = random_places(len(c), height, width, generator)
    return torch.cat([c[:, :-PLACE_DIM], torch.from_numpy(cells).to(c)], dim=1)


def with_random_enemies(
    c: torch.Tensor, area: int, most: int, generator: torch.Generator
) -> torch.Tensor:
    """Condition vectors ``c`` ``(B, D)`` (shares first, as :func:`condition_vectors`) asking
    instead for an enemy total drawn uniformly from 0 to ``most`` (with ``generator``), split
    over the three kinds in each level's own mix (largest remainders, as
    :func:`requested_counts`; evenly where it has none); floor takes up the difference, the
    other entries stay."""
    counts = (c[:, :8] * area).round()  # (B, 8)
    b = len(c)
    total = torch.randint(0, most + 1, (b,), generator=generator).to(c)  # (B,)
    mix = counts[:, list(ENEMIES)]  # (B, 3)
    mix = torch.where(mix.sum(1, keepdim=True) > 0, mix, torch.ones_like(mix))
    share = mix / mix.sum(1, keepdim=True) * total[:, None]  # (B, 3), sums to total
    whole = share.floor()
    short = total - whole.sum(1)  # (B,) enemies still to hand out, 0..2
    rank = (-(share - whole)).argsort(dim=1, stable=True).argsort(dim=1)  # 0: largest remainder
    whole = whole + (rank < short[:, None]).to(c)
    counts[:, list(ENEMIES)] = whole
    counts[:, FLOOR] = 0
    counts[:, FLOOR] = area - counts.sum(1)
    return torch.cat([counts / area, c[:, 8:]], dim=1)


def place_maps(places: torch.Tensor, height: int, width: int, canvas: int) -> torch.Tensor:
    """Placements ``(B, 6)`` (as :func:`place_vectors`) -> one-hot maps ``(B, 3, S, S)`` of
    the canvas (the level at its top-left), one per placed tile; all zero where a tile is
    absent (negative entries)."""
    b = places.shape[0]
    rows = (places[:, 0::2] * height).floor().long().clamp(0, height - 1)  # (B, 3)
    cols = (places[:, 1::2] * width).floor().long().clamp(0, width - 1)  # (B, 3)
    present = places[:, 0::2] >= 0  # (B, 3)
    maps = torch.zeros(b, len(PLACED), canvas * canvas, dtype=places.dtype, device=places.device)
    maps.scatter_(2, (rows * canvas + cols)[:, :, None], present[:, :, None].to(places.dtype))
    return maps.view(b, len(PLACED), canvas, canvas)


def places_as_asked(levels: np.ndarray, places: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: levels ``(N, H, W)`` with exactly one avatar, key and door, each on the
    cell ``places`` ``(N, 6)`` asks for."""
    levels = np.asarray(levels)
    n, h, w = levels.shape
    ok = np.ones(n, dtype=bool)
    for j, tile in enumerate(PLACED):
        rows = np.floor(places[:, 2 * j] * h).astype(np.int64).clip(0, h - 1)
        cols = np.floor(places[:, 2 * j + 1] * w).astype(np.int64).clip(0, w - 1)
        ok &= (levels == tile).reshape(n, -1).sum(1) == 1
        ok &= levels[np.arange(n), rows, cols] == tile
    return ok


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
        if length is not None:
            raise SaganError("--condition: length is given twice; give it once")
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
        if name in out:
            raise SaganError(f"--condition: {name} is given twice; give it once")
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
    if any(count > total for count in request.values()):  # (and before numpy overflows)
        raise SaganError(
            f"--condition {request}: asks for more tiles than a level of {total} tiles holds"
        )
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
        ok &= count_of(counts, name) == count
    return ok


def count_of(counts: np.ndarray, name: str) -> np.ndarray:
    """``(N,)``: the count ``name`` (a tile type, or ``enemies``: the three kinds together)
    takes in each row of tile counts ``(N, 8)``."""
    counts = np.asarray(counts)
    return counts[:, list(ENEMIES)].sum(1) if name == "enemies" else counts[:, NAMES.index(name)]
