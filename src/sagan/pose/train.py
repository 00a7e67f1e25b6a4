"""Training Hg-SAGAN (and its ablations) on the synthetic figures or on real MPII / LSP
annotations; evaluation with PCKh@0.5 (MPII order, 16 joints) or PCK@0.2 (LSP, 14 joints).

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
from sagan.pose.data import PersonAnnotation, annotation_format, read_annotations
from sagan.pose.datasets import AnnotatedPoseDataset, SyntheticPoseDataset
from sagan.pose.heatmaps import decode_heatmaps, flip_heatmaps
from sagan.pose.joints import LSP_SWAP, MPII_SWAP
from sagan.pose.losses import d_loss, g_loss, update_k
from sagan.pose.metrics import metric_for
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
    "PoseDataConfig",
    "PoseDataset",
    "PoseRunConfig",
    "evaluate_pose",
    "load_pose_model",
    "predict_joints",
    "train_pose",
    "validation_set",
]

KIND = "pose"

PoseDataset = SyntheticPoseDataset | AnnotatedPoseDataset
People = list[PersonAnnotation]

HOLDOUT_EVERY = 20
"""Without validation annotations, every 20th image (sorted by name) is held out."""


@dataclass(frozen=True)
class PoseDataConfig:
    annotations: str = ""
    """MPII ``.json`` / ``.mat`` or LSP ``joints.mat``; empty: the built-in synthetic figures."""
    images: str = ""
    """The folder holding the annotated images."""
    val_annotations: str = ""
    """Held-out people to evaluate on. Empty: LSP's test half for LSP's joints.mat, else
    every 20th image of ``annotations``."""

    def __post_init__(self) -> None:
        if bool(self.annotations) != bool(self.images):
            raise SaganError(
                "data.annotations and data.images go together: pass both --annotations and "
                "--images, or neither for the synthetic figures"
            )
        if self.val_annotations and not self.annotations:
            raise SaganError("data.val_annotations needs data.annotations (real data)")

    @property
    def synthetic(self) -> bool:
        return not self.annotations


@dataclass(frozen=True)
class PoseModelConfig:
    joints: int = 16
    """16 (MPII order, and the synthetic figures) or 14 (LSP); set from the data."""
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
        if self.joints not in (14, 16):
            raise SaganError(f"model.joints must be 16 (MPII) or 14 (LSP), got {self.joints}")


@dataclass(frozen=True)
class PoseTrainConfig:
    adversarial: bool = True
    batch_size: int = 16
    steps: int = 2400
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
    eval_every: int = 0
    """PCKh@0.5 on ``eval_n`` held-out items every this many steps (0: never)."""
    eval_n: int = 200

    def __post_init__(self) -> None:
        if self.eval_every < 0:
            raise SaganError(f"train.eval_every must be >= 0, got {self.eval_every}")
        check_positive("train.eval_n", self.eval_n)
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
    data: PoseDataConfig = field(default_factory=PoseDataConfig)

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
    G = StackedHourglass(m.joints, m.stacks, m.features, m.depth, m.attention)
    D = (
        HourglassDiscriminator(m.joints, m.d_features, m.d_depth, m.attention)
        if t.adversarial
        else None
    )
    return PoseState(
        cfg=cfg,
        G=G,
        D=D,
        opt_g=torch.optim.RMSprop(G.parameters(), lr=t.lr_g),
        opt_d=torch.optim.Adam(D.parameters(), lr=t.lr_d) if D is not None else None,
        noise=torch.Generator().manual_seed(t.seed + 1),
    )


def _batch(
    dataset: PoseDataset, idx: torch.Tensor, keys: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Items ``idx`` stacked; with ``keys``, each augmented by its key."""
    items = [
        dataset.sample(int(i), None if keys is None else int(k))
        for i, k in zip(idx, idx if keys is None else keys, strict=True)
    ]
    return [torch.stack(parts) for parts in zip(*items, strict=True)]


def train_step(state: PoseState, dataset: PoseDataset) -> dict[str, float]:
    """One (D and) G update on a random, augmented batch; returns the losses."""
    t = state.cfg.train
    idx = torch.randint(0, len(dataset), (t.batch_size,), generator=state.noise)
    keys = torch.randint(0, 2**62, (t.batch_size,), generator=state.noise)
    x, target, _, _, _ = _batch(dataset, idx, keys)  # (B, 3, R, R), (B, K, H, H)
    stacks = state.G(x)  # [(B, K, H, H)] * stacks
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
    """Images ``(B, 3, R, R)`` -> joints ``(B, K, 2)`` in heat-map pixels: the last stack's
    maps, averaged with those of the mirrored image (flip test, left and right swapped:
    MPII's swap for K = 16, LSP's for K = 14), decoded with the quarter-pixel shift."""
    was = G.training
    G.eval()
    try:
        maps = G(x)[-1]  # (B, K, H, H)
        if flip:
            swap = MPII_SWAP if maps.shape[1] == 16 else LSP_SWAP
            maps = (maps + flip_heatmaps(G(x.flip(dims=[3]))[-1], swap)) / 2
    finally:
        G.train(was)
    return decode_heatmaps(maps)[0]


