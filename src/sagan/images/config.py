"""Configuration of an image SAGAN run: model, data and training, as validated dataclasses.

Precedence: these defaults < a YAML file (``--config``) < command-line flags. The resolved
config (with the data-derived ``channels`` and ``num_classes`` filled in) is written to the run
folder as ``config.yaml`` before step 0 and stored in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sagan.config import check_choice, check_positive, check_range, from_dict_with_preset, to_dict
from sagan.errors import SaganError
from sagan.images.networks import ARCHITECTURES
from sagan.losses import LOSSES
from sagan.training.augment import POLICIES
from sagan.training.config import EngineConfig

__all__ = ["PRESETS", "DataConfig", "ModelConfig", "RunConfig", "TrainConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The networks. ``channels`` and ``num_classes`` come from the data set (None until then)."""

    arch: str = "dcgan"
    """``resnet`` (BigGAN / official SAGAN, the paper's) or ``dcgan`` (the popular PyTorch
    port; the quick default, ours: about 5x the images per second of ``resnet`` on a CPU)."""
    resolution: int = 32
    """Image side in pixels."""
    ch: int = 32
    """Base width; layer widths are multiples of it (the paper's models use 64)."""
    z_dim: int = 128
    """Latent size."""
    attention: tuple[int, ...] = (16,)
    """Feature resolutions (in G and D) after which a self-attention layer sits; () for none."""
    g_spectral_norm: bool = False
    """Spectral norm in G (the paper: on; the quick default, ours: off, which reaches the quick
    start's targets in 1,750 steps where G with it had not: FD-digits 223, accuracy 0.70); D is
    always spectrally normalised."""
    channels: int | None = field(default=None, metadata={"cli": False})
    """Image channels, taken from the data set."""
    num_classes: int | None = field(default=None, metadata={"cli": False})
    """Classes for conditional BN and the projection D (0 = unconditional), from the data set."""

    def __post_init__(self) -> None:
        check_choice("model.arch", self.arch, ARCHITECTURES)
        arch = ARCHITECTURES[self.arch]
        check_choice(f"model.resolution (arch {self.arch})", self.resolution, arch.resolutions)
        check_positive("model.ch", self.ch)
        check_positive("model.z_dim", self.z_dim)
        g_sizes, d_sizes = arch.feature_sizes(self.resolution)
        allowed = sorted(set(g_sizes) | set(d_sizes))
        for res in self.attention:
            check_choice(f"model.attention ({self.arch} {self.resolution} px)", res, allowed)
        if len(set(self.attention)) != len(self.attention):
            raise SaganError(f"model.attention: {list(self.attention)} lists a resolution twice")
        if self.ch < 2 and self.attention:
            raise SaganError("model.ch: self-attention needs ch >= 2 (C/8 key channels)")
        if self.channels is not None and self.channels not in (1, 3):
            raise SaganError(f"model.channels: {self.channels} is not allowed; use 1 or 3")
        if self.num_classes is not None:
            check_positive("model.num_classes", self.num_classes, allow_zero=True)


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from."""

    data: str = "digits"
    """``digits`` (built in), ``longrange`` (built in: mirrored objects), ``mnist``, ``cifar10`` or
    a folder of images."""
    conditional: bool | None = None
    """Use class labels; None = when the data set has them (folders: sub-folder names)."""
    num_workers: int = 0
    """Data-loading processes for image folders (in-memory data sets need none)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise SaganError(
                "data.data: empty; use digits, longrange, mnist, cifar10 or a folder path"
            )
        check_positive("data.num_workers", self.num_workers, allow_zero=True)


