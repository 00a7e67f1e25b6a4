"""Is a Zelda level playable? The test of Torrado et al. (CoG 2020) and later work.

A level is playable when:

1. its border is closed (every edge tile is a wall);
2. it has exactly one avatar ``A``, one key ``+`` and one door ``g``;
3. enemies take at most ``max_enemy_share`` (60%) of the non-wall tiles;
4. the avatar can walk (4-neighbour moves over non-wall tiles) to the key without crossing
   the door, which stops an avatar without the key (``nokey goal > stepBack`` in the game),
   and from the key to the door. Enemies do not block: the avatar's sword kills them.

The solution length is the number of moves of the shortest such walk (breadth-first search).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sagan.levels.tiles import AVATAR, DOOR, ENEMIES, KEY, NAMES, TILES, WALL

__all__ = ["MAX_ENEMY_SHARE", "Playability", "check_playable", "open_border", "shortest_path"]

MAX_ENEMY_SHARE = 0.6


@dataclass(frozen=True)
class Playability:
    """``playable``; ``reason`` (None when playable); ``length``: moves of the shortest
    solution (avatar -> key -> door), None when unplayable."""

    playable: bool
    reason: str | None = None
    length: int | None = None

    def line(self, name: str) -> str:
        """``NAME: playable (solution length L)`` or ``NAME: unplayable: REASON``."""
        if self.playable:
            return f"{name}: playable (solution length {self.length})"
        return f"{name}: unplayable: {self.reason}"


def shortest_path(
    passable: np.ndarray, start: tuple[int, int], goal: tuple[int, int]
) -> int | None:
    """Moves of the shortest 4-neighbour walk over ``passable`` (H, W) bool, or None."""
    h, w = passable.shape
    dist = np.full((h, w), -1, dtype=np.int64)
    dist[start] = 0
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if (r, c) == goal:
            return int(dist[r, c])
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < h and 0 <= nc < w and passable[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return None


def _one(level: np.ndarray, tile: int) -> tuple[tuple[int, int] | None, str | None]:
    where = np.argwhere(level == tile)
    if len(where) == 1:
        return (int(where[0, 0]), int(where[0, 1])), None
    name = {AVATAR: "avatar", KEY: "key", DOOR: "door"}[tile]
    if len(where) == 0:
        return None, f"no {name} ({TILES[tile]!r})"
    return None, f"{len(where)} {name}s ({TILES[tile]!r}), need exactly one"


def open_border(level: np.ndarray) -> tuple[int, int] | None:
    """The first (row, column) of ``level`` ``(H, W)``'s border, in reading order, that is not
    wall; None when the border is closed."""
    level = np.asarray(level)
    edge = np.ones(level.shape, dtype=bool)
    edge[1:-1, 1:-1] = False
    gaps = np.argwhere(edge & (level != WALL))
    return None if not len(gaps) else (int(gaps[0, 0]), int(gaps[0, 1]))


def check_playable(level: np.ndarray, max_enemy_share: float = MAX_ENEMY_SHARE) -> Playability:
    """Check ``level`` ``(H, W)`` tile indices; see the module docstring for the rules."""
    level = np.asarray(level)
    if level.ndim != 2 or min(level.shape) < 3:
        return Playability(False, f"level is {level.shape}, needs at least 3 x 3 tiles")
    gap = open_border(level)
    if gap is not None:
        r, c = gap
        return Playability(
            False, f"border not closed: {NAMES[level[r, c]]} at row {r + 1}, column {c + 1}"
        )
    positions = {}
    for tile in (AVATAR, KEY, DOOR):
        pos, why = _one(level, tile)
        if why is not None:
            return Playability(False, why)
        positions[tile] = pos
    open_tiles = int((level != WALL).sum())
    enemies = int(np.isin(level, ENEMIES).sum())
    if enemies > max_enemy_share * open_tiles:
        return Playability(
            False,
            f"enemies fill {enemies} of {open_tiles} open tiles "
            f"({100 * enemies / open_tiles:.0f}%, at most {100 * max_enemy_share:.0f}%)",
        )
    passable = level != WALL
    to_key = shortest_path(passable & (level != DOOR), positions[AVATAR], positions[KEY])
    if to_key is None:
        return Playability(False, "the avatar cannot reach the key")
    to_door = shortest_path(passable, positions[KEY], positions[DOOR])
    if to_door is None:
        return Playability(False, "the door cannot be reached from the key")
    return Playability(True, None, to_key + to_door)