def evaluate_pose(
    G: StackedHourglass, dataset: PoseDataset, n: int = 200, flip: bool = True
) -> dict[str, float]:
    """Per joint and total, in percent, on the first ``n`` items of ``dataset``: PCKh@0.5
    for 16 joints (MPII order), PCK@0.2 with the torso size for LSP's 14."""
    if n < 1:
        raise SaganError(f"evaluate at least one person, got n = {n}")
    preds, gts, vis, heads = [], [], [], []
    for start in range(0, min(n, len(dataset)), 32):
        x, _, joints, visible, head = _batch(
            dataset, torch.arange(start, min(start + 32, n, len(dataset)))
        )
        preds.append(predict_joints(G, x, flip))
        gts.append(joints)
        vis.append(visible)
        heads.append(head)
    args = [torch.cat(t).numpy() for t in (preds, gts, vis, heads)]
    return metric_for(dataset.joints)(*args)


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
    """Train (or continue) a pose model; returns the run folder. A fresh run's config is
    resolved (the joint count follows the annotations) and written before step 0."""
    if resume is not None:
        path, ckpt = load_source(resume, kind=KIND)
        state = load_pose_state(ckpt)
        if steps is not None:
            t = dataclasses.replace(state.cfg.train, steps=steps)
            state.cfg = dataclasses.replace(state.cfg, train=t)
        run_dir = path.parent  # load_source resolves a run folder to its checkpoint
    else:
        cfg = resolve_config(cfg or PoseRunConfig())
        name = f"hg-{cfg.model.attention}-{'adv' if cfg.train.adversarial else 'sup'}"
        if not cfg.data.synthetic:
            name += f"-{annotation_format(cfg.data.annotations)}"
        run_dir = Path(out) if out else make_run_dir(Path(runs_root), name)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", cfg.to_dict())
        state = build_state(cfg)
    t = state.cfg.train
    dataset, val = datasets(state.cfg)
    stats = StatsWriter(run_dir)
    try:
        while state.step < t.steps:
            losses = train_step(state, dataset)
            if state.step % t.log_every == 0 or state.step == t.steps:
                stats.scalars(state.step, losses)
            if t.eval_every and (state.step % t.eval_every == 0 or state.step == t.steps):
                with torch.random.fork_rng(devices=[]):  # evaluation leaves training's RNG
                    scores = evaluate_pose(state.G, val, n=t.eval_n)
                metric = metric_for(val.joints).key
                stats.scalars(state.step, {f"metric/{metric}_{k}": v for k, v in scores.items()})
                print(f"pose: step {state.step}: {metric} {scores['total']:.1f}", file=sys.stderr)
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
    m = cfg.model
    G = StackedHourglass(m.joints, m.stacks, m.features, m.depth, m.attention)
    G.load_state_dict(ckpt["G"])
    return G.eval(), cfg


def resolve_config(cfg: PoseRunConfig) -> PoseRunConfig:
    """``cfg`` with the model's joint count set by the annotations (14 for LSP)."""
    if cfg.data.synthetic:
        return cfg
    joints = 14 if annotation_format(cfg.data.annotations) == "lsp" else 16
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, joints=joints))


def _group(p: PersonAnnotation) -> str:
    return p.image if p.video is None else f"video {p.video}"


def holdout(people: People) -> tuple[People, People]:
    """Split people by image, or by video when the annotations name one (MPII's official
    file: frames of one video are near-duplicates): every 20th group, in name order, goes to
    validation."""
    groups = sorted({_group(p) for p in people})
    held = set(groups[::HOLDOUT_EVERY])
    return [p for p in people if _group(p) not in held], [p for p in people if _group(p) in held]


def real_people(data: PoseDataConfig) -> tuple[People, People]:
    """(training, validation) people of real annotations (see :class:`PoseDataConfig`)."""
    train = read_annotations(data.annotations, lsp_split="train")
    if data.val_annotations:
        val = read_annotations(data.val_annotations, lsp_split="test")
        if train and val and len(val[0].joints) != len(train[0].joints):
            raise SaganError(
                f"the validation annotations have {len(val[0].joints)} joints but the "
                f"training ones {len(train[0].joints)}; validate MPII on MPII and LSP on LSP"
            )
        return train, val
    if annotation_format(data.annotations) == "lsp":
        test = read_annotations(data.annotations, lsp_split="test")
        if test:  # LSP's standard halves; LSP-extended has no test half
            return train, test
    return holdout(train)


def datasets(cfg: PoseRunConfig) -> tuple[PoseDataset, PoseDataset]:
    """The (training, validation) data sets of a run."""
    t, d = cfg.train, cfg.data
    if d.synthetic:
        train = SyntheticPoseDataset(t.train_size, t.resolution, t.heatmap, seed=t.seed)
        return train, validation_set(cfg, t.eval_n)
    people, val = real_people(d)
    return (
        AnnotatedPoseDataset(people, d.images, t.resolution, t.heatmap, seed=t.seed),
        AnnotatedPoseDataset(val, d.images, t.resolution, t.heatmap),
    )


def validation_set(cfg: PoseRunConfig, n: int) -> PoseDataset:
    """The run's held-out people: ``n`` synthetic figures from another seed stream than
    training, or the validation people of real annotations (all of them)."""
    t = cfg.train
    if cfg.data.synthetic:
        return SyntheticPoseDataset(n, t.resolution, t.heatmap, seed=10_000 + t.seed)
    _, val = real_people(cfg.data)  # only the held-out images need to exist
    return AnnotatedPoseDataset(val, cfg.data.images, t.resolution, t.heatmap)
