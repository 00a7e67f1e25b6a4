"""Zelda levels: the text format, one-hot encoding, playability, novelty, rendering, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_data
from sagan.cli import main
from sagan.errors import SaganError
from sagan.levels.data import load_levels
from sagan.levels.encoding import canvas_size, decode, encode, tile_counts
from sagan.levels.format import level_to_text, parse_level, read_level, read_levels, write_level
from sagan.levels.novelty import hamming_to_nearest, novelty_report
from sagan.levels.playability import check_playable
from sagan.levels.render import render_level
from sagan.levels.tiles import COLOURS, TILES

PLAYABLE = """\
wwwwwww
wA..w.w
w.w.+.w
w1w...w
w...wgw
wwwwwww
"""


def lv(text: str) -> np.ndarray:
    return parse_level(text)


# --- format -------------------------------------------------------------------------------


def test_text_round_trip_and_crlf(tmp_path: Path) -> None:
    level = lv(PLAYABLE)
    assert level.shape == (6, 7) and level_to_text(level) == PLAYABLE
    np.testing.assert_array_equal(lv(PLAYABLE.replace("\n", "\r\n")), level)
    np.testing.assert_array_equal(lv(PLAYABLE.rstrip("\n")), level)  # no final newline
    write_level(tmp_path / "a.txt", level)
    np.testing.assert_array_equal(read_level(tmp_path / "a.txt"), level)
    assert not list(tmp_path.glob(".*tmp"))


def test_bad_text_names_the_line() -> None:
    with pytest.raises(SaganError, match=r"^x:3: row has 6 tiles, the first row 7"):
        parse_level("wwwwwww\nwA..w.w\nw.w.+w\n", "x")
    with pytest.raises(SaganError, match=r"^x:2:3: unknown tile 'Z'; Zelda tiles are"):
        parse_level("wwwwwww\nwAZ.w.w\n", "x")
    with pytest.raises(SaganError, match="empty level"):
        parse_level("\n\n", "x")
    with pytest.raises(SaganError, match="no such level file"):
        read_level("/nonexistent/level.txt")


def test_folders_leave_out_files_that_are_not_levels(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(PLAYABLE)
    (tmp_path / "notes.txt").write_text("Game description\n")
    found, skipped = read_levels(tmp_path)
    assert [p.name for p, _ in found] == ["a.txt"] and len(skipped) == 1
    (tmp_path / "a.txt").unlink()
    with pytest.raises(SaganError, match=r"no \*.txt level files in it"):
        read_levels(tmp_path)
    with pytest.raises(SaganError, match="no such folder"):
        read_levels(tmp_path / "nope")


def test_builtin_levels_are_playable_and_one_size() -> None:
    levels = load_levels()
    assert len(levels) == 8
    for name, level in levels:
        assert level.shape == (9, 13), name
        assert check_playable(level).playable, name


def test_the_original_gvgai_levels() -> None:
    folder = shared_data("gvgai-zelda")
    levels = load_levels(folder)  # its SOURCE.txt and zelda.txt are left out
    assert [n for n, _ in levels] == [f"zelda_lvl{i}.txt" for i in range(5)]
    for name, level in levels:
        assert level.shape == (9, 13)
        result = check_playable(level)
        assert result.playable, (name, result.reason)
    # zelda_lvl4: avatar (7,1) -> key (7,6) around the wall at column 5, then to the door
    assert check_playable(levels[4][1]).length == 19


# --- encoding -----------------------------------------------------------------------------


def test_one_hot_padding_and_decoding() -> None:
    levels = np.stack([lv for _, lv in load_levels()])  # (8, 9, 13)
    assert canvas_size(9, 13) == 16 and canvas_size(3, 3) == 8 and canvas_size(17, 5) == 32
    x = encode(levels)
    assert x.shape == (8, 8, 16, 16) and x.dtype == torch.float32
    assert torch.equal(x.sum(dim=1), torch.ones(8, 16, 16))  # exactly one tile everywhere
    assert (x[:, 0, 9:, :] == 1).all() and (x[:, 0, :, 13:] == 1).all()  # padding is wall
    np.testing.assert_array_equal(decode(x, 9, 13), levels)
    np.testing.assert_array_equal(decode(x + 0.1 * torch.rand_like(x), 9, 13), levels)
    counts = tile_counts(levels)
    assert counts.shape == (8, 8) and (counts.sum(axis=1) == 9 * 13).all()
    assert (counts[:, TILES.index("A")] == 1).all()


# --- playability --------------------------------------------------------------------------


def test_playable_with_the_shortest_solution() -> None:
    r = check_playable(lv(PLAYABLE))
    # A (1,1) -> (1,2) (1,3) (2,3) (2,4)=key: 4 moves; key -> (3,4) (3,5) (4,5)=door: 3 moves
    assert r.playable and r.reason is None and r.length == 7
    assert r.line("f.txt") == "f.txt: playable (solution length 7)"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (PLAYABLE.replace("wwwwwww\nwA", "www.www\nwA", 1), "border not closed: floor at row 1"),
        (PLAYABLE.replace("A", "."), "no avatar ('A')"),
        (PLAYABLE.replace("w1w", "wAw"), "2 avatars ('A'), need exactly one"),
        (PLAYABLE.replace("+", "."), "no key ('+')"),
        (PLAYABLE.replace("w1w", "w+w"), "2 keys ('+'), need exactly one"),
        (PLAYABLE.replace("g", "."), "no door ('g')"),
        (PLAYABLE.replace("w1w", "wgw"), "2 doors ('g'), need exactly one"),
        # a wall cuts the avatar's corner off
        ("wwwwwww\nwAw.w.w\nwww.+.w\nw1w...w\nw...wgw\nwwwwwww\n", "cannot reach the key"),
        # the door sits in the only corridor to the key: without the key it stops the avatar
        ("wwwwwww\nwAg+w.w\nwwwwwww\n", "cannot reach the key"),
        # the door is walled in
        ("wwwwwww\nwA.+wgw\nwwwwwww\n", "door cannot be reached"),
        ("wwwwww\nwA+g1w\nw2323w\nwwwwww\n", "enemies fill 5 of 8 open tiles (62%, at most 60%)"),
    ],
)
def test_every_kind_of_unplayable_level(text: str, reason: str) -> None:
    r = check_playable(lv(text))
    assert not r.playable and r.length is None
    assert reason in r.reason, r.reason  # type: ignore[operator]


def test_enemies_do_not_block() -> None:
    level = lv("wwwwwww\nwA1+2gw\nwwwwwww\n")
    assert check_playable(level).length == 4


# --- novelty ------------------------------------------------------------------------------


def test_hamming_and_novelty_report() -> None:
    base = lv(PLAYABLE)
    other = base.copy()
    other[1, 2] = TILES.index("3")  # one tile changed
    two = other.copy()
    two[3, 3] = TILES.index("2")  # two tiles changed
    assert hamming_to_nearest([base, other, two], [base]).tolist() == [0, 1, 2]
    report = novelty_report([base, other, other, two], [True, True, True, False], [base])
    assert report.n == 4 and report.playable == 3
    assert report.unique == 3 and report.unique_playable == 2
    assert report.novel_playable == 1  # `other`; `base` copies the training level
    assert report.mean_novelty == pytest.approx((0 + 1 + 1 + 2) / 4)
    assert report.mean_novelty_playable == pytest.approx(2 / 3)


# --- rendering and CLI --------------------------------------------------------------------


def test_render_uses_one_colour_per_tile_type() -> None:
    img = render_level(lv(PLAYABLE), tile_size=8)
    assert img.shape == (48, 56, 3) and img.dtype == np.uint8
    for ch, (r, c) in {"w": (0, 0), ".": (1, 2), "A": (1, 1), "+": (2, 4), "g": (4, 5)}.items():
        tile = img[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8].reshape(-1, 3)
        colours = {tuple(p) for p in tile.tolist()}
        assert COLOURS[TILES.index(ch)] in colours, ch


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad, junk = tmp_path / "good.txt", tmp_path / "bad.txt", tmp_path / "junk.txt"
    good.write_text(PLAYABLE)
    bad.write_text(PLAYABLE.replace("+", "."))
    junk.write_text("hello\n")
    assert main(["levels", "check", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: playable (solution length 7)\n"
    assert main(["levels", "check", str(good), str(bad), str(junk)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"{bad}: unplayable: no key ('+')"
    assert lines[2].startswith(f"{junk}: unplayable: not a level (")
    assert len(lines) == 3


def test_render_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    (tmp_path / "a.txt").write_text(PLAYABLE)
    out = tmp_path / "out" / "a.png"
    assert main(["levels", "render", str(tmp_path / "a.txt"), "--out", str(out), "--text"]) == 0
    assert Image.open(out).size == (7 * 16, 6 * 16)
    assert capsys.readouterr().out == PLAYABLE + f"wrote {out}\n"
    before = out.read_bytes()  # an --out that exists is refused, and left as it was
    assert (
        main(["levels", "render", str(tmp_path / "a.txt"), "--out", str(out), "--tile-size", "8"])
        == 2
    )
    assert "a.png already exists; choose another --out" in capsys.readouterr().err
    assert out.read_bytes() == before
