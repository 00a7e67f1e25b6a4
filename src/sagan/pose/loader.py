"""Feeding pose training: augmented batches made ahead of the step, in worker processes or a
background thread, without changing which batches a run sees.

Each step draws its people and their augmentation keys from the run's data stream (the
engine's ``data_rng``, saved in every checkpoint), exactly as a step that loads its own batch.
:class:`PoseBatches` replays the same draws from a copy of that stream, ahead of time, and
checks every batch it hands over against the step's own draw: after a rollback (the engine
restores the stream from a checkpoint) the draws differ, and the loader restarts from the
step's state. So ``num_workers`` and ``prefetch`` change speed only, never the batches, and a
resumed run stays exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset

from sagan.training import Prefetcher

__all__ = ["PoseBatches", "draw_batch", "load_batch"]


class _Sampled(Protocol):
    def __len__(self) -> int: ...

    def sample(self, i: int, key: int | None = None) -> tuple[torch.Tensor, ...]: ...


def draw_batch(
    rng: torch.Generator, n: int, batch_size: int, shard: slice
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's part of a global batch: people ``idx`` (b,) among ``n`` and augmentation
    ``keys`` (b,), both int64, drawn from ``rng`` (every rank draws the whole batch)."""
    idx = torch.randint(0, n, (batch_size,), generator=rng)[shard]
    keys = torch.randint(0, 2**62, (batch_size,), generator=rng)[shard]
    return idx, keys


def load_batch(
    dataset: _Sampled, idx: torch.Tensor, keys: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Items ``idx`` stacked (image (b, 3, R, R), heat-maps (b, K, H, H), joints (b, K, 2),
    visible (b, K), reference (b,)); with ``keys``, each augmented by its key."""
    items = [
        dataset.sample(int(i), None if keys is None else int(k))
        for i, k in zip(idx, idx if keys is None else keys, strict=True)
    ]
    return _stack(items)


def _stack(items: Sequence[Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """Samples (each a tuple of tensors) -> one batch tensor per part."""
    return [torch.stack(parts) for parts in zip(*items, strict=True)]


class _Keyed(Dataset[tuple[Any, ...]]):
    """``dataset[(i, key)]`` = ``((i, key), *dataset.sample(i, key))``, for a DataLoader's
    workers: each item says which draw it is."""

    def __init__(self, dataset: _Sampled) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> tuple[Any, ...]:
        return (item, *self.dataset.sample(*item))


def _collate(items: Sequence[tuple[Any, ...]]) -> tuple[list[tuple[int, int]], list[torch.Tensor]]:
    """-> (the draws, the stacked parts)."""
    return [item[0] for item in items], _stack([item[1:] for item in items])


class _Draws:
    """The step's draws, replayed from a copy of the data stream: lists of (person, key)."""

    def __init__(self, state: torch.Tensor, n: int, batch_size: int, shard: slice) -> None:
        self.rng = torch.Generator()
        self.rng.set_state(state)
        self.n, self.batch_size, self.shard = n, batch_size, shard

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        while True:
            idx, keys = draw_batch(self.rng, self.n, self.batch_size, self.shard)
            yield list(zip(idx.tolist(), keys.tolist(), strict=True))


class PoseBatches:
    """This rank's augmented training batches, ``(images (b, 3, R, R), heat-maps (b, K, H, H))``.

    Args:
        dataset: the training people (anything with ``sample(i, key)``).
        batch_size: the global batch; ``shard`` is this rank's slice of it.
        num_workers: worker processes that read, crop and augment (0: none).
        prefetch: batches made ahead of the step: per worker (the DataLoader's
            ``prefetch_factor``), or by one background thread when ``num_workers`` is 0;
            0 with no workers loads each batch inside its step.
        pin_memory: page-locked batches, for asynchronous copies to a GPU.
    """

    def __init__(
        self,
        dataset: _Sampled,
        batch_size: int,
        shard: slice,
        *,
        num_workers: int = 0,
        prefetch: int = 2,
        pin_memory: bool = False,
    ) -> None:
        self.dataset, self.batch_size, self.shard = dataset, batch_size, shard
        self.num_workers, self.prefetch, self.pin_memory = num_workers, prefetch, pin_memory
        self._ahead: Iterator[Any] | None = None
        self.restarts = 0
        """How often the loader was restarted because its batch was not the step's."""

    @property
    def ahead(self) -> bool:
        """Whether batches are made ahead of the step."""
        return self.num_workers > 0 or self.prefetch > 0

    def next(self, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's batch: draws people and keys from ``rng`` (advancing it as a step that
        loads its own batch would) and returns them loaded and augmented."""
        state = rng.get_state()
        idx, keys = draw_batch(rng, len(self.dataset), self.batch_size, self.shard)
        if not self.ahead:
            return tuple(load_batch(self.dataset, idx, keys)[:2])  # type: ignore[return-value]
        want = list(zip(idx.tolist(), keys.tolist(), strict=True))
        if self._ahead is None:
            self._start(state)
        assert self._ahead is not None
        drawn, batch = next(self._ahead)
        if [tuple(d) for d in drawn] != want:  # the stream moved back (rollback): replay
            self.restarts += 1
            self._start(state)
            drawn, batch = next(self._ahead)
            if [tuple(d) for d in drawn] != want:  # (pinning may turn tuples into lists)
                raise RuntimeError("the pose loader replayed other draws than the step's")
        return batch[0], batch[1]

    def _start(self, state: torch.Tensor) -> None:
        self.close()
        draws = _Draws(state, len(self.dataset), self.batch_size, self.shard)
        if self.num_workers > 0:
            loader = DataLoader(
                _Keyed(self.dataset),
                batch_sampler=draws,  # type: ignore[arg-type]
                num_workers=self.num_workers,
                collate_fn=_collate,
                pin_memory=self.pin_memory,
                prefetch_factor=max(1, self.prefetch),
            )
            self._ahead = iter(loader)
        else:
            pin, keyed = self.pin_memory, _Keyed(self.dataset)

            def made() -> Iterator[tuple[list[tuple[int, int]], list[torch.Tensor]]]:
                for drawn in draws:
                    got, batch = _collate([keyed[d] for d in drawn])
                    yield got, [t.pin_memory() for t in batch] if pin else batch

            self._ahead = Prefetcher(made(), depth=self.prefetch)

    def close(self) -> None:
        """Stop the thread or the workers (a later :meth:`next` starts them again)."""
        ahead, self._ahead = self._ahead, None
        if isinstance(ahead, Prefetcher):
            ahead.close()
        elif ahead is not None:
            del ahead  # the DataLoader's iterator shuts its workers down when collected
