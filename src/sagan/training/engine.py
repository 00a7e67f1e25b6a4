"""The one training loop under every application: run folders, device and precision, DDP,
signals, the non-finite guard, checkpoints, logging and periodic evaluation.

An application brings a :class:`Task`: its networks, optimisers, one training iteration, its
samples and metrics, and its typed config (whose ``train`` section subclasses
:class:`~sagan.training.config.EngineConfig`). :func:`train` does everything else:

* **Run folder**: numbered under ``runs_root`` (``NNNNN-description``) or ``out``; an existing,
  non-empty ``out`` is refused unless resuming. ``config.yaml`` (resolved) is written before
  step 0; stale partial checkpoint files of a crashed save are removed.
* **Device and precision**: ``train.device``, ``train.precision`` (autocast; float16 with
  gradient scaling on CUDA), ``train.compile``.
* **torchrun**: one process per device, gloo on the CPU, NCCL on CUDA; the trained networks
  are wrapped in DistributedDataParallel. Tasks draw every global batch on every rank and keep
  their slice, so a checkpoint resumes on any number of processes. Rank 0 alone logs, samples,
  evaluates and writes.
* **Signals**: SIGINT/SIGTERM finish the iteration, write a checkpoint and print the command
  that continues; a second Ctrl-C stops at once.
* **Non-finite guard** (:mod:`sagan.training.guard`): bad updates are skipped on the device and
  counted; after ``train.max_bad_steps`` bad iterations in a row the run reloads its newest
  good checkpoint with a fresh noise stream (at most 3 times). No checkpoint is written inside
  a streak or with non-finite weights.
* **Checkpoints**: atomic, fsynced and checksummed (:mod:`sagan.training.checkpoint`), the
  newest ``train.keep_checkpoints`` kept; ``resume`` takes ``auto``, a run folder or a file.
  In one process, N steps + resume + N steps equals 2N steps bit for bit.
* **Evaluation**: every ``train.eval_every`` steps, with every global random stream saved and
  restored around it (training continues exactly as without it); ``best.pt`` keeps the best
  value of the task's primary metric.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sagan import __version__
from sagan.config import merge, write_yaml
from sagan.errors import RunStopped, SaganError
from sagan.nn import attention_gammas
from sagan.training.checkpoint import (
    checkpoint_name,
    find_checkpoints,
    load_newest_good,
    load_source,
    prune_checkpoints,
    remove_stale_temp_files,
    save_checkpoint,
)
from sagan.training.config import ENGINE_RESUMABLE, EngineConfig
from sagan.training.distributed import (
    DistInfo,
    agree_any,
    barrier,
    broadcast_buffers,
    broadcast_object,
    setup,
    teardown,
)
from sagan.training.ema import EMA
from sagan.training.guard import GuardedOptimizers
from sagan.training.precision import Precision, resolve_precision
from sagan.training.rng import capture_rng_state, restore_rng_state
from sagan.training.rundir import find_latest_run, make_run_dir
from sagan.training.stats import StatsWriter

__all__ = [
    "Context",
    "Evaluation",
    "RunStopped",
    "Task",
    "build_task",
    "load_task",
    "resolve_resume_config",
    "train",
]

MAX_ROLLBACKS = 3
"""Rollbacks after which a diverging run stops with advice."""


@dataclass
class Context:
    """What the engine hands a task: where and how to compute, and the random streams."""

    device: torch.device
    precision: Precision
    dist: DistInfo
    noise: torch.Generator
    """This rank's stream for latents (on ``device``); restarted per rank under torchrun."""
    data_rng: torch.Generator
    """A CPU stream identical on every rank, for choosing (global) batches."""
    seed: int

    def restart_noise(self, step: int, salt: int = 0) -> None:
        """Reseed the noise stream where the saved one cannot continue (several ranks, another
        device, a rollback): distinct per rank, step and ``salt``."""
        self.noise.manual_seed(self.seed + 1 + 100_003 * self.dist.rank + 7919 * salt + step)

    def shard(self, n: int) -> slice:
        """This rank's slice of a global batch of ``n``."""
        return slice(self.dist.rank, n, self.dist.world_size)


