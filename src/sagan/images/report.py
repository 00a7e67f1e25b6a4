"""One self-contained HTML page of a training run: numbers, curves, samples, attention, config.

Every image is embedded as a ``data:image/png`` URI and there is no external CSS or script, so
the page can be mailed or archived on its own. matplotlib is imported only when a report is
written (and only its Agg canvas is used: no pyplot, no global state).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sagan import __version__
from sagan.errors import SaganError

if TYPE_CHECKING:
    import torch

__all__ = ["write_report"]

MAX_SAMPLE_POINTS = 5
"""How many points of training the sample section shows (the last one always among them)."""

_FAKES = re.compile(r"^fakes-(\d+)\.png$")
_LOWER_IS_BETTER = ("fd", "fid", "kid")  # metric name prefixes; every other metric: higher

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; } td, th { padding: .25em .8em; border: 1px solid #ddd;
       text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } img.pixels { image-rendering: pixelated; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figcaption { text-align: center; color: #555; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
p.missing { color: #777; font-style: italic; }
"""


def read_series(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``stats.jsonl`` as ``{key: (steps, values)}``; nulls, bad lines and non-numbers skipped."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise SaganError(f"cannot read {path}: {exc.strerror or exc}") from None
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # e.g. a line being written while we read
            continue
        if not isinstance(record, dict):
            continue
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            continue
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                steps, values = out.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    return out


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _lower_is_better(metric: str) -> bool:
    return metric.lower().startswith(_LOWER_IS_BETTER)


def _best(metric: str, steps: list[int], values: list[float]) -> tuple[float, int]:
    """The best value of a metric and its (first) step."""
    pick = min if _lower_is_better(metric) else max
    i = pick(range(len(values)), key=lambda k: values[k])
    return values[i], steps[i]


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(data: bytes, alt: str, css_class: str = "") -> str:
    cls = f' class="{css_class}"' if css_class else ""
    return f'<img{cls} src="{_png_uri(data)}" alt="{html.escape(alt)}">'


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


def _figure(rows: int = 1, cols: int = 1, *, width: float = 10.0, height: float = 3.2) -> Any:
    """A matplotlib Figure on an Agg canvas (no pyplot), and its axes as a flat list."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _smooth(values: list[float]) -> tuple[np.ndarray, int]:
    """A light centred moving average (window ~ 1/25 of the curve, odd, at most 51)."""
    window = min(51, len(values) // 25) | 1
    if window < 3:
        return np.asarray(values), 1
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid"), window


def _loss_plot(series: dict[str, tuple[list[int], list[float]]]) -> bytes | None:
    keys = [k for k in ("loss_d", "loss_g") if k in series]
    if not keys:
        return None
    fig, axes = _figure(1, len(keys), height=3.4)
    for ax, key, colour in zip(axes, keys, ("tab:blue", "tab:orange"), strict=False):
        steps, values = series[key]
        smooth, window = _smooth(values)
        if window > 1:
            ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8, label="raw")
            half = window // 2
            ax.plot(
                steps[half : len(steps) - half],
                smooth,
                color=colour,
                linewidth=1.6,
                label=f"moving average ({window})",
            )
            ax.legend(loc="upper right", fontsize="small")
        else:
            marker = "." if len(steps) < 30 else ""
            ax.plot(steps, values, color=colour, linewidth=1.2, marker=marker)
        ax.set_title("D loss" if key == "loss_d" else "G loss")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    return _png(fig)


def _gamma_plot(series: dict[str, tuple[list[int], list[float]]]) -> bytes | None:
    keys = sorted(k for k in series if k.startswith("gamma/"))
    if not keys:
        return None
    fig, (ax,) = _figure(1, 1, height=3.4)
    for key in keys:
        steps, values = series[key]
        ax.plot(steps, values, linewidth=1.2, label=key.removeprefix("gamma/"))
    ax.axhline(0, color="#888", linewidth=0.6)
    ax.set_title("gamma of each attention layer (G/D: generator/discriminator; feature px)")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return _png(fig)


def _metric_plot(series: dict[str, tuple[list[int], list[float]]], metrics: list[str]) -> bytes:
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = _figure(rows, cols, height=3.0)
    for ax, key in zip(axes, metrics, strict=False):
        name = key.removeprefix("metric/")
        steps, values = series[key]
        best, best_step = _best(name, steps, values)
        ax.plot(steps, values, marker="o", markersize=3, linewidth=1.2)
        ax.plot([best_step], [best], marker="*", markersize=12, color="tab:red", linestyle="")
        arrow = "lower" if _lower_is_better(name) else "higher"
        ax.set_title(f"{name} ({arrow} is better)")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    return _png(fig)


def _summary(
    run_dir: Path, series: dict[str, tuple[list[int], list[float]]], metrics: list[str]
) -> str:
    from sagan.training import find_checkpoints

    rows: list[tuple[str, str]] = []
    steps = [s for st, _ in series.values() for s in st]
    if steps:
        rows.append(("last logged step", str(max(steps))))
    for key, label in (
        ("loss_d", "D loss"),
        ("loss_g", "G loss"),
        ("img_per_s", "real images / s"),
    ):
        if key in series:
            st, vals = series[key]
            rows.append((f"last {label} (step {st[-1]})", _fmt(vals[-1])))
    for key in metrics:
        name = key.removeprefix("metric/")
        st, vals = series[key]
        best, best_step = _best(name, st, vals)
        rows.append((f"{name}, latest (step {st[-1]})", _fmt(vals[-1])))
        rows.append((f"{name}, best (step {best_step})", _fmt(best)))
    ckpts = find_checkpoints(run_dir)
    rows.append(("latest checkpoint", ckpts[-1].name if ckpts else "none yet"))
    if (run_dir / "best.pt").is_file():
        rows.append(("best checkpoint (lowest FID, else FD)", "best.pt"))
    body = "".join(
        f'<tr><th>{html.escape(k)}</th><td class="num">{html.escape(v)}</td></tr>' for k, v in rows
    )
    text = f"<table>{body}</table>"
    if not series:
        text = _missing("No training statistics yet (stats.jsonl is missing or empty).") + text
    return text


def _samples(run_dir: Path) -> str:
    folder = run_dir / "samples"
    fakes: list[tuple[int, Path]] = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _FAKES.match(p.name)
            if m and p.is_file():
                fakes.append((int(m.group(1)), p))
    fakes.sort()
    parts = []
    if fakes:
        picks = np.linspace(0, len(fakes) - 1, min(MAX_SAMPLE_POINTS, len(fakes)))
        for i in sorted({round(float(k)) for k in picks}):
            step, path = fakes[i]
            parts.append(
                f"<figure>{_img(path.read_bytes(), f'samples at step {step}', 'pixels')}"
                f"<figcaption>step {step}</figcaption></figure>"
            )
    else:
        parts.append(_missing("No sample grids yet (samples/fakes-*.png)."))
    reals = folder / "reals.png"
    if reals.is_file():
        parts.append(
            f"<figure>{_img(reals.read_bytes(), 'real images', 'pixels')}"
            "<figcaption>real images</figcaption></figure>"
        )
    else:
        parts.append(_missing("No grid of real images yet (samples/reals.png)."))
    return "\n".join(parts)


def _attention(run_dir: Path, device: str | torch.device) -> str:
    from PIL import Image

    from sagan.images.attention_figure import DEFAULT_POINTS, attention_figure
    from sagan.images.export import load_generator
    from sagan.nn import SelfAttention2d
    from sagan.training import find_checkpoints

    if not find_checkpoints(run_dir):
        return _missing("No checkpoint yet (ckpt-*.pt), so no attention figure.")
    try:
        gen = load_generator(run_dir, device=device)
    except SaganError as exc:
        return _missing(f"The generator could not be loaded: {exc}")
    if not any(isinstance(m, SelfAttention2d) for m in gen.net.modules()):
        return _missing("This generator has no self-attention layer, so no attention figure.")
    try:
        array = attention_figure(gen, n=4, points=DEFAULT_POINTS, seed=0, scale=4)
    except SaganError as exc:
        return _missing(f"The attention figure could not be drawn: {exc}")
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    caption = (
        f"generator at step {gen.step}: each row is a generated image with its query points, "
        "then where each query attends in G's highest-resolution attention layer"
    )
    return (
        f"<figure>{_img(buf.getvalue(), 'attention maps')}"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _page(run_dir: Path, device: str | torch.device) -> str:
    series = read_series(run_dir / "stats.jsonl")
    metrics = sorted(k for k in series if k.startswith("metric/"))
    config = (run_dir / "config.yaml").read_text(encoding="utf-8")
    title = f"Training report: {run_dir.name}"
    sections = [("summary", "Summary", _summary(run_dir, series, metrics))]

    losses = _loss_plot(series)
    sections.append(
        (
            "losses",
            "Losses",
            _img(losses, "D and G loss curves") if losses else _missing("No losses logged yet."),
        )
    )
    gammas = _gamma_plot(series)
    sections.append(
        (
            "gammas",
            "Attention gammas",
            _img(gammas, "attention gamma curves")
            if gammas
            else _missing("No attention gammas logged (no stats yet, or no attention layers)."),
        )
    )
    sections.append(
        (
            "metrics",
            "Metrics",
            _img(_metric_plot(series, metrics), "metric curves")
            if metrics
            else _missing("No evaluation metrics logged yet (no metric/* entries in stats.jsonl)."),
        )
    )
    sections.append(("samples", "Samples", _samples(run_dir)))
    sections.append(("attention", "Attention", _attention(run_dir, device)))
    sections.append(("config", "Configuration", f"<pre>{html.escape(config)}</pre>"))

    body = "\n".join(f'<h2 id="{sid}">{name}</h2>\n{content}' for sid, name, content in sections)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n{_MARK}\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"<p>Run folder: <code>{html.escape(str(run_dir))}</code></p>\n{body}\n"
        f"<p><small>torch-sagan {html.escape(__version__)}</small></p>\n</body>\n</html>\n"
    )


_MARK = '<meta name="generator" content="torch-sagan report">'
"""Marks a page this module wrote: only such a page is replaced by a later report."""


def _is_report(path: Path) -> bool:
    """Whether ``path`` is a page a report wrote: the mark, or (reports before the mark) the
    footer line at its end."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            f.seek(max(0, path.stat().st_size - 256))
            tail = f.read()
    except OSError:
        return False
    old = head.startswith(b"<!DOCTYPE html>") and b"<p><small>torch-sagan " in tail
    return _MARK.encode() in head or old


def write_report(
    run_dir: str | Path, out: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> Path:
    """Write one self-contained HTML page about the training run in ``run_dir``.

    The page holds a table of headline numbers (last step and losses, latest and best value of
    each ``metric/*`` series), loss, attention-gamma and metric curves, sample grids at up to
    five points of training plus the real images, the attention figure of the newest
    checkpoint and the resolved config. Parts the run does not have yet are replaced by a
    sentence. The file is written atomically (temporary file, then rename). An existing
    ``out`` is replaced only if it is a page a report wrote (a later report of the run);
    any other file is refused.

    Args:
        run_dir: a run folder written by ``sagan train`` (it must hold ``config.yaml``).
        out: the HTML file to write; default ``run_dir/report.html``.
        device: where to run the generator for the attention figure.

    Returns:
        The path of the written page.

    Raises:
        SaganError: ``run_dir`` is not a run folder, or the page cannot be written.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise SaganError(f"{run_dir} does not exist; give a run folder written by sagan train")
    if not run_dir.is_dir():
        raise SaganError(f"{run_dir} is not a folder; give a run folder written by sagan train")
    if not (run_dir / "config.yaml").is_file():
        raise SaganError(
            f"{run_dir} is not a run folder (no config.yaml); give a folder written by sagan train"
        )
    out = Path(out) if out is not None else run_dir / "report.html"
    if out.exists() and not _is_report(out):
        raise SaganError(
            f"{out} exists and is not a page written by sagan report; choose another --out"
        )
    page = _page(run_dir.resolve(), device)
    tmp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SaganError(
            f"cannot write {out}: {exc.strerror or exc}; choose another --out (a writable "
            "place with free space)"
        ) from None
    return out
