"""CESAGAN training with bootstrapping (Torrado et al., CoG 2020): the level application's side
of the engine (:mod:`sagan.training.engine`).

One iteration: a D update on a batch of training levels (drawn with replacement) and as many
generated ones conditioned on the same condition vectors, then a G update; hinge loss, TTUR
Adam, an EMA of G (ours, decay 0.999). Every ``bootstrap.every`` steps, ``bootstrap.samples``
levels are generated (conditioned on the vectors of random training levels); those that are
playable and at least ``bootstrap.min_distance`` tiles from every level already in the training
set join it, and are written to ``RUN/bootstrap/``. Training starts from the given levels alone.

A run folder holds ``config.yaml`` (before step 0), ``stats.jsonl`` (losses, attention gammas,
training-set size, bootstrap acceptance), ``samples/levels-STEP.png`` and checkpoints that
resume exactly (networks, optimisers, random streams and the grown training set). Under
torchrun every rank draws the same global batch and keeps its slice; rank 0 bootstraps and
hands the accepted levels to the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from sagan.errors import SaganError
from sagan.levels.conditions import (
    PLACED,
    condition_vectors,
    place_maps,
    with_random_enemies,
    with_random_places,
)
from sagan.levels.config import PLACE_DIM, LevelRunConfig, upgrade_config
from sagan.levels.data import load_levels, with_mirrors
from sagan.levels.diversity import diversity_report
from sagan.levels.encoding import decode, encode, tile_counts
from sagan.levels.format import write_level
from sagan.levels.networks import LevelDiscriminator, LevelGenerator, straight_through
from sagan.levels.novelty import hamming_to_nearest
from sagan.levels.playability import check_playable, open_border
from sagan.levels.render import render_levels
from sagan.levels.tiles import AVATAR, DOOR, ENEMIES, KEY
from sagan.losses import d_hinge, g_hinge
from sagan.training import EMA, engine
from sagan.training.device import module_device
from sagan.training.distributed import broadcast_object
from sagan.training.engine import Context, Evaluation, Task
from sagan.training.guard import GuardedOptimizers
from sagan.training.optim import adam

__all__ = [
    "COUNTED",
    "KIND",
    "LevelTask",
    "count_loss",
    "generate_levels",
    "load_state",
    "mode_seeking_loss",
    "place_loss",
    "rank_loss",
    "train_levels",
]

KIND = "levels"
"""The ``kind`` tag of level checkpoints."""

_EMA_DECAY = 0.999

COUNTED = (AVATAR, KEY, DOOR, *ENEMIES)
"""The tiles :func:`count_loss` counts."""
REQUESTED_ENEMIES = 5
"""``train.request_weight`` asks for enemy totals from 0 to this (our choice: the range that
``enemies_as_asked`` scores)."""
CAP_MIN_SET = 25
"""``bootstrap.max_cell_share`` counts shares over at least this many levels (our choice), so
that a small set can grow: with a cap of 0.2, a cell may hold 5 levels' keys until the set
has 25 levels. Without it, 5 starting levels would let no level in whose avatar, key or door
shares a cell with any of them."""


class LevelTask(Task):
    """CESAGAN (or its SAGAN / DCGAN baselines) on a growing training set of levels."""

    kind = KIND
    command = "sagan levels train"
    resumable: ClassVar[Mapping[str, frozenset[str]]] = {"train": frozenset({"eval_n"})}

    def __init__(self, cfg: LevelRunConfig, data: np.ndarray | None, ctx: Context) -> None:
        super().__init__(cfg, data, ctx)
        t, device = cfg.train, ctx.device
        # channels_last: oneDNN's fast layout for these small convolutions (about 20% here)
        G = LevelGenerator(cfg.model).to(device, memory_format=torch.channels_last)
        D = LevelDiscriminator(cfg.model).to(device, memory_format=torch.channels_last)
        self.nets = {"G": G, "D": D}
        self.emas = {"G": EMA(G, _EMA_DECAY)} if t.ema else {}
        group, per_rank = cfg.model.minibatch_std, t.batch_size // ctx.dist.world_size
        if group and per_rank % group:
            raise SaganError(
                f"model.minibatch_std {group}: each process's batch ({per_rank}) must divide "
                "into groups of it; change --batch-size or --minibatch-std"
            )
        opts = {
            "g": adam(G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2)),
            "d": adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2)),
        }
        self.updates = GuardedOptimizers(opts, ctx.precision, device, ctx.dist)
        self.bootstrap_rng = torch.Generator().manual_seed(t.seed + 3)
        """Bootstrap conditions and latents (rank 0 only)."""
        levels = data if data is not None else np.zeros((0, 1, 1), dtype=np.int64)
        self.levels = np.asarray(levels, dtype=np.int64)
        """The training set ``(N, H, W)``: the starting levels first, then accepted ones."""
        self.originals = len(self.levels)
        """How many of ``levels`` the run started with."""
        self.accepted = 0
        """Levels added by bootstrapping so far."""
        self.proposed = 0
        """Levels generated for bootstrapping so far."""
        self.lengths = np.zeros(0, dtype=np.int64)
        """Shortest solutions (moves; 0: unplayable) of ``levels``, with condition_length."""
        self._refresh()

    def _refresh(self) -> None:
        if not len(self.levels):  # a resumed run: the checkpoint brings the training set
            self.x, self.c = torch.zeros(0, 8, 1, 1), torch.zeros(0, self.cfg.model.condition_dim)
            return
        mirror = self.cfg.train.mirror
        shown = with_mirrors(self.levels, mirror)  # (N or 4N, H, W)
        x = encode(shown).to(self.ctx.device)
        self.x = x.contiguous(memory_format=torch.channels_last)  # (N or 4N, 8, S, S)
        lengths = None
        if self.cfg.model.condition_length:  # only the levels added since are solved again
            new = [solution_length(lv) for lv in self.levels[len(self.lengths) :]]
            self.lengths = np.concatenate([self.lengths, np.asarray(new, dtype=np.int64)])
            lengths = np.tile(self.lengths, 4) if mirror else self.lengths  # mirrors: same
        # (N, 8); + the length (condition_length), + 6 placement entries (condition_places)
        c = condition_vectors(shown, lengths, places=self.cfg.model.condition_places)
        self.c = torch.from_numpy(c).to(self.ctx.device)

    def reference(self) -> np.ndarray:
        """The levels novelty is measured against ``(M, H, W)``: the starting levels, and
        with ``train.mirror`` their mirror images too."""
        start = self.levels[: self.originals]
        return with_mirrors(start, self.cfg.train.mirror)

    # -- before the run --------------------------------------------------------------------------

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> LevelRunConfig:
        return LevelRunConfig.from_dict(data)

    @classmethod
    def upgrade(cls, ckpt: dict[str, Any]) -> dict[str, Any]:
        """Checkpoints written before presets: their config in today's terms
        (:func:`~sagan.levels.config.upgrade_config`)."""
        return {**ckpt, "config": upgrade_config(ckpt["config"])}

    @classmethod
    def prepare(
        cls, cfg: LevelRunConfig, *, resuming: bool
    ) -> tuple[LevelRunConfig, np.ndarray | None]:
        if resuming:  # the (grown) training set comes from the checkpoint
            return cfg, None
        named = load_levels(cfg.levels)
        levels = np.stack([lv for _, lv in named])  # (N, H, W)
        if cfg.model.wall_border:
            open_at = [name for name, lv in named if open_border(lv) is not None]
            if open_at:
                raise SaganError(
                    f"--wall-border: {open_at[0]} (and {len(open_at) - 1} more) has a border "
                    "cell that is not wall; G could not make such levels: use --no-wall-border"
                )
        model = dataclasses.replace(cfg.model, height=levels.shape[1], width=levels.shape[2])
        return dataclasses.replace(cfg, model=model), levels

    @classmethod
    def describe(cls, cfg: LevelRunConfig, data: np.ndarray | None) -> str:
        source = "builtin" if cfg.levels == "builtin" else Path(cfg.levels).name
        return f"{cfg.model.variant}-{source}"

    # -- the iteration ---------------------------------------------------------------------------

    def step(self) -> dict[str, torch.Tensor]:
        return train_step(self)

    def after_step(self, run_dir: Path | None) -> dict[str, float]:
        every = self.cfg.bootstrap.every
        if not every or self.step_count % every:
            return {}
        added = bootstrap(self, run_dir) if self.ctx.dist.is_main else None
        added = broadcast_object(added, self.ctx.dist)  # rank 0's levels on every rank
        if self.ctx.dist.is_main or not added:
            return {"bootstrap_added": float(len(added))} if added else {}
        self.levels = np.concatenate([self.levels, np.stack(added)])
        self.accepted += len(added)
        self._refresh()
        return {"bootstrap_added": float(len(added))}

    # -- checkpoints -----------------------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "proposed": self.proposed,
            "originals": self.originals,
            "levels": torch.from_numpy(self.levels.astype(np.int8)),
            "bootstrap_rng": self.bootstrap_rng.get_state(),
        }

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        self.levels = ckpt["levels"].numpy().astype(np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.originals = int(ckpt["originals"])
        self.accepted, self.proposed = int(ckpt["accepted"]), int(ckpt["proposed"])
        if ckpt.get("bootstrap_rng") is not None:
            self.bootstrap_rng.set_state(ckpt["bootstrap_rng"])
        self._refresh()

    # -- logging, samples, evaluation ------------------------------------------------------------

    def log_values(self, it_per_s: float, seconds: float) -> dict[str, float]:
        diversity = diversity_report(self.levels)
        values = {
            "set_pairwise_hamming": diversity["pairwise_hamming"],
            "set_key_cell_share": diversity["key_cell_share"],
            "set_door_cell_share": diversity["door_cell_share"],
            "train_size": float(len(self.levels)),
            "accepted": float(self.accepted),
            "acceptance": self.accepted / self.proposed if self.proposed else 0.0,
            "levels_per_s": it_per_s * self.cfg.train.batch_size,
        }
        return values | self.gammas()

    def progress(self, values: dict[str, float]) -> dict[str, str]:
        return {
            "D": f"{values['loss_d']:.3f}",
            "G": f"{values['loss_g']:.3f}",
            "levels": f"{values['train_size']:.0f}",
        } | self.shown_gammas(values)

    def sample(self, path_dir: Path) -> np.ndarray | None:
        from PIL import Image

        m = self.cfg.model
        assert m.height is not None and m.width is not None
        g = torch.Generator().manual_seed(1234)  # the same levels' conditions and noise each time
        pick = torch.arange(16) % len(self.levels)
        cond = self.c[pick] if m.conditional else None
        levels = generate_levels(self.sampler, 16, m.height, m.width, m.z_dim, cond, g)
        image = render_levels(list(levels), tile_size=8, ncol=4)
        Image.fromarray(image).save(path_dir / f"levels-{self.step_count:07d}.png")
        return image

    def evaluate(self) -> Evaluation:
        """:func:`~sagan.levels.evaluate.evaluate_levels` on ``train.eval_n`` levels of the EMA
        generator; best.pt keeps the most distinct novel playable levels (each at least 10
        tiles from the starting levels and from each other)."""
        from sagan.levels.evaluate import LevelGAN, evaluate_levels

        gan = LevelGAN(self.sampler, self.cfg, self.reference(), self.levels, self.step_count)
        values = evaluate_levels(gan, n=self.cfg.train.eval_n, seed=0)
        return Evaluation(values, primary="distinct_novel_playable", higher_is_better=True)

    def finish(self) -> str | None:
        if not self.accepted:
            return None
        return (
            f"bootstrap: {self.accepted} of {self.proposed} proposed levels joined the "
            f"{self.originals} starting ones"
        )


def count_loss(
    tiles: torch.Tensor, condition: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Mean absolute difference, in tiles, between the counts of avatars, keys, doors and
    each enemy kind in generated levels and the counts their conditions ask for.

    Args:
        tiles: G's output ``(B, 8, S, S)``; with straight-through one-hots, the forward
            counts are exact and the gradient flows through the softmax.
        condition: shares ``(B, 8)`` (counts / area, :mod:`sagan.levels.conditions`).
    """
    made = tiles[:, :, :height, :width].sum(dim=(2, 3))  # (B, 8): counts in the level's area
    rare = list(COUNTED)  # walls and floor take whatever is left
    return (made[:, rare] - condition[:, rare] * (height * width)).abs().mean()


