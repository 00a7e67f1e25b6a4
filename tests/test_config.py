"""Typed config: defaults < YAML < flags, one-line errors naming the field and allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagan.config import load_yaml, merge
from sagan.errors import SaganError
from sagan.images.config import DataConfig, ModelConfig, RunConfig, TrainConfig


def test_paper_preset_is_the_papers_optimiser_and_quick_is_ours() -> None:
    paper = RunConfig.from_dict({"preset": "paper"}).train
    assert (paper.lr_g, paper.lr_d, paper.beta1, paper.beta2, paper.n_dis, paper.loss) == (
        1e-4, 4e-4, 0.0, 0.9, 1, "hinge"
    )  # fmt: skip
    quick, t = RunConfig.from_dict({}), TrainConfig()
    assert quick.preset == "quick" and quick.train == t  # the quick preset is the field defaults
    assert (t.lr_g, t.lr_d, t.beta1, t.beta2, t.loss) == (4e-4, 4e-4, 0.5, 0.999, "hinge")
    assert (quick.model.arch, quick.model.ch, quick.model.g_spectral_norm) == ("dcgan", 32, False)


def test_runs_from_before_presets_keep_the_defaults_of_their_time() -> None:
    old = RunConfig.from_dict({"preset": "none", "model": {"attention": [16]}})
    assert (old.model.arch, old.model.ch, old.model.g_spectral_norm) == ("resnet", 16, True)
    t = old.train
    got = (t.batch_size, t.steps, t.lr_g, t.lr_d, t.beta1, t.beta2)
    assert got == (32, 1500, 1e-4, 4e-4, 0, 0.9)


def test_yaml_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "model:\n  arch: dcgan\n  attention: [8, 16]\ntrain:\n  lr_g: 2.0e-4\n  steps: 7\n"
    )
    cfg = RunConfig.from_dict(merge(load_yaml(f), {"train": {"steps": 9}}))
    assert cfg.model.arch == "dcgan"
    assert cfg.model.attention == (8, 16)
    assert cfg.train.lr_g == 2e-4
    assert cfg.train.steps == 9  # the flag wins


def test_round_trip_through_dict() -> None:
    cfg = RunConfig(model=ModelConfig(arch="resnet", attention=(8, 32), channels=1, num_classes=10))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"train": {"lr_g": -1}}, r"train.lr_g: -1.0 is not allowed; it must be > 0"),
        ({"train": {"batch_size": 0}}, r"train.batch_size: 0 is not allowed"),
        ({"train": {"loss": "wgan"}}, r"train.loss: 'wgan' is not allowed; use one of: hinge"),
        ({"train": {"device": "tpu"}}, r"train.device: 'tpu' is not allowed"),
        ({"train": {"beta2": 1.5}}, r"train.beta2: 1.5 is out of range"),
        ({"train": {"steps": "many"}}, r"train.steps: expected an integer, got 'many'"),
        ({"train": {"steps": 2.5}}, r"train.steps: expected an integer"),
        (
            {"model": {"arch": "vit"}},
            r"model.arch: 'vit' is not allowed; use one of: resnet, dcgan",
        ),
        ({"model": {"resolution": 48}}, r"model.resolution \(arch dcgan\): 48 is not allowed"),
        ({"model": {"attention": [16, 16]}}, r"lists a resolution twice"),
        ({"model": {"colour": 1}}, r"unknown setting 'model.colour'; known settings of model"),
        ({"modle": {}}, r"unknown setting 'modle'"),
        ({"data": {"num_workers": -2}}, r"data.num_workers: -2 is not allowed"),
        ({"data": {"conditional": "maybe"}}, r"data.conditional: expected true or false"),
        ({"model": "big"}, r"model: expected a mapping"),
    ],
)
def test_bad_values_give_one_line_errors(data: dict, pattern: str) -> None:
    with pytest.raises(SaganError, match=pattern) as info:
        RunConfig.from_dict(data)
    assert "\n" not in str(info.value)


def test_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(SaganError, match="cannot read config file"):
        load_yaml(tmp_path / "missing.yaml")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"# r\xe9glages\nmodel:\n  ch: 8\n")
    with pytest.raises(SaganError, match="is not UTF-8 text; save it as UTF-8"):
        load_yaml(latin1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")  # left open: the parser's mark is past the last line
    with pytest.raises(SaganError, match=r"not valid YAML at the end of the file; correct"):
        load_yaml(bad)
    bad.write_text("a: 1\nb: : 2\nc: 3\n")
    with pytest.raises(SaganError, match=r"not valid YAML at line 2; correct it there"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(SaganError, match="must hold a mapping"):
        load_yaml(listy)


def test_data_config_rejects_empty_name() -> None:
    with pytest.raises(SaganError, match=r"data\.data: empty"):
        DataConfig(data="")


def test_preset_none_at_the_quick_size_differs_from_quick_only_in_sn_and_ttur() -> None:
    """benchmarks/ablation.py documents ``--preset none --arch dcgan --ch 32 --batch-size 64``
    as the quick preset with the paper's spectral norm in G and TTUR: nothing else may differ."""
    size = {"model": {"arch": "dcgan", "ch": 32}, "train": {"batch_size": 64}}
    none = RunConfig.from_dict({"preset": "none", **size}).to_dict()
    quick = RunConfig.from_dict({"preset": "quick"}).to_dict()
    differ = {
        (section, key)
        for section in ("model", "data", "train")
        for key in quick[section]
        if quick[section][key] != none[section][key]
    }
    assert differ == {
        ("model", "g_spectral_norm"),
        ("train", "lr_g"),  # lr_d: 4e-4 in both
        ("train", "beta1"),
        ("train", "beta2"),
        ("train", "steps"),  # the script sets --steps for every arm
    }
    assert none["model"]["g_spectral_norm"] and (none["train"]["lr_g"], none["train"]["lr_d"]) == (
        1e-4,
        4e-4,
    )
