"""The quick start against its targets: wall-clock time of training the default (``--preset
quick``) SAGAN on the built-in digits, then FD-digits, conditional accuracy and coverage of
5,000 samples (``sagan eval``). Targets (issue 15): the whole quick start within 10 minutes on
2 AVX2 cores, accuracy >= 0.90, FD-digits <= 50 (two disjoint halves of the real digits score
3.6 against each other).

The set-up of a fresh clone (``scripts/setup.sh``) is not in these minutes: time the whole
thing with ``time bash scripts/quickstart.sh`` on a fresh clone.

Run by hand; prints one Markdown row per configuration, with the CPU model and the oneDNN ISA
limit. Extra arguments after ``--`` go to ``sagan train`` (to compare settings at the same
budget):

    python benchmarks/quickstart.py
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/quickstart.py       # as on an AVX2-only machine
    python benchmarks/quickstart.py --name paper-lr -- --preset paper --resolution 32 --ch 16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import machine_line

TARGETS = {"accuracy": (">=", 0.90), "fd_digits": ("<=", 50.0), "minutes": ("<=", 10.0)}


def _sagan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagan", *args], capture_output=True, text=True, check=True
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="quick", help="the row's label")
    p.add_argument("--n", type=int, default=5000, help="samples scored")
    p.add_argument("--out", type=Path, help="run folder (default: a temporary one)")
    p.add_argument("train_args", nargs="*", help="after --: more sagan train flags")
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="sagan-quickstart-")) / "run"
    start = time.perf_counter()
    _sagan("train", "--out", str(out), "--no-progress", *args.train_args)
    train_s = time.perf_counter() - start
    scored = _sagan("eval", str(out), "--n", str(args.n), "--json",
                    "--metrics", "fd_digits,accuracy,coverage")  # fmt: skip
    values = json.loads(scored.stdout)
    total_s = time.perf_counter() - start
    values["minutes"] = total_s / 60
    print(machine_line("cpu")[0])
    print(f"n = {args.n}; train {train_s:.0f} s; train + eval {total_s:.0f} s; run {out}\n")
    print("| config | minutes (train + eval) | FD-digits | accuracy | coverage | targets met |")
    print("|---|---|---|---|---|---|")
    met = all(values[k] >= v if op == ">=" else values[k] <= v for k, (op, v) in TARGETS.items())
    cells = [
        f"{values['minutes']:.1f}",
        f"{values['fd_digits']:.1f}",
        f"{values['accuracy']:.3f}",
        f"{values['coverage']:.3f}",
        "yes" if met else "no",
    ]
    print(f"| {args.name} | " + " | ".join(cells) + " |")
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    if isa:
        print(f"\n(oneDNN limited to {isa})")


if __name__ == "__main__":
    main()
