"""Diversity measures of a set of levels: exact against brute force, and blind neither to
near-copies of one layout nor to real variety."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data
from sagan.cli import main
from sagan.levels.diversity import (
    count_distinct,
    diversity_report,
    largest_cell_share,
    mean_pairwise_hamming,
    placements,
    tile_entropy,
)
from sagan.levels.evaluate import load_level_gan
from sagan.levels.format import read_level
from sagan.levels.tiles import DOOR, ENEMIES, FLOOR, KEY


def _gvgai() -> np.ndarray:
    folder = shared_data("gvgai-zelda")
    return np.stack([read_level(p) for p in sorted(folder.glob("zelda_lvl*.txt"))])


def _near_copies(base: np.ndarray, n: int, changes: int, seed: int = 0) -> np.ndarray:
    """``n`` copies of ``base``, each with up to ``changes`` floor tiles turned into enemies."""
    rng = np.random.default_rng(seed)
    floor = np.argwhere(base == FLOOR)
    out = np.repeat(base[None], n, axis=0)
    for level in out:
        for r, c in floor[rng.choice(len(floor), changes, replace=False)]:
            level[r, c] = rng.choice(ENEMIES)
    return out


def test_pairwise_hamming_is_exact() -> None:
    levels = _gvgai()
    brute = np.mean([(a != b).sum() for a, b in itertools.combinations(levels, 2)])
    assert mean_pairwise_hamming(levels) == pytest.approx(brute) == pytest.approx(30.9)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 8, (30, 4, 5))
    brute = np.mean([(a != b).sum() for a, b in itertools.combinations(x, 2)])
    assert mean_pairwise_hamming(x) == pytest.approx(brute)
    assert mean_pairwise_hamming(x[:1]) == 0.0


def test_near_copies_of_one_layout_score_as_one() -> None:
    levels = _near_copies(_gvgai()[0], 300, changes=3)
    assert len({lv.tobytes() for lv in levels}) > 250  # "unique" says they are different
    assert placements(levels) == 1
    assert largest_cell_share(levels, KEY) == 1.0 and largest_cell_share(levels, DOOR) == 1.0
    assert mean_pairwise_hamming(levels) < 6.5
    assert count_distinct(levels, 10) == 1
    assert count_distinct(levels, 1) == len({lv.tobytes() for lv in levels})
    report = diversity_report(levels)
    assert report["key_cell_share"] == 100.0 and report["placements"] == 1.0
    # an enemy of any kind on one cell in every level: the enemies' placement has collapsed
    enemies = levels.copy()
    enemies[:, 4, 6] = np.arange(len(levels)) % 3 + ENEMIES[0]  # the three kinds in turn
    assert largest_cell_share(enemies, ENEMIES) == 1.0
    assert largest_cell_share(enemies, ENEMIES[0]) == pytest.approx(1 / 3, abs=0.01)
    assert diversity_report(enemies)["enemy_cell_share"] == 100.0
    assert diversity_report(_gvgai())["enemy_cell_share"] <= 40.0  # the originals: spread
    varied = _gvgai()
    assert placements(varied) == 5 and count_distinct(varied, 10) == 5
    assert tile_entropy(varied) > tile_entropy(levels) > 0.0
    assert tile_entropy(levels[:1]) == 0.0


def test_count_distinct_is_the_greedy_pass_across_chunks() -> None:
    rng = np.random.default_rng(2)
    base = rng.integers(0, 8, (12, 4, 5))
    levels = np.stack([b.copy() for b in base[rng.integers(0, 12, 700)]])
    flips = rng.random(levels.shape) < 0.15
    levels[flips] = rng.integers(0, 8, flips.sum())
    for d in (1, 3, 6):
        kept: list[np.ndarray] = []
        for lv in levels:
            if all((lv != k).sum() >= d for k in kept):
                kept.append(lv)
        assert count_distinct(levels, d) == len(kept)
    with pytest.raises(ValueError, match="min_distance"):
        count_distinct(levels, 0)


def test_eval_reports_diversity_and_uses_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["levels", "train", "--ch", "8", "--z-dim", "8", "--embed", "4",
                 "--batch-size", "4", "--steps", "2", "--eval-every", "1", "--eval-n", "20",
                 "--bootstrap-every", "0", "--out", str(run)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["levels", "eval", str(run), "--n", "50", "--json"]) == 0
    captured = capsys.readouterr()
    assert f"using {run / 'best.pt'}" in captured.err
    values = json.loads(captured.out)
    # the report is of the levels that best.pt makes with eval's seed (0)
    levels, _ = load_level_gan(run, best=True).generate(50, seed=0)
    assert {k: values[k] for k in diversity_report(levels)} == pytest.approx(
        diversity_report(levels)
    )
    assert 0 <= values["distinct_novel_playable"] <= values["novel_unique_playable"] <= 50
    assert main(["levels", "eval", str(run), "--n", "10", "--last"]) == 0
    assert "using" not in capsys.readouterr().err


def test_gvgai_files_use_the_games_level_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagan.errors import SaganError
    from sagan.levels.format import gvgai_alphabet, read_level_mapping
    from sagan.levels.tiles import TILES

    game = shared_data("gvgai-zelda") / "zelda.txt"
    mapping = read_level_mapping(game)
    assert mapping["g"] == ("floor", "goal") and mapping["w"] == ("wall",)
    assert gvgai_alphabet(mapping) == TILES  # GVGAI's zelda.txt is our alphabet
    # a variant game with other characters: walls 'x', the door 'D'
    variant = tmp_path / "variant.txt"
    variant.write_text(game.read_text().replace("    g > floor goal", "    D > floor goal")
                       .replace("    w > wall", "    x > wall"))  # fmt: skip
    assert gvgai_alphabet(read_level_mapping(variant)) == "x.A+D123"
    broken = tmp_path / "broken.txt"
    broken.write_text(game.read_text().replace("    3 > floor monsterSlow\n", ""))
    with pytest.raises(SaganError, match="no character for monsterSlow"):
        gvgai_alphabet(read_level_mapping(broken))

    run = tmp_path / "run"
    assert main(["levels", "train", "--ch", "8", "--z-dim", "8", "--embed", "4",
                 "--batch-size", "4", "--steps", "1", "--bootstrap-every", "0",
                 "--out", str(run)]) == 0  # fmt: skip
    out = tmp_path / "gvgai"
    args = ["levels", "generate", str(run), "--n", "3", "--format", "gvgai", "--out", str(out)]
    assert main([*args, "--game", str(variant)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["zelda_lvl5.txt", "zelda_lvl6.txt", "zelda_lvl7.txt"]
    text = (out / "zelda_lvl5.txt").read_text()
    rows = text.splitlines()
    assert len(rows) == 9 and {len(r) for r in rows} == {13}
    assert set(text) - {"\n"} <= set(read_level_mapping(variant))  # every character mapped
    plain = tmp_path / "plain"  # the same levels in this library's own text format
    assert main(["levels", "generate", str(run), "--n", "3", "--out", str(plain)]) == 0
    ours = (plain / "level-00000.txt").read_text()
    assert text == ours.translate(str.maketrans(TILES, "x.A+D123"))
    before = text
    capsys.readouterr()
    assert main(args) == 2  # nothing is overwritten
    assert "zelda_lvl5.txt already exists" in capsys.readouterr().err
    assert (out / "zelda_lvl5.txt").read_text() == before
    assert main([*args, "--first-index", "8"]) == 0
    assert read_level(out / "zelda_lvl8.txt").shape == (9, 13)
