"""The image SAGAN's side of training: networks, the TTUR/hinge iteration, samples, metrics.

One iteration ("step") is ``n_dis`` discriminator updates followed by one generator update, as in
the paper. Real and fake images go through D in one concatenated batch, so each D update runs
the spectral-norm power iteration once. Noise and fake labels come from the engine's noise
stream, whose state is checkpointed with everything else, and the data order depends only on
``(seed, batches consumed)``: N steps + save + resume + N steps equals 2N straight steps exactly.
The loop, run folders, checkpoints, signals, precision and torchrun are the engine's
(:mod:`sagan.training.engine`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from sagan.errors import SaganError
from sagan.images.config import RunConfig
from sagan.images.data import ImageDataset, dataset_fingerprint, load_dataset
from sagan.images.evaluate import PRIMARY_METRICS, check_metrics
from sagan.images.export import TrainingSampler
from sagan.images.grid import save_grid
from sagan.images.loader import batch_stream
from sagan.images.networks import build_discriminator, build_generator
from sagan.losses import LOSSES, GANLoss, LeCamAnchors, lecam_penalty
from sagan.training import EMA, TimedIterator, engine
from sagan.training.augment import AdaptiveAugment, diff_augment
from sagan.training.distributed import DistInfo, mean_over_ranks
from sagan.training.engine import Context, Evaluation, Task
from sagan.training.guard import GuardedOptimizers
from sagan.training.optim import adam

__all__ = ["KIND", "ImageTask", "build_state", "fixed_latents", "train", "train_step"]

KIND = "images"
"""The ``kind`` tag of image checkpoints."""


class ImageTask(Task):
    """SAGAN on images: G and D (channels_last), TTUR Adam, an EMA of G (ours; the paper and its
    official code keep none), the batch stream of the data set."""

    kind = KIND
    command = "sagan train"
    resumable: ClassVar[Mapping[str, frozenset[str]]] = {
        "train": frozenset({"eval_n", "eval_metrics", "sync_bn"}),
        # where the images are may change (a moved folder), not what they are: prepare()
        # refuses a data set whose channels or classes differ from the checkpoint's
        "data": frozenset({"num_workers", "data"}),
    }

    def __init__(self, cfg: RunConfig, data: ImageDataset | None, ctx: Context) -> None:
        super().__init__(cfg, data, ctx)
        t, device = cfg.train, ctx.device
        # channels_last: the layout oneDNN (CPU) and cuDNN tensor cores run convolutions in
        try:
            G = build_generator(cfg.model).to(device, memory_format=torch.channels_last)
            D = build_discriminator(cfg.model).to(device, memory_format=torch.channels_last)
        except ValueError as exc:  # e.g. too few channels for attention at a resolution
            raise SaganError(f"model: {exc}; raise --ch or change --attention") from None
        if t.ema_decay > 0:
            self.emas = {"G": EMA(G, t.ema_decay)}  # an eager copy
        if t.sync_bn and ctx.dist.enabled:
            if device.type != "cuda":
                raise SaganError(
                    "--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm); on CPU, rank 0's "
                    "BatchNorm statistics are broadcast to every process instead"
                )
            G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
        self.nets = {"G": G, "D": D}
        opts = {
            "g": adam(G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2)),
            "d": adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2)),
        }
        self.updates = GuardedOptimizers(opts, ctx.precision, device, ctx.dist)
        self.batches_seen = 0
        """Real batches consumed: the data stream's position."""
        over_ranks = functools.partial(mean_over_ranks, info=ctx.dist)
        self.ada = None
        if t.augment == "ada":  # p moves with the global batch; r_t is averaged over ranks
            world = ctx.dist.world_size
            self.ada = AdaptiveAugment(t.ada_target, t.ada_kimg / world, reduce=over_ranks)
        """ADA's adaptive augmentation probability (``--augment ada``)."""
        self.lecam = None
        if t.lecam > 0:
            self.lecam = LeCamAnchors(reduce=over_ranks)
        """The moving averages LeCam regularisation pulls D's scores toward."""
        self.batches: TimedIterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    # -- before the run --------------------------------------------------------------------------

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return RunConfig.from_dict(data)

    @classmethod
    def upgrade(cls, ckpt: dict[str, Any]) -> dict[str, Any]:
        """Checkpoints written before presets (0.2 and older) record preset ``none``; their
        configs hold every setting, so nothing else changes."""
        if "preset" in ckpt["config"]:
            return ckpt
        return {**ckpt, "config": {"preset": "none", **ckpt["config"]}}

    @classmethod
    def prepare(cls, cfg: RunConfig, *, resuming: bool) -> tuple[RunConfig, ImageDataset]:
        try:
            dataset = load_dataset(
                cfg.data.data,
                cfg.model.resolution,
                conditional=bool(cfg.model.num_classes) if resuming else cfg.data.conditional,
            )
        except SaganError as exc:
            if not resuming:
                raise
            raise SaganError(
                f"{exc}; if this run's data moved, resume with --data NEW_PATH"
            ) from None
        skipped = dataset.describe_skipped()
        if skipped:
            print(f"data: {skipped}", file=sys.stderr)
        if len(dataset) < cfg.train.batch_size:
            raise SaganError(
                f"the data set has {len(dataset)} usable images, fewer than one batch of "
                f"{cfg.train.batch_size}; lower --batch-size or add images"
            )
        model = dataclasses.replace(
            cfg.model, channels=dataset.channels, num_classes=dataset.num_classes
        )
        if resuming and (model.channels, model.num_classes) != (
            cfg.model.channels,
            cfg.model.num_classes,
        ):
            raise SaganError(
                f"the data set now has {dataset.channels} channels / {dataset.num_classes} "
                f"classes, the checkpoint {cfg.model.channels} / {cfg.model.num_classes}; resume "
                "on the same data"
            )
        return dataclasses.replace(cfg, model=model), dataset

    @classmethod
    def describe(cls, cfg: RunConfig, data: ImageDataset) -> str:
        m = cfg.model
        return f"{data.name}-{m.arch}{m.resolution}{'-cond' if m.num_classes else ''}"

    # -- the iteration ---------------------------------------------------------------------------

    def start(self, run_dir: Path | None) -> None:
        t, info = self.cfg.train, self.ctx.dist
        self.batches = TimedIterator(
            batch_stream(
                self.data,
                t.batch_size,
                seed=t.seed,
                position=self.batches_seen,
                device=self.ctx.device,
                num_workers=self.cfg.data.num_workers,
                rank=info.rank,
                world_size=info.world_size,
            )
        )
        self.latents = fixed_latents(self.cfg, self.ctx.device)
        if run_dir is not None and self.step_count == 0:
            # evenly spaced indices: data sets stored class by class still show every class
            n = len(self.data)
            picks = torch.linspace(0, n - 1, min(64, n)).long().tolist()
            reals = torch.stack([self.data[i][0] for i in picks])
            save_grid(reals.float() / 127.5 - 1, run_dir / "samples" / "reals.png")

    def step(self) -> dict[str, torch.Tensor]:
        assert self.batches is not None, "start() opens the data stream"
        return train_step(self, self.batches, LOSSES[self.cfg.train.loss])

    def close(self) -> None:
        if self.batches is not None:
            self.batches.close()

    # -- checkpoints -----------------------------------------------------------------------------

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of images ``x`` (B, C, R, R): augmented with ``--augment``, drawing
        from the run's noise stream (saved in checkpoints)."""
        t = self.cfg.train
        if t.augment == "none":
            return x
        p = self.ada.p if self.ada is not None else 1.0
        return diff_augment(x, t.policy, self.ctx.noise, p)

    def extra_state(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.ada is not None:
            extra["ada"] = self.ada.state_dict()
        if self.lecam is not None:
            extra["lecam"] = self.lecam.state_dict()
        return extra | {
            "batches_seen": self.batches_seen,
            "dataset": {
                "name": self.data.name,
                "size": len(self.data),
                "fingerprint": dataset_fingerprint(self.data),
            },
        }

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        self.batches_seen = int(ckpt["batches_seen"])
        if self.ada is not None and "ada" in ckpt:
            self.ada.load_state_dict(ckpt["ada"])
        if self.lecam is not None and "lecam" in ckpt:
            self.lecam.load_state_dict(ckpt["lecam"])
        saved = (ckpt.get("dataset") or {}).get("fingerprint")
        if saved and self.data is not None and saved != dataset_fingerprint(self.data):
            print("warning: the data set differs from the one this run started on", file=sys.stderr)

    # -- logging, samples, evaluation ------------------------------------------------------------

    def log_values(self, it_per_s: float, seconds: float) -> dict[str, float]:
        t = self.cfg.train
        values = {"img_per_s": it_per_s * t.batch_size * t.n_dis}
        if self.batches is not None:
            values["data_wait_share"] = self.batches.waited / seconds if seconds > 0 else 0.0
            self.batches.waited = 0.0
        if self.ada is not None:
            values |= {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t}
        return values | self.gammas()

    def progress(self, values: dict[str, float]) -> dict[str, str]:
        shown = {
            "D": f"{values['loss_d']:.3f}",
            "G": f"{values['loss_g']:.3f}",
            "img/s": f"{values['img_per_s']:.0f}",
        }
        return shown | self.shown_gammas(values)

    def sample(self, path_dir: Path) -> np.ndarray | None:
        net = self.sampler
        was_training = net.training
        net.eval()
        with torch.no_grad():
            images = net(*self.latents)
        net.train(was_training)
        return save_grid(images, path_dir / f"fakes-{self.step_count:07d}.png", nrow=8)

    def _live_sampler(self) -> TrainingSampler:
        return TrainingSampler(self.sampler, self.cfg.model, self.step_count, self.data.name)

    def check_evaluation(self) -> None:
        metrics = self.cfg.train.eval_metrics
        if metrics.strip():
            check_metrics(self._live_sampler(), metrics.split(","), self.data.name)

    def evaluate(self) -> Evaluation:
        """The offline or Inception metrics of the (EMA) generator; best.pt follows FID, else
        FD-digits, else FD-random (lower is better)."""
        from sagan.images.evaluate import evaluate

        t = self.cfg.train
        names = [m for m in t.eval_metrics.split(",") if m.strip()] or None
        device = self.ctx.device
        result = evaluate(
            self._live_sampler(), metrics=names, real=self.data, n=t.eval_n, seed=0,
            device=device,
        )  # fmt: skip
        primary = next((m for m in PRIMARY_METRICS if m in result.values), None)
        return Evaluation(result.values, primary=primary, higher_is_better=False)


def build_state(cfg: RunConfig, device: torch.device, info: DistInfo | None = None) -> ImageTask:
    """A fresh :class:`ImageTask` outside the engine (benchmarks, tests): networks seeded by
    ``cfg.train.seed``, optimisers, the noise stream; ``cfg.model`` must name its channels and
    classes. Feed :func:`train_step` your own batches."""
    return engine.build_task(ImageTask, cfg, None, device, info)


def _latents(
    task: ImageTask, batch: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    m = task.cfg.model
    z = torch.randn(batch, m.z_dim, generator=task.ctx.noise, device=device)
    y = None
    if m.num_classes:
        y = torch.randint(0, m.num_classes, (batch,), generator=task.ctx.noise, device=device)
    return z, y


def train_step(
    task: ImageTask,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    loss: GANLoss,
) -> dict[str, torch.Tensor]:
    """One iteration: ``n_dis`` D updates and one G update. Returns detached scalars (on the
    device); the EMA and the step count are the engine's."""
    G, D, amp = task.G, task.D, task.ctx.precision
    G_train, D_train = task.train_net("G"), task.train_net("D")
    conditional = bool(task.cfg.model.num_classes)
    D.requires_grad_(True)
    for _ in range(task.cfg.train.n_dis):
        real, y_real = next(batches)
        task.batches_seen += 1
        b = real.shape[0]
        z, y_fake = _latents(task, b, real.device)
        with torch.no_grad(), amp.autocast():
            fake = G(z, y_fake)
        with amp.autocast():
            # real and fake through the same augmentation policy (a no-op without --augment)
            x = task.augment(torch.cat([real, fake.to(real.dtype)]))  # (2B, C, R, R)
            y = torch.cat([y_real, y_fake]) if conditional else None  # type: ignore[list-item]
            scores = D_train(x, y).float()  # (2B,)
        d_real, d_fake = scores[:b], scores[b:]
        loss_d = loss.d(d_real, d_fake)
        if task.lecam is not None:
            anchors = task.lecam
            penalty = lecam_penalty(d_real, d_fake, anchors.real.to(d_real.device),
                                    anchors.fake.to(d_real.device))  # fmt: skip
            loss_d = loss_d + task.cfg.train.lecam * penalty
            anchors.update(d_real, d_fake)
        task.updates.update("d", loss_d)
        if task.ada is not None:
            task.ada.observe(d_real)
    D.requires_grad_(False)  # G's update needs gradients through D, not of D
    z, y_fake = _latents(task, real.shape[0], real.device)  # the per-rank batch
    with amp.autocast():
        scores = D(task.augment(G_train(z, y_fake)), y_fake).float()
    loss_g = loss.g(scores)
    task.updates.update("g", loss_g)
    D.requires_grad_(True)
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": d_real.detach().mean(),
        "d_fake": d_fake.detach().mean(),
    }


def fixed_latents(
    cfg: RunConfig, device: torch.device, n: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run's fixed sample-grid noise (and labels: one row per class when they fit)."""
    m = cfg.model
    g = torch.Generator().manual_seed(cfg.train.seed + 12345)
    if m.num_classes and n is None:
        per_class = 8 if m.num_classes <= 16 else 1
        y = torch.arange(m.num_classes).repeat_interleave(per_class)
        n = len(y) if m.num_classes <= 16 else 64
        y = y[:n] if m.num_classes <= 16 else torch.arange(n) % m.num_classes
    else:
        n = n or 64
        y = torch.arange(n) % m.num_classes if m.num_classes else None
    z = torch.randn(n, m.z_dim, generator=g)
    return z.to(device), (y.to(device) if y is not None else None)


def train(
    cfg: RunConfig | None = None,
    *,
    out: Path | None = None,
    runs_root: Path = Path("runs"),
    resume: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: bool | None = None,
) -> Path:
    """Train (or resume) an image SAGAN run and return its folder (see
    :func:`sagan.training.engine.train` for the arguments). ``cfg.model``'s ``channels`` and
    ``num_classes`` are filled in from the data set."""
    return engine.train(
        ImageTask, cfg, out=out, runs_root=runs_root, resume=resume, overrides=overrides,
        progress=progress,
    )  # fmt: skip
