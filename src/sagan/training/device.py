"""Choosing the compute device."""

from __future__ import annotations

import torch

from sagan.errors import SaganError

__all__ = ["module_device", "pick_device"]


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; other names are checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SaganError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SaganError("--device cuda: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SaganError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are present"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SaganError("--device mps: Apple MPS is not available here; use --device cpu")
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """Where ``module``'s first parameter (or buffer) lives; the CPU for a stateless one."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
