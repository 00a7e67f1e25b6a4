"""Feature networks for the image metrics. Each maps images ``(B, C, R, R)`` in [0, 1] to a dict
of ``{"features": (B, D), "logits": (B, K)}`` (``logits`` only where the network classifies).

* :class:`InceptionFeatures`: the standard InceptionV3 of FID/KID/IS papers, the
  TensorFlow-compatible port of torch-fidelity (``pip install torch-sagan[inception]``): 2048-d
  pool features and 1008 unbiased logits. Weights: ``--inception-weights PATH``, else torch's
  hub cache, else downloaded once from torch-fidelity's release (needs the internet).
* :class:`DigitFeatures`: the project's shipped digit classifier (offline, 1-channel digits).
* :class:`RandomFeatures`: a fixed random convolutional network (weights drawn from numpy's
  PCG64 with a fixed seed, so identical on every machine): an offline, data-agnostic feature
  space for an FD on any data set, e.g. ``longrange``. Numbers from it compare runs with each
  other, never with papers.

``key`` names a network and its weights in the real-feature cache.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sagan.errors import SaganError
from sagan.images.digit_classifier import WEIGHTS as DIGIT_WEIGHTS
from sagan.images.digit_classifier import load_digit_classifier

__all__ = [
    "INCEPTION_FILE",
    "INCEPTION_URL",
    "DigitFeatures",
    "FeatureNet",
    "InceptionFeatures",
    "RandomFeatures",
    "inception_available",
]

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
)


class FeatureNet(Protocol):
    """What the metrics need of a feature network."""

    key: str

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]: ...


def _rgb(images: torch.Tensor) -> torch.Tensor:
    """(B, 1 or 3, H, W) -> (B, 3, H, W)."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class DigitFeatures:
    """The shipped digit classifier: 128-d penultimate features and 10 logits."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.net = load_digit_classifier(device)
        self.device = torch.device(device)
        path = resources.files("sagan.images") / "assets" / DIGIT_WEIGHTS
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        self.key = f"digits-{digest}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images.to(self.device, torch.float32) * 2 - 1  # (B, C, R, R) in [-1, 1]
        f = self.net.features(x)  # (B, 128)
        return {"features": f.cpu(), "logits": self.net.fc2(f).cpu()}


class RandomFeatures:
    """Four stride-2 3x3 convolutions (32-64-128-128 channels, ReLU) with fixed random weights
    (He init from ``numpy.random.PCG64(seed)``), average-pooled to 2x2 so that the left/right
    and top/bottom layout survives: 512-d features."""

    def __init__(self, device: torch.device | str = "cpu", seed: int = 0) -> None:
        rng = np.random.Generator(np.random.PCG64(seed))
        self.weights: list[torch.Tensor] = []
        c_in = 3
        for c_out in (32, 64, 128, 128):
            w = rng.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2.0 / (c_in * 9))
            self.weights.append(torch.tensor(w, dtype=torch.float32, device=device))
            c_in = c_out
        self.device = torch.device(device)
        self.key = f"random-cnn-v1-seed{seed}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = _rgb(images.to(self.device, torch.float32)) * 2 - 1  # (B, 3, R, R)
        for w in self.weights:
            h = F.relu(F.conv2d(h, w, stride=2, padding=1))  # halves R each time
        return {"features": F.adaptive_avg_pool2d(h, 2).flatten(1).cpu()}  # (B, 512)


def inception_available() -> str | None:
    """None when torch-fidelity's InceptionV3 can be imported, else the reason it cannot."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import (  # noqa: F401
            FeatureExtractorInceptionV3,
        )
    except ImportError as exc:
        return (
            f"needs torch-fidelity, which failed to import ({exc.msg}); install "
            "torch-sagan[inception]"
        )
    return None


def _inception_weights(path: str | Path | None) -> Path:
    """The weights file: ``path``, the hub cache, or a download into the hub cache."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise SaganError(
                f"--inception-weights {path}: no such file; download {INCEPTION_URL} there"
            )
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(INCEPTION_URL, str(cached), progress=False)
    except Exception:
        raise SaganError(
            f"cannot download the InceptionV3 weights (offline?): put {INCEPTION_FILE} from "
            f"{INCEPTION_URL} into {cached.parent}, or pass --inception-weights PATH"
        ) from None
    return cached


class InceptionFeatures:
    """torch-fidelity's InceptionV3 ('inception-v3-compat', the network of the TensorFlow FID
    code): 2048-d pool features and 1008 unbiased logits. Images are quantised to uint8 first,
    as real images are, and resized to 299x299 inside the network."""

    key = "inception-v3-compat"

    def __init__(
        self, device: torch.device | str = "cpu", weights: str | Path | None = None
    ) -> None:
        reason = inception_available()
        if reason is not None:
            raise SaganError(f"the InceptionV3 metrics {reason}")
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = _inception_weights(weights)
        try:
            self.net: nn.Module = FeatureExtractorInceptionV3(
                "inception-v3-compat",
                ["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(path),
            )
        except Exception as exc:
            raise SaganError(
                f"{path} is not a usable InceptionV3 weights file ({type(exc).__name__}); "
                f"download {INCEPTION_URL} again"
            ) from None
        self.device = torch.device(device)
        self.net = self.net.to(self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (_rgb(images.float()) * 255).round().clamp(0, 255).to(torch.uint8)  # (B, 3, R, R)
        pool, logits = self.net(x.to(self.device))
        return {"features": pool.float().cpu(), "logits": logits.float().cpu()}
