"""Exported generators, load_generator and the attention figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import sagan
from sagan.cli import main
from sagan.errors import SaganError
from sagan.images.attention_figure import attention_figure, last_attention_maps
from sagan.images.config import ModelConfig, RunConfig, TrainConfig
from sagan.images.export import export_generator
from sagan.images.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = RunConfig(
        model=ModelConfig(arch="dcgan", ch=8, z_dim=16, attention=(8, 16)),
        train=TrainConfig(batch_size=8, steps=2, save_every=2, sample_every=2, device="cpu"),
    )
    return train(cfg, out=tmp_path_factory.mktemp("run") / "r", progress=False)


def test_sample_labels_and_range(run_dir: Path) -> None:
    gen = sagan.load_generator(run_dir)
    assert not gen.training
    gen.train()
    assert not gen.training and not gen.net.training  # stays in eval mode
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    x = gen.sample(5, generator=g())
    assert x.shape == (5, 1, 32, 32) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(gen.sample(5, generator=g()), x)  # reproducible
    one = gen.sample(3, labels=7, generator=g())
    per = gen.sample(3, labels=[7, 7, 7], generator=g())
    assert torch.equal(one, per)
    with pytest.raises(SaganError, match="got 2 labels for 3 samples"):
        gen.sample(3, labels=[1, 2])
    with pytest.raises(SaganError, match=r"labels must be in 0\.\.9"):
        gen.sample(2, labels=10)
    with pytest.raises(SaganError, match="n must be >= 1"):
        gen.sample(0)


def test_uses_ema_weights(run_dir: Path) -> None:
    from sagan.training import find_checkpoints, load_checkpoint

    ckpt = load_checkpoint(find_checkpoints(run_dir)[-1], kind="images")
    gen = sagan.load_generator(run_dir)
    for key, value in gen.net.state_dict().items():
        assert torch.equal(value, ckpt["G_ema"][key]), key
    assert any(not torch.equal(ckpt["G"][k], ckpt["G_ema"][k]) for k in ckpt["G"])


def test_export_round_trip_and_bad_exports(run_dir: Path, tmp_path: Path) -> None:
    out = export_generator(run_dir, tmp_path / "exp")
    meta = json.loads((out / "generator.json").read_text())
    assert meta["format"] == "torch-sagan-generator-v1" and meta["model"]["num_classes"] == 10
    a = sagan.load_generator(out).sample(2, generator=torch.Generator().manual_seed(3))
    b = sagan.load_generator(run_dir).sample(2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    again = export_generator(out, tmp_path / "exp2")  # an export is a valid SOURCE too
    assert (again / "generator.safetensors").read_bytes() == (
        out / "generator.safetensors"
    ).read_bytes()
    (out / "generator.safetensors").write_bytes(b"garbage")
    with pytest.raises(SaganError, match="not a safetensors file"):
        sagan.load_generator(out)
    (out / "generator.json").write_text("{")
    with pytest.raises(SaganError, match="not valid JSON"):
        sagan.load_generator(out)


def test_attention_maps_come_from_the_largest_layer(run_dir: Path) -> None:
    gen = sagan.load_generator(run_dir)
    z = torch.randn(2, gen.z_dim)
    images, beta, (h, w), (kh, kw) = last_attention_maps(gen, z, torch.tensor([1, 2]))
    assert (h, w, kh, kw) == (16, 16, 8, 8)  # G has attention at 8 and 16: the figure uses 16
    assert beta.shape == (2, 256, 64)
    torch.testing.assert_close(beta.sum(-1), torch.ones(2, 256))
    assert images.shape == (2, 1, 32, 32)


def test_attention_figure_shows_each_query_points_own_map(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With maps where each query position attends only to the key under it, the overlay of a
    query point near the top-left is hot at the top-left and cold at the bottom-right, and the
    other way round for a point near the bottom-right."""
    import sagan.images.attention_figure as figure

    def own_key_maps(gen, z, y):  # type: ignore[no-untyped-def]
        n = len(z)
        beta = torch.zeros(n, 16 * 16, 8 * 8)  # 16 x 16 queries, 8 x 8 keys
        for q in range(16 * 16):
            beta[:, q, (q // 16 // 2) * 8 + (q % 16) // 2] = 1.0
        return torch.zeros(n, 1, 32, 32), beta, (16, 16), (8, 8)

    monkeypatch.setattr(figure, "last_attention_maps", own_key_maps)
    fig = attention_figure(sagan.load_generator(run_dir), n=1, points=((0.1, 0.1), (0.9, 0.9)))
    size = 128  # 32 px at scale 4
    panels = [fig[:, c * size : (c + 1) * size].astype(int).sum(-1) for c in (1, 2)]
    inner = size // 8, size // 4  # a band inside each corner, clear of the markers
    near = [p[inner[0] : inner[1], inner[0] : inner[1]].mean() for p in panels]
    far = [p[-inner[1] : -inner[0], -inner[1] : -inner[0]].mean() for p in panels]
    assert near[0] > far[0] and far[1] > near[1]


def test_attention_figure_layout_and_errors(run_dir: Path) -> None:
    gen = sagan.load_generator(run_dir)
    fig = attention_figure(gen, n=3, points=((0.1, 0.1), (0.9, 0.9)), scale=3)
    assert fig.shape == (3 * 96, 3 * 96, 3) and fig.dtype.name == "uint8"
    with pytest.raises(SaganError, match="fractions in"):
        attention_figure(gen, points=((1.5, 0.2),))
    plain = RunConfig(
        model=ModelConfig(arch="dcgan", ch=8, z_dim=16, attention=()),
        train=TrainConfig(batch_size=8, steps=1, device="cpu"),
    )
    no_attn = train(plain, out=run_dir.parent / "plain", progress=False)
    with pytest.raises(SaganError, match="no self-attention layer"):
        attention_figure(sagan.load_generator(no_attn))


def test_unwritable_outputs_are_one_line_errors(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sagan.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for argv in (
        ["sample", str(run_dir), "--n", "2", "--out", str(blocker / "grid.png")],
        ["sample", str(run_dir), "--n", "2", "--out", str(blocker / "folder")],
        ["attention", str(run_dir), "--n", "1", "--out", str(blocker / "a.png")],
        ["attention", str(run_dir), "--n", "1", "--out", str(tmp_path / "a.notanimage")],
        ["export", str(run_dir), "--out", str(blocker / "exp")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("sagan: error: cannot write") and err.count("\n") == 1, err


def test_commands_never_overwrite_what_exists(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sample (grid and folder), attention and export refuse a target that exists, with one
    line, before writing anything; the earlier files stay byte for byte."""
    source = ["--device", "cpu"]
    grid, pngs, figure, export = (tmp_path / n for n in ("g.png", "pngs", "a.png", "export"))
    first = [
        ["sample", str(run_dir), "--n", "4", "--out", str(grid), *source],
        ["sample", str(run_dir), "--n", "3", "--out", str(pngs), *source],
        ["attention", str(run_dir), "--n", "1", "--out", str(figure), *source],
        ["export", str(run_dir), "--out", str(export)],
    ]
    for args in first:
        assert main(args) == 0, args
    written = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    capsys.readouterr()
    again = [
        (["sample", str(run_dir), "--n", "4", "--seed", "1", "--out", str(grid), *source],
         "g.png already exists; "),
        (["sample", str(run_dir), "--n", "5", "--out", str(pngs), *source],
         "00000.png already exists (3 of the 5 files to write do); "),
        (["attention", str(run_dir), "--n", "2", "--out", str(figure), *source],
         "a.png already exists; "),
        (["export", str(run_dir), "--out", str(export)],
         "generator.safetensors already exists (2 of the 2 files to write do); "),
    ]  # fmt: skip
    for args, expected in again:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert expected in err and "choose another --out" in err, err
        assert len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == written
    assert main(["sample", str(run_dir), "--labels", "12", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip() == "sagan: error: labels must be in 0..9, got 12"
