"""Training Hg-SAGAN (and its ablations) on the synthetic figures; evaluation with PCKh.

One iteration on a batch: with ``adversarial``, a D update (Chou et al.'s BEGAN-style loss and
k_t), then a G update with intermediate supervision of every stack plus lambda_G times the
adversarial term; without it, supervision alone. Optimisers as in the paper: RMSprop for G,
Adam for D, both 2.5e-4. Defaults are sized for 2 CPU cores (2 stacks of 64 features on
64 px images); the paper's model is ``stacks=4, features=256, depth=4`` at 256 px.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sagan import __version__
from sagan.config import check_choice, check_positive, from_dict, to_dict, write_yaml
from sagan.errors import SaganError
from sagan.pose.datasets import SyntheticPoseDataset
from sagan.pose.heatmaps import decode_heatmaps, flip_heatmaps
from sagan.pose.joints import MPII_SWAP
from sagan.pose.losses import d_loss, g_loss, update_k
from sagan.pose.metrics import pckh
from sagan.pose.networks import ATTENTION_KINDS, HourglassDiscriminator, StackedHourglass
from sagan.training import (
    StatsWriter,
    capture_rng_state,
    load_source,
    make_run_dir,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from sagan.training.checkpoint import checkpoint_name

__all__ = [
    "KIND",
    "PoseRunConfig",
    "evaluate_pose",
    "load_pose_model",
    "predict_joints",
    "train_pose",
    "validation_set",
]

KIND = "pose"


@dataclass(frozen=True)
class PoseModelConfig:
    stacks: int = 2
    features: int = 64
    depth: int = 3
    attention: str = "sagan"
    """``sagan`` (softmax, the core layer), ``sigmoid`` (Wang et al.'s variant) or ``none``."""
    d_features: int = 32
    d_depth: int = 2

    def __post_init__(self) -> None:
        for name in ("stacks", "features", "depth", "d_features", "d_depth"):
            check_positive(f"model.{name}", getattr(self, name))
        check_choice("model.attention", self.attention, ATTENTION_KINDS)


@dataclass(frozen=True)
class PoseTrainConfig:
    adversarial: bool = True
    batch_size: int = 16
    steps: int = 600
    lr_g: float = 2.5e-4
    lr_d: float = 2.5e-4
    lambda_g: float = 0.1
    lambda_k: float = 0.001
    gamma: float = 0.5
    resolution: int = 64
    heatmap: int = 16
    train_size: int = 4000
    seed: int = 0
    save_every: int = 200
    log_every: int = 20
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        for name in ("batch_size", "steps", "lr_g", "lr_d", "resolution", "heatmap"):
            check_positive(f"train.{name}", getattr(self, name))
        for name in ("train_size", "save_every", "log_every", "keep_checkpoints"):
            check_positive(f"train.{name}", getattr(self, name))
        if self.resolution != 4 * self.heatmap:
            raise SaganError(
                f"train.resolution ({self.resolution}) must be 4 x train.heatmap "
                f"({self.heatmap}): the hourglass stem divides by 4"
            )


@dataclass(frozen=True)
class PoseRunConfig:
    model: PoseModelConfig = field(default_factory=PoseModelConfig)
    train: PoseTrainConfig = field(default_factory=PoseTrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseRunConfig:
        return from_dict(cls, data)

    def __post_init__(self) -> None:
        h, m = self.train.heatmap, self.model
        for name, depth in (("model.depth", m.depth), ("model.d_depth", m.d_depth)):
            if h % 2**depth:
                raise SaganError(
                    f"{name} {depth}: the heat-map size {h} must divide by 2^{depth}; "
                    "lower the depth or raise --resolution"
                )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass
class PoseState:
    cfg: PoseRunConfig
    G: StackedHourglass
    D: HourglassDiscriminator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    noise: torch.Generator
    k: float = 0.0
    step: int = 0


def build_state(cfg: PoseRunConfig) -> PoseState:
    """Fresh networks (seeded), RMSprop for G and Adam for D as in the paper."""
    m, t = cfg.model, cfg.train
    torch.manual_seed(t.seed)
    G = StackedHourglass(16, m.stacks, m.features, m.depth, m.attention)
    D = HourglassDiscriminator(16, m.d_features, m.d_depth, m.attention) if t.adversarial else None
    return PoseState(
        cfg=cfg,
        G=G,
        D=D,
        opt_g=torch.optim.RMSprop(G.parameters(), lr=t.lr_g),
        opt_d=torch.optim.Adam(D.parameters(), lr=t.lr_d) if D is not None else None,
        noise=torch.Generator().manual_seed(t.seed + 1),
    )


def _batch(dataset: SyntheticPoseDataset, idx: torch.Tensor) -> list[torch.Tensor]:
    items = [dataset[int(i)] for i in idx]
    return [torch.stack(parts) for parts in zip(*items, strict=True)]


def train_step(state: PoseState, dataset: SyntheticPoseDataset) -> dict[str, float]:
    """One (D and) G update on a random batch; returns the losses."""
    t = state.cfg.train
    idx = torch.randint(0, len(dataset), (t.batch_size,), generator=state.noise)
    x, target, _, _, _ = _batch(dataset, idx)  # (B, 3, R, R), (B, 16, H, H)
    stacks = state.G(x)  # [(B, 16, H, H)] * stacks
    fake = stacks[-1]
    out: dict[str, float] = {}
    if state.D is not None and state.opt_d is not None:
        small = F.interpolate(x, size=target.shape[-2:], mode="area")  # (B, 3, H, H)
        loss_d, l_real, l_fake = d_loss(
            state.D(small, target), target, state.D(small, fake.detach()), fake.detach(), state.k
        )
        state.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        state.opt_d.step()
        state.k = update_k(state.k, l_real.item(), l_fake.item(), t.lambda_k, t.gamma)
        loss_g = g_loss(stacks, target, state.D(small, fake), fake, t.lambda_g)
        out |= {"loss_d": loss_d.item(), "l_real": l_real.item(), "l_fake": l_fake.item()}
        out["k"] = state.k
    else:
        loss_g = sum(F.mse_loss(h, target) for h in stacks)
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()  # type: ignore[union-attr]
    state.opt_g.step()
    state.step += 1
    out["loss_g"] = loss_g.item()  # type: ignore[union-attr]
    return out


@torch.no_grad()
def predict_joints(G: StackedHourglass, x: torch.Tensor, flip: bool = True) -> torch.Tensor:
    """Images ``(B, 3, R, R)`` -> joints ``(B, 16, 2)`` in heat-map pixels: the last stack's
    maps, averaged with those of the mirrored image (flip test), decoded with the
    quarter-pixel shift."""
    was = G.training
    G.eval()
    try:
        maps = G(x)[-1]  # (B, 16, H, H)
        if flip:
            maps = (maps + flip_heatmaps(G(x.flip(dims=[3]))[-1], MPII_SWAP)) / 2
    finally:
        G.train(was)
    return decode_heatmaps(maps)[0]


def evaluate_pose(
    G: StackedHourglass, dataset: SyntheticPoseDataset, n: int = 200, flip: bool = True
) -> dict[str, float]:
    """PCKh@0.5 (per joint and total, percent) on the first ``n`` items of ``dataset``."""
    preds, gts, vis, heads = [], [], [], []
    for start in range(0, min(n, len(dataset)), 32):
        x, _, joints, visible, head = _batch(
            dataset, torch.arange(start, min(start + 32, n, len(dataset)))
        )
        preds.append(predict_joints(G, x, flip))
        gts.append(joints)
        vis.append(visible)
        heads.append(head)
    return pckh(
        torch.cat(preds).numpy(),
        torch.cat(gts).numpy(),
        torch.cat(vis).numpy(),
        torch.cat(heads).numpy(),
    )


def _checkpoint(state: PoseState) -> dict[str, Any]:
    return {
        "kind": KIND,
        "version": __version__,
        "config": state.cfg.to_dict(),
        "step": state.step,
        "k": state.k,
        "G": state.G.state_dict(),
        "D": state.D.state_dict() if state.D is not None else None,
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict() if state.opt_d is not None else None,
        "noise_rng": state.noise.get_state(),
        "rng": capture_rng_state(),
    }


def load_pose_state(ckpt: dict[str, Any]) -> PoseState:
    """Rebuild a :class:`PoseState` from a checkpoint dict."""
    state = build_state(PoseRunConfig.from_dict(ckpt["config"]))
    state.G.load_state_dict(ckpt["G"])
    state.opt_g.load_state_dict(ckpt["opt_g"])
    if state.D is not None and state.opt_d is not None:
        state.D.load_state_dict(ckpt["D"])
        state.opt_d.load_state_dict(ckpt["opt_d"])
    state.step, state.k = int(ckpt["step"]), float(ckpt["k"])
    state.noise.set_state(ckpt["noise_rng"])
    restore_rng_state(ckpt["rng"])
    return state


def train_pose(
    cfg: PoseRunConfig | None = None,
    *,
    out: str | Path | None = None,
    runs_root: str | Path = "runs/pose",
    resume: str | Path | None = None,
    steps: int | None = None,
) -> Path:
    """Train (or continue) a pose model on the synthetic figures; returns the run folder."""
    if resume is not None:
        path, ckpt = load_source(resume, kind=KIND)
        state = load_pose_state(ckpt)
        if steps is not None:
            t = dataclasses.replace(state.cfg.train, steps=steps)
            state.cfg = dataclasses.replace(state.cfg, train=t)
        run_dir = path.parent  # load_source resolves a run folder to its checkpoint
    else:
        cfg = cfg or PoseRunConfig()
        name = f"hg-{cfg.model.attention}-{'adv' if cfg.train.adversarial else 'sup'}"
        run_dir = Path(out) if out else make_run_dir(Path(runs_root), name)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", cfg.to_dict())
        state = build_state(cfg)
    t = state.cfg.train
    dataset = SyntheticPoseDataset(t.train_size, t.resolution, t.heatmap, seed=t.seed)
    stats = StatsWriter(run_dir)
    try:
        while state.step < t.steps:
            losses = train_step(state, dataset)
            if state.step % t.log_every == 0 or state.step == t.steps:
                stats.scalars(state.step, losses)
            if state.step % t.save_every == 0 or state.step == t.steps:
                save_checkpoint(_checkpoint(state), run_dir / checkpoint_name(state.step))
                prune_checkpoints(run_dir, t.keep_checkpoints)
    finally:
        stats.close()
    print(f"pose: step {state.step} of {t.steps}", file=sys.stderr)
    return run_dir


def load_pose_model(source: str | Path) -> tuple[StackedHourglass, PoseRunConfig]:
    """The generator of a pose checkpoint or run folder, in eval mode."""
    _, ckpt = load_source(source, kind=KIND)
    cfg = PoseRunConfig.from_dict(ckpt["config"])
    G = StackedHourglass(
        16, cfg.model.stacks, cfg.model.features, cfg.model.depth, cfg.model.attention
    )
    G.load_state_dict(ckpt["G"])
    return G.eval(), cfg


def validation_set(cfg: PoseRunConfig, n: int) -> SyntheticPoseDataset:
    """Held-out synthetic figures (another seed stream than training)."""
    t = cfg.train
    return SyntheticPoseDataset(n, t.resolution, t.heatmap, seed=10_000 + t.seed)
