"""CESAGAN training with bootstrapping (Torrado et al., CoG 2020).

One iteration: a D update on a batch of training levels (drawn with replacement) and as many
generated ones conditioned on the same condition vectors, then a G update; hinge loss, TTUR
Adam, an EMA of G. Every ``bootstrap.every`` steps, ``bootstrap.samples`` levels are generated
(conditioned on the vectors of random training levels); those that are playable and at least
``bootstrap.min_distance`` tiles from every level already in the training set join it, and are
written to ``RUN/bootstrap/``. Training starts from the given levels alone.

A run folder holds ``config.yaml`` (before step 0), ``stats.jsonl`` (losses, attention gammas,
training-set size, bootstrap acceptance), ``samples/levels-STEP.png`` and checkpoints that
resume exactly (networks, optimisers, random streams and the grown training set).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sagan import __version__
from sagan.config import write_yaml
from sagan.errors import SaganError
from sagan.levels.conditions import condition_vectors
from sagan.levels.config import LevelRunConfig
from sagan.levels.data import load_levels
from sagan.levels.encoding import decode, encode, tile_counts
from sagan.levels.format import write_level
from sagan.levels.networks import LevelDiscriminator, LevelGenerator
from sagan.levels.novelty import hamming_to_nearest
from sagan.levels.playability import check_playable
from sagan.levels.render import render_levels
from sagan.levels.tiles import AVATAR, DOOR, ENEMIES, KEY
from sagan.losses import d_hinge, g_hinge
from sagan.nn import attention_gammas
from sagan.training import (
    EMA,
    StatsWriter,
    capture_rng_state,
    load_source,
    make_run_dir,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from sagan.training.checkpoint import checkpoint_name
from sagan.training.optim import adam

__all__ = [
    "KIND",
    "LevelState",
    "build_state",
    "count_loss",
    "generate_levels",
    "train_levels",
]

KIND = "levels"
"""The ``kind`` tag of level checkpoints."""

_EMA_DECAY = 0.999

COUNTED = (AVATAR, KEY, DOOR, *ENEMIES)
"""The tiles :func:`count_loss` counts."""


@dataclass
class LevelState:
    """Everything that changes during a level run."""

    cfg: LevelRunConfig
    G: nn.Module
    D: nn.Module
    ema: EMA
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise: torch.Generator
    """Latents, batch indices and bootstrap conditions."""
    levels: np.ndarray
    """The training set ``(N, H, W)``: the starting levels first, then accepted ones."""
    originals: int
    """How many of ``levels`` the run started with."""
    step: int = 0
    accepted: int = 0
    """Levels added by bootstrapping so far."""
    proposed: int = 0
    """Levels generated for bootstrapping so far."""

    def __post_init__(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        self.x = encode(self.levels).contiguous(memory_format=torch.channels_last)  # (N, 8, S, S)
        self.c = torch.from_numpy(condition_vectors(self.levels))  # (N, 8)


def build_state(cfg: LevelRunConfig, levels: np.ndarray) -> LevelState:
    """Fresh networks (seeded by ``cfg.train.seed``), optimisers and noise stream."""
    t = cfg.train
    torch.manual_seed(t.seed)
    # channels_last: oneDNN's fast layout for these small convolutions (about 20% here)
    G = LevelGenerator(cfg.model).to(memory_format=torch.channels_last)
    D = LevelDiscriminator(cfg.model).to(memory_format=torch.channels_last)
    return LevelState(
        cfg=cfg,
        G=G,
        D=D,
        ema=EMA(G, _EMA_DECAY),
        opt_g=adam(G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2)),
        opt_d=adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2)),
        noise=torch.Generator().manual_seed(t.seed + 1),
        levels=np.asarray(levels, dtype=np.int64),
        originals=len(levels),
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


def train_step(state: LevelState) -> dict[str, float]:
    """One D update and one G update; returns the losses."""
    cfg, t = state.cfg, state.cfg.train
    idx = torch.randint(0, len(state.levels), (t.batch_size,), generator=state.noise)
    real, c = state.x[idx], state.c[idx]  # (B, 8, S, S), (B, 8)
    cond = c if cfg.model.conditional else None
    z = torch.randn(t.batch_size, cfg.model.z_dim, generator=state.noise)
    fake = state.G(z, cond, hard=True)  # (B, 8, S, S) one-hot, straight-through gradients
    # D: one forward over real and fake together (BatchNorm-free D, so this equals two)
    scores = state.D(torch.cat([real, fake.detach()]), None if cond is None else c.repeat(2, 1))
    loss_d = d_hinge(scores[: t.batch_size], scores[t.batch_size :])
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    state.opt_d.step()
    loss_g = g_hinge(state.D(fake, cond))
    out = {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
    if t.count_weight > 0 and cond is not None:
        m = cfg.model
        assert m.height is not None and m.width is not None
        counts = count_loss(fake, cond, m.height, m.width)
        loss_g = loss_g + t.count_weight * counts
        out["count_error"] = counts.item()
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    state.opt_g.step()
    state.ema.update(state.G, state.step)
    state.step += 1
    return out


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
    shares, or None for an unconditional G)."""
    was_training = G.training
    G.eval()
    out = []
    try:
        for start in range(0, n, batch):
            k = min(batch, n - start)
            z = torch.randn(k, z_dim, generator=generator)
            c = None if conditions is None else conditions[start : start + k]
            out.append(decode(G(z, c), height, width))
    finally:
        G.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, height, width), dtype=np.int64)


