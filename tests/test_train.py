"""The training loop end to end on tiny models: exact resume, run folders, errors, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from sagan.errors import SaganError
from sagan.images.config import ModelConfig, RunConfig, TrainConfig
from sagan.images.train import train
from sagan.training import find_checkpoints, load_checkpoint


def tiny(steps: int = 4, **train_kw: object) -> RunConfig:
    """A dcgan 32 px model of base width 8 with attention at 16: a step takes milliseconds."""
    kw = {"batch_size": 8, "save_every": 2, "sample_every": 2, "log_every": 1, "device": "cpu"}
    kw |= train_kw
    return RunConfig(
        model=ModelConfig(arch="dcgan", ch=8, z_dim=16, attention=(16,)),
        train=TrainConfig(steps=steps, **kw),  # type: ignore[arg-type]
    )


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    return {k: ckpt[k] for k in ("G", "D", "G_ema")} | {
        "opt_g": ckpt["opt_g"]["state"],
        "opt_d": ckpt["opt_d"]["state"],
    }


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        elif isinstance(a[key], dict):
            _assert_identical(a[key], b[key])
        else:
            assert a[key] == b[key], key


def test_resume_is_bit_identical_to_straight_training(tmp_path: Path) -> None:
    straight = train(tiny(6), out=tmp_path / "straight", progress=False)
    half = train(tiny(3, save_every=3), out=tmp_path / "resumed", progress=False)
    assert find_checkpoints(half)[-1].name == "ckpt-0000003.pt"
    resumed = train(resume=str(half), overrides={"train": {"steps": 6}}, progress=False)
    assert resumed == half
    _assert_identical(_weights(straight), _weights(resumed))
    assert load_checkpoint(find_checkpoints(resumed)[-1], kind="images")["step"] == 6


def test_run_folder_contents(tmp_path: Path) -> None:
    run = train(tiny(4), runs_root=tmp_path / "runs", progress=False)
    assert run.parent == tmp_path / "runs"
    assert run.name == "00000-digits-dcgan32-cond"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["channels"] == 1 and cfg["model"]["num_classes"] == 10
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert {"loss_d", "loss_g", "img_per_s", "gamma/G16", "gamma/D16"} <= records[0].keys()
    assert all(r["loss_d"] is not None and r["loss_d"] >= 0 for r in records)  # hinge D >= 0
    samples = sorted(p.name for p in (run / "samples").iterdir())
    assert samples == ["fakes-0000002.png", "fakes-0000004.png", "reals.png"]
    assert [p.name for p in find_checkpoints(run)] == ["ckpt-0000002.pt", "ckpt-0000004.pt"]
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "noise_rng", "config", "version"):
        assert key in ckpt
    assert ckpt["batches_seen"] == 4
    # attention layers learn: gamma moved away from its initial 0
    assert records[-1]["gamma/G16"] != 0.0


def test_config_is_written_before_step_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sagan.images.train as train_module

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("stop before the first step")

    monkeypatch.setattr(train_module, "train_step", boom)
    with pytest.raises(RuntimeError, match="first step"):
        train(tiny(2), out=tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "config.yaml").exists()


def test_resume_auto_extends_the_newest_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    train(tiny(2), runs_root=runs, progress=False)
    newest = train(tiny(2), runs_root=runs, progress=False)
    again = train(resume="auto", runs_root=runs, overrides={"train": {"steps": 4}}, progress=False)
    assert again == newest
    assert find_checkpoints(newest)[-1].name == "ckpt-0000004.pt"


def test_resume_refuses_to_change_the_model(tmp_path: Path) -> None:
    run = train(tiny(2), out=tmp_path / "r", progress=False)
    with pytest.raises(SaganError, match=r"model\.arch cannot change when resuming"):
        train(resume=str(run), overrides={"model": {"arch": "resnet"}}, progress=False)
    # repeating the same value is fine
    train(resume=str(run), overrides={"model": {"arch": "dcgan"}}, progress=False)


def _noise_folder(folder: Path, height: int, width: int, count: int = 16) -> Path:
    """``count`` RGB PNGs of seeded uniform noise, ``height`` x ``width``, in ``folder``."""
    from PIL import Image

    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(count):
        arr = (torch.rand(height, width, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(folder / f"{i:02d}.png")
    return folder


def test_a_run_whose_data_moved_resumes_with_data(tmp_path: Path) -> None:
    """Moving the image folder does not strand a run: resuming names --data, and with it the
    run continues exactly as if nothing had moved; other data is refused."""
    folder = _noise_folder(tmp_path / "imgs", 32, 32)
    cfg = RunConfig.from_dict(tiny(2).to_dict() | {"data": {"data": str(folder)}})
    straight = train(
        RunConfig.from_dict(cfg.to_dict() | {"train": cfg.to_dict()["train"] | {"steps": 4}}),
        out=tmp_path / "straight",
        progress=False,
    )
    run = train(cfg, out=tmp_path / "r", progress=False)
    moved = folder.rename(tmp_path / "moved")
    with pytest.raises(SaganError, match="resume with --data NEW_PATH"):
        train(resume=str(run), overrides={"train": {"steps": 4}}, progress=False)
    over = {"data": {"data": str(moved)}, "train": {"steps": 4}}
    assert train(resume=str(run), overrides=over, progress=False) == run
    _assert_identical(_weights(run), _weights(straight))
    over = {"data": {"data": "digits"}, "train": {"steps": 6}}  # 1 channel, not 3
    with pytest.raises(SaganError, match="resume on the same data"):
        train(resume=str(run), overrides=over, progress=False)


def test_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    run = train(tiny(2), out=tmp_path / "r", progress=False)
    before = {p.name: p.read_bytes() for p in find_checkpoints(run)}
    with pytest.raises(SaganError, match="already holds checkpoints; continue it with --resume"):
        train(tiny(2), out=run, progress=False)
    assert {p.name: p.read_bytes() for p in find_checkpoints(run)} == before


def test_batch_larger_than_data_is_a_clear_error(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(folder / f"{i}.png")
    cfg = RunConfig.from_dict(tiny(2).to_dict() | {"data": {"data": str(folder)}})
    with pytest.raises(SaganError, match="3 usable images, fewer than one batch of 8"):
        train(cfg, out=tmp_path / "r", progress=False)


def test_unconditional_folder_training(tmp_path: Path) -> None:
    folder = _noise_folder(tmp_path / "imgs", 36, 40)
    (folder / "broken.png").write_bytes(b"not a png")
    cfg = RunConfig.from_dict(tiny(2).to_dict() | {"data": {"data": str(folder)}})
    run = train(cfg, out=tmp_path / "r", progress=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["channels"] == 3 and saved["model"]["num_classes"] == 0
    assert find_checkpoints(run)[-1].name == "ckpt-0000002.pt"
    import threading
    import time

    deadline = time.monotonic() + 2  # the prefetch thread stops once the run is over
    while any(t.name == "sagan-prefetch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "prefetch thread left running"
        time.sleep(0.05)


def test_bf16_training_runs_and_keeps_float32_weights(tmp_path: Path) -> None:
    cfg = tiny(2, precision="bf16")
    run = train(cfg, out=tmp_path / "r", progress=False)
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    assert all(v.dtype in (torch.float32, torch.int64) for v in ckpt["G"].values())
    assert all(torch.isfinite(v.float()).all() for v in ckpt["G"].values())
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all(r["loss_d"] is not None for r in records)


def test_float16_needs_cuda(tmp_path: Path) -> None:
    cfg = tiny(2, precision="16")
    with pytest.raises(SaganError, match="--precision 16 needs a CUDA GPU"):
        train(cfg, out=tmp_path / "r", progress=False)


def test_resume_auto_falls_back_past_a_corrupt_checkpoint(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = train(tiny(4, keep_checkpoints=5), runs_root=runs, progress=False)
    newest = find_checkpoints(run)[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # a crash-truncated copy, say
    train(resume="auto", runs_root=runs, overrides={"train": {"steps": 6}}, progress=False)
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    assert ckpt["step"] == 6


class _PoisonedLoss:
    """The hinge loss, but NaN on the D-loss calls whose numbers are in ``bad_calls``."""

    def __init__(self, bad_calls: set[int]) -> None:
        from sagan.losses import d_hinge, g_hinge

        self.calls, self.bad_calls, self._d, self.g = 0, bad_calls, d_hinge, g_hinge

    def d(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self._d(real, fake)
        return out * float("nan") if self.calls in self.bad_calls else out


def _poison(monkeypatch: pytest.MonkeyPatch, bad_calls: set[int]) -> _PoisonedLoss:
    import sagan.images.train as train_module

    poisoned = _PoisonedLoss(bad_calls)
    monkeypatch.setitem(train_module.LOSSES, "hinge", poisoned)
    return poisoned


def test_a_non_finite_update_is_skipped_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sagan.images.train as train_module

    original, snapshots = train_module.train_step, []

    def recording_step(state, batches, loss):  # type: ignore[no-untyped-def]
        out = original(state, batches, loss)
        snapshots.append([p.detach().clone() for p in state.D.parameters()])
        return out

    monkeypatch.setattr(train_module, "train_step", recording_step)
    _poison(monkeypatch, {2})  # D's update of iteration 2 sees a NaN loss
    run = train(tiny(3, save_every=1), out=tmp_path / "poisoned", progress=False)
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["skipped_updates"] for r in records] == [0, 1, 1]
    assert all(torch.equal(a, b) for a, b in zip(snapshots[0], snapshots[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[1], snapshots[2], strict=True))
    # no checkpoint inside the streak; the next clean iteration saves again
    assert [p.name for p in find_checkpoints(run)] == ["ckpt-0000001.pt", "ckpt-0000003.pt"]
    assert "step 2: inside a non-finite streak; not saving" in capsys.readouterr().err
    assert load_checkpoint(run / "ckpt-0000003.pt", kind="images")["skipped"] == 1


def test_a_bad_streak_rolls_back_to_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _poison(monkeypatch, {3, 4})  # iterations 3 and 4
    run = train(tiny(6, save_every=2, max_bad_steps=2), out=tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert "2 non-finite iterations in a row; rolled back to ckpt-0000002.pt" in err
    final = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    assert final["step"] == 6
    assert all(torch.isfinite(v.float()).all() for v in final["G"].values())


def test_a_streak_before_any_checkpoint_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison(monkeypatch, {1, 2})
    with pytest.raises(SaganError, match=r"diverged at step 2 .* before any checkpoint"):
        train(tiny(6, save_every=5, max_bad_steps=2), out=tmp_path / "r", progress=False)


def test_non_finite_weights_are_never_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sagan.images.train as train_module

    original = train_module.train_step
    poisoned = []

    def step_then_poison(state, batches, loss):  # type: ignore[no-untyped-def]
        out = original(state, batches, loss)
        if state.step_count == 2 and not poisoned:  # the 3rd iteration (counted after it)
            poisoned.append(True)
            with torch.no_grad():
                next(state.G.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(train_module, "train_step", step_then_poison)
    run = train(tiny(4, save_every=1, keep_checkpoints=10), out=tmp_path / "r", progress=False)
    assert "step 3: non-finite weights; not saving" in capsys.readouterr().err
    for path in find_checkpoints(run):
        ckpt = load_checkpoint(path, kind="images")
        assert all(torch.isfinite(v.float()).all() for v in ckpt["G"].values()), path.name
    assert find_checkpoints(run)[-1].name == "ckpt-0000004.pt"


def test_float16_code_path_with_gradient_scaling_runs(tmp_path: Path) -> None:
    """The CUDA float16 path (autocast + GradScaler), exercised on the CPU by hand."""
    from sagan.images.train import build_state, train_step
    from sagan.losses import LOSSES
    from sagan.training.precision import Precision

    cfg = tiny(2)
    cfg = RunConfig.from_dict(
        cfg.to_dict() | {"model": cfg.to_dict()["model"] | {"channels": 1, "num_classes": 10}}
    )
    state = build_state(cfg, torch.device("cpu"))
    state.precision = Precision("16", "cpu", torch.float16)
    state.scaler_g = state.precision.scaler()
    state.scaler_d = state.precision.scaler()
    assert state.scaler_g.is_enabled()
    g = torch.Generator().manual_seed(0)

    def batches():  # type: ignore[no-untyped-def]
        while True:
            yield (
                torch.rand(8, 1, 32, 32, generator=g) * 2 - 1,
                torch.randint(0, 10, (8,), generator=g),
            )

    before = [p.detach().clone() for p in state.G.parameters()]
    for _ in range(3):
        out = train_step(state, batches(), LOSSES["hinge"])
        assert torch.isfinite(out["loss_d"]) and torch.isfinite(out["loss_g"])
    assert state.scaler_g.get_scale() > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, state.G.parameters(), strict=True))
    assert all(p.dtype == torch.float32 for p in state.G.parameters())


def test_periodic_evaluation_logs_metrics_keeps_best_and_resumes_exactly(tmp_path: Path) -> None:
    metrics = "fd_digits,coverage"
    kw = {"eval_every": 2, "eval_n": 64, "eval_metrics": metrics}
    straight = train(tiny(6, **kw), out=tmp_path / "straight", progress=False)
    records = [json.loads(x) for x in (straight / "stats.jsonl").read_text().splitlines()]
    evals = [r for r in records if "metric/fd_digits" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert all(r["metric/fd_digits"] > 0 and 0 <= r["metric/coverage"] <= 1 for r in evals)
    best = min(evals, key=lambda r: r["metric/fd_digits"])
    ckpt = load_checkpoint(straight / "best.pt", kind="images")
    assert ckpt["step"] == best["step"]
    assert ckpt["best"] == {
        "metric": "fd_digits",
        "value": pytest.approx(best["metric/fd_digits"]),
        "step": best["step"],
    }
    assert (straight / "best.pt") not in find_checkpoints(straight)  # never pruned or resumed
    # evaluating does not disturb training: same weights as without it, and as a resumed run
    plain = train(tiny(6), out=tmp_path / "plain", progress=False)
    _assert_identical(_weights(straight), _weights(plain))
    half = train(tiny(3, save_every=3, **kw), out=tmp_path / "resumed", progress=False)
    resumed = train(resume=str(half), overrides={"train": {"steps": 6}}, progress=False)
    _assert_identical(_weights(straight), _weights(resumed))
    last = load_checkpoint(find_checkpoints(resumed)[-1], kind="images")["best"]
    assert last == load_checkpoint(find_checkpoints(straight)[-1], kind="images")["best"]


def test_periodic_evaluation_with_an_impossible_metric_fails_before_training(
    tmp_path: Path,
) -> None:
    with pytest.raises(SaganError, match="cannot compute constraint: only for generators"):
        train(tiny(2, eval_every=1, eval_metrics="constraint"), out=tmp_path / "r", progress=False)
    assert not find_checkpoints(tmp_path / "r") and not (tmp_path / "r" / "stats.jsonl").exists()
    with pytest.raises(SaganError, match="unknown metric 'fdd'"):
        train(tiny(2, eval_every=1, eval_metrics="fdd"), out=tmp_path / "s", progress=False)


@pytest.mark.slow
def test_compile_changes_speed_not_the_result(tmp_path: Path) -> None:
    """--compile: the same networks and gradients as eager, and a run that trains and saves
    plain (uncompiled) state dicts."""
    from dataclasses import replace

    from sagan.images.train import ImageTask, build_state

    def state(compile: bool) -> ImageTask:
        cfg = tiny(1, compile=compile)
        cfg = replace(cfg, model=replace(cfg.model, channels=1, num_classes=10))
        return build_state(cfg, torch.device("cpu"))

    a, b = state(False), state(True)
    z, y = torch.randn(4, 16), torch.randint(0, 10, (4,))
    fake_a, fake_b = a.G(z, y), b.G(z, y)  # training mode: batch statistics
    torch.testing.assert_close(fake_b, fake_a, atol=1e-5, rtol=1e-4)
    score_a, score_b = a.D(fake_a, y), b.D(fake_b, y)
    torch.testing.assert_close(score_b, score_a, atol=1e-5, rtol=1e-4)
    score_a.sum().backward()
    score_b.sum().backward()
    for (name, pa), pb in zip(a.G.named_parameters(), b.G.parameters(), strict=True):
        torch.testing.assert_close(pb.grad, pa.grad, atol=1e-5, rtol=1e-3, msg=name)
    run = train(tiny(2, compile=True), out=tmp_path / "run", progress=False)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["compile"] is True
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    assert ckpt["step"] == 2 and not any("_orig_mod" in k for k in ckpt["G"])


def test_a_model_too_narrow_for_attention_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagan.cli import main

    argv = ["train", "--arch", "dcgan", "--ch", "4", "--steps", "1", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sagan: error: model: SelfAttention2d needs") and err.count("\n") == 1
    assert "raise --ch or change --attention" in err
    assert not (tmp_path / "run").exists()
