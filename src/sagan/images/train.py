"""The image SAGAN training loop: TTUR, hinge loss, EMA, checkpoints, samples, exact resume.

One iteration ("step") is ``n_dis`` discriminator updates followed by one generator update, as in
the paper. Real and fake images go through D in one concatenated batch, so each D update runs
the spectral-norm power iteration once. Noise and fake labels come from a dedicated generator
whose state is checkpointed with everything else, and the data order depends only on
``(seed, batches consumed)``: N steps + save + resume + N steps equals 2N straight steps exactly.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from sagan import __version__
from sagan.config import merge, write_yaml
from sagan.errors import SaganError
from sagan.images.config import RunConfig
from sagan.images.data import ImageDataset, dataset_fingerprint, load_dataset
from sagan.images.evaluate import PRIMARY_METRICS, check_metrics
from sagan.images.export import LoadedGenerator
from sagan.images.grid import save_grid
from sagan.images.loader import batch_stream
from sagan.images.networks import build_discriminator, build_generator
from sagan.losses import LOSSES, GANLoss
from sagan.nn import attention_gammas
from sagan.training import (
    EMA,
    StatsWriter,
    TimedIterator,
    capture_rng_state,
    find_latest_run,
    load_newest_good,
    load_source,
    make_run_dir,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from sagan.training.checkpoint import (
    checkpoint_name,
    find_checkpoints,
    remove_stale_temp_files,
)
from sagan.training.distributed import (
    DistInfo,
    agree_all,
    agree_any,
    barrier,
    broadcast_buffers,
    broadcast_object,
    setup,
    teardown,
)
from sagan.training.optim import adam
from sagan.training.precision import Precision, resolve_precision

__all__ = [
    "KIND",
    "RESUMABLE",
    "GANState",
    "build_state",
    "fixed_latents",
    "load_state",
    "resolve_resume_config",
    "state_to_checkpoint",
    "train",
    "train_step",
]

KIND = "images"
"""The ``kind`` tag of image checkpoints."""

RESUMABLE: dict[str, frozenset[str]] = {
    "train": frozenset(
        {
            "steps",
            "save_every",
            "sample_every",
            "log_every",
            "keep_checkpoints",
            "eval_every",
            "eval_n",
            "eval_metrics",
            "device",
            "precision",
            "compile",
            "max_bad_steps",
            "sync_bn",
        }
    ),
    "data": frozenset({"num_workers"}),
}
"""Settings a resumed run may change; everything else is fixed by its checkpoint."""


@dataclass
class GANState:
    """Everything that changes during training."""

    cfg: RunConfig
    G: nn.Module
    D: nn.Module
    ema: EMA | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise: torch.Generator
    """Draws latents and fake labels."""
    precision: Precision
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    step: int = 0
    """Completed iterations (G updates)."""
    batches_seen: int = 0
    """Real batches consumed: the data stream's position."""
    skipped: int = 0
    """Updates skipped for a non-finite loss or gradient, over the whole run."""
    bad_streak: int = 0
    """Iterations in a row with a skipped update."""
    rollbacks: int = 0
    """Times this process went back to a checkpoint after a bad streak."""
    best: dict[str, Any] | None = None
    """The best periodic evaluation so far: ``{"metric", "value", "step"}`` (``best.pt``)."""
    dist: DistInfo = dataclasses.field(default_factory=DistInfo)
    G_train: nn.Module | None = None
    """G as the G update calls it: a DistributedDataParallel wrapper when distributed."""
    D_train: nn.Module | None = None
    """D as the D update calls it: a DistributedDataParallel wrapper when distributed."""

    @property
    def networks(self) -> list[nn.Module]:
        """G, D and, when kept, the EMA generator."""
        return [self.G, self.D] + ([self.ema.shadow] if self.ema is not None else [])

    def restart_noise(self, salt: int = 0) -> None:
        """Reseed the noise stream where the saved one cannot continue (several ranks, another
        device, a rollback): distinct per rank, step and ``salt``."""
        seed = self.cfg.train.seed + 1 + 100_003 * self.dist.rank + 7919 * salt + self.step
        self.noise.manual_seed(seed)

    def sync_buffers(self) -> None:
        """Make every rank hold rank 0's buffers of G, D and the EMA generator."""
        for net in self.networks:
            broadcast_buffers(net, self.dist)

    def wrap_distributed(self, device: torch.device, sync_bn: bool = False) -> None:
        """Wrap G and D in DDP (gradients averaged over ranks, buffers broadcast from rank 0)."""
        if not self.dist.enabled:
            return
        from torch.nn.parallel import DistributedDataParallel as DDP

        if sync_bn:
            if device.type != "cuda":
                raise SaganError(
                    "--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm); on CPU, rank 0's "
                    "BatchNorm statistics are broadcast to every process instead"
                )
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
        ids = [device.index] if device.type == "cuda" else None
        self.G_train = DDP(self.G, device_ids=ids)
        self.D_train = DDP(self.D, device_ids=ids)

    @property
    def sampler(self) -> nn.Module:
        """The network used for samples and export: the EMA generator if any, else G."""
        return self.ema.shadow if self.ema is not None else self.G


