"""Run a benchmark's independent runs a few at a time and record each as it finishes."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Record = dict[str, Any]


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
    """
    out: list[Record] = []
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = [pool.submit(fn, *task) for task in tasks]
        for fut in concurrent.futures.as_completed(futures):
            rec = fut.result()
            with open(results, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            out.append(rec)
            print(describe(rec), flush=True)
    return out
