"""Feeding the training loop: a resumable batch order, background prefetch, wait timing."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import TypeVar

import torch

__all__ = ["Prefetcher", "ResumableBatchSampler", "TimedIterator"]

T = TypeVar("T")


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


class TimedIterator(Iterator[T]):
    """Wraps an iterator and adds up the seconds spent waiting in ``next``.

    The training loop reports ``waited`` as the share of step time lost to data loading.
    """

    def __init__(self, iterator: Iterator[T]) -> None:
        self._it = iterator
        self.waited = 0.0

    def __next__(self) -> T:
        start = time.perf_counter()
        try:
            return next(self._it)
        finally:
            self.waited += time.perf_counter() - start

    def close(self) -> None:
        """Close the wrapped iterator (a generator's ``finally`` blocks run)."""
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


class Prefetcher(Iterator[T]):
    """Pulls items from ``iterator`` in a background thread, ``depth`` items ahead.

    Decoding images (Pillow) and copying tensors release the GIL, so loading overlaps the
    training step without the memory and start-up cost of worker processes. Exceptions raised
    by the source are re-raised in the consumer. The thread is a daemon and stops when the
    source ends or the prefetcher is closed.
    """

    _END = object()

    def __init__(self, iterator: Iterator[T], depth: int = 2) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._fill, args=(iterator,), daemon=True, name="sagan-prefetch"
        )
        self._thread.start()

    def _fill(self, iterator: Iterator[T]) -> None:
        try:
            for item in iterator:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put(self._END)
        except BaseException as exc:  # handed to the consumer
            self._queue.put(exc)

    def __next__(self) -> T:
        item = self._queue.get()
        if item is self._END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the background thread (it exits within 0.1 s)."""
        self._stop.set()
