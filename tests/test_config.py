from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from synface.config import ConfigBase, require
from synface.errors import ConfigError


@dataclass(frozen=True)
class Inner(ConfigBase):
    mode: Literal["none", "fixed", "grid"] = "none"
    phi: float = 1.0
    grid: tuple[float, ...] = (0.0, 0.5, 1.0)

    def validate(self) -> None:
        require(0.0 <= self.phi <= 1.0, "phi", f"{self.phi} is outside [0, 1]")


@dataclass(frozen=True)
class Outer(ConfigBase):
    name: str = "x"
    count: int = 3
    seed: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("count: 5\ninner:\n  mode: grid\n  grid: [0.25, 0.75]\n")
    cfg = Outer.from_yaml(path, overrides=["inner.phi=0.5", "seed=7"])
    assert cfg == Outer(count=5, seed=7, inner=Inner(mode="grid", phi=0.5, grid=(0.25, 0.75)))
    assert Outer.from_dict(cfg.to_dict()) == cfg
    out = tmp_path / "out.yaml"
    cfg.to_yaml(out)
    assert Outer.from_yaml(out) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cout": 1}, "cout: unknown key; did you mean count"),
        ({"count": "3"}, "count: expected an integer"),
        ({"count": True}, "count: expected an integer"),
        ({"inner": {"phi": 1.5}}, "inner.phi: 1.5 is outside [0, 1]"),
        ({"inner": {"mode": "random"}}, "inner.mode: 'random' is not one of"),
        ({"inner": {"grid": 0.5}}, "inner.grid: expected a list"),
    ],
)
def test_bad_values_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Outer.from_dict(data)


def test_bad_override_and_bad_file(tmp_path):
    with pytest.raises(ConfigError, match="inner.phi"):
        Outer().with_overrides(["inner.phi=2"])
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        Outer().with_overrides(["count"])
    with pytest.raises(ConfigError, match="config file not found"):
        Outer.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        Outer.from_yaml(bad)
