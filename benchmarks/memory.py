"""Peak resident memory of the current process, from /proc (Linux).

``ru_maxrss`` is no good for subprocess measurements: Linux carries it across ``exec`` from the
forked parent's memory, so a child of a big parent reports the parent's peak. ``VmHWM`` belongs
to the process's own address space and can be reset through ``/proc/self/clear_refs``.
"""

from __future__ import annotations

from pathlib import Path


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def reset_peak() -> None:
    """Reset the high-water mark to the current resident set."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mib() -> float:
    """Peak resident memory (VmHWM) since start or the last :func:`reset_peak`, in MiB."""
    return _status_kib("VmHWM") / 1024


def rss_mib() -> float:
    """Current resident memory (VmRSS), in MiB."""
    return _status_kib("VmRSS") / 1024


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for the header of every CPU table."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_one(script: str, *args: object) -> dict[str, float | str]:
    """Run ``script --one ARGS`` in a fresh Python process (so its peak memory is its own) and
    return the JSON object it prints last, or ``{"error": ...}`` with its last stderr line."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, script, "--one", *map(str, args)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"rc {out.returncode}"
        return {"error": last[:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_line(device: str) -> tuple[str, str]:
    """``(header line, memory column kind)`` naming torch, the GPU or the CPU model, the
    threads and any ``ONEDNN_MAX_CPU_ISA`` limit; exits with a message when CUDA is asked for
    and absent."""
    import os

    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA GPU is available here")
        return (
            f"torch {torch.__version__}, {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}",
            "GPU",
        )
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    line = f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_model()}"
    return line + (f", ONEDNN_MAX_CPU_ISA={isa}" if isa else ""), "RSS"
