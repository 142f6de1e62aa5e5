"""Layouts: width x depth names, the paper's long-tail groups, totals and validation."""

from __future__ import annotations

import numpy as np
import pytest

from synface.errors import ConfigError
from synface.generate.layout import Layout, LayoutConfig, parse_layout_name


@pytest.mark.parametrize(
    ("name", "identities", "images"),
    [("10K_50", 10_000, 500_000), ("1K_50", 1_000, 50_000), ("10K_2", 10_000, 20_000),
     ("500_3", 500, 1_500), ("1.5k_20", 1_500, 30_000), ("2K_UB1", 2_000, 100_000), ("2K_UB2", 2_000, 100_000)],
)
def test_named_layout_totals(name: str, identities: int, images: int) -> None:
    layout = LayoutConfig(name=name).resolve()
    assert layout.num_identities == identities
    assert layout.num_samples == images


def test_long_tail_presets_follow_eq4() -> None:
    counts = LayoutConfig(name="2K_UB1").resolve().counts
    np.testing.assert_array_equal(counts, np.repeat([2, 2, 6, 40, 200], 400))
    counts = LayoutConfig(name="2K_UB2").resolve().counts
    np.testing.assert_array_equal(counts, np.repeat([4, 16, 30, 80, 120], 400))
    # The paper quotes the standard deviations of the per-identity counts of its two layouts.
    assert np.std(np.repeat([2, 2, 6, 40, 200], 400)) == pytest.approx(76.35, abs=0.01)
    assert np.std(counts) == pytest.approx(43.52, abs=0.01)


def test_explicit_groups_and_declared_totals() -> None:
    config = LayoutConfig(group_identities=(2, 3), group_samples=(4, 1), num_identities=5, num_images=11)
    np.testing.assert_array_equal(config.resolve().counts, [4, 4, 1, 1, 1])


def test_string_becomes_name_in_yaml_and_overrides() -> None:
    assert LayoutConfig.from_dict("2K_UB2").name == "2K_UB2"
    assert LayoutConfig.from_dict({"name": "3_2"}).with_overrides(["name=4K_1"]).resolve().num_samples == 4000
    with pytest.raises(ConfigError, match=r"^name: got the number 41; quote"):
        LayoutConfig.from_dict({"name": "3_2"}).with_overrides(["name=4_1"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"group_identities": (2, -1), "group_samples": (3, 3)}, "group_identities[1]"),
        ({"group_identities": (2,), "group_samples": (0,)}, "group_samples[0]"),
        ({"group_identities": (2, 2), "group_samples": (3,)}, "group_samples"),
        ({}, "name"),
        ({"name": "10K_50", "group_identities": (1,), "group_samples": (1,)}, "name"),
        ({"name": "10K"}, "name"),
        ({"name": "10K_0"}, "name"),
        ({"name": "2K_UB9"}, "name"),
        ({"name": "7_UB1"}, "name"),
        ({"name": "2K_UB1", "num_images": 99_999}, "num_images"),
        ({"group_identities": (400,) * 5, "group_samples": (2, 2, 6, 40, 200), "num_identities": 2001}, "num_identities"),
    ],
)
def test_bad_layouts_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{__import__('re').escape(field)}:"):
        LayoutConfig(**kwargs)


def test_nested_error_carries_the_dotted_path() -> None:
    from dataclasses import dataclass, field

    from synface.config import ConfigBase

    @dataclass(frozen=True)
    class Outer(ConfigBase):
        layout: LayoutConfig = field(default_factory=lambda: LayoutConfig(name="1_1"))

    with pytest.raises(ConfigError, match=r"^layout\.group_samples\[0\]:"):
        Outer.from_dict({"layout": {"group_identities": [1], "group_samples": [-3]}})
    with pytest.raises(ConfigError, match=r"^layout\.name:"):
        Outer.from_dict({"layout": "abc"})


def test_locate_matches_a_slow_enumeration() -> None:
    layout = Layout.from_groups((2, 1, 3), (3, 1, 2))
    expected = [(i, j) for i, count in enumerate(layout.counts) for j in range(count)]
    for start in range(layout.num_samples + 1):
        for stop in range(start, layout.num_samples + 1):
            identity, sample = layout.locate(start, stop)
            assert list(zip(identity.tolist(), sample.tolist())) == expected[start:stop]


def test_parse_returns_groups() -> None:
    assert parse_layout_name("1K_UB1") == ((200,) * 5, (2, 2, 6, 40, 200))
    assert parse_layout_name("10K_50") == ((10_000,), (50,))