def build_state(cfg: RunConfig, device: torch.device, info: DistInfo | None = None) -> GANState:
    """Fresh networks (seeded by ``cfg.train.seed``, identical on every rank), optimisers and
    noise generator (its own stream per rank)."""
    info = info or DistInfo()
    t = cfg.train
    precision = resolve_precision(t.precision, device)
    torch.manual_seed(t.seed)
    # channels_last: the layout oneDNN (CPU) and cuDNN tensor cores run convolutions in
    G = build_generator(cfg.model).to(device, memory_format=torch.channels_last)
    D = build_discriminator(cfg.model).to(device, memory_format=torch.channels_last)
    ema = EMA(G, t.ema_decay) if t.ema_decay > 0 else None  # an eager copy
    if t.compile:  # the modules (state_dict, parameters) stay as they are; only forward compiles
        G.forward = torch.compile(G.forward)  # type: ignore[method-assign]
        D.forward = torch.compile(D.forward)  # type: ignore[method-assign]
    opt_g = adam(G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2))
    opt_d = adam(D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2))
    noise = torch.Generator(device=device).manual_seed(t.seed + 1 + 100_003 * info.rank)
    return GANState(
        cfg,
        G,
        D,
        ema,
        opt_g,
        opt_d,
        noise,
        precision,
        precision.scaler(),
        precision.scaler(),
        dist=info,
    )


