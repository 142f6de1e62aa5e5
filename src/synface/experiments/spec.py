"""Declarative experiment specs: presets (tiny / small / paper) and the paper's suites, read from YAML.

Presets live in ``configs/experiments/presets.yaml``; each suite in
``configs/experiments/<suite>.yaml`` with a ``common`` settings block, per-preset
blocks that override it, and the published numbers it is compared with::

    title: "Table 3: dataset width x depth, with and without identity mixup"
    builder: table3
    published: {...}
    common: {...}
    presets: {tiny: {...}, small: {...}, paper: {...}}

Command-line overrides ``key=value`` go to the preset, ``suite.key=value`` to the
suite's settings; both are typed and checked like every other config.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from synface.config import ConfigBase, load_yaml_mapping, require
from synface.errors import ConfigError

PRESETS_FILE = "presets.yaml"
PRESET_NAMES = ("tiny", "small", "paper")
ALIGN_METHODS = ("auto", "mtcnn", "center")


@dataclass(frozen=True)
class ModelSpec(ConfigBase):
    """The backbone every suite trains (``synface.models`` registry name)."""

    name: str = "iresnet_tiny"
    num_features: int = 128
    dropout: float | None = None

    def validate(self) -> None:
        from synface.models import is_model, list_models

        require(is_model(self.name), "name", f"unknown model {self.name!r}; valid: {', '.join(list_models())}")
        require(self.num_features > 0, "num_features", f"{self.num_features} must be positive")


@dataclass(frozen=True)
class TrainSpec(ConfigBase):
    """Optimisation shared by every training step of a preset (paper Sec. 4.2 at ``paper``).

    Attributes:
        epochs: passes over each training set.
        batch_size: the global batch (split over ``launcher.nproc_per_node`` processes).
        lr, lr_reference_batch: lr for a global batch of ``lr_reference_batch`` (0: not scaled).
        warmup_epochs, milestones, precision, channels_last, augmentation: as ``synface train``.
        head, s, m: the margin head (paper: ArcFace, s = 30, m = 0.5).
        workers: data loader processes per training process.
        seed: weight initialisation and data order.
    """

    epochs: int = 1
    batch_size: int = 16
    lr: float = 0.1
    lr_reference_batch: int = 512
    warmup_epochs: float = 0.0
    milestones: tuple[float, ...] = (0.6, 0.75, 0.9)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    augmentation: str = "paper"
    head: str = "arcface"
    s: float = 30.0
    m: float = 0.5
    workers: int = 0
    seed: int = 0

    def validate(self) -> None:
        require(self.epochs >= 1, "epochs", f"{self.epochs} must be >= 1")
        require(self.batch_size >= 2, "batch_size", f"{self.batch_size} must be >= 2 (batch norm needs 2)")
        require(self.lr > 0, "lr", f"{self.lr} must be positive")
        require(self.workers >= 0, "workers", f"{self.workers} must be >= 0")


@dataclass(frozen=True)
class GenerateSpec(ConfigBase):
    """How every synthetic training set of a preset is rendered.

    Attributes:
        seed: dataset seed of training sets (test sets use ``synlfw.seed``).
        face_model: face model spec (``default``: imported ICT-FaceKit, else the built-in head).
        supersample: renderer anti-aliasing factor (1 is about 3x faster on a CPU).
        batch_size, shard_size: rendering batch and shard size.
        im_grid: the identity-mixup ratios ``(low, high, steps)``: the paper's linspace(0, 1, 21).
    """

    seed: int = 0
    face_model: str = "default"
    supersample: int = 2
    batch_size: int = 50
    shard_size: int = 1000
    im_grid: tuple[float, float, int] = (0.0, 1.0, 21)

    def validate(self) -> None:
        low, high, steps = self.im_grid
        require(0.0 <= low <= high <= 1.0 and steps >= 1, "im_grid",
                f"{list(self.im_grid)} must be (low, high, steps) with 0 <= low <= high <= 1")


@dataclass(frozen=True)
class EvalSpec(ConfigBase):
    """Verification settings (the SynFace rule by default: cosine, no flip).

    Attributes:
        rules: threshold rules; the first one is the headline number of every table.
        batch_size: images per forward pass.
        syn_pairs, syn_folds: pairs and identity-disjoint folds of the Syn-LFW-like sets.
        real_pairs_per_fold: same (and as many different) pairs kept per real test fold (0: all).
        pair_seed: seed of the synthetic pair draw.
    """

    rules: tuple[str, ...] = ("synface",)
    batch_size: int = 256
    syn_pairs: int = 6000
    syn_folds: int = 10
    real_pairs_per_fold: int = 0
    pair_seed: int = 0

    def validate(self) -> None:
        from synface.eval.metrics import check_rule_names

        check_rule_names(self.rules)
        require(self.syn_folds >= 2, "syn_folds", f"{self.syn_folds} must be >= 2")
        require(self.syn_pairs > 0 and self.syn_pairs % (2 * self.syn_folds) == 0, "syn_pairs",
                f"{self.syn_pairs} must be a positive multiple of 2 x syn_folds ({2 * self.syn_folds})")
        require(self.real_pairs_per_fold >= 0, "real_pairs_per_fold", f"{self.real_pairs_per_fold} must be >= 0")


@dataclass(frozen=True)
class RealSpec(ConfigBase):
    """How real photos (CFP, LFW) are prepared and split.

    Attributes:
        align: ``mtcnn`` (MTCNN landmarks + similarity onto the 112x96 template),
            ``center`` (a fixed centre crop: a smoke-test stand-in, clearly labelled
            in reports) or ``auto`` (``mtcnn`` when its weights are installed, else ``center``).
        test_folds: CFP folds held out for testing; their identities are never trained on.
        train_identities, train_samples: how many CFP training-fold identities (and
            images each) are aligned for real training (0: all).
    """

    align: str = "auto"
    test_folds: tuple[int, ...] = (6, 7, 8, 9, 10)
    train_identities: int = 0
    train_samples: int = 0

    def validate(self) -> None:
        require(self.align in ALIGN_METHODS, "align", f"{self.align!r} is not one of {', '.join(ALIGN_METHODS)}")
        require(len(self.test_folds) >= 2 and all(1 <= f <= 10 for f in self.test_folds), "test_folds",
                f"{list(self.test_folds)} must be at least 2 fold numbers in 1..10")
        require(len(set(self.test_folds)) < 10, "test_folds", "leave at least one fold for training")
        require(self.train_identities >= 0 and self.train_samples >= 0, "train_identities",
                "counts must be >= 0 (0: all)")
        require((self.train_identities > 0) == (self.train_samples > 0), "train_samples",
                "give both train_identities and train_samples, or neither (0, 0: every training image)")


@dataclass(frozen=True)
class SynLfwSpec(ConfigBase):
    """The Syn-LFW-like test sets (see :mod:`synface.experiments.synlfw`).

    Attributes:
        seed: dataset seed; differs from every training seed, so identities never overlap.
        layout: identities x samples when no real set gives the statistics.
        max_identities: cap on the identities copied from a real set (0: all).
        expression_candidates: expression draws the real images are matched against.
        light_candidates: illuminations rendered and matched against the real crops.
    """

    seed: int = 2021
    layout: str = "1K_10"
    max_identities: int = 0
    expression_candidates: int = 256
    light_candidates: int = 64

    def validate(self) -> None:
        require(self.max_identities >= 0, "max_identities", f"{self.max_identities} must be >= 0 (0: all)")
        require(self.expression_candidates >= 1, "expression_candidates", "must be >= 1")
        require(self.light_candidates >= 1, "light_candidates", "must be >= 1")


@dataclass(frozen=True)
class LauncherSpec(ConfigBase):
    """Multi-process training: ``nproc_per_node > 1`` runs each training step under torchrun."""

    nproc_per_node: int = 1
    command: str = "torchrun"

    def validate(self) -> None:
        require(self.nproc_per_node >= 1, "nproc_per_node", f"{self.nproc_per_node} must be >= 1")


@dataclass(frozen=True)
class Preset(ConfigBase):
    """One scale at which every suite runs."""

    name: str = "tiny"
    description: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    generate: GenerateSpec = field(default_factory=GenerateSpec)
    evaluation: EvalSpec = field(default_factory=EvalSpec)
    real: RealSpec = field(default_factory=RealSpec)
    synlfw: SynLfwSpec = field(default_factory=SynLfwSpec)
    launcher: LauncherSpec = field(default_factory=LauncherSpec)

    def validate(self) -> None:
        nproc = self.launcher.nproc_per_node
        require(self.train.batch_size % nproc == 0, "train.batch_size",
                f"{self.train.batch_size} is not divisible by launcher.nproc_per_node={nproc}")


@dataclass(frozen=True)
class SuiteSpec:
    """A suite as declared in YAML: its builder, texts, published numbers and resolved settings."""

    name: str
    title: str
    builder: str
    description: str
    published: dict[str, Any]
    settings: dict[str, Any]


def _experiments_folder() -> Any:
    return resources.files("synface") / "configs" / "experiments"


def list_suites() -> list[str]:
    """Names of the bundled suites (``table1``, ``table2``, ``table3``, ``fig3``, ...)."""
    folder = _experiments_folder()
    return sorted(p.name[:-5] for p in folder.iterdir()
                  if p.name.endswith(".yaml") and p.name != PRESETS_FILE)


def _read_bundled(name: str) -> dict[str, Any]:
    with resources.as_file(_experiments_folder() / name) as path:
        return load_yaml_mapping(Path(path))


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``key=value`` overrides into (preset overrides, suite overrides without ``suite.``)."""
    preset, suite = [], []
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value (suite settings: suite.key=value)")
        if key.strip().startswith("suite."):
            suite.append(item.strip()[len("suite."):])
        else:
            preset.append(item)
    return preset, suite


