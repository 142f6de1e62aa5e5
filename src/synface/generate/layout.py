"""Dataset layouts: how many identities a generated dataset has and how many samples each gets.

A layout is the paper's width x depth ``N_S`` (``"10K_50"``: 10,000 identities with
50 samples each) or a long-tailed group layout (paper Eq. 4): groups of identities,
each group with its own number of samples per identity. ``"2K_UB1"`` is five groups
of 400 identities with ``[2, 2, 6, 40, 200]`` samples, ``"2K_UB2"`` the same with
``[4, 16, 30, 80, 120]``. Samples are ordered by identity, then sample index; a
global sample number maps back to ``(identity, sample index)`` through the
cumulative counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from synface.config import ConfigBase, require
from synface.errors import ConfigError

# Samples per identity of the five groups of the paper's unbalanced layouts (Sec. 4.3).
LONG_TAIL_PRESETS: dict[str, tuple[int, ...]] = {
    "UB1": (2, 2, 6, 40, 200),
    "UB2": (4, 16, 30, 80, 120),
}
_MULTIPLIERS = {"": 1, "K": 1_000, "M": 1_000_000}
_WIDTH_DEPTH = re.compile(r"^(\d+(?:\.\d+)?)([KM]?)_(\d+)$", re.IGNORECASE)
_LONG_TAIL = re.compile(r"^(\d+(?:\.\d+)?)([KM]?)_(UB\d+)$", re.IGNORECASE)
_NAME_HELP = "expected N_S like '10K_50' or '2K_UB1'/'2K_UB2'"


@dataclass(frozen=True)
class LayoutConfig(ConfigBase):
    """Identities and samples per identity, by name or as explicit groups.

    Give either ``name`` (``"10K_50"``, ``"2K_UB1"``) or both group lists. The
    optional declared totals are checked against the counts, so a mistyped
    long-tail list is caught instead of silently changing the dataset size.
    A plain string in YAML or an override (``layout=2K_UB1``) sets ``name``.

    Attributes:
        name: a named layout; empty when the groups are given explicitly.
        group_identities: identities in each group (``ID`` in Eq. 4).
        group_samples: samples per identity in each group (``N`` in Eq. 4).
        num_identities: declared total identities, or None to skip the check.
        num_images: declared total images, or None to skip the check.
    """

    name: str = ""
    group_identities: tuple[int, ...] = ()
    group_samples: tuple[int, ...] = ()
    num_identities: int | None = None
    num_images: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str | None, where: str = "") -> LayoutConfig:  # type: ignore[override]
        """Build from a mapping, or from a bare layout name such as ``"10K_50"``."""
        if isinstance(data, (str, int)) and not isinstance(data, bool):
            data = {"name": data}
        name = data.get("name") if isinstance(data, Mapping) else None
        if isinstance(name, int) and not isinstance(name, bool):
            # YAML reads an unquoted 500_3 as the integer 5003.
            path = f"{where}.name" if where else "name"
            raise ConfigError(f"{path}: got the number {name}; quote the layout name (e.g. '500_3'), "
                              "YAML reads digits_digits as one number")
        return super().from_dict(data, where=where)

    def validate(self) -> None:
        has_groups = bool(self.group_identities or self.group_samples)
        require(bool(self.name) != has_groups, "name",
                "give either a layout name or group_identities + group_samples, not both or neither")
        if self.name:
            groups = parse_layout_name(self.name)
        else:
            groups = (self.group_identities, self.group_samples)
            require(len(self.group_identities) == len(self.group_samples), "group_samples",
                    f"has {len(self.group_samples)} groups but group_identities has {len(self.group_identities)}")
        for field, values in zip(("group_identities", "group_samples"), groups):
            for index, value in enumerate(values):
                require(value > 0, f"{field}[{index}]", f"{value} must be a positive count")
        layout = Layout.from_groups(*groups)
        if self.num_identities is not None:
            require(self.num_identities == layout.num_identities, "num_identities",
                    f"declared {self.num_identities} but the groups hold {layout.num_identities} identities")
        if self.num_images is not None:
            require(self.num_images == layout.num_samples, "num_images",
                    f"declared {self.num_images} but the groups hold {layout.num_samples} images")

    def resolve(self) -> Layout:
        """The concrete per-identity sample counts."""
        groups = parse_layout_name(self.name) if self.name else (self.group_identities, self.group_samples)
        return Layout.from_groups(*groups)


@dataclass(frozen=True)
class Layout:
    """Per-identity sample counts of one dataset.

    Attributes:
        counts: (N,) int64 samples of each identity, in identity order.
    """

    counts: np.ndarray

    @classmethod
    def from_groups(cls, group_identities: tuple[int, ...], group_samples: tuple[int, ...]) -> Layout:
        """Expand groups (``ID``, ``N`` of Eq. 4) into per-identity counts."""
        counts = np.repeat(np.asarray(group_samples, dtype=np.int64), np.asarray(group_identities, dtype=np.int64))
        return cls(counts)

    @property
    def num_identities(self) -> int:
        return int(self.counts.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.counts.sum())

    @property
    def offsets(self) -> np.ndarray:
        """(N + 1,) global number of each identity's first sample, then the total."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def locate(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Identity and sample index of global samples ``start .. stop - 1``.

        Returns:
            (identity (n,) int64, sample_index (n,) int64).
        """
        assert 0 <= start <= stop <= self.num_samples, (start, stop)
        return self.locate_positions(np.arange(start, stop, dtype=np.int64))

    def locate_positions(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Identity and sample index of arbitrary global sample numbers (n,)."""
        positions = np.asarray(positions, dtype=np.int64)
        offsets = self.offsets
        identity = np.searchsorted(offsets, positions, side="right") - 1
        return identity.astype(np.int64), positions - offsets[identity]


def parse_layout_name(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Groups ``(identities per group, samples per identity)`` of a named layout.

    Args:
        name: ``"N_S"`` (``"10K_50"``, ``"500_2"``, ``"1.5K_20"``) or a long-tail
            preset ``"NK_UB1"`` / ``"NK_UB2"`` (five equal groups of ``N / 5`` identities).

    Raises:
        ConfigError: the name is malformed or an unknown preset.
    """
    text = name.strip()
    match = _WIDTH_DEPTH.match(text)
    if match:
        width, depth = _count(match.group(1), match.group(2), name), int(match.group(3))
        if depth <= 0:
            raise ConfigError(f"name: {name!r} has {depth} samples per identity; it must be positive")
        return (width,), (depth,)
    match = _LONG_TAIL.match(text)
    if not match:
        raise ConfigError(f"name: {name!r} is not a layout; {_NAME_HELP}")
    preset = match.group(3).upper()
    if preset not in LONG_TAIL_PRESETS:
        raise ConfigError(f"name: unknown long-tail preset {preset!r} in {name!r}; "
                          f"valid: {', '.join(LONG_TAIL_PRESETS)}")
    samples = LONG_TAIL_PRESETS[preset]
    width = _count(match.group(1), match.group(2), name)
    if width % len(samples):
        raise ConfigError(f"name: {name!r} has {width} identities, not divisible into "
                          f"{len(samples)} equal groups")
    return (width // len(samples),) * len(samples), samples


def _count(number: str, suffix: str, name: str) -> int:
    value = float(number) * _MULTIPLIERS[suffix.upper()]
    if value != int(value) or value <= 0:
        raise ConfigError(f"name: {name!r} does not give a positive whole number of identities")
    return int(value)
