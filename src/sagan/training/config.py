"""The engine's settings, shared by every application's training config.

Each application's ``TrainConfig`` subclasses :class:`EngineConfig` (changing defaults where
its runs need others) and adds its own optimisation settings; the command-line flags and their
help come from these fields and their docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagan.config import check_choice, check_positive
from sagan.training.precision import PRECISIONS

__all__ = ["ENGINE_RESUMABLE", "EngineConfig"]

ENGINE_RESUMABLE = frozenset(
    {
        "steps",
        "save_every",
        "sample_every",
        "log_every",
        "keep_checkpoints",
        "eval_every",
        "max_bad_steps",
        "device",
        "precision",
        "compile",
    }
)
"""Engine settings a resumed run may change (everything else is fixed by its checkpoint)."""


@dataclass(frozen=True)
class EngineConfig:
    """The loop's schedule, bookkeeping, device and precision."""

    batch_size: int = 32
    """The global batch (under torchrun it must divide by the number of processes)."""
    steps: int = 1000
    """Total iterations of the run (a resumed run continues up to this)."""
    seed: int = 0
    """Seeds the networks, the noise and the data order."""
    save_every: int = 500
    """Steps between checkpoints (and one at the end)."""
    sample_every: int = 250
    """Steps between sample pictures in RUN/samples/."""
    log_every: int = 10
    """Steps between lines of stats.jsonl (and progress-bar updates)."""
    keep_checkpoints: int = 3
    """Newest ckpt-*.pt files kept (best.pt is kept apart)."""
    eval_every: int = 0
    """Evaluate every N steps and at the end (0 = never); metrics go to stats.jsonl and
    best.pt keeps the checkpoint with the best primary metric."""
    max_bad_steps: int = 20
    """Iterations in a row with a non-finite loss or gradient (each such update is skipped)
    after which the run rolls back to its newest good checkpoint."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""
    precision: str = "32"
    """32 (float32), bf16 (bfloat16 autocast; CPU and CUDA) or 16 (float16 autocast with
    gradient scaling; CUDA only). Weights, optimiser state, losses and spectral norm stay
    float32."""
    compile: bool = False
    """torch.compile the trained networks' forward passes (the EMA copy stays eager); it
    takes a minute or more at start and pays on a GPU, not on a few CPU cores."""

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "steps",
            "save_every",
            "sample_every",
            "log_every",
            "keep_checkpoints",
        ):
            check_positive(f"train.{name}", getattr(self, name))
        check_positive("train.eval_every", self.eval_every, allow_zero=True)
        check_positive("train.max_bad_steps", self.max_bad_steps)
        check_positive("train.seed", self.seed, allow_zero=True)
        check_choice("train.device", self.device.split(":")[0], ("auto", "cpu", "cuda", "mps"))
        check_choice("train.precision", self.precision, PRECISIONS)
