"""EMA, data order, run folders, checkpoints: the parts the training loop is made of."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from sagan.errors import SaganError
from sagan.training import (
    EMA,
    ResumableBatchSampler,
    capture_rng_state,
    find_checkpoints,
    find_latest_run,
    load_checkpoint,
    make_run_dir,
    prune_checkpoints,
    resolve_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from sagan.training.checkpoint import checkpoint_name, checkpoint_step


def test_ema_update_is_the_documented_average() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.9)
    before = ema.shadow[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 3))  # changes BN running statistics (buffers)
    ema.update(model, step=1000)
    d = ema.decay_at(1000)
    assert d == 0.9
    torch.testing.assert_close(ema.shadow[0].weight, d * before + (1 - d) * model[0].weight)
    torch.testing.assert_close(ema.shadow[1].running_mean, model[1].running_mean)
    assert ema.decay_at(0) == pytest.approx(0.1)  # warm-up: early steps follow the model
    assert not any(p.requires_grad for p in ema.shadow.parameters())


def test_batch_sampler_resumes_the_exact_sequence() -> None:
    straight = ResumableBatchSampler(10, 3, seed=5)
    it = iter(straight)
    full = [next(it) for _ in range(8)]  # crosses epochs (3 batches per epoch)
    resumed = iter(ResumableBatchSampler(10, 3, seed=5, position=5))
    assert [next(resumed) for _ in range(3)] == full[5:]
    first_epoch = sorted(i for b in full[:3] for i in b)
    assert len(set(first_epoch)) == 9  # no repeats inside an epoch
    assert full[:3] != full[3:6]  # a fresh permutation each epoch
    with pytest.raises(ValueError, match="cannot fill one batch"):
        ResumableBatchSampler(2, 3, seed=0)


def test_rng_state_round_trip() -> None:
    import random

    import numpy as np

    state = capture_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_run_dirs_are_numbered_and_latest_is_found(tmp_path: Path) -> None:
    a = make_run_dir(tmp_path, "digits-resnet32")
    b = make_run_dir(tmp_path, "digits-dcgan32")
    assert (a.name, b.name) == ("00000-digits-resnet32", "00001-digits-dcgan32")
    with pytest.raises(SaganError, match="no run with a checkpoint"):
        find_latest_run(tmp_path)
    save_checkpoint({"kind": "images"}, a / checkpoint_name(3))
    assert find_latest_run(tmp_path) == a  # b has no checkpoint yet
    save_checkpoint({"kind": "images"}, b / checkpoint_name(1))
    assert find_latest_run(tmp_path) == b


def test_checkpoints_save_load_prune(tmp_path: Path) -> None:
    for step in (1, 20, 300):
        save_checkpoint(
            {"kind": "images", "step": step, "w": torch.ones(2)}, tmp_path / checkpoint_name(step)
        )
    assert [p.name for p in find_checkpoints(tmp_path)] == [
        "ckpt-0000001.pt",
        "ckpt-0000020.pt",
        "ckpt-0000300.pt",
    ]
    assert resolve_checkpoint(tmp_path).name == "ckpt-0000300.pt"
    assert load_checkpoint(tmp_path / checkpoint_name(20), kind="images")["step"] == 20
    prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in find_checkpoints(tmp_path)] == ["ckpt-0000020.pt", "ckpt-0000300.pt"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_checkpoint_step_inverts_checkpoint_name(tmp_path: Path) -> None:
    for step in (0, 7, 1_000, 12_345_678):  # past the 7 digits the name pads to
        assert checkpoint_step(tmp_path / checkpoint_name(step)) == step
    for other in ("best.pt", "ckpt-12.pt.tmp", ".ckpt-0000001.pt.tmp", "ckpt-x.pt", "ckpt-.pt"):
        assert checkpoint_step(other) is None
    (tmp_path / "best.pt").write_bytes(b"")
    (tmp_path / checkpoint_name(9)).write_bytes(b"")
    (tmp_path / checkpoint_name(10)).write_bytes(b"")
    assert [checkpoint_step(p) for p in find_checkpoints(tmp_path)] == [9, 10]


def test_failed_write_leaves_existing_checkpoints_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / checkpoint_name(1)
    save_checkpoint({"kind": "images", "step": 1}, good)
    data = good.read_bytes()

    def disk_full(fd: int) -> None:  # the data was written; the disk cannot hold it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(SaganError, match=r"No space left on device; earlier checkpoints .* intact"):
        save_checkpoint({"kind": "images", "step": 2}, tmp_path / checkpoint_name(2))
    with pytest.raises(SaganError, match="No space left"):  # overwriting the same name too
        save_checkpoint({"kind": "images", "step": 1}, good)
    assert good.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0000001.pt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_folder(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(SaganError, match="could not write checkpoint"):
            save_checkpoint({"kind": "images"}, tmp_path / checkpoint_name(1))
    finally:
        tmp_path.chmod(0o700)


def test_a_refused_write_is_one_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above, as root too: the folder refuses the write (EACCES)."""
    import sagan.training.checkpoint as checkpoint

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint, "open", refused, raising=False)
    with pytest.raises(SaganError, match=r"could not write checkpoint .*: Permission denied; "):
        save_checkpoint({"kind": "images"}, tmp_path / checkpoint_name(1))
    assert list(tmp_path.iterdir()) == []


