"""Export the EMA generator as safetensors + JSON, and load generators from any source."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sagan import __version__
from sagan.config import from_dict
from sagan.errors import SaganError, refuse_existing
from sagan.images.config import ModelConfig
from sagan.images.networks import build_generator
from sagan.training import load_source

__all__ = [
    "EXPORT_FORMAT",
    "LoadedGenerator",
    "TrainingSampler",
    "export_generator",
    "load_generator",
]

EXPORT_FORMAT = "torch-sagan-generator-v1"
_WEIGHTS, _META = "generator.safetensors", "generator.json"


class LoadedGenerator(nn.Module):
    """A trained generator, ready to sample. Always in eval mode (BN running statistics).

    Attributes: ``config`` (:class:`ModelConfig`), ``z_dim``, ``num_classes``, ``resolution``,
    ``channels``, ``net`` (the underlying generator), ``step`` (training step it came from),
    ``data`` (the ``--data`` it was trained on, None when unknown).
    """

    def __init__(
        self, net: nn.Module, config: ModelConfig, step: int, data: str | None = None
    ) -> None:
        super().__init__()
        self.net = net.eval()
        self.config = config
        self.step = step
        self.data = data
        self.z_dim = config.z_dim
        self.num_classes = config.num_classes or 0
        self.resolution = config.resolution
        self.channels = config.channels or 0
        self.train(False)

    def train(self, mode: bool = True) -> LoadedGenerator:
        """Stays in eval mode: a loaded generator is for sampling."""
        return super().train(False)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, z_dim), y (B,) or None -> images (B, C, R, R) in [-1, 1]."""
        return self.net(z, y)

    def _labels(
        self, n: int, labels: int | Sequence[int] | torch.Tensor | None, g: torch.Generator | None
    ) -> torch.Tensor | None:
        device = next(self.net.parameters()).device
        if not self.num_classes:
            if labels is not None:
                raise SaganError("this generator is unconditional; sample it without labels")
            return None
        if labels is None:
            return torch.randint(0, self.num_classes, (n,), generator=g).to(device)
        y = torch.as_tensor(labels, dtype=torch.long).flatten()
        if y.numel() == 1:
            y = y.expand(n)
        elif y.numel() != n:
            raise SaganError(f"got {y.numel()} labels for {n} samples; give 1 or {n}")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            bad = sorted({v for v in y.tolist() if not 0 <= v < self.num_classes})
            raise SaganError(
                f"labels must be in 0..{self.num_classes - 1}, got {', '.join(map(str, bad))}"
            )
        return y.to(device)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: int | Sequence[int] | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` images (n, C, R, R) as floats in [0, 1].

        ``labels``: None (random classes for a conditional model), one class for all, or one
        per image. ``generator``: a CPU ``torch.Generator`` for reproducible noise.
        """
        if n < 1:
            raise SaganError(f"n must be >= 1, got {n}")
        device = next(self.net.parameters()).device
        z = torch.randn(n, self.z_dim, generator=generator).to(device)
        y = self._labels(n, labels, generator)
        return (self.net(z, y).float().clamp(-1, 1) + 1) / 2


_Source = tuple[ModelConfig, dict[str, torch.Tensor], int, str | None]


class TrainingSampler:
    """The (EMA) generator of a running training as a metrics sampler: samples through
    :meth:`LoadedGenerator.sample` in eval mode, then puts the network back in the mode it was
    in (G itself trains on when the run keeps no EMA)."""

    def __init__(self, net: nn.Module, config: ModelConfig, step: int, data: str) -> None:
        self.net = net
        was_training = net.training
        self.gen = LoadedGenerator(net, config, step, data)  # sets eval
        net.train(was_training)
        self.num_classes, self.channels = self.gen.num_classes, self.gen.channels
        self.resolution, self.data = self.gen.resolution, data

    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(n, C, R, R) in [0, 1]."""
        was_training = self.net.training
        self.net.eval()
        try:
            return self.gen.sample(n, labels=labels, generator=generator)
        finally:
            self.net.train(was_training)


def _from_checkpoint(source: Path) -> _Source:
    _, ckpt = load_source(source, kind="images")
    cfg = from_dict(ModelConfig, ckpt["config"]["model"])
    weights = ckpt["G_ema"] if ckpt.get("G_ema") is not None else ckpt["G"]
    return cfg, weights, int(ckpt["step"]), ckpt["config"].get("data", {}).get("data")


def _from_export(folder: Path) -> _Source:
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise SaganError(
            f"{folder / _META} is missing or not valid JSON; export the run again (sagan export)"
        ) from None
    if meta.get("format") != EXPORT_FORMAT:
        raise SaganError(
            f"{folder} is not a torch-sagan generator export; give a folder written by sagan "
            "export, or a run folder"
        )
    try:
        weights = load_file(str(folder / _WEIGHTS))
    except Exception:
        raise SaganError(
            f"{folder / _WEIGHTS} is missing or not a safetensors file; export the run again "
            "(sagan export)"
        ) from None
    model = from_dict(ModelConfig, meta["model"])
    return model, weights, int(meta.get("step", 0)), meta.get("data")


def _read_source(source: str | Path) -> _Source:
    source = Path(source)
    if source.is_dir() and (source / _META).exists():
        return _from_export(source)
    return _from_checkpoint(source)


def load_generator(source: str | Path, *, device: str | torch.device = "cpu") -> LoadedGenerator:
    """A :class:`LoadedGenerator` from a checkpoint file, a run folder or an export folder.

    Uses the EMA weights when the run kept them.
    """
    cfg, weights, step, data = _read_source(source)
    net = build_generator(cfg)
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise SaganError(f"{source}: weights do not match the stored config ({exc})") from None
    return LoadedGenerator(net, cfg, step, data).to(device)


def export_generator(source: str | Path, out: str | Path) -> Path:
    """Write the generator of ``source`` to ``out/generator.safetensors`` + ``generator.json``;
    an ``out`` that already holds either file is refused (:class:`SaganError`)."""
    out = Path(out)
    refuse_existing([out / _WEIGHTS, out / _META], "choose another --out (a new folder)")
    cfg, weights, step, data = _read_source(source)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
        tmp = out / f".{_WEIGHTS}.{os.getpid()}.tmp"
        save_file(tensors, str(tmp), metadata={"format": EXPORT_FORMAT})
        os.replace(tmp, out / _WEIGHTS)
        meta: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "version": __version__,
            "step": step,
            "source": str(source),
            "data": data,
            "model": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        }
        (out / _META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SaganError(
            f"cannot write export to {out}: {exc.strerror or exc}; choose another --out (a "
            "new folder in a writable place)"
        ) from None
    return out
