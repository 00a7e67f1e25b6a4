"""Load a trained level GAN, generate levels (optionally with requested tile counts), and
measure them as Torrado et al. do: % playable, % unique among playable, novelty, and how often
requested counts come out as asked."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sagan.errors import SaganError
from sagan.levels.conditions import (
    count_of,
    matches_request,
    place_vectors,
    places_as_asked,
    requested_counts,
    shares,
)
from sagan.levels.config import PLACE_DIM, LevelRunConfig, upgrade_config
from sagan.levels.data import with_mirrors
from sagan.levels.diversity import DISTINCT_DISTANCE, count_distinct, diversity_report
from sagan.levels.encoding import tile_counts
from sagan.levels.networks import LevelGenerator
from sagan.levels.novelty import hamming_to_nearest, novelty_report
from sagan.levels.playability import check_playable
from sagan.levels.train import COUNTED, KIND, generate_levels, solution_length
from sagan.training import load_source

__all__ = ["LevelGAN", "evaluate_levels", "load_level_gan"]


@dataclass
class LevelGAN:
    """A trained generator (EMA weights unless the run kept none, eval mode) and the levels
    its run started from.

    ``originals`` ``(M, H, W)``: the starting levels (novelty is measured against them), with
    their mirror images for a run trained with ``train.mirror``;
    ``training_set``: everything it trained on at the end, bootstrapped levels included.
    """

    G: nn.Module
    cfg: LevelRunConfig
    originals: np.ndarray
    training_set: np.ndarray
    step: int
    path: Path | None = None
    """The checkpoint it came from."""

    @property
    def conditional(self) -> bool:
        return self.cfg.model.conditional

    @functools.cached_property
    def original_lengths(self) -> np.ndarray:
        """Shortest solutions (moves; 0: unplayable) of the starting levels ``(M,)``, solved
        once."""
        return np.array([solution_length(lv) for lv in self.originals], dtype=np.int64)

    def generate(
        self,
        n: int,
        request: dict[str, int] | None = None,
        seed: int = 0,
        length: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` levels ``(n, H, W)`` and, for a conditional model, the tile counts asked for
        ``(n, 8)`` (what is asked: :meth:`conditions`)."""
        if n < 1:
            raise SaganError(f"--n must be >= 1, got {n}")
        m = self.cfg.model
        assert m.height is not None and m.width is not None
        c, asked = self.conditions(n, request, seed, length)
        cond = None if c is None else torch.from_numpy(c)
        g = torch.Generator().manual_seed(seed)
        levels = generate_levels(self.G, n, m.height, m.width, m.z_dim, cond, g)
        return levels, asked

    def conditions(
        self,
        n: int,
        request: dict[str, int] | None = None,
        seed: int = 0,
        length: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The condition vectors ``(n, condition_dim)`` that :meth:`generate` asks for with
        the same arguments, and the tile counts in them ``(n, 8)``; (None, None) for an
        unconditional model. Counts: those of random starting levels with ``request``
        applied; solution length (``condition_length``): uniform in ``length``, or that of the
        same starting level; cells (``condition_places``): those of random training-set
        levels, bootstrapped ones included."""
        m = self.cfg.model
        assert m.height is not None and m.width is not None
        if request and not self.conditional:
            raise SaganError(
                f"this is an unconditional {m.variant} model; --condition needs a cesagan run"
            )
        if not self.conditional:
            return None, None
        rng = np.random.Generator(np.random.PCG64(seed))
        rows: list[np.ndarray] = []
        base = tile_counts(self.originals)
        asked = requested_counts(request or {}, base, n, rng, rows_out=rows)
        parts = [shares(asked, m.height * m.width)]  # (n, 8)
        if m.condition_length:
            if length is None:
                moves = self.original_lengths[rows[0]]
            else:
                moves = rng.integers(length[0], length[1] + 1, n)
            parts.append(shares(moves[:, None], m.height * m.width))  # (n, 1)
        if m.condition_places:
            drawn = rng.integers(0, len(self.training_set), n)
            parts.append(place_vectors(self.training_set[drawn]))  # (n, 6)
        return np.concatenate(parts, axis=1), asked

    def generate_passing(
        self,
        n: int,
        request: dict[str, int] | None = None,
        seed: int = 0,
        *,
        playable: bool = False,
        as_asked: bool = False,
        distinct: bool = False,
        max_tries: int = 100_000,
        batch: int = 1000,
        length: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, int]:
        """Generate and test: ``n`` levels ``(n, H, W)`` that pass the chosen tests, and how
        many generated levels were examined to find them (in order; the last one kept ends it).

        ``playable``: :func:`check_playable`; ``as_asked``: every count ``request`` fixes comes
        out as asked, and with ``length`` the level is playable with a shortest solution in
        that range (moves); ``distinct``: no level repeats another kept one. Raises
        :class:`SaganError` when ``max_tries`` levels do not hold ``n`` that pass.
        """
        if as_asked and not request and length is None:
            raise SaganError("--as-asked needs --condition: there is no request to match")
        if max_tries < n:
            raise SaganError(f"--max-tries ({max_tries}) must be at least --n ({n})")
        kept: list[np.ndarray] = []
        seen: set[bytes] = set()
        made, tried, rounds = 0, 0, 0  # generated, examined, rounds
        failed = {"not as asked": 0, "unplayable": 0, "off the length asked": 0, "repeats": 0}
        while len(kept) < n and made < max_tries:
            k = min(batch, max_tries - made)
            # each round its own stream, derived from (seed, round): no overlap between seeds
            round_seed = int(np.random.SeedSequence([seed, rounds]).generate_state(1)[0])
            levels, _ = self.generate(k, request, seed=round_seed, length=length)
            made, rounds = made + k, rounds + 1
            asked_ok = (
                matches_request(tile_counts(levels), request)
                if as_asked and request
                else np.ones(k, dtype=bool)
            )
            for level, ok in zip(levels, asked_ok, strict=True):
                tried += 1
                if not ok:
                    failed["not as asked"] += 1
                    continue
                if playable or (as_asked and length is not None):
                    result = check_playable(level)
                    if not result.playable:
                        failed["unplayable"] += 1
                        continue
                    in_range = length is None or length[0] <= (result.length or 0) <= length[1]
                    if as_asked and not in_range:
                        failed["off the length asked"] += 1
                        continue
                if distinct:
                    key = level.tobytes()
                    if key in seen:
                        failed["repeats"] += 1
                        continue
                    seen.add(key)
                kept.append(level)
                if len(kept) == n:
                    break
        if len(kept) < n:
            wanted = {"playable": playable, "as asked": as_asked, "distinct": distinct}
            tests = [name for name, on in wanted.items() if on]
            why = ", ".join(f"{count} {name}" for name, count in failed.items() if count)
            raise SaganError(
                f"found only {len(kept)} of the {n} {', '.join(tests)} levels asked for in "
                f"{tried} generated ({why}); {self._unlearned(request)}raise --max-tries, "
                "ask for fewer, or train longer"
            )
        return np.stack(kept), tried

    def _unlearned(self, request: dict[str, int] | None) -> str:
        """``"enemies=50 is outside the training levels' 3..4; "`` for every count of
        ``request`` that no training level has between its fewest and its most; else ``""``."""
        counts = tile_counts(self.training_set)  # (M, 8)
        notes = []
        for name, count in (request or {}).items():
            got = count_of(counts, name)  # (M,)
            lo, hi = int(got.min()), int(got.max())
            if not lo <= count <= hi:
                notes.append(f"{name}={count} is outside the training levels' {lo}..{hi}")
        return "; ".join(notes) + ("; ask within that range, " if notes else "")


def load_level_gan(source: str | Path, *, best: bool = True) -> LevelGAN:
    """A :class:`LevelGAN` from a level checkpoint or a run folder: the folder's ``best.pt``
    when it has one and ``best`` (kept by ``--eval-every``: playability swings between
    checkpoints), else its newest good checkpoint."""
    source = Path(source)
    if best and source.is_dir() and (source / "best.pt").is_file():
        source = source / "best.pt"
    path, ckpt = load_source(source, kind=KIND)
    cfg = LevelRunConfig.from_dict(upgrade_config(ckpt["config"]))
    G = LevelGenerator(cfg.model)
    try:
        G.load_state_dict(ckpt["G_ema"] if "G_ema" in ckpt else ckpt["G"])
    except RuntimeError as exc:
        raise SaganError(f"{source}: weights do not match the stored config ({exc})") from None
    levels = ckpt["levels"].numpy().astype(np.int64)
    originals = int(ckpt["originals"])
    start = levels[:originals]
    reference = with_mirrors(start, cfg.train.mirror)  # as the run measured it
    return LevelGAN(G.eval(), cfg, reference, levels, int(ckpt["step"]), path)


def evaluate_levels(gan: LevelGAN, n: int = 15_000, seed: int = 0) -> dict[str, float]:
    """Generate ``n`` levels and measure them. Percentages are in [0, 100].

    * ``playable``: share passing :func:`check_playable`;
    * ``unique_playable``: distinct levels among the playable ones, as a share of them;
    * ``duplicates``: generated levels that repeat an earlier generated one;
    * ``novel_unique_playable``: the count of distinct playable levels that copy no starting
      level (what bootstrapping is for; counts near-copies of one layout as new);
    * ``distinct_novel_playable``: the headline count: playable levels at least
      ``DISTINCT_DISTANCE`` (10) tiles from every starting level and from every other counted
      level (:func:`~sagan.levels.diversity.count_distinct`, our measure);
    * diversity of all ``n`` levels (:mod:`sagan.levels.diversity`, our measures):
      ``pairwise_hamming`` (mean tiles in which two levels differ), ``placements`` (distinct
      avatar/key/door placements), ``key_cell_share`` / ``door_cell_share`` /
      ``enemy_cell_share`` (% of levels with the key / the door / an enemy on the most common
      cell) and ``tile_entropy`` (bits per cell);
    * ``novelty``: mean Hamming distance (tiles) of playable levels to the nearest starting
      level; ``solution_length``: their mean shortest solution;
    * ``length_as_asked``: % of levels asked for a solution length within 2 moves of one
      between the starting levels' shortest and longest that come out so (by chance for a
      model without ``condition_length``);
    * conditional models: ``enemies_as_asked`` (requests of 0..5 enemies, uniformly) and
      ``counts_as_asked`` (avatar, key, door and enemy counts all as asked);
    * ``condition_places`` models: ``places_as_asked``, % of the ``n`` levels with exactly
      one avatar, key and door, each on the cell asked for.
    """
    levels, _ = gan.generate(n, seed=seed)
    places = {}
    if gan.cfg.model.condition_places:
        c, _ = gan.conditions(n, seed=seed)  # what those levels were asked for
        assert c is not None
        places = {"places_as_asked": 100.0 * places_as_asked(levels, c[:, -PLACE_DIM:]).mean()}
    results = [check_playable(lv) for lv in levels]
    ok = np.array([r.playable for r in results])
    novelty = hamming_to_nearest(levels, gan.originals)  # (n,) tiles from the start
    report = novelty_report(levels, ok, gan.originals, novelty)
    lengths = [r.length for r in results if r.length is not None]
    far = ok & (novelty >= DISTINCT_DISTANCE)
    out = (
        {
            "n": float(n),
            "playable": 100.0 * report.playable / n,
            "unique_playable": 100.0 * report.unique_playable / max(report.playable, 1),
            "duplicates": 100.0 * (n - report.unique) / n,
            "novel_unique_playable": float(report.novel_playable),
            "distinct_novel_playable": float(count_distinct(levels[far])) if far.any() else 0.0,
            "novelty": report.mean_novelty_playable,
            "solution_length": float(np.mean(lengths)) if lengths else float("nan"),
        }
        | diversity_report(levels)
        | places
    )
    out |= _length_as_asked(gan, n, seed)
    if gan.conditional:
        rng = np.random.Generator(np.random.PCG64(seed + 1))
        wanted = rng.integers(0, 6, n)
        matched, all_counts = 0, 0
        for k in range(6):
            idx = np.nonzero(wanted == k)[0]
            if not len(idx):
                continue
            made, asked = gan.generate(len(idx), {"enemies": int(k)}, seed=seed + 2 + k)
            got = tile_counts(made)  # (m, 8)
            assert asked is not None
            matched += int(matches_request(got, {"enemies": k}).sum())
            keys = list(COUNTED)
            all_counts += int((got[:, keys] == asked[:, keys]).all(1).sum())
        out["enemies_as_asked"] = 100.0 * matched / n
        out["counts_as_asked"] = 100.0 * all_counts / n
    return out


def _length_as_asked(gan: LevelGAN, n: int, seed: int) -> dict[str, float]:
    """``length_as_asked``: % of ``n`` levels, each asked for a solution length in [L - 2,
    L + 2] moves with L uniform over the starting levels' range, that are playable with a
    shortest solution in it. A model without ``condition_length`` is asked nothing, so this
    is how often the range comes out by chance (what generate-and-test would keep)."""
    lengths = gan.original_lengths[gan.original_lengths > 0]
    if not len(lengths):
        return {}
    rng = np.random.Generator(np.random.PCG64(seed + 9))
    centre = rng.integers(int(lengths.min()), int(lengths.max()) + 1, n)
    met = 0
    for L in np.unique(centre):
        k = int((centre == L).sum())
        levels, _ = gan.generate(k, seed=seed + 10 + int(L), length=(int(L) - 2, int(L) + 2))
        got = np.array([solution_length(lv) for lv in levels])
        met += int(((got >= L - 2) & (got <= L + 2) & (got > 0)).sum())
    return {"length_as_asked": 100.0 * met / n}