def test_corrupt_truncated_and_foreign_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / checkpoint_name(5)
    save_checkpoint({"kind": "images", "w": torch.randn(1000)}, path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SaganError, match="not a readable checkpoint"):
        load_checkpoint(path, kind="images")
    path.write_bytes(b"hello")
    with pytest.raises(SaganError, match="not a readable checkpoint"):
        load_checkpoint(path, kind="images")
    torch.save({"state_dict": {}}, path)  # someone else's checkpoint
    with pytest.raises(SaganError, match="not a torch-sagan checkpoint"):
        load_checkpoint(path, kind="images")
    save_checkpoint({"kind": "levels"}, path)
    with pytest.raises(SaganError, match="'levels' checkpoint, not 'images'"):
        load_checkpoint(path, kind="images")
    with pytest.raises(SaganError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SaganError, match="no checkpoint"):
        resolve_checkpoint(empty)


def test_prefetcher_keeps_order_and_reraises() -> None:
    from sagan.training import Prefetcher, TimedIterator

    assert list(Prefetcher(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise OSError("disk went away")

    it = Prefetcher(broken())
    assert next(it) == 1
    with pytest.raises(OSError, match="disk went away"):
        next(it)
    endless = Prefetcher(iter(int, 1))  # never ends; close must stop its thread
    next(endless)
    endless.close()
    endless._thread.join(timeout=2)
    assert not endless._thread.is_alive()

    def slow():
        import time

        for i in range(3):
            time.sleep(0.02)
            yield i

    timed = TimedIterator(slow())
    assert list(timed) == [0, 1, 2]
    assert timed.waited >= 0.05


def test_a_flipped_bit_is_caught_by_the_checksum(tmp_path: Path) -> None:
    path = tmp_path / checkpoint_name(1)
    save_checkpoint({"kind": "images", "w": torch.randn(100_000)}, path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # inside the tensor data: torch alone would load this silently
    path.write_bytes(bytes(raw))
    with pytest.raises(SaganError, match="corrupt \\(checksum mismatch\\)"):
        load_checkpoint(path, kind="images")


def test_newest_good_checkpoint_is_used_when_the_newest_is_corrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagan.training import load_newest_good

    for step in (1, 2, 3):
        save_checkpoint({"kind": "images", "step": step}, tmp_path / checkpoint_name(step))
    (tmp_path / checkpoint_name(3)).write_bytes(b"truncated")
    path, ckpt = load_newest_good(tmp_path, kind="images")
    assert path.name == checkpoint_name(2) and ckpt["step"] == 2
    assert "skipping ckpt-0000003.pt" in capsys.readouterr().err
    (tmp_path / checkpoint_name(2)).write_bytes(b"")
    (tmp_path / checkpoint_name(1)).write_bytes(b"x")
    with pytest.raises(SaganError, match=r"every checkpoint .* is unreadable or corrupt"):
        load_newest_good(tmp_path, kind="images")
