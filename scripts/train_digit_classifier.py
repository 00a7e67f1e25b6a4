"""Train the digit classifier of the offline metrics on the built-in digits and save its weights.

    python scripts/train_digit_classifier.py
    # writes src/sagan/images/assets/digit_classifier.safetensors

Split: 450 training and 50 test images per class (fixed seed); 15 epochs of Adam with small
random shifts, cosine learning-rate decay. Prints the test accuracy (the README quotes it).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from sagan.images.data import load_dataset
from sagan.images.digit_classifier import WEIGHTS, DigitClassifier

OUT = Path(__file__).resolve().parents[1] / "src" / "sagan" / "images" / "assets" / WEIGHTS


def split(
    labels: torch.Tensor, per_class_test: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in range(10):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        test.append(idx[:per_class_test])
        train.append(idx[per_class_test:])
    return torch.cat(train), torch.cat(test)


def main() -> None:
    torch.manual_seed(0)
    ds = load_dataset("digits", 32)
    x = ds.images.float() / 127.5 - 1  # (5000, 1, 32, 32)
    y = ds.labels
    train_idx, test_idx = split(y, 50, seed=0)
    net = DigitClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=15)
    for epoch in range(15):
        net.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=g)]
        for b in range(0, len(perm), 64):
            idx = perm[b : b + 64]
            shift = torch.randint(-2, 3, (2,), generator=g).tolist()
            batch = torch.roll(x[idx], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(net(batch), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        net.eval()
        with torch.no_grad():
            acc = (net(x[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(OUT))
    print(f"test accuracy {acc:.4f} on {len(test_idx)} held-out digits; wrote {OUT}")


if __name__ == "__main__":
    main()
