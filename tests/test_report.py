"""`sagan report`: one self-contained HTML page of a run, its edge cases, and a real browser."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_TRAIN_ARGS
from sagan.cli import main
from sagan.errors import SaganError
from sagan.images import report
from sagan.images.report import write_report

SECTIONS = ("Summary", "Losses", "Attention gammas", "Metrics", "Samples", "Attention")
IMG = re.compile(r'<img[^>]*\ssrc="data:image/png;base64,([A-Za-z0-9+/=]+)"')
# two evaluations: the best fd_digits (lower is better) is the earlier one
METRICS = [
    {"step": 2, "metric/fd_digits": 12.75, "metric/is_digits": 1.5},
    {"step": 3, "loss_d": None, "metric/fd_digits": None},
    {"step": 4, "metric/fd_digits": 31.5, "metric/is_digits": 2.25},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step tiny run (samples at 2 and 4, a checkpoint at 4) plus two evaluations."""
    out = tmp_path_factory.mktemp("report") / "00007-tiny"
    argv = ["--steps", "4", "--sample-every", "2", "--save-every", "4", "--log-every", "1"]
    assert main(["train", *TINY_TRAIN_ARGS, *argv, "--out", str(out)]) == 0
    with open(out / "stats.jsonl", "a", encoding="utf-8") as f:
        for record in METRICS:
            f.write(json.dumps(record) + "\n")
    with open(out / "config.yaml", "a", encoding="utf-8") as f:
        f.write("# note: <b>&</b>\n")  # the config block must be escaped
    return out


@pytest.fixture(scope="module")
def page(run: Path) -> str:
    return write_report(run).read_text(encoding="utf-8")


def _images(text: str) -> list[Image.Image]:
    pics = []
    for data in IMG.findall(text):
        pic = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        assert pic.format == "PNG"
        pic.load()
        pics.append(pic)
    return pics


def test_report_content(run: Path, page: str) -> None:
    assert (run / "report.html").is_file()
    assert "<title>Training report: 00007-tiny</title>" in page
    assert "<h1>Training report: 00007-tiny</h1>" in page
    for name in (*SECTIONS, "Configuration"):
        assert f">{name}</h2>" in page
    assert 'class="missing"' not in page  # every part is there
    # loss plot, gamma plot, metric plot, fakes at steps 2 and 4, reals, attention figure
    assert page.count("<img") == 7
    pics = _images(page)
    assert len(pics) == 7 and all(p.width > 50 and p.height > 50 for p in pics)
    assert 'alt="samples at step 2"' in page and 'alt="samples at step 4"' in page
    assert pics[-1].size == (4 * 128, 4 * 128)  # attention: 4 rows x (image + 3 queries)
    # headline numbers: latest and best of each metric, with their steps; nulls skipped
    assert '<th>fd_digits, latest (step 4)</th><td class="num">31.5</td>' in page
    assert '<th>fd_digits, best (step 2)</th><td class="num">12.75</td>' in page
    assert '<th>is_digits, best (step 4)</th><td class="num">2.25</td>' in page
    assert '<th>last logged step</th><td class="num">4</td>' in page
    assert "ckpt-0000004.pt" in page and "best.pt" not in page
    # the config, HTML-escaped
    assert "arch: dcgan" in page
    assert "# note: &lt;b&gt;&amp;&lt;/b&gt;" in page and "<b>&" not in page
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page and "<link" not in page