def bootstrap(state: LevelState, run_dir: Path | None) -> int:
    """Propose ``bootstrap.samples`` levels; add the playable, novel ones. Returns how many."""
    b, m = state.cfg.bootstrap, state.cfg.model
    if len(state.levels) >= b.max_size:
        return 0
    assert m.height is not None and m.width is not None
    pick = torch.randint(0, len(state.levels), (b.samples,), generator=state.noise)
    cond = state.c[pick] if m.conditional else None
    candidates = generate_levels(
        state.ema.shadow, b.samples, m.height, m.width, m.z_dim, cond, state.noise
    )
    state.proposed += b.samples
    added = []
    pool = state.levels
    for level in candidates:
        if len(pool) >= b.max_size:
            continue
        result = check_playable(level)
        if not result.playable or (result.length or 0) < b.min_solution:
            continue
        if hamming_to_nearest(level[None], pool)[0] < b.min_distance:
            continue  # a copy, or too close to a level the set already has
        pool = np.concatenate([pool, level[None]])
        added.append(level)
    if added:
        state.levels = pool
        state._refresh()
        state.accepted += len(added)
        if run_dir is not None:
            folder = run_dir / "bootstrap"
            folder.mkdir(exist_ok=True)
            for i, level in enumerate(added):
                write_level(folder / f"step{state.step:07d}-{i:03d}.txt", level)
    return len(added)


def state_to_checkpoint(state: LevelState) -> dict[str, Any]:
    """The self-contained checkpoint dict of ``state``."""
    return {
        "kind": KIND,
        "version": __version__,
        "config": state.cfg.to_dict(),
        "step": state.step,
        "accepted": state.accepted,
        "proposed": state.proposed,
        "originals": state.originals,
        "levels": torch.from_numpy(state.levels.astype(np.int8)),
        "G": state.G.state_dict(),
        "D": state.D.state_dict(),
        "G_ema": state.ema.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "noise_rng": state.noise.get_state(),
        "rng": capture_rng_state(),
    }


def load_state(ckpt: dict[str, Any]) -> LevelState:
    """Rebuild a :class:`LevelState` from a checkpoint dict."""
    cfg = LevelRunConfig.from_dict(ckpt["config"])
    state = build_state(cfg, ckpt["levels"].numpy().astype(np.int64))
    state.originals = int(ckpt["originals"])
    try:
        state.G.load_state_dict(ckpt["G"])
        state.D.load_state_dict(ckpt["D"])
        state.ema.load_state_dict(ckpt["G_ema"])
        state.opt_g.load_state_dict(ckpt["opt_g"])
        state.opt_d.load_state_dict(ckpt["opt_d"])
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise SaganError(f"checkpoint does not match its own config ({first})") from None
    state.step, state.accepted = int(ckpt["step"]), int(ckpt["accepted"])
    state.proposed = int(ckpt["proposed"])
    state.noise.set_state(ckpt["noise_rng"])
    restore_rng_state(ckpt["rng"])
    return state


