"""Run a benchmark's independent runs a few at a time and record each as it finishes."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sagan.config import load_yaml, to_dict
from sagan.errors import SaganError
from sagan.training.checkpoint import checkpoint_step, find_checkpoints

Record = dict[str, Any]

STOP_GRACE_S = 60.0
"""How long a stopped benchmark waits for its workers to save their checkpoints and end,
before it kills them."""


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def read_records(results: Path, steps: int) -> list[Record]:
    """The records in the JSON-lines file ``results`` (none if it does not exist) of runs
    trained to ``steps``. A record of another length stays in the file but does not stand for
    ``steps``: its run is continued to ``steps`` (:func:`train_or_resume`) and gets a record of
    its own."""
    if not results.exists():
        return []
    records = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in records if r.get("steps") == steps]


def run_all(
    fn: Callable[..., Record],
    tasks: Sequence[tuple[Any, ...]],
    jobs: int,
    results: Path,
    describe: Callable[[Record], str],
) -> list[Record]:
    """``fn(*task)`` for every task, ``jobs`` at a time in spawned processes.

    Each record is appended to the JSON-lines file ``results`` as soon as its run ends (so an
    interrupted benchmark keeps what finished) and ``describe(record)`` is printed. Returns the
    records in the order they finished.

    Stopping the benchmark (Ctrl-C, SIGTERM) or a run's error stops the other runs too: each
    worker gets SIGTERM, on which a training run saves its checkpoint and ends, and whatever is
    still alive :data:`STOP_GRACE_S` later is killed. Without this the workers of a killed
    benchmark went on training, unseen, into the folders that the next invocation writes to
    (two processes in one run folder); :func:`train_or_resume` continues the saved runs. A
    run's :class:`~sagan.errors.SaganError` (bad input, such as a folder smaller than a batch)
    ends the benchmark with its one line, not the worker's traceback.
    """
    out: list[Record] = []
    ctx = multiprocessing.get_context("spawn")
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx)
    try:
        futures = [pool.submit(fn, *task) for task in tasks]
        for fut in concurrent.futures.as_completed(futures):
            rec = fut.result()
            with open(results, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            out.append(rec)
            print(describe(rec), flush=True)
    except BaseException as exc:
        pool.shutdown(wait=False, cancel_futures=True)
        workers = ctx.active_children()
        for child in workers:  # a training run saves its checkpoint on SIGTERM
            child.terminate()
        for child in workers:
            child.join(timeout=STOP_GRACE_S)
        for child in workers:  # SIGTERM taken by a run that had ended; or a hung one
            if child.is_alive():
                child.kill()
        if isinstance(exc, SaganError):  # bad input in a run: its one line, as the CLI prints it
            raise SystemExit(f"error: {exc.line}") from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    pool.shutdown()
    return out


def train_or_resume(train: Callable[..., Path], cfg: Any, run_dir: Path) -> None:
    """``train(cfg)`` into ``run_dir`` (with an app's ``train`` function), or, where a run
    with a checkpoint is there (one an interrupted invocation left, or a shorter run copied
    in to be extended), continue it to ``cfg``'s length: its ``steps`` and
    ``keep_checkpoints`` (the rest of the run's settings come from its checkpoint). A folder
    that an interrupted run left without any checkpoint is renamed ``NAME.no-checkpoint-TIME``
    (kept, not deleted) and the run starts afresh. A run trained with other settings, or
    already past ``cfg``'s steps, is refused (:func:`check_same_run`)."""
    if find_checkpoints(run_dir):
        check_same_run(run_dir, cfg)
        print(f"{run_dir}: continuing the run to step {cfg.train.steps}", flush=True)
        length = {"steps": cfg.train.steps, "keep_checkpoints": cfg.train.keep_checkpoints}
        train(resume=str(run_dir), overrides={"train": length}, progress=False)
        return
    if run_dir.is_dir() and any(run_dir.iterdir()):
        aside = run_dir.with_name(f"{run_dir.name}.no-checkpoint-{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.rename(aside)
        print(f"{run_dir}: an interrupted run saved no checkpoint; moved to {aside}", flush=True)
    train(cfg, out=run_dir, progress=False)


CONTINUABLE = frozenset(
    {
        "train.steps",
        "train.keep_checkpoints",
        "train.save_every",
        "train.sample_every",
        "train.log_every",
        "train.device",
    }
)
"""The settings in which a run that :func:`train_or_resume` continues may differ from the
config asked for: its length and when it writes files and log lines (the benchmarks derive
these from ``--steps``), and the device. Every other setting of a continued run comes from its
checkpoint, so a difference there would be trained silently with the old value."""


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_same_run(run_dir: Path, cfg: Any, *, recorded: bool = False) -> None:
    """Refuse, with one line, to continue or reuse the run in ``run_dir`` for ``cfg`` when its
    ``config.yaml`` differs from ``cfg`` in a setting outside :data:`CONTINUABLE` (say a
    benchmark re-run into an old ``--out`` with another ``--lr-g``), or when its newest
    checkpoint is past ``cfg.train.steps`` (unless ``recorded``: the run has a record of that
    length and trains no further, say after it was continued to a larger ``--steps``). A
    setting ``cfg`` leaves to be resolved (None, such as the data's channels) matches any
    value. A folder without config.yaml passes, and so does one without a checkpoint, unless
    ``recorded``: :func:`train_or_resume` moves it aside and trains afresh."""
    ckpts = find_checkpoints(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (ckpts or recorded):
        return
    had, asked = _flat(load_yaml(run_dir / "config.yaml")), _flat(to_dict(cfg))
    differ = [
        f"{key} {had.get(key)!r} there, {asked.get(key)!r} asked"
        for key in sorted(had.keys() | asked.keys())
        # None asks the run to resolve the setting (channels, classes: from the data)
        if key not in CONTINUABLE and asked.get(key) is not None and had.get(key) != asked.get(key)
    ]
    if differ:
        raise SystemExit(
            f"{run_dir} was trained with other settings ({'; '.join(differ)}): give a fresh "
            "--out, or the flags it was trained with"
        )
    step = (checkpoint_step(ckpts[-1]) or 0) if ckpts else 0
    if step > cfg.train.steps and not recorded:
        raise SystemExit(
            f"{run_dir} has trained {step} steps, more than the {cfg.train.steps} asked: give "
            f"--steps {step} or more, or a fresh --out"
        )
