"""Data-parallel training on PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``torchrun --nproc_per_node=K -m sagan train ...`` starts K processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`setup` joins them (NCCL on CUDA, gloo on CPU).
Without those variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from sagan.errors import SaganError
from sagan.training.device import pick_device

__all__ = [
    "DistInfo",
    "agree_all",
    "agree_any",
    "barrier",
    "broadcast_buffers",
    "broadcast_object",
    "setup",
    "teardown",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, samples and writes checkpoints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SaganError(f"environment variable {name}={value!r} is not an integer") from None


def setup(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (if any) and pick this process's device."""
    info = DistInfo(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if not info.enabled:
        return info, pick_device(device_name)
    use_cuda = device_name.split(":")[0] in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return info, device


def teardown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every process."""
    if info.enabled:
        dist.barrier()


def broadcast_object(obj: T, info: DistInfo) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _reduce_flag(flag: bool, info: DistInfo, op: dist.ReduceOp) -> bool:
    if not info.enabled:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=op)
    return bool(t.item())


def agree_any(flag: bool, info: DistInfo) -> bool:
    """True on every rank if ``flag`` is True on any rank."""
    return _reduce_flag(flag, info, dist.ReduceOp.MAX)


def agree_all(flag: bool, info: DistInfo) -> bool:
    """True on every rank only if ``flag`` is True on every rank."""
    return _reduce_flag(flag, info, dist.ReduceOp.MIN)


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm statistics, spectral-norm vectors) to every rank.

    DDP broadcasts buffers at each forward, but a forward then updates them from the local
    batch; before a checkpoint or at the end every rank is made to hold rank 0's exactly.
    """
    if not info.enabled:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of a tensor over all processes (itself when not distributed)."""
    if not info.enabled:
        return value
    out = value.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size