def _sample_png(state: LevelState, path: Path) -> None:
    from PIL import Image

    m = state.cfg.model
    assert m.height is not None and m.width is not None
    g = torch.Generator().manual_seed(1234)  # the same levels' conditions and noise each time
    pick = torch.arange(16) % len(state.levels)
    cond = state.c[pick] if m.conditional else None
    levels = generate_levels(state.ema.shadow, 16, m.height, m.width, m.z_dim, cond, g)
    Image.fromarray(render_levels(list(levels), tile_size=8, ncol=4)).save(path)


def train_levels(
    cfg: LevelRunConfig | None = None,
    *,
    out: str | Path | None = None,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    steps: int | None = None,
    progress: bool | None = None,
) -> Path:
    """Train (or, with ``resume`` = a run folder or checkpoint, continue) a level GAN.

    ``steps`` raises the total of a resumed run. Returns the run folder.
    """
    if resume is not None:
        path, ckpt = load_source(resume, kind=KIND)
        state = load_state(ckpt)
        if steps is not None:
            t = dataclasses.replace(state.cfg.train, steps=steps)
            state.cfg = dataclasses.replace(state.cfg, train=t)
        run_dir = path.parent  # load_source resolves a run folder to its checkpoint
    else:
        cfg = cfg or LevelRunConfig()
        named = load_levels(cfg.levels)
        levels = np.stack([lv for _, lv in named])  # (N, H, W)
        model = dataclasses.replace(cfg.model, height=levels.shape[1], width=levels.shape[2])
        cfg = dataclasses.replace(cfg, model=model)
        source = "builtin" if cfg.levels == "builtin" else Path(cfg.levels).name
        run_dir = Path(out) if out else make_run_dir(Path(runs_root), f"{model.variant}-{source}")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", cfg.to_dict())
        state = build_state(cfg, levels)
    return _loop(state, run_dir, progress)


def _loop(state: LevelState, run_dir: Path, progress: bool | None) -> Path:
    t, b = state.cfg.train, state.cfg.bootstrap
    if state.step >= t.steps:
        print(f"{run_dir}: already at step {state.step} of {t.steps}; raise --steps to go on")
        return run_dir
    (run_dir / "samples").mkdir(exist_ok=True)
    stats = StatsWriter(run_dir)
    bar = tqdm(total=t.steps, initial=state.step, desc=run_dir.name, disable=progress is False)
    try:
        while state.step < t.steps:
            losses = train_step(state)
            added = bootstrap(state, run_dir) if b.every and state.step % b.every == 0 else None
            if state.step % t.log_every == 0 or state.step == t.steps or added:
                values = losses | {
                    "train_size": float(len(state.levels)),
                    "accepted": float(state.accepted),
                    "acceptance": state.accepted / state.proposed if state.proposed else 0.0,
                }
                gammas = attention_gammas(state.G, "G") | attention_gammas(state.D, "D")
                values |= {f"gamma/{k}": v for k, v in gammas.items()}
                stats.scalars(state.step, values)
                bar.set_postfix(
                    D=f"{losses['loss_d']:.3f}",
                    G=f"{losses['loss_g']:.3f}",
                    levels=len(state.levels),
                    refresh=False,
                )
            bar.update(1)
            if state.step % t.sample_every == 0 or state.step == t.steps:
                _sample_png(state, run_dir / "samples" / f"levels-{state.step:07d}.png")
            if state.step % t.save_every == 0 or state.step == t.steps:
                save_checkpoint(state_to_checkpoint(state), run_dir / checkpoint_name(state.step))
                prune_checkpoints(run_dir, t.keep_checkpoints)
    finally:
        bar.close()
        stats.close()
    if state.accepted:
        print(
            f"bootstrap: {state.accepted} of {state.proposed} proposed levels joined the "
            f"{state.originals} starting ones",
            file=sys.stderr,
        )
    return run_dir


def original_counts(levels: np.ndarray, originals: int) -> np.ndarray:
    """``(originals, 8)`` tile counts of the levels a run started from."""
    return tile_counts(levels[:originals])