@dataclass(frozen=True)
class TrainConfig(EngineConfig):
    """Optimisation, schedule and bookkeeping. Defaults: the quick preset's (hinge loss as in
    the paper; learning rates and Adam's betas ours, see each field; ``--preset paper`` gives
    the paper's TTUR); the schedule, device and precision settings are the engine's
    (:class:`~sagan.training.config.EngineConfig`)."""

    batch_size: int = 64
    """The global batch (sized for the 2-core quick start; the paper: 256; under torchrun it
    must divide by the number of processes)."""
    steps: int = 1750
    """Total G steps of the run (a resumed run continues up to this)."""
    lr_g: float = 4e-4
    """G's learning rate (the paper's TTUR: 1e-4; the quick default, ours: 4e-4, equal to D's;
    2e-4 before 2026-12-07)."""
    lr_d: float = 4e-4
    """D's learning rate (the paper's TTUR: 4e-4; the quick default, ours: 4e-4)."""
    beta1: float = 0.5
    """Adam beta1 (the paper: 0; the quick default, ours: DCGAN's 0.5)."""
    beta2: float = 0.999
    """Adam beta2 (the paper: 0.9; the quick default, ours: Adam's 0.999)."""
    n_dis: int = 1
    """D steps per G step."""
    loss: str = "hinge"
    """hinge (the paper) or nonsaturating."""
    ema_decay: float = 0.999
    """Decay of the EMA of G's weights, our addition (neither the paper nor its official code
    keeps one); 0 turns it off (samples then use G itself)."""
    eval_every: int = 0
    """Evaluate the (EMA) generator every N steps and at the end (0 = never): metrics go to
    stats.jsonl and TensorBoard, and best.pt keeps the checkpoint with the best FID (else
    FD-digits, else FD-random)."""
    eval_n: int = 1000
    """Generated (and real) images per periodic evaluation."""
    eval_metrics: str = ""
    """Comma list of metrics for the periodic evaluation ("" = every one that can run)."""
    sync_bn: bool = False
    """Under torchrun: synchronise G's BatchNorm statistics across processes (SyncBatchNorm,
    CUDA only)."""
    augment: str = "none"
    """Differentiable augmentation of everything D sees, real and generated, in both updates
    (not in the papers' SAGAN): none, diffaugment (Zhao et al. 2020: every op on every image)
    or ada (each op with an adaptive probability p, Karras et al. 2020's heuristic)."""
    augment_policy: str = "color,translation,cutout"
    """Comma list of DiffAugment ops: color, translation, cutout."""
    ada_target: float = 0.6
    """ada: the r_t = E[sign(D(real))] that p steers toward (ADA's 0.6)."""
    ada_kimg: float = 100.0
    """ada: thousands of images over which p can move from 0 to 1 (ADA uses 500; ours is
    shorter for runs of tens of thousands of images)."""
    lecam: float = 0.0
    """Weight of LeCam regularisation in D's loss (Tseng et al. 2021; 0: off; the anchors'
    handling is ours, see :mod:`sagan.losses`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("train.n_dis", self.n_dis)
        check_positive("train.eval_n", self.eval_n)
        if self.eval_n < 2:
            raise SaganError(f"train.eval_n must be >= 2 to estimate statistics, got {self.eval_n}")
        check_positive("train.lr_g", self.lr_g)
        check_positive("train.lr_d", self.lr_d)
        check_range("train.beta1", self.beta1, 0.0, 0.999999)
        check_range("train.beta2", self.beta2, 0.0, 0.999999)
        check_range("train.ema_decay", self.ema_decay, 0.0, 0.999999)
        check_choice("train.loss", self.loss, LOSSES)
        check_choice("train.augment", self.augment, ("none", "diffaugment", "ada"))
        for op in self.policy:
            check_choice("train.augment_policy", op, POLICIES)
        if self.augment != "none" and not self.policy:
            raise SaganError(
                f"train.augment_policy is empty but --augment {self.augment} is on; name ops "
                f"from {', '.join(POLICIES)}"
            )
        check_range("train.ada_target", self.ada_target, 0.01, 0.99)
        check_positive("train.ada_kimg", self.ada_kimg)
        check_positive("train.lecam", self.lecam, allow_zero=True)

    @property
    def policy(self) -> tuple[str, ...]:
        """The augmentation ops, in order."""
        return tuple(op.strip() for op in self.augment_policy.split(",") if op.strip())


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {},
    "paper": {
        "model": {"arch": "resnet", "resolution": 128, "ch": 64, "z_dim": 128,
                  "attention": (64,), "g_spectral_norm": True},
        "train": {"batch_size": 256, "steps": 1_000_000, "lr_g": 1e-4, "lr_d": 4e-4,
                  "beta1": 0.0, "beta2": 0.9, "n_dis": 1, "loss": "hinge", "ema_decay": 0.0},
    },
    "none": {
        "model": {"arch": "resnet", "ch": 16, "g_spectral_norm": True},
        "train": {"batch_size": 32, "steps": 1500, "lr_g": 1e-4, "lr_d": 4e-4,
                  "beta1": 0.0, "beta2": 0.9},
    },
}  # fmt: skip
"""``--preset`` -> the settings it changes from the field defaults (a config file and flags
override them). ``quick`` is the defaults, sized for a 2-core CPU; ``paper`` is SAGAN's
ImageNet setting (Zhang et al. 2018: ResNet G and D at 128 px, base width 64, attention at
64x64 features, batch 256, TTUR 1e-4 / 4e-4, Adam (0, 0.9), hinge loss, 1M iterations, no EMA
of G); ``none`` marks runs written before presets (0.2 and older) and gives any setting such
a run's file lacks the defaults of its time (the quick preset before 0.4: ResNet, width 16,
spectral norm in G, batch 32, 1,500 steps, the paper's TTUR and betas)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, as written to ``config.yaml`` and stored in checkpoints."""

    preset: str = "quick"
    """``quick`` (the defaults: a first run on 2 CPU cores) or ``paper`` (SAGAN's ImageNet
    setting at 128 px, for GPUs); a config file and flags override it."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from nested plain data (e.g. YAML), validating every field: the preset's
        settings under the given ones."""
        return from_dict_with_preset(cls, data, PRESETS)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain data, for YAML, JSON and checkpoints."""
        return to_dict(self)
