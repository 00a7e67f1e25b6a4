"""Mixed precision: autocast policy and gradient scaling, chosen by name."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from sagan.errors import SaganError

__all__ = ["PRECISIONS", "Precision", "resolve_precision"]

PRECISIONS = ("32", "bf16", "16")


@dataclass(frozen=True)
class Precision:
    """How forward passes run: float32, or autocast to bfloat16/float16.

    Parameters, optimiser state, losses and spectral norm stay float32 in every mode; float16
    also scales the loss (``scaler``) so that small gradients survive.
    """

    name: str
    device_type: str
    dtype: torch.dtype | None

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """The context for forward passes."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for float16 only (a pass-through otherwise)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "16")


def resolve_precision(name: str, device: torch.device) -> Precision:
    """Check that ``name`` runs on ``device`` and return its policy."""
    if name == "32":
        return Precision(name, device.type, None)
    if name == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise SaganError(f"--precision bf16 runs on cpu or cuda, not {device.type}; use 32")
        return Precision(name, device.type, torch.bfloat16)
    if name == "16":
        if device.type != "cuda":
            raise SaganError(
                f"--precision 16 needs a CUDA GPU (float16 on {device.type} is slow and "
                "unstable); use --precision bf16 or 32"
            )
        return Precision(name, device.type, torch.float16)
    raise SaganError(f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
