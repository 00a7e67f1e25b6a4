"""Training Hg-SAGAN (and its ablations) on the synthetic figures or on real MPII / LSP
annotations; evaluation with PCKh@0.5 (MPII order, 16 joints) or PCK@0.2 (LSP, 14 joints).

One iteration on a batch: with ``adversarial``, a D update (Chou et al.'s BEGAN-style loss and
k_t), then a G update with intermediate supervision of every stack plus lambda_G times the
adversarial term; without it, supervision alone. Optimisers as in the paper: RMSprop for G,
Adam for D, both 2.5e-4. Defaults are sized for 2 CPU cores (2 stacks of 64 features on
64 px images); the paper's model is ``stacks=4, features=256, depth=4`` at 256 px. The loop,
run folders, checkpoints, signals, precision and torchrun are the engine's
(:mod:`sagan.training.engine`); k_t stays on the device between checkpoints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from sagan.errors import SaganError
from sagan.pose.config import (
    PoseDataConfig,
    PoseModelConfig,
    PoseRunConfig,
    PoseTrainConfig,
    upgrade_config,
)
from sagan.pose.data import PersonAnnotation, annotation_format, read_annotations
from sagan.pose.datasets import AnnotatedPoseDataset, SyntheticPoseDataset
from sagan.pose.heatmaps import decode_heatmaps, flip_heatmaps
from sagan.pose.joints import LSP_SWAP, MPII_SWAP
from sagan.pose.loader import PoseBatches, load_batch
from sagan.pose.losses import d_loss, g_loss, update_k
from sagan.pose.metrics import metric_for
from sagan.pose.multiscale import fuse_scales
from sagan.pose.networks import HourglassDiscriminator, StackedHourglass
from sagan.training import engine, load_source
from sagan.training.device import module_device
from sagan.training.engine import Context, Evaluation, Task
from sagan.training.guard import GuardedOptimizers
from sagan.training.optim import adam

__all__ = [
    "KIND",
    "PoseDataConfig",
    "PoseDataset",
    "PoseModelConfig",
    "PoseRunConfig",
    "PoseTask",
    "PoseTrainConfig",
    "evaluate_pose",
    "load_pose_model",
    "predict_joints",
    "predict_maps",
    "train_pose",
    "validation_set",
]

KIND = "pose"

PoseDataset = SyntheticPoseDataset | AnnotatedPoseDataset
People = list[PersonAnnotation]

HOLDOUT_EVERY = 20
"""Without validation annotations, every 20th image (sorted by name) is held out."""


class PoseTask(Task):
    """Stacked hourglasses (G) and, with ``adversarial``, the hourglass discriminator (D)."""

    kind = KIND
    command = "sagan pose train"
    resumable: ClassVar[Mapping[str, frozenset[str]]] = {
        "train": frozenset({"eval_n"}),
        # where the annotations and images are may change (a moved folder), not what they
        # are: prepare() and load_extra_state() refuse other joints, another number of
        # training people and a switch between synthetic figures and real data
        "data": frozenset({"num_workers", "prefetch", "annotations", "images", "val_annotations"}),
    }

    def __init__(
        self, cfg: PoseRunConfig, data: tuple[PoseDataset, PoseDataset], ctx: Context
    ) -> None:
        super().__init__(cfg, data, ctx)
        m, t, device = cfg.model, cfg.train, ctx.device
        G = StackedHourglass(m.joints, m.stacks, m.features, m.depth, m.attention).to(device)
        self.nets = {"G": G}
        # RMSprop has no fused kernel: the guard reads its verdict on the host (free on a CPU)
        opts: dict[str, torch.optim.Optimizer] = {
            "g": torch.optim.RMSprop(G.parameters(), lr=t.lr_g)
        }
        if t.adversarial:
            D = HourglassDiscriminator(m.joints, m.d_features, m.d_depth, m.attention, m.d_arch).to(
                device
            )
            self.nets["D"] = D
            opts["d"] = adam(D.parameters(), lr=t.lr_d, betas=(0.9, 0.999))
        self.updates = GuardedOptimizers(opts, ctx.precision, device, ctx.dist)
        self.k = torch.zeros((), device=device)
        """BEGAN's equilibrium term k_t, on the device."""
        d = cfg.data
        self.batches = PoseBatches(
            data[0], t.batch_size, ctx.shard(t.batch_size), num_workers=d.num_workers,
            prefetch=d.prefetch, pin_memory=device.type == "cuda",
        )  # fmt: skip
        """This rank's augmented batches, made ahead of the step (:mod:`sagan.pose.loader`)."""

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> PoseRunConfig:
        return PoseRunConfig.from_dict(data)

    @classmethod
    def upgrade(cls, ckpt: dict[str, Any]) -> dict[str, Any]:
        """Checkpoints of 0.1: their config in today's terms (see :func:`upgrade_config`)."""
        return {**ckpt, "config": upgrade_config(ckpt["config"], ckpt.get("version"))}

    @classmethod
    def prepare(
        cls, cfg: PoseRunConfig, *, resuming: bool
    ) -> tuple[PoseRunConfig, tuple[PoseDataset, PoseDataset]]:
        if not resuming:
            cfg = resolve_config(cfg)
            return cfg, datasets(cfg)
        try:
            data = datasets(cfg)
        except SaganError as exc:
            if cfg.data.synthetic:
                raise
            raise SaganError(
                f"{exc}; if this run's data moved, resume with --annotations NEW_FILE "
                "--images NEW_FOLDER"
            ) from None
        if data[0].joints != cfg.model.joints:
            raise SaganError(
                f"{cfg.data.annotations} has {data[0].joints} joints but this run's model "
                f"predicts {cfg.model.joints}; resume on the data the run started on"
            )
        return cfg, data

    @classmethod
    def describe(cls, cfg: PoseRunConfig, data: object) -> str:
        name = f"hg-{cfg.model.attention}-{'adv' if cfg.train.adversarial else 'sup'}"
        if not cfg.data.synthetic:
            name += f"-{annotation_format(cfg.data.annotations)}"
        return name

    def lr_g(self) -> float:
        """G's learning rate now: ``lr_g`` times ``lr_gamma`` per ``lr_epochs`` milestone
        passed (a function of the step, so a resumed run follows the same schedule)."""
        t = self.cfg.train
        per_epoch = max(1, len(self.data[0]) // t.batch_size)
        drops = sum(self.step_count >= e * per_epoch for e in t.lr_epochs)
        return t.lr_g * t.lr_gamma**drops

    def step(self) -> dict[str, torch.Tensor]:
        lr = self.lr_g()
        for group in self.updates.optimizers["g"].param_groups:
            group["lr"] = lr
        return train_step(self)

    def close(self) -> None:
        self.batches.close()

    def extra_state(self) -> dict[str, Any]:
        dataset = {"synthetic": self.cfg.data.synthetic, "people": len(self.data[0])}
        return {"k": float(self.k), "dataset": dataset}

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        self.k = torch.tensor(float(ckpt["k"]), device=self.ctx.device)
        saved = ckpt.get("dataset")  # absent in older checkpoints
        if saved is None:
            return
        if saved["synthetic"] != self.cfg.data.synthetic:
            started = "the synthetic figures" if saved["synthetic"] else "real annotations"
            raise SaganError(
                f"this run started on {started}; resume it on the same data (start a new run "
                "for other data)"
            )
        if saved["people"] != len(self.data[0]):
            raise SaganError(
                f"the annotations hold {len(self.data[0])} training people but this run started "
                f"on {saved['people']} (its batch order and learning-rate schedule follow "
                "them); resume on the same data, or start a new run"
            )

    def log_values(self, it_per_s: float, seconds: float) -> dict[str, float]:
        values = {"k": float(self.k), "img_per_s": it_per_s * self.cfg.train.batch_size}
        values["lr_g"] = self.updates.optimizers["g"].param_groups[0]["lr"]
        return values | self.gammas()

    def progress(self, values: dict[str, float]) -> dict[str, str]:
        shown = {"G": f"{values['loss_g']:.4f}", "img/s": f"{values['img_per_s']:.1f}"}
        if "loss_d" in values:
            shown |= {"D": f"{values['loss_d']:.4f}", "k": f"{values['k']:.4f}"}
        return shown | self.shown_gammas(values)

    def evaluate(self) -> Evaluation:
        """PCKh@0.5 (PCK@0.2 for LSP) per joint on ``train.eval_n`` held-out people, flip
        test on; best.pt keeps the best total."""
        val = self.data[1]
        scores = evaluate_pose(self.G, val, n=self.cfg.train.eval_n)
        metric = metric_for(val.joints).key
        values = {f"{metric}_{k}": v for k, v in scores.items()}
        return Evaluation(values, primary=f"{metric}_total", higher_is_better=True)


def train_step(task: PoseTask) -> dict[str, torch.Tensor]:
    """One (D and) G update on this rank's slice of a random, augmented global batch; returns
    the losses (detached, on the device)."""
    t, ctx = task.cfg.train, task.ctx
    amp = ctx.precision
    x, target = task.batches.next(ctx.data_rng)  # (b, 3, R, R), (b, K, H, H)
    x, target = x.to(ctx.device, non_blocking=True), target.to(ctx.device, non_blocking=True)
    with amp.autocast():
        stacks = [h.float() for h in task.train_net("G")(x)]  # [(b, K, H, H)] * stacks
    fake = stacks[-1]
    out: dict[str, torch.Tensor] = {}
    D = task.D
    if D is not None:
        D_train = task.train_net("D")
        small = F.interpolate(x, size=target.shape[-2:], mode="area")  # (b, 3, H, H)
        with amp.autocast():
            recon_real = D_train(small, target).float()
            recon_fake = D_train(small, fake.detach()).float()
        loss_d, l_real, l_fake = d_loss(recon_real, target, recon_fake, fake.detach(), task.k)
        task.updates.update("d", loss_d)
        task.k = update_k(task.k, l_real.detach(), l_fake.detach(), t.lambda_k, t.gamma)
        D.requires_grad_(False)  # G's update needs gradients through D, not of D
        with amp.autocast():
            recon = D(small, fake).float()
        loss_g = g_loss(stacks, target, recon, fake, t.lambda_g)
        out |= {"loss_d": loss_d.detach(), "l_real": l_real.detach(), "l_fake": l_fake.detach()}
    else:
        loss_g = sum(F.mse_loss(h, target) for h in stacks)  # type: ignore[assignment]
    task.updates.update("g", loss_g)  # type: ignore[arg-type]
    if D is not None:
        D.requires_grad_(True)
    out["loss_g"] = loss_g.detach()  # type: ignore[union-attr]
    return out


@torch.no_grad()
def predict_maps(G: StackedHourglass, x: torch.Tensor, flip: bool = True) -> torch.Tensor:
    """Images ``(B, 3, R, R)`` -> the last stack's heat-maps ``(B, K, H, H)`` (float32, on
    G's device), averaged with those of the mirrored image when ``flip`` (left and right
    swapped: MPII's swap for K = 16, LSP's for K = 14)."""
    was = G.training
    G.eval()
    x = x.to(module_device(G))
    try:
        maps = G(x)[-1]  # (B, K, H, H)
        if flip:
            swap = MPII_SWAP if maps.shape[1] == 16 else LSP_SWAP
            maps = (maps + flip_heatmaps(G(x.flip(dims=[3]))[-1], swap)) / 2
    finally:
        G.train(was)
    return maps.float()


def predict_joints(G: StackedHourglass, x: torch.Tensor, flip: bool = True) -> torch.Tensor:
    """Images ``(B, 3, R, R)`` -> joints ``(B, K, 2)`` in heat-map pixels: :func:`predict_maps`
    decoded with the quarter-pixel shift."""
    return decode_heatmaps(predict_maps(G, x, flip))[0].cpu()


def evaluate_pose(
    G: StackedHourglass,
    dataset: PoseDataset,
    n: int = 200,
    flip: bool = True,
    scales: Sequence[float] | None = None,
) -> dict[str, float]:
    """Per joint and total, in percent, on the first ``n`` items of ``dataset``: PCKh@0.5
    for 16 joints (MPII order), PCK@0.2 with the torso size for LSP's 14.

    ``scales``: multi-scale testing (:mod:`sagan.pose.multiscale`; the released factors are
    ``RELEASED_SCALES``); None tests the standard crop alone."""
    if n < 1:
        raise SaganError(f"evaluate at least one person, got n = {n}")
    if scales is not None and (not scales or min(scales) <= 0):
        raise SaganError(f"scales must be positive crop-width factors, got {list(scales)}")
    preds, gts, vis, heads = [], [], [], []
    step = 32 if scales is None else 8  # the fused maps are (8, K, R, R) per scale
    for start in range(0, min(n, len(dataset)), step):
        idx = torch.arange(start, min(start + step, n, len(dataset)))
        x, _, joints, visible, head = load_batch(dataset, idx)
        if scales is None:
            preds.append(predict_joints(G, x, flip))
        else:
            maps = [
                predict_maps(G, torch.stack([dataset.image_at(int(i), f) for i in idx]), flip)
                for f in scales
            ]
            preds.append(fuse_scales(maps, scales, x.shape[-1]).cpu())
        gts.append(joints)
        vis.append(visible)
        heads.append(head)
    args = [torch.cat(t).numpy() for t in (preds, gts, vis, heads)]
    return metric_for(dataset.joints)(*args)


def train_pose(
    cfg: PoseRunConfig | None = None,
    *,
    out: str | Path | None = None,
    runs_root: str | Path = "runs/pose",
    resume: str | Path | None = None,
    steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool | None = False,
) -> Path:
    """Train (or continue) a pose model; returns the run folder. A fresh run's config is
    resolved (the joint count follows the annotations) and written before step 0; ``steps``
    raises the total of a resumed run."""
    if resume is None and cfg is None:
        cfg = PoseRunConfig()
    return engine.train(
        PoseTask, cfg, out=out, runs_root=runs_root, resume=resume, steps=steps,
        overrides=overrides, progress=progress,
    )  # fmt: skip


def load_pose_model(source: str | Path) -> tuple[StackedHourglass, PoseRunConfig]:
    """The generator of a pose checkpoint or run folder, in eval mode."""
    _, ckpt = load_source(source, kind=KIND)
    ckpt = PoseTask.upgrade(ckpt)
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