@dataclass(frozen=True)
class Evaluation:
    """A periodic evaluation's metrics, and which one decides ``best.pt``."""

    values: dict[str, float]
    primary: str | None = None
    """The metric ``best.pt`` follows (None: keep no best)."""
    higher_is_better: bool = False


class Task(ABC):
    """One application's side of training. Subclasses set the class attributes, build their
    networks and optimisers in ``__init__`` (seeded, identical on every rank) and implement
    :meth:`step`; the engine calls the rest.

    Attributes set in ``__init__``:
        nets: the trained networks by checkpoint key (``"G"``, ``"D"``); the engine compiles
            their forward and, under torchrun, wraps them in DDP as ``train_nets``.
        emas: exponential moving averages by the key of the network they follow; saved as
            ``"<key>_ema"``.
        updates: the optimisers (:class:`~sagan.training.guard.GuardedOptimizers`).
    """

    kind: ClassVar[str]
    """The checkpoint tag (``images``, ``levels``, ``pose``)."""
    command: ClassVar[str]
    """The command that trains it, for the "continue with" line."""
    resumable: ClassVar[Mapping[str, frozenset[str]]] = {}
    """Settings of this app (beyond the engine's) a resumed run may change."""

    nets: dict[str, nn.Module]
    train_nets: dict[str, nn.Module]
    emas: dict[str, EMA]
    updates: GuardedOptimizers

    def __init__(self, cfg: Any, data: Any, ctx: Context) -> None:
        self.cfg, self.data, self.ctx = cfg, data, ctx
        self.step_count = 0
        self.best: dict[str, Any] | None = None
        self.emas = {}
        self.train_nets = {}

    # -- before the run: the config resolved against the data -------------------------------

    @classmethod
    @abstractmethod
    def prepare(cls, cfg: Any, *, resuming: bool) -> tuple[Any, Any]:
        """Load the data and fill the config's data-derived fields: ``(cfg, data)``. On resume
        the data must match what the checkpoint's config says (raise otherwise)."""

    @classmethod
    @abstractmethod
    def config_from_dict(cls, data: dict[str, Any]) -> Any:
        """Build the run config from plain data (a checkpoint's or a YAML file's)."""

    @classmethod
    def upgrade(cls, ckpt: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint written by an older version, in today's terms (its ``version`` says
        which); the default changes nothing."""
        return ckpt

    @classmethod
    def describe(cls, cfg: Any, data: Any) -> str:
        """The run folder's name after its number."""
        return cls.kind

    # -- the iteration ------------------------------------------------------------------------

    @abstractmethod
    def step(self) -> dict[str, torch.Tensor]:
        """One iteration (its updates through ``self.updates.update``); returns detached
        scalars (left on the device: the engine reads them only when it logs)."""

    # -- extras the engine calls --------------------------------------------------------------

    def start(self, run_dir: Path | None) -> None:  # noqa: B027
        """Called before the first iteration and again after a rollback (``run_dir`` on rank 0
        only): open data streams, write first pictures."""

    def close(self) -> None:  # noqa: B027
        """Release data streams."""

    def extra_state(self) -> dict[str, Any]:
        """The task's own checkpoint entries (plain data and tensors)."""
        return {}

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:  # noqa: B027
        """Restore :meth:`extra_state`'s entries (absent in older checkpoints: defaults)."""

    def after_step(self, run_dir: Path | None) -> dict[str, float]:
        """Work between iterations (e.g. bootstrapping); returns values to log now."""
        return {}

    def log_values(self, it_per_s: float, seconds: float) -> dict[str, float]:
        """Figures logged with every stats line (e.g. attention gammas, images/s), given the
        iterations per second and the seconds since the previous line."""
        return {}

    def progress(self, values: dict[str, float]) -> dict[str, str]:
        """The progress bar's figures, from the logged values."""
        return {k: f"{v:.3f}" for k, v in values.items() if k.startswith("loss")}

    def sample(self, path_dir: Path) -> np.ndarray | None:
        """Write this step's sample picture under ``path_dir``; return it (H, W, C) uint8 for
        TensorBoard, or None."""
        return None

    def check_evaluation(self) -> None:  # noqa: B027
        """Fail before step 0 if the periodic evaluation cannot run."""

    def evaluate(self) -> Evaluation:
        """The periodic evaluation (rank 0, eval mode, any random stream may be used)."""
        return Evaluation({})

    def finish(self) -> str | None:
        """A line to print when the run ends, or None."""
        return None

    # -- engine helpers -------------------------------------------------------------------------

    def train_net(self, key: str) -> nn.Module:
        """The network as its own update calls it (a DDP wrapper under torchrun)."""
        return self.train_nets.get(key) or self.nets[key]

    @property
    def G(self) -> Any:
        """The generator (every application has one)."""
        return self.nets["G"]

    @property
    def D(self) -> Any:
        """The discriminator, or None for a run without one (pose without --adversarial)."""
        return self.nets.get("D")

    @property
    def sampler(self) -> nn.Module:
        """The network for samples, evaluation and export: G's EMA copy if kept, else G."""
        return self.emas["G"].shadow if "G" in self.emas else self.nets["G"]

    def gammas(self) -> dict[str, float]:
        """The learned gamma of every attention layer of the trained networks, keyed
        ``gamma/G16`` (network key, then the layer's name)."""
        out: dict[str, float] = {}
        for key, net in self.nets.items():
            out |= {f"gamma/{k}": v for k, v in attention_gammas(net, key).items()}
        return out

    @staticmethod
    def shown_gammas(values: dict[str, float]) -> dict[str, str]:
        """The gammas among logged ``values``, for the progress bar (``G16: +0.012``)."""
        return {k[6:]: f"{v:+.3f}" for k, v in values.items() if k.startswith("gamma/")}

    def all_networks(self) -> list[nn.Module]:
        """Trained networks and their EMA copies."""
        return [*self.nets.values(), *(e.shadow for e in self.emas.values())]


