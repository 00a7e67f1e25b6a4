"""A small digit classifier trained by this project on the built-in digits: the feature network
of the offline metrics (FD-digits, a classifier Inception Score, class coverage, conditional
accuracy). Its weights ship with the package (``assets/digit_classifier.safetensors``);
``scripts/train_digit_classifier.py`` re-creates them.
"""

from __future__ import annotations

from importlib import resources

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

__all__ = ["DigitClassifier", "load_digit_classifier"]

WEIGHTS = "digit_classifier.safetensors"


class DigitClassifier(nn.Module):
    """(B, 1, 32, 32) in [-1, 1] -> logits (B, 10); ``features`` gives the 128-d penultimate layer.

    Other sizes are resized to 32x32 (bilinear, antialiased); 3-channel input is averaged.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, 128)."""
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
        if x.shape[-2:] != (32, 32):
            x = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True)
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 32, 16, 16)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 64, 8, 8)
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)  # (B, 128, 4, 4)
        return F.relu(self.fc1(h.flatten(1)))  # (B, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def load_digit_classifier(device: str | torch.device = "cpu") -> DigitClassifier:
    """The shipped, trained classifier in eval mode."""
    net = DigitClassifier()
    path = resources.files("sagan.images") / "assets" / WEIGHTS
    with resources.as_file(path) as file:
        net.load_state_dict(load_file(str(file)))
    return net.eval().requires_grad_(False).to(device)
