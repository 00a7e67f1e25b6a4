"""The GVGAI Zelda tile alphabet: characters, channel order, names and drawing colours."""

from __future__ import annotations

__all__ = ["AVATAR", "DOOR", "ENEMIES", "FLOOR", "KEY", "NAMES", "TILES", "WALL", "index_of"]

TILES = "w.A+g123"
"""Channel order of one-hot levels: wall, floor, avatar, key, door (goal), three enemies."""
WALL, FLOOR, AVATAR, KEY, DOOR = 0, 1, 2, 3, 4
ENEMIES = (5, 6, 7)
NAMES = ("wall", "floor", "avatar", "key", "door", "enemy1", "enemy2", "enemy3")
"""Names by channel; the enemies are GVGAI's monsterQuick (bat), monsterNormal (spider) and
monsterSlow (scorpion)."""
COLOURS = (
    (70, 70, 80),  # wall: slate
    (222, 210, 180),  # floor: sand
    (30, 110, 230),  # avatar: blue
    (250, 180, 0),  # key: gold
    (20, 160, 60),  # door: green
    (200, 40, 160),  # enemy1: magenta
    (220, 50, 40),  # enemy2: red
    (120, 60, 20),  # enemy3: brown
)

_INDEX = {c: i for i, c in enumerate(TILES)}


def index_of(char: str) -> int | None:
    """Channel of a level character, or None when it is not a Zelda tile."""
    return _INDEX.get(char)