def resolve_resume_config(
    task_cls: type[Task], saved: dict[str, Any], overrides: Mapping[str, Any]
) -> Any:
    """The checkpoint's config with the allowed ``overrides`` applied.

    A setting outside the engine's and the task's resumable ones may be repeated with the same
    value but not changed.
    """
    base = task_cls.config_from_dict(saved)
    merged = task_cls.config_from_dict(merge(saved, overrides))
    for section, values in overrides.items():
        if not isinstance(values, Mapping):  # a top-level field
            if getattr(merged, section) != getattr(base, section):
                raise SaganError(
                    f"{section} cannot change when resuming (the checkpoint has "
                    f"{getattr(base, section)!r}); start a new run instead of --resume"
                )
            continue
        allowed = task_cls.resumable.get(section, frozenset())
        if section == "train":
            allowed = allowed | ENGINE_RESUMABLE
        for key in values:
            if key in allowed:
                continue
            old = getattr(getattr(base, section), key)
            if getattr(getattr(merged, section), key) != old:
                raise SaganError(
                    f"{section}.{key} cannot change when resuming (the checkpoint has {old!r}); "
                    "start a new run with --out or without --resume"
                )
    return merged


# --- building, saving and loading a task ------------------------------------------------------


def build_task(
    task_cls: type[Task], cfg: Any, data: Any, device: torch.device, info: DistInfo | None = None
) -> Any:
    """A fresh task outside the loop (tests, benchmarks): its context, networks seeded by
    ``cfg.train.seed`` (identical on every rank), optimisers and noise streams; forward passes
    compiled with ``train.compile``."""
    return _build(task_cls, cfg, data, device, info or DistInfo())


def load_task(task_cls: type[Task], ckpt: dict[str, Any], device: torch.device) -> Any:
    """The task a checkpoint dict holds, in this process (analysis scripts, tests)."""
    ckpt = task_cls.upgrade(ckpt)
    cfg, data = task_cls.prepare(task_cls.config_from_dict(ckpt["config"]), resuming=True)
    return _load(task_cls, ckpt, cfg, data, device, DistInfo())