def test_samples_are_chosen_evenly_with_the_last(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("model:\n  arch: dcgan\n")
    (tmp_path / "best.pt").write_bytes(b"")
    samples = tmp_path / "samples"
    samples.mkdir()
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(png, format="PNG")
    for step in range(100, 1100, 100):
        (samples / f"fakes-{step:07d}.png").write_bytes(png.getvalue())
    text = write_report(tmp_path).read_text()
    shown = [int(s) for s in re.findall(r'alt="samples at step (\d+)"', text)]
    assert shown == [100, 300, 500, 800, 1000]
    assert "best checkpoint (lowest FID, else FD)" in text and "best.pt" in text


def test_run_without_anything_yet(tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "config.yaml").write_text('data:\n  data: "<dir with & in it>"\n')
    out = write_report(run)
    assert out == run / "report.html"
    text = out.read_text()
    for sentence in (
        "No training statistics yet",
        "No losses logged yet.",
        "No attention gammas logged",
        "No evaluation metrics logged yet",
        "No sample grids yet",
        "No grid of real images yet",
        "No checkpoint yet",
    ):
        assert sentence in text
    assert "<img" not in text
    assert "&lt;dir with &amp; in it&gt;" in text
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "report.html"]
    # a later report replaces the page a report wrote; any other file is refused, untouched
    (run / "stats.jsonl").write_text('{"step": 1, "loss_d": 1.0, "loss_g": 1.0}\n')
    assert "No training statistics yet" not in write_report(run).read_text()
    other = run / "ckpt-0000001.pt"
    other.write_bytes(b"PK\x03\x04 a checkpoint")
    with pytest.raises(SaganError, match="is not a page written by sagan report; choose another"):
        write_report(run, other)
    assert other.read_bytes() == b"PK\x03\x04 a checkpoint"
    older = run / "report.html"  # a page of a version before the mark: replaced too
    older.write_text(older.read_text().replace(report._MARK, ""))
    assert report._MARK in write_report(run).read_text()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "is not a run folder (no config.yaml)"),
    ],
)
def test_bad_run_folder(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    with pytest.raises(SaganError) as info:
        write_report(make(tmp_path))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_failed_write_keeps_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.yaml").write_text("model: {}\n")
    old = tmp_path / "report.html"
    old.write_text(f"{report._MARK} previous report")

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report.os, "replace", fail)
    with pytest.raises(SaganError, match=r"cannot write .*report\.html: No space left on device"):
        write_report(tmp_path)
    assert old.read_text() == f"{report._MARK} previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "report.html"]


def test_cli(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "r.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sagan: error: ") and "does not exist" in err
    assert err.count("\n") == 1


# --- a real browser ------------------------------------------------------------------------

# Appended to a test copy of the page (the report itself has no script). After the load event
# (which waits for every image) it writes, for each <img>, its decoded size (naturalWidth is 0
# for an image the browser could not decode: a broken data URI shows only an icon) and its
# place on the page into a <pre id="probe"> that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const out = [...document.images].map((img) => {
    const r = img.getBoundingClientRect();
    return {w: img.naturalWidth, h: img.naturalHeight, x: r.left + scrollX, y: r.top + scrollY,
            rw: r.width, rh: r.height};
  });
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""
WIDTH, HEIGHT = 1200, 3000


def _chromium() -> str:
    """The Chromium binary: skip when absent, but fail under CI (CI=true) where it must be."""
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return exe


def _chromium_run(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
    ]
    result = subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _probe(exe: str, page: str, tmp: Path) -> tuple[list[dict[str, float]], Path]:
    """Load ``page`` with the probe; return per-image sizes and places, and the page file."""
    path = tmp / f"probe-{len(list(tmp.glob('probe-*.html')))}.html"
    path.write_text(page.replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    dom = _chromium_run(exe, tmp, "--dump-dom", path.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: the page never finished loading"
    return json.loads(html.unescape(found.group(1))), path


@pytest.mark.browser
def test_report_renders_in_chromium(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Every image decodes in a real browser, and the screenshot shows them.

    Decoding is checked through ``naturalWidth`` (a broken data URI gives 0 and a small
    broken-image icon); a control copy with one corrupted image shows that this check fails
    when it should. The screenshot check then asks that each image's area on the page is not
    uniform.
    """
    exe = _chromium()
    page: str = request.getfixturevalue("page")  # after the check: no training just to skip
    n = page.count("<img")
    images, path = _probe(exe, page, tmp_path)
    assert len(images) == n == 7
    assert all(img["w"] > 0 and img["h"] > 0 for img in images), images

    broken = re.sub(r"(data:image/png;base64,)[A-Za-z0-9+/=]{64}", r"\1AAAA", page, count=1)
    assert broken != page
    bad, _ = _probe(exe, broken, tmp_path)
    assert [img["w"] > 0 for img in bad] == [False] + [True] * (n - 1)

    shot = tmp_path / "shot.png"
    _chromium_run(exe, tmp_path, f"--screenshot={shot}", path.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert pixels.std() > 20  # a blank page would be ~0
    checked = 0
    for img in images:
        x0, y0 = int(img["x"]), int(img["y"])
        x1, y1 = min(int(img["x"] + img["rw"]), WIDTH), min(int(img["y"] + img["rh"]), HEIGHT)
        if x1 - x0 < 20 or y1 - y0 < 20:
            continue  # below the screenshot
        region = pixels[y0:y1, x0:x1]
        assert region.std() > 10, f"image at ({x0}, {y0}) is uniform on screen"
        assert len(np.unique(region.reshape(-1, 3), axis=0)) > 2
        checked += 1
    assert checked >= 5
