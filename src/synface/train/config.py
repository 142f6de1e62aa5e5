"""The configuration of a training run: data, backbone, margin head, optimisation and validation.

A run is one :class:`RunConfig` nesting the data config of :mod:`synface.data`
with a :class:`ModelConfig`, a :class:`HeadConfig`, a :class:`TrainConfig` and an
optional :class:`ValidationConfig`; it loads from YAML (or a bundled name such as
``syn10k_lresnet50``) with ``dotted.key=value`` overrides and is saved next to the
results as ``config.yaml``.

Batch size and learning rate follow the paper's recipe (Sec. 4.2: lr 0.1 for a
global batch of 512, divided by 10 at epochs 24/30/36 of 40):

* ``data.batch_size`` is the batch of one process; the global batch is
  ``data.batch_size * world_size``.
* ``train.lr`` is the learning rate for a global batch of ``train.lr_reference_batch``
  (512) and is scaled linearly with the actual global batch (the linear scaling
  rule), so a config keeps its meaning on any number of GPUs.
* ``train.milestones`` are fractions of training, so 0.6/0.75/0.9 land on epochs
  24/30/36 of 40 and on 6/7.5/9 of 10.
* Weight decay applies to every parameter of the backbone and the head, as in
  insightface's arcface_torch and the official SynFace code;
  ``decay_norm_and_bias: false`` exempts norm, PReLU and bias parameters (1-D tensors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from synface.config import ConfigBase, require
from synface.data.loader import DataConfig
from synface.errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class ModelConfig(ConfigBase):
    """The backbone, by registry name (see ``synface.models.list_models()``).

    Attributes:
        name: registry name, e.g. ``lresnet50e_ir``, ``iresnet50``, ``iresnet_tiny``.
        num_features: embedding size.
        dropout: dropout before the embedding layer (None: the model's default).
        kwargs: further constructor arguments (``width``, ``act_layer``, ...). The
            input size always comes from ``data.image_size``.
    """

    name: str = "lresnet50e_ir"
    num_features: int = 512
    dropout: float | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        from synface.errors import SynfaceError
        from synface.models import create_model, is_model

        if not is_model(self.name):
            try:
                create_model(self.name)
            except SynfaceError as error:  # create_model words the "did you mean" hint
                raise ConfigError(f"name: {error}") from None
        require(self.num_features > 0, "num_features", f"{self.num_features} must be positive")
        require(self.dropout is None or 0.0 <= self.dropout < 1.0, "dropout", f"{self.dropout} is outside [0, 1)")
        require("num_features" not in self.kwargs and "dropout" not in self.kwargs, "kwargs",
                "set num_features and dropout as fields of model, not in kwargs")


@dataclass(frozen=True)
class HeadConfig(ConfigBase):
    """The margin-softmax classifier (``synface.models.create_head``).

    Attributes:
        name: ``arcface`` (m2 = 0.5, the paper's), ``cosface``, ``sphereface`` or ``combined``.
        s: logit scale (None: 30, the paper's).
        m: the named head's own margin (None: its default).
        m1, m2, m3: the unified margins ``cos(m1 * theta + m2) - m3`` (None: the head's defaults).
        sharded: split the class centres across ranks (model-parallel softmax, for
            100K+ classes); the same loss and gradients as the unsharded head.
    """

    name: str = "arcface"
    s: float | None = None
    m: float | None = None
    m1: float | None = None
    m2: float | None = None
    m3: float | None = None
    sharded: bool = False

    def validate(self) -> None:
        from synface.models import list_heads

        require(self.name in list_heads(), "name", f"unknown head {self.name!r}; valid: {', '.join(list_heads())}")
        require(self.s is None or self.s > 0, "s", f"{self.s} must be positive")
        require(self.m1 is None or self.m1 >= 1.0, "m1", f"{self.m1} must be >= 1")
        for name in ("m", "m2", "m3"):
            value = getattr(self, name)
            require(value is None or value >= 0.0, name, f"{value} must be >= 0")
        require(self.name != "combined" or self.m is None, "m", "the combined head takes m1, m2 and m3, not m")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``create_head`` (unset values left to the head's defaults)."""
        return {"s": self.s, "m": self.m, "m1": self.m1, "m2": self.m2, "m3": self.m3}


@dataclass(frozen=True)
class ValidationConfig(ConfigBase):
    """Periodic verification on a *validation* pair set (off when ``protocol`` is empty).

    Validation only monitors training: checkpoints are never chosen by it, and the
    last epoch is what a run reports. Use a validation set (``lfw-view1``, pairs of
    a held-out generated dataset with ``synthetic``), not a benchmark's test split.

    Attributes:
        protocol: a ``synface.eval`` protocol name ("" switches validation off).
        data: the protocol's images (folder, dataset or ``.bin`` file).
        pairs: its pairs file or folder, where it takes one.
        options: protocol options, e.g. ``{num_pairs: 600}`` for ``synthetic``.
        rules: threshold rules (``synface``, ``arcface``, ``tpr-fpr``).
        every: validate every this many epochs (and after the last one).
        batch_size: images per forward pass.
        crop: ``synface`` cuts 112x96 crops from 112x112 ArcFace crops.
    """

    protocol: str = ""
    data: str = ""
    pairs: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    rules: tuple[str, ...] = ("synface",)
    every: int = 1
    batch_size: int = 256
    crop: str | None = None

    def validate(self) -> None:
        from synface.eval.metrics import check_rule_names

        require(self.every >= 1, "every", f"{self.every} must be >= 1")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} must be >= 1")
        check_rule_names(self.rules)
        if self.protocol:
            from synface.eval.protocols import list_protocols

            known = list_protocols()
            require(self.protocol in known, "protocol", f"unknown {self.protocol!r}; valid: {', '.join(known)}")


@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """Optimisation, precision, devices and bookkeeping of a run.

    Attributes:
        epochs: passes over the data (paper: 40).
        lr: SGD learning rate for a global batch of ``lr_reference_batch`` (paper: 0.1).
        lr_reference_batch: global batch ``lr`` is given for; the lr is scaled by
            ``global_batch / lr_reference_batch`` (0: never scaled).
        momentum: SGD momentum (paper: 0.9).
        weight_decay: L2 penalty (paper: 5e-4).
        decay_norm_and_bias: apply weight decay to 1-D parameters (norms, PReLU,
            biases) too, as arcface_torch and SynFace do.
        milestones: fractions of training at which the lr is multiplied by ``lr_decay``.
        lr_decay: factor applied at each milestone (paper: 0.1).
        warmup_epochs: linear warm-up from lr/steps to lr over this many epochs.
        precision: ``fp32``, ``bf16`` (autocast) or ``fp16`` (autocast with a grad
            scaler); logits and loss are fp32 in every case.
        channels_last: channels-last model and batches (faster convolutions on GPUs).
        compile: ``torch.compile`` the backbone.
        sync_bn: synchronised batch norm across ranks (CUDA DDP only).
        grad_clip: clip the backbone's gradient norm to this (0: off).
        seed: seeds weight initialisation and dropout (data order is ``data.seed``).
        device: ``auto`` (the rank's CUDA device when present, else CPU), ``cpu``, ``cuda``...
        output_dir: the run folder (config, logs, metrics, checkpoints).
        resume: continue the run in ``output_dir`` from its last checkpoint.
        checkpoint_every: save every this many epochs (and after the last one).
        keep_checkpoints: how many epoch checkpoints to keep (0: all).
        log_interval: steps between log lines, metric records and loss checks.
        tensorboard: also write TensorBoard event files.
    """

    epochs: int = 40
    lr: float = 0.1
    lr_reference_batch: int = 512
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = True
    milestones: tuple[float, ...] = (0.6, 0.75, 0.9)
    lr_decay: float = 0.1
    warmup_epochs: float = 0.0
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    grad_clip: float = 0.0
    seed: int = 0
    device: str = "auto"
    output_dir: str = "runs/synface"
    resume: bool = False
    checkpoint_every: int = 1
    keep_checkpoints: int = 1
    log_interval: int = 50
    tensorboard: bool = True

    def validate(self) -> None:
        require(self.epochs >= 1, "epochs", f"{self.epochs} must be >= 1")
        require(self.lr > 0, "lr", f"{self.lr} must be positive")
        require(self.lr_reference_batch >= 0, "lr_reference_batch", f"{self.lr_reference_batch} must be >= 0")
        require(0.0 <= self.momentum < 1.0, "momentum", f"{self.momentum} is outside [0, 1)")
        require(self.weight_decay >= 0.0, "weight_decay", f"{self.weight_decay} must be >= 0")
        require(all(0.0 < m <= 1.0 for m in self.milestones), "milestones",
                f"{list(self.milestones)} must be fractions of training in (0, 1]")
        require(list(self.milestones) == sorted(set(self.milestones)), "milestones",
                f"{list(self.milestones)} must be strictly increasing")
        require(0.0 < self.lr_decay <= 1.0, "lr_decay", f"{self.lr_decay} is outside (0, 1]")
        require(0.0 <= self.warmup_epochs <= self.epochs, "warmup_epochs",
                f"{self.warmup_epochs} is outside [0, epochs={self.epochs}]")
        require(self.grad_clip >= 0.0, "grad_clip", f"{self.grad_clip} must be >= 0 (0: off)")
        require(bool(self.device.strip()), "device", "give auto, cpu, cuda or cuda:N")
        require(bool(self.output_dir.strip()), "output_dir", "give the run folder")
        require(self.checkpoint_every >= 1, "checkpoint_every", f"{self.checkpoint_every} must be >= 1")
        require(self.keep_checkpoints >= 0, "keep_checkpoints", f"{self.keep_checkpoints} must be >= 0 (0: all)")
        require(self.log_interval >= 1, "log_interval", f"{self.log_interval} must be >= 1")


@dataclass(frozen=True)
class RunConfig(ConfigBase):
    """Everything a training run needs; ``synface train CONFIG key=value ...`` builds one."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "") -> RunConfig:
        """As :meth:`ConfigBase.from_dict`; the ``data`` section is required."""
        if isinstance(data, Mapping) and "data" not in data:
            raise ConfigError(f"{where + '.' if where else ''}data: missing; a run needs at least data.kind "
                              "and data.path (data.kind: random needs no path)")
        return super().from_dict(data, where)

    def validate(self) -> None:
        size = self.model.kwargs.get("input_size")
        require(size is None or list(size) == list(self.data.image_size), "model.kwargs.input_size",
                f"{size} differs from data.image_size {list(self.data.image_size)} (leave it out; "
                "the model takes data.image_size)")
        require(not self.data.channels_last or self.train.channels_last, "data.channels_last",
                "set train.channels_last instead: it switches both the model and the batches")

    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the backbone (saved in ``model.json`` to rebuild it)."""
        kwargs = {"num_features": self.model.num_features, "dropout": self.model.dropout, **self.model.kwargs}
        kwargs["input_size"] = list(self.data.image_size)
        return {key: value for key, value in kwargs.items() if value is not None}

    def data_config(self) -> DataConfig:
        """The data config the trainer uses: batches in the model's memory format."""
        return self.data.replace(channels_last=self.train.channels_last)


def bundled_configs() -> list[str]:
    """Names of the example training configs shipped with synface."""
    folder = resources.files("synface") / "configs" / "train"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")) if folder.is_dir() else []


def load_run_config(source: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Load a run config from a YAML file or a bundled config name, then apply overrides.

    Args:
        source: a YAML path, or a bundled name such as ``tiny_cpu`` (see :func:`bundled_configs`).
        overrides: ``dotted.key=value`` strings, applied after the file.

    Returns:
        The validated config.

    Raises:
        ConfigError: no such file or bundled name, invalid YAML, an unknown key or a bad value.
    """
    path = Path(source)
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1:
        bundled = resources.files("synface") / "configs" / "train" / f"{source}.yaml"
        if not bundled.is_file():
            raise ConfigError(f"{source}: no such config file or bundled config; bundled: "
                              f"{', '.join(bundled_configs())}")
        with resources.as_file(bundled) as bundled_path:
            return RunConfig.from_yaml(bundled_path, overrides)
    return RunConfig.from_yaml(path, overrides)