def _build(task_cls: type[Task], cfg: Any, data: Any, device: torch.device, info: DistInfo) -> Task:
    t: EngineConfig = cfg.train
    precision = resolve_precision(t.precision, device)
    ctx = Context(
        device=device,
        precision=precision,
        dist=info,
        noise=torch.Generator(device=device).manual_seed(t.seed + 1 + 100_003 * info.rank),
        data_rng=torch.Generator().manual_seed(t.seed + 2),
        seed=t.seed,
    )
    torch.manual_seed(t.seed)  # the networks' initial weights: identical on every rank
    try:
        task = task_cls(cfg, data, ctx)
    except (torch.OutOfMemoryError, RuntimeError) as exc:  # the CPU allocator: RuntimeError
        if not isinstance(exc, torch.OutOfMemoryError) and "allocate" not in str(exc):
            raise
        raise SaganError(
            f"not enough {device.type.upper()} memory to build the networks of this config; "
            "lower the widths (--ch and the like) or --z-dim"
        ) from None
    if t.compile:  # the modules (state_dict, parameters) stay as they are; only forward compiles
        for net in task.nets.values():
            net.forward = torch.compile(net.forward)  # type: ignore[method-assign]
    return task


def _wrap_distributed(task: Task, device: torch.device) -> None:
    if not task.ctx.dist.enabled:
        return
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    for key, net in task.nets.items():
        if any(p.requires_grad for p in net.parameters()):
            task.train_nets[key] = DDP(net, device_ids=ids)


def _to_checkpoint(task: Task) -> dict[str, Any]:
    counts = task.updates.read()
    ckpt: dict[str, Any] = {
        "kind": task.kind,
        "version": __version__,
        "config": task.cfg.to_dict(),
        "step": task.step_count,
        "skipped": counts.skipped,
        "scaler_skipped": counts.scaler_skipped,
        "best": task.best,
    }
    for key, net in task.nets.items():
        ckpt[key] = net.state_dict()
    for key, ema in task.emas.items():
        ckpt[f"{key}_ema"] = ema.state_dict()
    ckpt |= task.updates.state_dict()
    ckpt["noise_rng"] = task.ctx.noise.get_state()
    ckpt["data_rng"] = task.ctx.data_rng.get_state()
    ckpt["rng"] = capture_rng_state()
    ckpt |= task.extra_state()
    return ckpt


def _load(
    task_cls: type[Task],
    ckpt: dict[str, Any],
    cfg: Any,
    data: Any,
    device: torch.device,
    info: DistInfo,
) -> Task:
    """Rebuild a task from a checkpoint. In one process every random stream continues exactly;
    with several, each rank starts a noise stream of its own (the checkpoint holds rank 0's)."""
    task = _build(task_cls, cfg, data, device, info)
    try:
        for key, net in task.nets.items():
            net.load_state_dict(ckpt[key])
        for key, ema in task.emas.items():
            ema.load_state_dict(ckpt[f"{key}_ema"])
        task.updates.load_state_dict(ckpt)
        task.load_extra_state(ckpt)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise SaganError(f"checkpoint does not match its own config ({first})") from None
    task.step_count = int(ckpt["step"])
    task.updates.restore_skipped(int(ckpt.get("skipped", 0)), int(ckpt.get("scaler_skipped", 0)))
    task.best = ckpt.get("best")
    if ckpt.get("data_rng") is not None:
        task.ctx.data_rng.set_state(ckpt["data_rng"])
    if info.enabled:
        task.ctx.restart_noise(task.step_count)
        return task
    try:
        task.ctx.noise.set_state(ckpt["noise_rng"])
    except RuntimeError:  # saved on another device type: its generator state does not fit
        task.ctx.restart_noise(task.step_count)
        print("note: resumed on another device; the noise stream restarts", file=sys.stderr)
    restore_rng_state(ckpt["rng"])
    return task


# --- the loop ---------------------------------------------------------------------------------


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the step and stops.

    Only a second SIGINT (a person pressing Ctrl-C again) stops at once. A repeated SIGTERM
    changes nothing: ``timeout`` and job schedulers signal a whole process group, so a worker
    can get one from them and one from its parent, and must still save.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            if signum == signal.SIGINT:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            return
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _improves(
    best: Mapping[str, Any] | None, metric: str, value: float, higher_is_better: bool
) -> bool:
    """Whether ``value`` of ``metric`` replaces ``best`` (``{"metric", "value", "step"}``):
    strictly better, so a tie keeps the earlier step; a best of another metric is replaced."""
    if best is None or best.get("metric") != metric:
        return True
    return value > best["value"] if higher_is_better else value < best["value"]


