"""Feeding batches to the training loop in a deterministic, resumable order."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from sagan.images.data import ImageDataset, TensorImageDataset
from sagan.training import Prefetcher, ResumableBatchSampler

__all__ = ["batch_stream"]


def batch_stream(
    dataset: ImageDataset,
    batch_size: int,
    *,
    seed: int,
    position: int,
    device: torch.device,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(images (B, C, R, R) float in [-1, 1], labels (B,) int64)`` on ``device``.

    ``position`` is the number of batches already consumed (from a checkpoint). In-memory data
    sets are indexed directly; folders go through a ``DataLoader`` with ``num_workers``
    processes, read two batches ahead by a background thread. Images travel as uint8 and are
    scaled on the device, in channels_last layout.

    With ``world_size`` ranks, ``batch_size`` is the global batch: every rank draws the same
    global batch and keeps its own slice ``[rank::world_size]``, so ``position`` means the same
    on any number of ranks.
    """
    sampler = ResumableBatchSampler(len(dataset), batch_size, seed=seed, position=position)
    shards = (idx[rank::world_size] for idx in sampler)
    if isinstance(dataset, TensorImageDataset):
        batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = (
            dataset.batch(torch.as_tensor(idx)) for idx in shards
        )
    else:
        loader = DataLoader(
            dataset,
            batch_sampler=shards,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=num_workers > 0,
        )
        batches = Prefetcher(iter(loader), depth=2)
    try:
        for images, labels in batches:
            images = images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
            images = images.contiguous(memory_format=torch.channels_last)  # as the networks
            yield images, labels.to(device, non_blocking=True)
    finally:
        if isinstance(batches, Prefetcher):
            batches.close()  # stop its thread when the stream is dropped
