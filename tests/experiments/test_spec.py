"""Presets, suite YAMLs, overrides and the errors bad input gets before any work starts."""

from __future__ import annotations

import pytest

from synface.errors import ConfigError
from synface.experiments import figures  # also registers the figure builders
from synface.experiments.spec import (
    PRESET_NAMES,
    list_suites,
    load_preset,
    load_suite,
    split_overrides,
)
from synface.experiments.suites import (
    BUILDERS,
    Table1Settings,
    Table2Settings,
    Table3Settings,
    settings_of,
)

SETTINGS = {"table1": Table1Settings, "table2": Table2Settings, "table3": Table3Settings,
            "fig3": figures.Fig3Settings, "fig5": figures.Fig5Settings, "fig6": figures.VariantSettings,
            "fig7": figures.VariantSettings}


def test_every_paper_suite_is_bundled() -> None:
    assert list_suites() == sorted(SETTINGS)
    assert set(SETTINGS) <= set(BUILDERS)


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("suite", sorted(SETTINGS))
def test_suite_settings_parse_for_every_preset(suite: str, preset: str) -> None:
    spec = load_suite(suite, preset)
    settings = settings_of(spec, SETTINGS[suite])
    assert spec.title and spec.description and spec.published
    if suite == "table3":
        assert len(settings.layouts) == 9 and settings.labels[0] == "(a)" and settings.paper_layouts[-1] == "10K_50"


def test_presets_scale_up() -> None:
    tiny, paper = load_preset("tiny"), load_preset("paper")
    assert tiny.model.name == "iresnet_tiny" and tiny.train.epochs == 1
    assert paper.model.name == "lresnet50e_ir" and paper.train.epochs == 40 and paper.train.batch_size == 512
    assert paper.train.lr == 0.1 and paper.train.s == 30.0 and paper.train.m == 0.5
    assert tiny.generate.seed != tiny.synlfw.seed  # test identities never overlap training ones
    assert tiny.evaluation.rules[0] == "synface"


def test_overrides_are_typed_and_checked() -> None:
    preset = load_preset("tiny", ["train.epochs=3", "launcher.nproc_per_node=2", "train.batch_size=8"])
    assert preset.train.epochs == 3 and preset.launcher.nproc_per_node == 2
    with pytest.raises(ConfigError, match="train.epochs"):
        load_preset("tiny", ["train.epochs=three"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_preset("tiny", ["train.epoch=3"])


def test_contradictory_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="not divisible"):
        load_preset("paper", ["launcher.nproc_per_node=3"])
    with pytest.raises(ConfigError, match="train_samples"):
        load_preset("tiny", ["real.train_samples=0"])
    with pytest.raises(ConfigError, match="syn_pairs"):
        load_preset("tiny", ["evaluation.syn_pairs=7"])
    with pytest.raises(ConfigError, match="layouts"):
        settings_of(load_suite("table3", "tiny", ["layouts=[4_4]"]), Table3Settings)


def test_unknown_names_get_one_clear_line() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'huge'; valid presets: tiny, small, paper"):
        load_preset("huge")
    with pytest.raises(ConfigError, match="unknown suite 'table4'.*did you mean"):
        load_suite("table4", "tiny")
    with pytest.raises(ConfigError, match="unknown setting 'nope'"):
        load_suite("table1", "tiny", ["nope=1"])


def test_split_overrides() -> None:
    preset, suite = split_overrides(["train.epochs=2", "suite.tests=all"])
    assert preset == ["train.epochs=2"] and suite == ["tests=all"]
    with pytest.raises(ConfigError, match="expected key=value"):
        split_overrides(["=3"])