def _open_run(
    task_cls: type[Task],
    cfg: Any | None,
    *,
    out: Path | None,
    runs_root: Path,
    resume: str | Path | None,
    overrides: Mapping[str, Any],
) -> tuple[Any, Path | None, dict[str, Any] | None]:
    """Decide the run folder and config; load the checkpoint when resuming."""
    if resume is None:
        if cfg is None:
            raise SaganError("give a config for a new run, or resume one")
        if out is not None:
            out = Path(out)
            if out.exists() and not out.is_dir():
                raise SaganError(f"--out {out} is a file; give a folder (new or empty)")
            if out.exists() and any(out.iterdir()):
                if find_checkpoints(out):
                    raise SaganError(
                        f"{out} already holds checkpoints; continue it with --resume {out} or "
                        "choose another --out"
                    )
                raise SaganError(f"{out} is not empty and holds no run; choose another --out")
        return cfg, out, None
    source = find_latest_run(runs_root) if str(resume) == "auto" else resume
    ckpt_path, ckpt = load_source(source, kind=task_cls.kind)
    ckpt = task_cls.upgrade(ckpt)
    return resolve_resume_config(task_cls, ckpt["config"], overrides), ckpt_path.parent, ckpt


def train(
    task_cls: type[Task],
    cfg: Any | None = None,
    *,
    out: str | Path | None = None,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    steps: int | None = None,
) -> Path:
    """Train (or resume) a run of ``task_cls`` and return its folder.

    Args:
        task_cls: the application's :class:`Task`.
        cfg: the run's config (new runs); its data-derived fields are filled by ``prepare``.
        out: the run folder of a new run; None = the next numbered one under ``runs_root``.
        runs_root: where numbered runs live (and where ``resume="auto"`` looks).
        resume: None, ``"auto"`` (newest run under ``runs_root``), a run folder or a checkpoint.
        overrides: on resume, settings given on the command line, ``{section: {key: value}}``.
        progress: show a progress bar (None = when stderr is a terminal).
        steps: on resume, the new total (the same as ``overrides={"train": {"steps": N}}``).

    Under ``torchrun`` every process runs this; rank 0 alone logs, samples and saves.

    Raises:
        RunStopped: a signal stopped the run early (after saving its checkpoint).
    """
    overrides = dict(overrides or {})
    if steps is not None:
        overrides["train"] = {**overrides.get("train", {}), "steps": steps}
    cfg, run_dir, ckpt = _open_run(
        task_cls,
        cfg,
        out=Path(out) if out is not None else None,
        runs_root=Path(runs_root),
        resume=resume,
        overrides=overrides,
    )
    info, device = setup(cfg.train.device)
    try:
        return _train(task_cls, cfg, run_dir, ckpt, Path(runs_root), info, device, progress)
    finally:
        teardown(info)