def _latents(
    state: GANState, batch: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    m = state.cfg.model
    z = torch.randn(batch, m.z_dim, generator=state.noise, device=device)
    y = None
    if m.num_classes:
        y = torch.randint(0, m.num_classes, (batch,), generator=state.noise, device=device)
    return z, y


def _apply(
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss: torch.Tensor,
    params: list[torch.Tensor],
    info: DistInfo,
) -> bool:
    """Backward and step; the step is skipped (returns False) if the loss or a gradient is
    not finite, so one bad batch cannot poison the weights or Adam's moments."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if scaler.is_enabled():  # float16: the scaler skips steps with inf/nan gradients itself
        scaler.step(opt)
        scaler.update()
        # the verdict feeds bad_streak and rollbacks, which every rank must agree on
        return agree_all(bool(torch.isfinite(loss)), info)
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch._foreach_norm(grads)  # one kernel for all gradients
    ok = bool(torch.isfinite(loss) & torch.isfinite(torch.stack(norms)).all())
    if agree_all(ok, info):  # every rank steps, or none: the weights stay identical
        opt.step()
        return True
    return False


def train_step(
    state: GANState,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    loss: GANLoss,
) -> dict[str, torch.Tensor]:
    """One iteration: ``n_dis`` D updates, one G update, one EMA update. Returns detached stats."""
    G, D, amp = state.G, state.D, state.precision
    G_train, D_train = state.G_train or G, state.D_train or D
    conditional = bool(state.cfg.model.num_classes)
    bad = 0
    D.requires_grad_(True)
    for _ in range(state.cfg.train.n_dis):
        real, y_real = next(batches)
        state.batches_seen += 1
        b = real.shape[0]
        z, y_fake = _latents(state, b, real.device)
        with torch.no_grad(), amp.autocast():
            fake = G(z, y_fake)
        with amp.autocast():
            x = torch.cat([real, fake.to(real.dtype)])  # (2B, C, R, R)
            y = torch.cat([y_real, y_fake]) if conditional else None  # type: ignore[list-item]
            scores = D_train(x, y).float()  # (2B,)
        d_real, d_fake = scores[:b], scores[b:]
        loss_d = loss.d(d_real, d_fake)
        bad += not _apply(state.opt_d, state.scaler_d, loss_d, list(D.parameters()), state.dist)
    D.requires_grad_(False)  # G's update needs gradients through D, not of D
    z, y_fake = _latents(state, real.shape[0], real.device)  # the per-rank batch
    with amp.autocast():
        scores = D(G_train(z, y_fake), y_fake).float()
    loss_g = loss.g(scores)
    bad += not _apply(state.opt_g, state.scaler_g, loss_g, list(G.parameters()), state.dist)
    D.requires_grad_(True)
    state.step += 1
    state.skipped += bad
    state.bad_streak = state.bad_streak + 1 if bad else 0
    if state.ema is not None:
        state.ema.update(G, state.step)
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": d_real.detach().mean(),
        "d_fake": d_fake.detach().mean(),
        "skipped_updates": torch.tensor(float(state.skipped)),
    }


def state_to_checkpoint(state: GANState, dataset: ImageDataset | None = None) -> dict[str, Any]:
    """The self-contained checkpoint dict of ``state`` (plain data and tensors only)."""
    ckpt: dict[str, Any] = {
        "kind": KIND,
        "version": __version__,
        "config": state.cfg.to_dict(),
        "step": state.step,
        "batches_seen": state.batches_seen,
        "skipped": state.skipped,
        "best": state.best,
        "G": state.G.state_dict(),
        "D": state.D.state_dict(),
        "G_ema": state.ema.state_dict() if state.ema is not None else None,
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "noise_rng": state.noise.get_state(),
        "scaler_g": state.scaler_g.state_dict(),
        "scaler_d": state.scaler_d.state_dict(),
        "rng": capture_rng_state(),
    }
    if dataset is not None:
        ckpt["dataset"] = {
            "name": dataset.name,
            "size": len(dataset),
            "fingerprint": dataset_fingerprint(dataset),
        }
    return ckpt


def load_state(
    ckpt: dict[str, Any], cfg: RunConfig, device: torch.device, info: DistInfo | None = None
) -> GANState:
    """Rebuild a :class:`GANState` from a checkpoint dict (``cfg`` may differ in schedule only).

    In one process the noise stream continues exactly; with several, each rank starts a stream
    of its own (the checkpoint holds rank 0's), so a run may resume on any number of ranks.
    """
    info = info or DistInfo()
    state = build_state(cfg, device, info)
    try:
        state.G.load_state_dict(ckpt["G"])
        state.D.load_state_dict(ckpt["D"])
        if state.ema is not None:
            state.ema.load_state_dict(ckpt["G_ema"])
        state.opt_g.load_state_dict(ckpt["opt_g"])
        state.opt_d.load_state_dict(ckpt["opt_d"])
        if ckpt.get("scaler_g"):  # empty when saved without float16
            state.scaler_g.load_state_dict(ckpt["scaler_g"])
            state.scaler_d.load_state_dict(ckpt["scaler_d"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise SaganError(f"checkpoint does not match its own config ({first})") from None
    state.step = int(ckpt["step"])
    state.batches_seen = int(ckpt["batches_seen"])
    state.skipped = int(ckpt.get("skipped", 0))
    state.best = ckpt.get("best")
    if info.enabled:
        state.restart_noise()
        return state
    try:
        state.noise.set_state(ckpt["noise_rng"])
    except RuntimeError:  # saved on another device type: its generator state does not fit
        state.restart_noise()
        print("note: resumed on another device; the noise stream restarts", file=sys.stderr)
    restore_rng_state(ckpt["rng"])
    return state


def resolve_resume_config(saved: dict[str, Any], overrides: dict[str, dict[str, Any]]) -> RunConfig:
    """The checkpoint's config with the allowed ``overrides`` applied.

    A setting outside :data:`RESUMABLE` may be repeated with the same value but not changed.
    """
    base = RunConfig.from_dict(saved)
    merged = RunConfig.from_dict(merge(saved, overrides))
    for section, values in overrides.items():
        for key in values:
            if key in RESUMABLE.get(section, frozenset()):
                continue
            old = getattr(getattr(base, section), key)
            if getattr(getattr(merged, section), key) != old:
                raise SaganError(
                    f"{section}.{key} cannot change when resuming (the checkpoint has {old!r}); "
                    "start a new run with --out or without --resume"
                )
    return merged


def fixed_latents(
    cfg: RunConfig, device: torch.device, n: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run's fixed sample-grid noise (and labels: one row per class when they fit)."""
    m = cfg.model
    g = torch.Generator().manual_seed(cfg.train.seed + 12345)
    if m.num_classes and n is None:
        per_class = 8 if m.num_classes <= 16 else 1
        y = torch.arange(m.num_classes).repeat_interleave(per_class)
        n = len(y) if m.num_classes <= 16 else 64
        y = y[:n] if m.num_classes <= 16 else torch.arange(n) % m.num_classes
    else:
        n = n or 64
        y = torch.arange(n) % m.num_classes if m.num_classes else None
    z = torch.randn(n, m.z_dim, generator=g)
    return z.to(device), (y.to(device) if y is not None else None)


def _sample_grid(
    state: GANState, latents: tuple[torch.Tensor, torch.Tensor | None]
) -> torch.Tensor:
    net = state.sampler
    was_training = net.training
    net.eval()
    with torch.no_grad():
        images = net(*latents)
    net.train(was_training)
    return images


class _TrainingSampler:
    """The (EMA) generator of a running training as a metrics :class:`Sampler`: samples
    through :meth:`LoadedGenerator.sample` in eval mode, then puts the network back in the
    mode it was in (G itself trains on when the run keeps no EMA)."""

    def __init__(self, state: GANState, data: str) -> None:
        self.net = state.sampler
        was_training = self.net.training
        self.gen = LoadedGenerator(self.net, state.cfg.model, state.step, data)  # sets eval
        self.net.train(was_training)
        self.num_classes, self.channels = self.gen.num_classes, self.gen.channels
        self.resolution, self.data = self.gen.resolution, data

    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(n, C, R, R) in [0, 1]."""
        was_training = self.net.training
        self.net.eval()
        try:
            return self.gen.sample(n, labels=labels, generator=generator)
        finally:
            self.net.train(was_training)


def _evaluate(state: GANState, dataset: ImageDataset) -> dict[str, float]:
    """The periodic evaluation: metric name -> value (on the main process only).

    Uses private random streams (a seeded generator for the noise, numpy for the real subset,
    a forked torch RNG for KID), so training continues exactly as without it.
    """
    from sagan.images.evaluate import evaluate

    t = state.cfg.train
    names = [m for m in t.eval_metrics.split(",") if m.strip()] or None
    sampler = _TrainingSampler(state, dataset.name)
    device = next(state.sampler.parameters()).device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # building feature nets draws from it
        result = evaluate(sampler, metrics=names, real=dataset, n=t.eval_n, seed=0, device=device)
    return result.values


_MAX_ROLLBACKS = 3


def _all_finite(state: GANState) -> bool:
    """True when every parameter of G, D and the EMA generator is finite."""
    return all(bool(torch.isfinite(p).all()) for net in state.networks for p in net.parameters())


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the step and stops."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _describe(cfg: RunConfig, dataset: ImageDataset) -> str:
    m = cfg.model
    cond = "-cond" if m.num_classes else ""
    return f"{dataset.name}-{m.arch}{m.resolution}{cond}"


def _open_run(
    cfg: RunConfig | None,
    *,
    out: Path | None,
    runs_root: Path,
    resume: str | None,
    overrides: dict[str, dict[str, Any]],
) -> tuple[RunConfig, Path, dict[str, Any] | None]:
    """Decide the run folder and config; load the checkpoint when resuming."""
    if resume is None:
        assert cfg is not None
        if out is not None and find_checkpoints(out):
            raise SaganError(
                f"{out} already holds checkpoints; continue it with --resume {out} "
                "or choose another --out"
            )
        return cfg, out, None  # type: ignore[return-value]
    source = find_latest_run(runs_root) if resume == "auto" else resume
    ckpt_path, ckpt = load_source(source, kind=KIND)
    return resolve_resume_config(ckpt["config"], overrides), ckpt_path.parent, ckpt


def train(
    cfg: RunConfig | None = None,
    *,
    out: Path | None = None,
    runs_root: Path = Path("runs"),
    resume: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: bool | None = None,
) -> Path:
    """Train (or resume) a run and return its folder.

    Args:
        cfg: the run's config (new runs). Its ``channels``/``num_classes`` are filled in from
            the data set.
        out: the run folder for a new run; None = the next auto-numbered one under ``runs_root``.
        runs_root: where auto-numbered runs live (and where ``resume="auto"`` looks).
        resume: None, ``"auto"`` (newest run under ``runs_root``), a run folder or a checkpoint.
        overrides: on resume, settings given on the command line, ``{section: {key: value}}``.
        progress: show a progress bar (None = when stderr is a terminal).

    Under ``torchrun`` every process runs this; rank 0 alone logs, samples and saves.
    """
    cfg, run_dir, ckpt = _open_run(
        cfg, out=out, runs_root=runs_root, resume=resume, overrides=overrides or {}
    )
    info, device = setup(cfg.train.device)
    try:
        return _train(cfg, run_dir, ckpt, runs_root, info, device, progress)
    finally:
        teardown(info)


def _train(
    cfg: RunConfig,
    run_dir: Path | None,
    ckpt: dict[str, Any] | None,
    runs_root: Path,
    info: DistInfo,
    device: torch.device,
    progress: bool | None,
) -> Path:
    if cfg.train.batch_size % info.world_size:
        raise SaganError(
            f"--batch-size {cfg.train.batch_size} (the global batch) must divide by the "
            f"{info.world_size} processes"
        )
    dataset = load_dataset(
        cfg.data.data,
        cfg.model.resolution,
        conditional=cfg.data.conditional if ckpt is None else bool(cfg.model.num_classes),
    )
    skipped = dataset.describe_skipped()
    if skipped:
        print(f"data: {skipped}", file=sys.stderr)
    if len(dataset) < cfg.train.batch_size:
        raise SaganError(
            f"the data set has {len(dataset)} usable images, fewer than one batch of "
            f"{cfg.train.batch_size}; lower --batch-size or add images"
        )
    model = dataclasses.replace(
        cfg.model, channels=dataset.channels, num_classes=dataset.num_classes
    )
    if ckpt is not None and (model.channels, model.num_classes) != (
        cfg.model.channels,
        cfg.model.num_classes,
    ):
        raise SaganError(
            f"the data set now has {dataset.channels} channels / {dataset.num_classes} classes, "
            f"the checkpoint {cfg.model.channels} / {cfg.model.num_classes}; resume on the"
            " same data"
        )
    cfg = dataclasses.replace(cfg, model=model)
    if info.is_main:
        if run_dir is None:
            run_dir = make_run_dir(runs_root, _describe(cfg, dataset))
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if remove_stale_temp_files(run_dir):
            print(f"removed the partial file of a checkpoint save that was cut off in {run_dir}")
        write_yaml(run_dir / "config.yaml", cfg.to_dict())
    run_dir = Path(broadcast_object(str(run_dir), info))

    state = build_state(cfg, device, info) if ckpt is None else load_state(ckpt, cfg, device, info)
    state.wrap_distributed(device, cfg.train.sync_bn)
    if ckpt is not None:
        saved = ckpt.get("dataset", {}).get("fingerprint")
        if saved and saved != dataset_fingerprint(dataset):
            print("warning: the data set differs from the one this run started on", file=sys.stderr)
        del ckpt
    return _loop(state, dataset, run_dir, device, progress)


def _loop(
    state: GANState,
    dataset: ImageDataset,
    run_dir: Path,
    device: torch.device,
    progress: bool | None,
) -> Path:
    cfg, t, info = state.cfg, state.cfg.train, state.dist
    if state.step >= t.steps:
        print(f"{run_dir}: already at step {state.step} of {t.steps}; raise --steps to go on")
        return run_dir
    loss = LOSSES[t.loss]
    samples_dir = run_dir / "samples"
    latents = fixed_latents(cfg, device)
    stats = StatsWriter(run_dir) if info.is_main else None
    if info.is_main:
        samples_dir.mkdir(exist_ok=True)

    def stream(position: int) -> TimedIterator[tuple[torch.Tensor, torch.Tensor]]:
        return TimedIterator(
            batch_stream(
                dataset,
                t.batch_size,
                seed=t.seed,
                position=position,
                device=device,
                num_workers=cfg.data.num_workers,
                rank=info.rank,
                world_size=info.world_size,
            )
        )

    if t.eval_every and t.eval_metrics.strip():  # a typo fails now, not at the first evaluation
        check_metrics(
            _TrainingSampler(state, dataset.name), t.eval_metrics.split(","), dataset.name
        )
    batches = stream(state.batches_seen)
    if state.step == 0 and info.is_main:
        # evenly spaced indices: data sets stored class by class still show every class
        picks = torch.linspace(0, len(dataset) - 1, min(64, len(dataset))).long().tolist()
        reals = torch.stack([dataset[i][0] for i in picks])
        save_grid(reals.float() / 127.5 - 1, samples_dir / "reals.png")

    def save() -> Path | None:
        state.sync_buffers()
        if state.bad_streak:  # mid-streak weights may be diverging: keep the last good one
            print(f"step {state.step}: inside a non-finite streak; not saving", file=sys.stderr)
            return None
        if not _all_finite(state):  # the weights are identical on every rank: so is this
            print(f"step {state.step}: non-finite weights; not saving", file=sys.stderr)
            state.bad_streak = t.max_bad_steps  # forces a rollback
            return None
        path = run_dir / checkpoint_name(state.step)
        if info.is_main:
            save_checkpoint(state_to_checkpoint(state, dataset), path)
            prune_checkpoints(run_dir, t.keep_checkpoints)
        barrier(info)  # nobody reads checkpoints (rollback) before rank 0 has written
        return path

    def rollback() -> GANState:
        if state.rollbacks >= _MAX_ROLLBACKS:
            raise SaganError(
                f"training diverged again after {_MAX_ROLLBACKS} rollbacks (step {state.step}); "
                "lower --lr-g/--lr-d or use --precision 32, then --resume"
            )
        try:
            path, ckpt = load_newest_good(run_dir, kind=KIND)
        except SaganError:
            raise SaganError(
                f"training diverged at step {state.step} ({t.max_bad_steps} non-finite "
                "iterations in a row) before any checkpoint; lower --lr-g/--lr-d"
            ) from None
        new = load_state(ckpt, cfg, device, info)
        new.wrap_distributed(device, cfg.train.sync_bn)
        new.rollbacks = state.rollbacks + 1
        # a different noise stream, or the same steps would diverge the same way again
        new.restart_noise(salt=new.rollbacks)
        print(
            f"step {state.step}: {t.max_bad_steps} non-finite iterations in a row; rolled "
            f"back to {path.name} (rollback {new.rollbacks} of {_MAX_ROLLBACKS})",
            file=sys.stderr,
        )
        return new

    def evaluate_now() -> None:
        if not info.is_main:
            return
        values = _evaluate(state, dataset)
        assert stats is not None
        stats.scalars(state.step, {f"metric/{k}": v for k, v in values.items()})
        primary = next((m for m in PRIMARY_METRICS if m in values), None)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        if primary is not None and math.isfinite(values[primary]):
            best = state.best
            if best is None or best["metric"] != primary or values[primary] < best["value"]:
                state.best = {"metric": primary, "value": values[primary], "step": state.step}
                save_checkpoint(state_to_checkpoint(state, dataset), run_dir / "best.pt")
                shown += f"; best {primary} so far: saved best.pt"
        tqdm.write(f"step {state.step}: {shown}", file=sys.stderr)

    def sample() -> None:
        if stats is None:
            return
        grid = save_grid(
            _sample_grid(state, latents), samples_dir / f"fakes-{state.step:07d}.png", nrow=8
        )
        stats.image(state.step, "samples", grid)

    bar = tqdm(
        total=t.steps,
        initial=state.step,
        desc=run_dir.name,
        disable=(None if progress is None else not progress) if info.is_main else True,
        dynamic_ncols=True,
    )
    window_start, window_steps = time.perf_counter(), 0
    try:
        with _StopRequest() as stop:
            while state.step < t.steps or state.bad_streak >= t.max_bad_steps:
                if state.bad_streak >= t.max_bad_steps:
                    state = rollback()
                    batches.close()
                    batches = stream(state.batches_seen)
                    bar.reset(total=t.steps)
                    bar.update(state.step)
                    continue
                out = train_step(state, batches, loss)
                window_steps += 1
                if state.step % t.log_every == 0 or state.step == t.steps:
                    elapsed = time.perf_counter() - window_start
                    values = {k: float(v) for k, v in out.items()}
                    values["img_per_s"] = window_steps * t.batch_size * t.n_dis / elapsed
                    values["data_wait_share"] = batches.waited / elapsed
                    batches.waited = 0.0
                    gammas = attention_gammas(state.G, "G") | attention_gammas(state.D, "D")
                    values.update({f"gamma/{k}": v for k, v in gammas.items()})
                    if stats is not None:
                        stats.scalars(state.step, values)
                    shown = {
                        "D": f"{values['loss_d']:.3f}",
                        "G": f"{values['loss_g']:.3f}",
                        "img/s": f"{values['img_per_s']:.0f}",
                    }
                    shown |= {k: f"{v:+.3f}" for k, v in gammas.items()}
                    bar.set_postfix(shown, refresh=False)
                    window_start, window_steps = time.perf_counter(), 0
                bar.update(1)
                if state.step % t.sample_every == 0 or state.step == t.steps:
                    sample()
                if t.eval_every and (state.step % t.eval_every == 0 or state.step == t.steps):
                    evaluate_now()
                due = state.step % t.save_every == 0 or state.step == t.steps
                if due and save() is None and state.bad_streak >= t.max_bad_steps:
                    continue  # weights went non-finite: roll back before anything else
                if agree_any(stop.signal is not None, info):  # all ranks stop together
                    path = save()
                    bar.close()
                    saved = f"saved {path}" if path else "weights non-finite, nothing saved"
                    print(
                        f"stopped by signal {stop.signal} at step {state.step}; {saved}; "
                        f"continue with: sagan train --resume {run_dir}"
                    )
                    return run_dir
    finally:
        bar.close()
        batches.close()
        if stats is not None:
            stats.close()
    state.sync_buffers()
    return run_dir
