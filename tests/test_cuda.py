"""The CUDA paths: fused attention kernels, mixed precision, a run trained on a GPU.

These need a CUDA GPU and are skipped without one (CI has none); run them on a GPU machine with
``python -m pytest tests/test_cuda.py``. Their CPU-side logic is covered by the other tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from sagan.images.config import ModelConfig, RunConfig, TrainConfig
from sagan.images.export import load_generator
from sagan.images.train import build_state, train, train_step
from sagan.losses import LOSSES
from sagan.nn import SelfAttention2d
from sagan.training import find_checkpoints, load_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TOLERANCE = {torch.float32: (2e-3, 1e-2), torch.bfloat16: (2e-2, 0.15), torch.float16: (5e-3, 6e-2)}
"""Max abs difference of (output, input gradient) to the float32 explicit map, relative to the
map's largest value (float32 convolutions on CUDA may round through TF32; without the 1/sqrt(d)
scale, bfloat16 logits make the softmax's gradient the least exact; measured on the CPU: 0.3%
and 6.5%; float16's gradient on an H200: 3.3%)."""


def _layer(pool: bool) -> SelfAttention2d:
    torch.manual_seed(0)
    # eval: fixed spectral-norm vectors; explicit_max=0: the fused kernels even for small maps
    layer = SelfAttention2d(64, pool=pool, explicit_max=0).eval().cuda()
    with torch.no_grad():
        layer.gamma.fill_(0.7)
    return layer


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("pool", [True, False])
def test_fused_attention_matches_the_explicit_map(dtype: torch.dtype, pool: bool) -> None:
    """Under autocast, with the math fallback forbidden: only flash / memory-efficient kernels
    may run, and they give the explicit map's output and gradients."""
    layer = _layer(pool)
    x = torch.randn(4, 64, 16, 16, device="cuda") * 2
    w = torch.randn_like(x)
    x_ref = x.clone().requires_grad_(True)
    y_ref, _ = layer(x_ref, return_attention=True)  # the explicit (B, N, N') map, float32
    (g_ref,) = torch.autograd.grad((y_ref * w).sum(), x_ref)
    x_fused = x.clone().requires_grad_(True)
    backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
    with sdpa_kernel(backends), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        y = layer(x_fused)
    (g,) = torch.autograd.grad((y.float() * w).sum(), x_fused)
    out_tol, grad_tol = TOLERANCE[dtype]
    assert (y.float() - y_ref).abs().max().item() <= out_tol * y_ref.abs().max().item()
    assert (g - g_ref).abs().max().item() <= grad_tol * g_ref.abs().max().item()


def _tiny(precision: str, steps: int = 3) -> RunConfig:
    return RunConfig(
        model=ModelConfig(arch="resnet", resolution=32, ch=16, z_dim=32, attention=(16,),
                          channels=3, num_classes=10),
        train=TrainConfig(batch_size=16, steps=steps, precision=precision, device="cuda",
                          save_every=steps, sample_every=steps, log_every=1),
    )  # fmt: skip


@pytest.mark.parametrize("precision", ["32", "bf16", "16"])
def test_train_step_on_cuda_learns_in_every_precision(precision: str) -> None:
    state = build_state(_tiny(precision), torch.device("cuda"))
    before = {k: v.clone() for k, v in state.G.state_dict().items()}
    real = torch.rand(16, 3, 32, 32, device="cuda") * 2 - 1
    labels = torch.randint(0, 10, (16,), device="cuda")
    batches = iter(lambda: (real, labels), None)
    # float16: the gradient scaler starts at 2**16 and skips the updates whose scaled gradients
    # overflow while it halves the scale; in 3 iterations it can skip every G update (an H200,
    # 2026-12-04; on the CPU with float16 forced, seeds 0 and 1 first stepped G in iteration 4)
    for _ in range(8):
        stats = train_step(state, batches, LOSSES["hinge"])
        state.updates.end_iteration()
    assert all(torch.isfinite(v).all() for v in stats.values())
    assert state.updates.read().skipped == 0
    moved = [k for k, v in state.G.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("gamma") for k in moved)  # attention learns
    assert next(iter(state.G.attention.values())).gamma.device.type == "cuda"
    assert state.updates.scalers["g"].is_enabled() == (precision == "16")


def test_a_run_trained_on_cuda_resumes_and_samples_on_the_cpu(tmp_path: Path) -> None:
    run = train(_tiny("16", steps=4), out=tmp_path / "run", progress=False)
    # the scaler's own skips are logged and saved apart from the guard's
    assert "scaler_skipped" in load_checkpoint(find_checkpoints(run)[-1], kind="images")
    records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert any("scaler_skipped_updates" in r for r in records)
    # float16 needs CUDA: on the CPU the run continues in float32 (the scaler's state is unused)
    cpu = {"train": {"device": "cpu", "precision": "32", "steps": 6}}
    assert train(resume=str(run), overrides=cpu, progress=False) == run
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind="images")
    assert ckpt["step"] == 6 and ckpt["skipped"] == 0
    assert all(t.device.type == "cpu" for t in ckpt["G"].values())
    gen = load_generator(run, device="cpu")
    images = gen.sample(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 32, 32) and torch.isfinite(images).all()  # digits


APPS = {
    "levels": ["levels", "train", "--batch-size", "8", "--ch", "8", "--z-dim", "8",
               "--embed", "4", "--bootstrap-every", "2", "--bootstrap-samples", "8"],
    "pose": ["pose", "train", "--stacks", "2", "--features", "16", "--depth", "2",
             "--d-features", "8", "--d-depth", "2", "--resolution", "32", "--batch-size", "4",
             "--train-size", "20"],
}  # fmt: skip


@pytest.mark.parametrize("app", list(APPS))
@pytest.mark.parametrize("precision", ["32", "bf16", "16"])
def test_levels_and_pose_train_on_cuda_and_resume_on_the_cpu(
    app: str, precision: str, tmp_path: Path
) -> None:
    from sagan.cli import main

    run = tmp_path / "run"
    argv = [*APPS[app], "--steps", "4", "--save-every", "2", "--device", "cuda", "--no-progress"]
    assert main([*argv, "--precision", precision, "--eval-every", "4", "--out", str(run)]) == 0
    ckpt = load_checkpoint(find_checkpoints(run)[-1], kind=app)
    assert ckpt["step"] == 4 and ckpt["skipped"] == 0
    assert all(torch.isfinite(v.float()).all() for v in ckpt["G"].values())
    assert (run / "best.pt").exists()
    back = ["--device", "cpu", "--precision", "32", "--steps", "5", "--no-progress"]
    assert main([*APPS[app][:2], "--resume", str(run), *back]) == 0
    assert load_checkpoint(find_checkpoints(run)[-1], kind=app)["step"] == 5
