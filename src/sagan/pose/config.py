"""Configuration of a Hg-SAGAN pose run: model, training and data, as validated dataclasses.

Precedence: these defaults < ``--config`` YAML < flags. The resolved config (the joint count
set by the annotations) is written to the run folder before step 0 and stored in every
checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sagan.config import check_choice, check_positive, from_dict, to_dict
from sagan.errors import SaganError
from sagan.pose.networks import ATTENTION_KINDS, D_ARCHS
from sagan.training.config import EngineConfig

__all__ = [
    "PoseDataConfig",
    "PoseModelConfig",
    "PoseRunConfig",
    "PoseTrainConfig",
    "upgrade_config",
]


def upgrade_config(config: dict[str, Any], version: str | None) -> dict[str, Any]:
    """A pose run's stored config (plain data) in today's terms. Runs written by 0.1 had no
    ``d_arch`` (their discriminator is ``v0.1``), no learning-rate drops, and called
    ``ours-sigmoid`` ``sigmoid``."""
    if version is None or not version.startswith("0.1"):
        return config
    model = dict(config.get("model", {}))
    if model.get("attention") == "sigmoid":
        model["attention"] = "ours-sigmoid"
    model.setdefault("d_arch", "v0.1")
    train = {"lr_epochs": [], **config.get("train", {})}  # 0.1 kept G's learning rate constant
    return {**config, "model": model, "train": train}


@dataclass(frozen=True)
class PoseDataConfig:
    """Where the people come from: the built-in synthetic figures, or MPII / LSP files."""

    annotations: str = ""
    """MPII ``.json`` / ``.mat`` or LSP ``joints.mat``; empty: the built-in synthetic figures."""
    images: str = ""
    """The folder holding the annotated images."""
    val_annotations: str = ""
    """Held-out people to evaluate on. Empty: LSP's test half for LSP's joints.mat, else
    every 20th image of ``annotations``."""
    num_workers: int = 0
    """Worker processes that read, crop and augment the people (0: none). The batches are
    the same with any number (see :mod:`sagan.pose.loader`)."""
    prefetch: int = 2
    """Batches made ahead of the step: per worker, or by one background thread when
    num_workers is 0; 0 with no workers loads each batch inside its step."""

    def __post_init__(self) -> None:
        if bool(self.annotations) != bool(self.images):
            raise SaganError(
                "data.annotations and data.images go together: pass both --annotations and "
                "--images, or neither for the synthetic figures"
            )
        if self.val_annotations and not self.annotations:
            raise SaganError("data.val_annotations needs data.annotations (real data)")
        check_positive("data.num_workers", self.num_workers, allow_zero=True)
        check_positive("data.prefetch", self.prefetch, allow_zero=True)

    @property
    def synthetic(self) -> bool:
        return not self.annotations


@dataclass(frozen=True)
class PoseModelConfig:
    """The stacked hourglass G and the hourglass discriminator D. Defaults are sized for 2 CPU
    cores; the paper's model is stacks 4, features 256, depth 4 at 256 px."""

    joints: int = field(default=16, metadata={"cli": False})
    """16 (MPII order, and the synthetic figures) or 14 (LSP); set from the data."""
    stacks: int = 2
    """Hourglasses (the paper: 4)."""
    features: int = 64
    """Channels of every hourglass (the paper: 256)."""
    depth: int = 3
    """Down-samplings per hourglass (the paper: 4)."""
    attention: str = "sarm"
    """``sarm``: the authors' released modules (SARM_B in the heat-map head of stacks 2..N,
    SARM_A on the discriminator's skip branches); ``sagan``: the core softmax layer on the
    features of stacks 2..N (ours); ``ours-sigmoid``: our 0.1 reading of the paper (not the
    authors' module); ``none``: plain hourglasses."""
    d_features: int = 32
    """Channels of the discriminator's hourglass (the released code: 256)."""
    d_depth: int = 2
    """Down-samplings of the discriminator's hourglass (the released code: 4)."""
    d_arch: str = "released"
    """``released``: the authors' discriminator layout (models/discriminator.lua); ``v0.1``:
    this library's before 0.2, for its runs."""

    def __post_init__(self) -> None:
        for name in ("stacks", "features", "depth", "d_features", "d_depth"):
            check_positive(f"model.{name}", getattr(self, name))
        if self.attention == "sigmoid":
            raise SaganError(
                "model.attention sigmoid was our 0.1 reading of the paper, renamed ours-sigmoid "
                "in 0.2; use sarm for the authors' modules (runs made with 0.1 load as before)"
            )
        check_choice("model.attention", self.attention, ATTENTION_KINDS)
        check_choice("model.d_arch", self.d_arch, D_ARCHS)
        if self.joints not in (14, 16):
            raise SaganError(f"model.joints must be 16 (MPII) or 14 (LSP), got {self.joints}")