def _train(
    task_cls: type[Task],
    cfg: Any,
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
    cfg, data = task_cls.prepare(cfg, resuming=ckpt is not None)
    # the networks first: a model that cannot be built fails before anything is written
    if ckpt is None:
        task = _build(task_cls, cfg, data, device, info)
    else:
        task = _load(task_cls, ckpt, cfg, data, device, info)
        del ckpt
    if cfg.train.eval_every and task.step_count < cfg.train.steps:
        task.check_evaluation()  # a typo fails now, before the run folder is made
    if run_dir is not None and task.step_count >= cfg.train.steps:  # nothing to do: the run
        if info.is_main:  # folder, its config.yaml included, stays as it is
            print(
                f"{run_dir}: already at step {task.step_count} of {cfg.train.steps}; raise "
                "--steps to go on"
            )
        return Path(run_dir)
    if info.is_main:
        if run_dir is None:
            run_dir = make_run_dir(runs_root, task_cls.describe(cfg, data))
        run_dir = Path(run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            if remove_stale_temp_files(run_dir):
                print(f"removed the partial file of a checkpoint save cut off in {run_dir}")
            write_yaml(run_dir / "config.yaml", cfg.to_dict())
        except OSError as exc:
            raise SaganError(
                f"cannot write the run folder {run_dir}: {exc.strerror or exc}; choose a "
                "writable --out (or --runs)"
            ) from None
    run_dir = Path(broadcast_object(str(run_dir), info))
    _wrap_distributed(task, device)
    return _Loop(task_cls, task, run_dir, progress).run()


def _all_finite(task: Task) -> bool:
    """True when every parameter of the networks and their EMA copies is finite."""
    flags = [torch.isfinite(p).all() for net in task.all_networks() for p in net.parameters()]
    return bool(torch.stack(flags).all()) if flags else True


class _Loop:
    """The loop over one run; holds what outlives a rollback (the run folder, the stats file,
    the progress bar)."""

    def __init__(self, task_cls: type[Task], task: Task, run_dir: Path, progress: bool | None):
        self.task_cls, self.task, self.run_dir = task_cls, task, run_dir
        self.t: EngineConfig = task.cfg.train
        self.info = task.ctx.dist
        self.stats = StatsWriter(run_dir) if self.info.is_main else None
        self.rollbacks = 0
        self.progress = progress
        self.worst = 0
        """The longest non-finite streak seen since the last rollback (read at logs/saves)."""

    # -- pieces -------------------------------------------------------------------------------

    def sync_buffers(self) -> None:
        for net in self.task.all_networks():
            broadcast_buffers(net, self.info)

    def save(self) -> Path | None:
        task, t = self.task, self.t
        self.sync_buffers()
        counts = task.updates.read()
        if counts.streak:  # mid-streak weights may be diverging: keep the last good one
            print(
                f"step {task.step_count}: inside a non-finite streak; not saving", file=sys.stderr
            )
            self.worst = max(self.worst, counts.worst_streak)
            return None
        if not _all_finite(task):  # the weights are identical on every rank: so is this
            print(f"step {task.step_count}: non-finite weights; not saving", file=sys.stderr)
            self.worst = t.max_bad_steps  # forces a rollback
            return None
        self.worst = max(self.worst, counts.worst_streak)
        path = self.run_dir / checkpoint_name(task.step_count)
        if self.info.is_main:
            save_checkpoint(_to_checkpoint(task), path)
            prune_checkpoints(self.run_dir, t.keep_checkpoints)
        barrier(self.info)  # nobody reads checkpoints (rollback) before rank 0 has written
        return path

    def rollback(self) -> None:
        old, t = self.task, self.t
        if self.rollbacks >= MAX_ROLLBACKS:
            raise SaganError(
                f"training diverged again after {MAX_ROLLBACKS} rollbacks (step "
                f"{old.step_count}); lower the learning rates or use --precision 32, "
                "then --resume"
            )
        try:
            path, ckpt = load_newest_good(self.run_dir, kind=old.kind)
        except SaganError:
            raise SaganError(
                f"training diverged at step {old.step_count} ({t.max_bad_steps} non-finite "
                "iterations in a row) before any checkpoint; lower the learning rates"
            ) from None
        old.close()
        counts = old.updates.read()  # the run's counts go on: those skips did happen
        new = _load(self.task_cls, ckpt, old.cfg, old.data, old.ctx.device, self.info)
        new.updates.restore_skipped(counts.skipped, counts.scaler_skipped)
        _wrap_distributed(new, old.ctx.device)
        self.rollbacks += 1
        # a different noise stream, or the same steps would diverge the same way again
        new.ctx.restart_noise(new.step_count, salt=self.rollbacks)
        print(
            f"step {old.step_count}: {t.max_bad_steps} non-finite iterations in a row; rolled "
            f"back to {path.name} (rollback {self.rollbacks} of {MAX_ROLLBACKS})",
            file=sys.stderr,
        )
        self.task = new
        self.worst = 0
        new.start(self.run_dir if self.info.is_main else None)

    def evaluate(self) -> None:
        task = self.task
        if not self.info.is_main:
            return
        state = capture_rng_state()  # evaluation draws from any stream; training's continue
        devices = [task.ctx.device] if task.ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            result = task.evaluate()
        restore_rng_state(state)
        values = {k: float(v) for k, v in result.values.items()}  # numpy scalars: plain
        assert self.stats is not None
        self.stats.scalars(task.step_count, {f"metric/{k}": v for k, v in values.items()})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        primary = result.primary
        value = values.get(primary, math.nan) if primary is not None else math.nan
        if (
            primary is not None
            and math.isfinite(value)
            and _improves(task.best, primary, value, result.higher_is_better)
        ):
            task.best = {"metric": primary, "value": value, "step": task.step_count}
            save_checkpoint(_to_checkpoint(task), self.run_dir / "best.pt")
            shown += f"; best {primary} so far: saved best.pt"
        tqdm.write(f"step {task.step_count}: {shown}", file=sys.stderr)

    def log(self, out: dict[str, torch.Tensor], extra: dict[str, float], window: float, n: int):
        task = self.task
        counts = task.updates.read()
        self.worst = max(self.worst, counts.worst_streak)
        values = {k: float(v) for k, v in out.items()}  # one sync per logged step
        values |= extra
        values["skipped_updates"] = float(counts.skipped)
        if task.updates.scaling:
            values["scaler_skipped_updates"] = float(counts.scaler_skipped)
        values["it_per_s"] = n / window if window > 0 else 0.0
        values |= task.log_values(values["it_per_s"], window)
        if self.stats is not None:
            self.stats.scalars(task.step_count, values)
        return values

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> Path:
        task, t, info, run_dir = self.task, self.t, self.info, self.run_dir
        samples_dir = run_dir / "samples"
        if info.is_main:
            samples_dir.mkdir(exist_ok=True)
        task.start(run_dir if info.is_main else None)
        bar = tqdm(
            total=t.steps,
            initial=task.step_count,
            desc=run_dir.name,
            disable=(None if self.progress is None else not self.progress)
            if info.is_main
            else True,
            dynamic_ncols=True,
        )
        window_start, window_steps = time.perf_counter(), 0
        pending: dict[str, float] = {}
        try:
            with _StopRequest() as stop:
                while task.step_count < t.steps or self.worst >= t.max_bad_steps:
                    if self.worst >= t.max_bad_steps:
                        self.rollback()
                        task = self.task
                        bar.reset(total=t.steps)
                        bar.update(task.step_count)
                        window_start, window_steps = time.perf_counter(), 0
                        continue
                    out = task.step()
                    task.updates.end_iteration()
                    task.step_count += 1
                    for ema_key, ema in task.emas.items():
                        ema.update(task.nets[ema_key], task.step_count)
                    window_steps += 1
                    step = task.step_count
                    pending |= task.after_step(run_dir if info.is_main else None)
                    if step % t.log_every == 0 or step == t.steps or pending:
                        values = self.log(
                            out, pending, time.perf_counter() - window_start, window_steps
                        )
                        pending = {}
                        bar.set_postfix(task.progress(values), refresh=False)
                        window_start, window_steps = time.perf_counter(), 0
                    bar.update(1)
                    if info.is_main and (step % t.sample_every == 0 or step == t.steps):
                        image = task.sample(samples_dir)
                        if image is not None and self.stats is not None:
                            self.stats.image(step, "samples", image)
                    if t.eval_every and (step % t.eval_every == 0 or step == t.steps):
                        self.evaluate()
                    due = step % t.save_every == 0 or step == t.steps
                    if due and self.save() is None and self.worst >= t.max_bad_steps:
                        continue  # weights went non-finite: roll back before anything else
                    if agree_any(stop.signal is not None, info):  # all ranks stop together
                        path = self.save()
                        bar.close()
                        saved = f"saved {path}" if path else "weights non-finite, nothing saved"
                        print(
                            f"stopped by signal {stop.signal} at step {step}; {saved}; "
                            f"continue with: {task.command} --resume {run_dir}"
                        )
                        raise RunStopped(run_dir, stop.signal or 15, step)  # 15: SIGTERM
        finally:
            bar.close()
            self.task.close()
            if self.stats is not None:
                self.stats.close()
        self.sync_buffers()
        line = self.task.finish()
        if line and info.is_main:
            print(line, file=sys.stderr)
        return run_dir
