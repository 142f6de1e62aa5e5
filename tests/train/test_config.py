"""Run configs: YAML + overrides, early one-line errors, bundled examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from synface.errors import ConfigError
from synface.train import RunConfig, bundled_configs, load_run_config
from synface.train.checkpoints import config_differences


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_yaml_overrides_and_round_trip(tmp_path: Path) -> None:
    source = _write(tmp_path / "run.yaml", "data: {kind: random}\nmodel: {name: iresnet_tiny}\n")
    cfg = load_run_config(source, ["train.epochs=3", "head.m=0.4", "data.batch_size=64"])
    assert (cfg.train.epochs, cfg.head.m, cfg.data.batch_size) == (3, 0.4, 64)
    saved = cfg.to_yaml(tmp_path / "resolved.yaml")
    assert RunConfig.from_yaml(tmp_path / "resolved.yaml") == cfg
    assert "epochs: 3" in saved


@pytest.mark.parametrize(("override", "message"), [
    ("model.name=lresnet50", "model.name: unknown model 'lresnet50'; did you mean 'lresnet50e_ir'"),
    ("head.name=arcfce", "head.name: unknown head 'arcfce'"),
    ("train.precision=fp8", "train.precision: 'fp8' is not one of"),
    ("train.milestones=[0.9,0.6]", "train.milestones: [0.9, 0.6] must be strictly increasing"),
    ("train.lr=0", "train.lr: 0.0 must be positive"),
    ("train.epochs_=3", "train.epochs_: unknown key; did you mean epochs"),
    ("validation.rules=[cosine]", "validation.rules: unknown verification rule 'cosine'"),
    ("validation.protocol=lfw2", "validation.protocol: unknown 'lfw2'"),
])
def test_bad_settings_fail_early_in_one_line(tmp_path: Path, override: str, message: str) -> None:
    source = _write(tmp_path / "run.yaml", "data: {kind: random}\n")
    with pytest.raises(ConfigError) as error:
        load_run_config(source, [override])
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_missing_data_and_conflicts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^data: missing"):
        load_run_config(_write(tmp_path / "a.yaml", "model: {name: iresnet_tiny}\n"))
    with pytest.raises(ConfigError, match="data.channels_last: set train.channels_last"):
        RunConfig.from_dict({"data": {"kind": "random", "channels_last": True}})
    with pytest.raises(ConfigError, match="model.kwargs.input_size"):
        RunConfig.from_dict({"data": {"kind": "random"}, "model": {"kwargs": {"input_size": [112, 112]}}})
    with pytest.raises(ConfigError, match="no such config file or bundled config"):
        load_run_config("no_such_config")


def test_model_kwargs_take_the_data_image_size() -> None:
    cfg = RunConfig.from_dict({"data": {"kind": "random", "image_size": [64, 48]},
                               "model": {"name": "iresnet_tiny", "num_features": 8, "kwargs": {"width": 0.5}}})
    assert cfg.model_kwargs() == {"num_features": 8, "width": 0.5, "input_size": [64, 48]}
    assert cfg.data_config().channels_last is False
    assert cfg.replace(train=cfg.train.replace(channels_last=True)).data_config().channels_last is True


def test_bundled_configs_load() -> None:
    names = bundled_configs()
    assert {"tiny_cpu", "syn10k_lresnet50"} <= set(names)
    for name in names:
        assert isinstance(load_run_config(name), RunConfig)
    paper = load_run_config("syn10k_lresnet50")
    assert (paper.train.lr, paper.train.momentum, paper.train.weight_decay) == (0.1, 0.9, 5e-4)
    assert (paper.head.name, paper.head.s, paper.head.m, paper.model.name) == ("arcface", 30.0, 0.5, "lresnet50e_ir")


def test_config_differences_ignore_only_harmless_fields() -> None:
    base = RunConfig.from_dict({"data": {"kind": "random"}})
    harmless = base.with_overrides(["train.output_dir=elsewhere", "train.log_interval=7", "data.workers=1",
                                    "validation.every=3", "train.device=cuda"])
    assert config_differences(base.to_dict(), harmless.to_dict()) == []
    changed = base.with_overrides(["data.batch_size=64", "model.num_features=128", "train.epochs=20"])
    differences = config_differences(base.to_dict(), changed.to_dict())
    assert [item.split(" ")[0] for item in differences] == ["data.batch_size", "model.num_features", "train.epochs"]