@dataclass(frozen=True)
class PoseTrainConfig(EngineConfig):
    """Optimisation as the paper (RMSprop for G, Adam for D, both 2.5e-4; BEGAN constants of
    Chou et al.); the schedule, device and precision settings are the engine's
    (:class:`~sagan.training.config.EngineConfig`)."""

    batch_size: int = 16
    """The global batch of people."""
    steps: int = 2400
    """Total iterations of the run (a resumed run continues up to this)."""
    save_every: int = 200
    """Steps between checkpoints (and one at the end)."""
    log_every: int = 20
    """Steps between lines of stats.jsonl (and progress-bar updates)."""
    keep_checkpoints: int = 2
    """Newest ckpt-*.pt files kept (best.pt is kept apart)."""
    eval_every: int = 0
    """PCKh@0.5 (PCK@0.2 for LSP) of eval_n held-out people every N steps and at the end
    (0 = never); best.pt keeps the checkpoint with the best total."""
    eval_n: int = 200
    """Held-out people per periodic evaluation."""
    adversarial: bool = True
    """Train with the adversarial hourglass discriminator (off: supervision only)."""
    lr_g: float = 2.5e-4
    """G's learning rate (RMSprop, as the paper)."""
    lr_d: float = 2.5e-4
    """D's learning rate (Adam, as the paper)."""
    lr_epochs: tuple[int, ...] = (140, 160, 180)
    """Epochs (passes over the training people) after which G's learning rate is multiplied
    by lr_gamma: the released schedule (opts.lua); no value: constant."""
    lr_gamma: float = 0.4
    """The factor of each learning-rate drop (the released code: 0.4)."""
    lambda_g: float = 0.1
    """Weight of the adversarial term in G's loss (Chou et al.: 0.1)."""
    lambda_k: float = 0.001
    """Learning rate of the equilibrium term k_t (BEGAN: 0.001)."""
    gamma: float = 0.5
    """BEGAN's diversity ratio (0.5)."""
    resolution: int = 64
    """Input pixels (the paper: 256); heat-maps are a quarter of it."""
    heatmap: int | None = field(default=None, metadata={"cli": False})
    """Heat-map pixels: resolution / 4."""
    train_size: int = 4000
    """Synthetic figures to train on (real data: every annotated person)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.heatmap is None and self.resolution > 0:
            object.__setattr__(self, "heatmap", self.resolution // 4)
        check_positive("train.eval_n", self.eval_n)
        check_positive("train.lr_gamma", self.lr_gamma)
        for epoch in self.lr_epochs:
            check_positive("train.lr_epochs", epoch)
        for name in ("lr_g", "lr_d", "resolution", "train_size", "gamma"):
            check_positive(f"train.{name}", getattr(self, name))
        for name in ("lambda_g", "lambda_k"):  # 0: no adversarial term / k stays at 0
            check_positive(f"train.{name}", getattr(self, name), allow_zero=True)
        if self.resolution % 4:
            raise SaganError(
                f"train.resolution: {self.resolution} is not allowed; it must be a multiple of "
                "4 (heat-maps are a quarter of it)"
            )
        assert self.heatmap is not None
        check_positive("train.heatmap", self.heatmap)
        if self.resolution != 4 * self.heatmap:
            raise SaganError(
                f"train.resolution ({self.resolution}) must be 4 x train.heatmap "
                f"({self.heatmap}): the hourglass stem divides by 4"
            )


@dataclass(frozen=True)
class PoseRunConfig:
    """Everything a pose run needs, as written to ``config.yaml``."""

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
