"""Shared training machinery: EMA, checkpoints, run folders, RNG state, data order, logging."""

from sagan.training.batches import Prefetcher, ResumableBatchSampler, TimedIterator
from sagan.training.checkpoint import (
    find_checkpoints,
    load_checkpoint,
    load_newest_good,
    load_source,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
)
from sagan.training.device import pick_device
from sagan.training.ema import EMA
from sagan.training.rng import capture_rng_state, restore_rng_state
from sagan.training.rundir import find_latest_run, make_run_dir
from sagan.training.stats import StatsWriter

__all__ = [
    "EMA",
    "Prefetcher",
    "ResumableBatchSampler",
    "StatsWriter",
    "TimedIterator",
    "capture_rng_state",
    "find_checkpoints",
    "find_latest_run",
    "load_checkpoint",
    "load_newest_good",
    "load_source",
    "make_run_dir",
    "pick_device",
    "prune_checkpoints",
    "resolve_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]