def load_preset(name: str, overrides: Sequence[str] = ()) -> Preset:
    """The named preset with ``key=value`` overrides applied.

    Raises:
        ConfigError: an unknown preset name or a bad override.
    """
    data = _read_bundled(PRESETS_FILE)
    if name not in data:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(data)}")
    return Preset.from_dict({"name": name, **data[name]}).with_overrides(list(overrides))


def load_suite(name: str, preset: str, overrides: Sequence[str] = ()) -> SuiteSpec:
    """The suite ``name`` with its settings for ``preset`` (common < preset block < overrides).

    Raises:
        ConfigError: an unknown suite or preset, or an override of an unknown setting.
    """
    suites = list_suites()
    if name not in suites:
        import difflib

        close = difflib.get_close_matches(name, suites, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(f"unknown suite {name!r}{hint} valid suites: {', '.join(suites)} (or all)")
    data = _read_bundled(f"{name}.yaml")
    blocks = data.get("presets", {})
    if preset not in blocks:
        raise ConfigError(f"suite {name}: no settings for preset {preset!r}; valid: {', '.join(blocks)}")
    settings = merge(copy.deepcopy(data.get("common", {})), blocks[preset] or {})
    for item in overrides:
        key, _, raw = item.partition("=")
        set_dotted(settings, key.strip(), raw, where=f"suite {name}")
    return SuiteSpec(name=name, title=str(data.get("title", name)), builder=str(data.get("builder", name)),
                     description=str(data.get("description", "")).strip(),
                     published=dict(data.get("published", {})), settings=settings)


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into ``base`` (mappings merge, anything else replaces)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def set_dotted(tree: dict[str, Any], key: str, raw: str, where: str) -> None:
    """Set ``tree[a][b]...`` from ``a.b...=raw`` (raw parsed as YAML); unknown keys are refused."""
    import yaml

    parts = key.split(".")
    node = tree
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            known = ", ".join(node) if isinstance(node, dict) else "none"
            raise ConfigError(f"{where}: unknown setting {'.'.join(parts[:depth + 1])!r}; known here: {known}")
        if depth == len(parts) - 1:
            node[part] = yaml.safe_load(raw) if raw.strip() else ""
        else:
            node = node[part]