def train_step(task: LevelTask) -> dict[str, torch.Tensor]:
    """One D update and one G update on this rank's slice of a global batch; returns the
    losses (detached, on the device)."""
    cfg, t, ctx = task.cfg, task.cfg.train, task.ctx
    B, amp = t.batch_size, ctx.precision
    idx = torch.randint(0, len(task.x), (B,), generator=ctx.data_rng)
    anchored = round(t.anchor * B)  # the first share of the batch: starting levels (and mirrors)
    if t.anchor > 0:
        idx[:anchored] = anchor_indices(task, anchored, ctx.data_rng)
    idx = idx[ctx.shard(B)].to(ctx.device)
    real, c = task.x[idx], task.c[idx]  # (b, 8, S, S), (b, 8)
    b = len(idx)
    cond = c if cfg.model.conditional else None
    z = torch.randn(b, cfg.model.z_dim, generator=ctx.noise, device=ctx.device)
    G, D = task.train_net("G"), task.train_net("D")
    with amp.autocast():
        fake = G(z, cond, hard=True)  # (b, 8, S, S) one-hot, straight-through gradients
        # D: one forward over real and fake together (BatchNorm-free D, so this equals two)
        both = torch.cat([real, fake.detach().to(real.dtype)])
        scores = D(both, None if cond is None else c.repeat(2, 1)).float()
    loss_d = d_hinge(scores[:b], scores[b:])
    task.updates.update("d", loss_d)
    task.D.requires_grad_(False)  # G's update needs gradients through D, not of D
    with amp.autocast():
        loss_g = g_hinge(task.D(fake, cond).float())
    out = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
    if t.count_weight > 0 and cond is not None:
        m = cfg.model
        assert m.height is not None and m.width is not None
        counts = count_loss(fake.float(), cond, m.height, m.width)
        loss_g = loss_g + t.count_weight * counts
        out["count_error"] = counts.detach()
    # the place loss has nothing to teach a G that puts the three tiles on their cells itself
    places = t.place_weight > 0 and cfg.model.condition_places and not cfg.model.places_fixed
    requests = t.requests_enemies and cond is not None
    if places or requests:
        m = cfg.model
        assert cond is not None and m.height is not None and m.width is not None
        h = max(1, b // 2)  # the first half's latents, asked for what the set never holds
        asked = cond[:h]
        if requests:  # enemy totals drawn from 0..REQUESTED_ENEMIES
            asked = with_random_enemies(asked, m.height * m.width, REQUESTED_ENEMIES, ctx.data_rng)
        if places or m.places_fixed:  # cells drawn anywhere inside
            asked = with_random_places(asked, m.height, m.width, ctx.data_rng)
        with amp.autocast():
            probs = G(z[:h], asked).float()  # (h, 8, S, S) softmax
        if places:
            placed = place_loss(probs, asked[:, -PLACE_DIM:], m.height, m.width)
            loss_g = loss_g + t.place_weight * placed
            out["place_loss"] = placed.detach()
        if requests and t.request_weight > 0:  # exact counts forward, softmax gradients
            requested = count_loss(straight_through(probs), asked[:, :8], m.height, m.width)
            loss_g = loss_g + t.request_weight * requested
            out["request_error"] = requested.detach()
        if requests and t.rank_weight > 0:
            total = (asked[:, list(ENEMIES)].sum(1) * (m.height * m.width)).round()  # (h,)
            ranked = rank_loss(probs, total, m.height, m.width, t.rank_margin)
            loss_g = loss_g + t.rank_weight * ranked
            out["rank_loss"] = ranked.detach()
    if t.mode_seeking > 0:
        h = max(1, b // 2)  # a second latent for the first half's conditions
        z2 = torch.randn(h, cfg.model.z_dim, generator=ctx.noise, device=ctx.device)
        with amp.autocast():
            fake2 = G(z2, None if cond is None else cond[:h], hard=True)
        m = cfg.model
        assert m.height is not None and m.width is not None
        area = (slice(None), slice(None), slice(0, m.height), slice(0, m.width))  # the level
        ms = mode_seeking_loss(fake[:h][area].float(), fake2[area].float(), z[:h], z2)
        loss_g = loss_g + t.mode_seeking * ms
        out["mode_seeking"] = ms.detach()
    task.updates.update("g", loss_g)
    task.D.requires_grad_(True)
    return out


def anchor_indices(task: LevelTask, k: int, generator: torch.Generator) -> torch.Tensor:
    """``(k,)`` indices into ``task.x`` of starting levels (with ``train.mirror``, of them and
    their mirror images: ``task.x`` holds the set, then its mirror images, in that order),
    drawn uniformly with ``generator``."""
    copies = 4 if task.cfg.train.mirror else 1
    drawn = torch.randint(0, task.originals * copies, (k,), generator=generator)  # (k,)
    return (drawn // task.originals) * len(task.levels) + drawn % task.originals


def place_loss(probs: torch.Tensor, places: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """How far G's tiles ``probs`` ``(B, 8, S, S)`` are from the avatar, the key and the door
    each exactly on the cell ``places`` ``(B, 6)`` asks for (as
    :func:`~sagan.levels.conditions.place_vectors`) and nowhere else in the level: for each
    of the three, -log p(tile at its cell) - sum over the level's other cells of
    log(1 - p(tile)), averaged over the three and the batch; 0 when the level is exactly so."""
    maps = place_maps(places, height, width, probs.shape[-1])[:, :, :height, :width]
    at = probs[:, list(PLACED), :height, :width].clamp(1e-6, 1 - 1e-6)  # (B, 3, H, W)
    nll = -torch.where(maps > 0, at.log(), (1 - at).log()).sum(dim=(2, 3))  # (B, 3)
    return nll.mean()


def rank_loss(
    probs: torch.Tensor, total: torch.Tensor, height: int, width: int, margin: float
) -> torch.Tensor:
    """How far G's tiles ``probs`` ``(B, 8, S, S)`` (softmax) are from decoding to exactly
    ``total`` ``(B,)`` enemies (of any kind) in the level's ``height x width`` area.

    A cell's score is log p(its most likely enemy) - log p(its most likely other tile): it
    decodes (arg-max) to an enemy exactly when the score is positive. The ``total`` cells with
    the highest scores are wanted as enemies, the rest not; each pays a hinge, ``margin`` minus
    its score where wanted, its score plus ``margin`` where not, when that is positive (ours).
    Summed over the level, averaged over the batch; 0 once every cell decodes as wanted by
    ``margin``, so that it stops pushing there (with a logistic loss, which never stops, seed 0
    of the GVGAI levels made no playable level in 1,000 steps; see
    ``benchmarks/results/levels-every-seed-2026-12-04.md``).
    """
    logp = probs[:, :, :height, :width].clamp_min(1e-6).log()  # (B, 8, H, W)
    enemies = list(ENEMIES)
    others = [t for t in range(probs.shape[1]) if t not in enemies]
    # only the enemies' probabilities are pushed: pushing the most likely other tile up too
    # filled levels with whatever that tile was at the start (walls, on one seed of two)
    other = logp[:, others].amax(1).detach()  # (B, H, W)
    score = (logp[:, enemies].amax(1) - other).flatten(1)  # (B, H * W)
    rank = score.argsort(dim=1, descending=True).argsort(dim=1)  # 0: the most enemy-like
    wanted = rank < total[:, None].to(rank.dtype)  # (B, H * W)
    loss = torch.relu(margin + torch.where(wanted, -score, score))
    return loss.sum(1).mean()


def mode_seeking_loss(
    x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019): ``1 / (d(x1, x2) / mean|z1 - z2| + 1e-5)`` for levels
    ``x`` (B, 8, H, W) (the level's area, not the padded canvas) made from latents ``z``
    (B, z_dim) under the same conditions, with d the share of tiles that differ (half the L1
    distance of the one-hots, per position); small when different latents give different
    levels."""
    differ = (x1 - x2).abs().sum(dim=1).mean() / 2  # share of differing tiles
    ratio = differ / (z1 - z2).abs().mean()
    return 1.0 / (ratio + 1e-5)


@torch.no_grad()
def generate_levels(
    G: nn.Module,
    n: int,
    height: int,
    width: int,
    z_dim: int,
    conditions: torch.Tensor | None,
    generator: torch.Generator,
    batch: int = 1000,
) -> np.ndarray:
    """``n`` levels ``(n, height, width)`` from ``G`` in eval mode (``conditions`` ``(n, 8)``
    shares, or None for an unconditional G), decoded from its one-hot output (the arg-max,
    or with ``model.fixed_enemies`` the asked enemy total)."""
    was_training = G.training
    G.eval()
    device = module_device(G)
    out = []
    try:
        for start in range(0, n, batch):
            k = min(batch, n - start)
            z = torch.randn(k, z_dim, generator=generator).to(device)
            c = None if conditions is None else conditions[start : start + k].to(device)
            out.append(decode(G(z, c, hard=True), height, width))  # as D sees them
    finally:
        G.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, height, width), dtype=np.int64)


def bootstrap(state: LevelTask, run_dir: Path | None) -> list[np.ndarray]:
    """Propose ``bootstrap.samples`` levels (the EMA generator, the bootstrap stream); add the
    playable, novel ones to the training set and return them."""
    b, m = state.cfg.bootstrap, state.cfg.model
    if len(state.levels) >= b.max_size:
        return []
    assert m.height is not None and m.width is not None
    pick = torch.randint(0, len(state.c), (b.samples,), generator=state.bootstrap_rng)
    cond = state.c[pick.to(state.c.device)] if m.conditional else None
    if state.cfg.train.requests_enemies and cond is not None:  # enemy totals too (ours)
        cond = with_random_enemies(cond, m.height * m.width, REQUESTED_ENEMIES, state.bootstrap_rng)
    if m.condition_places:  # proposals ask for cells anywhere inside: exploration (ours)
        assert cond is not None
        cond = with_random_places(cond, m.height, m.width, state.bootstrap_rng)
    candidates = generate_levels(
        state.sampler, b.samples, m.height, m.width, m.z_dim, cond, state.bootstrap_rng
    )
    state.proposed += b.samples
    added = []
    pool = state.levels
    placed = {t: (pool == t).sum(axis=0) for t in PLACED}  # (H, W) levels with t per cell
    enemies = np.isin(pool, ENEMIES).sum(axis=0)  # (H, W) levels with an enemy per cell
    mirror = state.cfg.train.mirror
    near = with_mirrors(pool, mirror)  # what a new level must be far from
    for level in candidates:
        if len(pool) >= b.max_size:
            continue
        result = check_playable(level)
        if not result.playable or (result.length or 0) < b.min_solution:
            continue
        if hamming_to_nearest(level[None], near)[0] < b.min_distance:
            continue  # a copy, or too close to a level the set already has (or its mirror)
        counted = max(len(pool) + 1, CAP_MIN_SET)  # the set with this level, for the caps
        limit = b.max_cell_share * counted
        if b.max_cell_share and any((placed[t][level == t] + 1).max() > limit for t in PLACED):
            continue  # its avatar, key or door sits where too many levels have theirs
        enemy = np.isin(level, ENEMIES)  # (H, W)
        most = b.max_enemy_share * counted
        if b.max_enemy_share and enemy.any() and (enemies[enemy] + 1).max() > most:
            continue  # one of its enemies sits where too many levels have one
        for t in PLACED:
            placed[t] = placed[t] + (level == t)
        enemies = enemies + enemy
        pool = np.concatenate([pool, level[None]])
        near = np.concatenate([near, with_mirrors(level[None], mirror)])
        added.append(level)
    if added:
        state.levels = pool
        state._refresh()
        state.accepted += len(added)
        if run_dir is not None:
            folder = run_dir / "bootstrap"
            folder.mkdir(exist_ok=True)
            for i, level in enumerate(added):
                write_level(folder / f"step{state.step_count:07d}-{i:03d}.txt", level)
    return added


def solution_length(level: np.ndarray) -> int:
    """The shortest solution of ``level`` in moves, 0 when it is not playable."""
    return check_playable(level).length or 0


def original_counts(levels: np.ndarray, originals: int) -> np.ndarray:
    """``(originals, 8)`` tile counts of the levels a run started from."""
    return tile_counts(levels[:originals])


def build_state(cfg: LevelRunConfig, levels: np.ndarray, device: str = "cpu") -> LevelTask:
    """A fresh :class:`LevelTask` outside the engine (tests, benchmarks): networks seeded by
    ``cfg.train.seed``; ``cfg.model`` must carry the level size."""
    from sagan.training.engine import build_task

    return build_task(LevelTask, cfg, np.asarray(levels), torch.device(device))


def load_state(ckpt: dict[str, Any], device: str = "cpu") -> LevelTask:
    """The :class:`LevelTask` a level checkpoint dict holds (networks, training set, streams)."""
    from sagan.training.engine import load_task

    return load_task(LevelTask, ckpt, torch.device(device))


def train_levels(
    cfg: LevelRunConfig | None = None,
    *,
    out: str | Path | None = None,
    runs_root: str | Path = "runs/levels",
    resume: str | Path | None = None,
    steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> Path:
    """Train (or, with ``resume`` = ``auto``, a run folder or checkpoint, continue) a level GAN;
    returns the run folder. ``steps`` raises the total of a resumed run (as does
    ``overrides={"train": {"steps": N}}``)."""
    if resume is None and cfg is None:
        cfg = LevelRunConfig()
    return engine.train(
        LevelTask, cfg, out=out, runs_root=runs_root, resume=resume, steps=steps,
        overrides=overrides, progress=progress,
    )  # fmt: skip
