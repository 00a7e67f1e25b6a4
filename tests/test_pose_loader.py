"""Pose batches made ahead (a thread or worker processes) are the batches a step that loads its
own would see, in the same order, and they follow the data stream back after a rollback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_data
from sagan.pose.data import read_mpii_json
from sagan.pose.datasets import AnnotatedPoseDataset, SyntheticPoseDataset
from sagan.pose.loader import PoseBatches, draw_batch, load_batch
from sagan.pose.train import train_pose
from sagan.training import find_checkpoints, load_checkpoint
from test_pose_train import tiny


def _stream(batches: PoseBatches, seed: int, steps: int) -> tuple[list, torch.Tensor]:  # type: ignore[type-arg]
    rng = torch.Generator().manual_seed(seed)
    got = [batches.next(rng) for _ in range(steps)]
    batches.close()
    return got, rng.get_state()


@pytest.mark.parametrize(("workers", "prefetch"), [(0, 1), (0, 3), (2, 1), (1, 2)])
def test_made_ahead_equals_loaded_in_the_step(workers: int, prefetch: int) -> None:
    data = SyntheticPoseDataset(40, resolution=32, heatmap=8, seed=3)
    want, want_state = _stream(PoseBatches(data, 4, slice(None), prefetch=0), 7, 5)
    ahead = PoseBatches(data, 4, slice(None), num_workers=workers, prefetch=prefetch)
    got, state = _stream(ahead, 7, 5)
    assert torch.equal(state, want_state)  # the run's stream advanced exactly as before
    for (x, h), (wx, wh) in zip(got, want, strict=True):
        assert torch.equal(x, wx) and torch.equal(h, wh)
    assert ahead.restarts == 0


def test_the_step_draws_what_it_always_drew() -> None:
    """The draw order (people, then keys) is that of 0.1 and 0.2 runs: resumes stay exact."""
    data = SyntheticPoseDataset(40, resolution=32, heatmap=8)
    rng = torch.Generator().manual_seed(5)
    idx = torch.randint(0, 40, (6,), generator=torch.Generator().manual_seed(5))
    got_idx, _ = draw_batch(rng, 40, 6, slice(None))
    assert torch.equal(got_idx, idx)
    x, h = PoseBatches(data, 6, slice(1, None, 2), prefetch=0).next(
        torch.Generator().manual_seed(5)
    )
    i, k = draw_batch(torch.Generator().manual_seed(5), 40, 6, slice(1, None, 2))
    wx, wh, *_ = load_batch(data, i, k)
    assert x.shape[0] == 3 and torch.equal(x, wx) and torch.equal(h, wh)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stream_moved_back_restarts_the_loader(workers: int) -> None:
    """A rollback restores the data stream from a checkpoint: the batches made ahead are
    dropped and the next batch is the restored step's."""
    data = SyntheticPoseDataset(40, resolution=32, heatmap=8)
    rng = torch.Generator().manual_seed(1)
    batches = PoseBatches(data, 4, slice(None), num_workers=workers, prefetch=2)
    batches.next(rng)
    saved = rng.get_state()
    second = batches.next(rng)
    batches.next(rng)
    rng.set_state(saved)
    again = batches.next(rng)
    batches.close()
    assert batches.restarts == 1
    assert torch.equal(again[0], second[0]) and torch.equal(again[1], second[1])


def test_workers_on_real_images_augment_alike() -> None:
    folder = shared_data("mpii-sample")
    people = read_mpii_json(folder / "test_mpii.json")
    data = AnnotatedPoseDataset(people, folder, resolution=64, heatmap=16, seed=2)
    want, _ = _stream(PoseBatches(data, 3, slice(None), prefetch=0), 0, 3)
    got, _ = _stream(PoseBatches(data, 3, slice(None), num_workers=2, prefetch=1), 0, 3)
    for (x, h), (wx, wh) in zip(got, want, strict=True):
        assert torch.equal(x, wx) and torch.equal(h, wh)
    assert not np.allclose(want[0][0].numpy(), want[1][0].numpy())  # real, varied batches


def test_a_run_with_workers_trains_the_same_weights(tmp_path: Path) -> None:
    cfg = tiny(3)
    plain = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, prefetch=0))
    ahead = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=2))
    a = load_checkpoint(find_checkpoints(train_pose(plain, out=tmp_path / "a"))[-1], kind="pose")
    b = load_checkpoint(find_checkpoints(train_pose(ahead, out=tmp_path / "b"))[-1], kind="pose")
    for key in ("G", "D"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), (key, name)


def test_draws_that_come_back_as_lists_are_the_same_draws() -> None:
    """Pinning memory turns the workers' (person, key) tuples into lists on older torch:
    they must still count as the step's draws (no restart every step)."""
    data = SyntheticPoseDataset(40, resolution=32, heatmap=8)
    rng = torch.Generator().manual_seed(2)
    batches = PoseBatches(data, 4, slice(None), prefetch=1)
    state = rng.get_state()
    idx, keys = draw_batch(torch.Generator().manual_seed(2), 40, 4, slice(None))
    want = load_batch(data, idx, keys)
    listed = [[int(i), int(k)] for i, k in zip(idx, keys, strict=True)]
    batches._ahead = iter([(listed, want)])
    x, h = batches.next(rng)
    assert batches.restarts == 0 and torch.equal(x, want[0]) and torch.equal(h, want[1])
    assert not torch.equal(rng.get_state(), state)
