"""A deterministic, resumable order of training batches."""

from __future__ import annotations

from collections.abc import Iterator

import torch

__all__ = ["ResumableBatchSampler"]


class ResumableBatchSampler:
    """Endless batches of indices: a fresh permutation each epoch, the last partial batch dropped.

    The permutation of epoch e depends only on ``(seed, e)``, so the order is fully described by
    the number of batches already drawn (``position``): resuming at that position continues the
    exact sequence an uninterrupted run would have seen. Usable as a ``DataLoader`` batch sampler.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, position: int = 0) -> None:
        if n < batch_size:
            raise ValueError(f"{n} samples cannot fill one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self.position = position

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.position, self.per_epoch)
        while True:
            perm = self._permutation(epoch)
            for b in range(offset, self.per_epoch):
                yield perm[b * self.batch_size : (b + 1) * self.batch_size].tolist()
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**62
