"""Training face recognition on generated (and real) faces: configs, the loop, checkpoints, DDP and the benchmark.

Train a config end to end from Python::

    from synface.train import RunConfig, fit

    result = fit(RunConfig.from_yaml("run.yaml"))
    result["checkpoint"]   # the last checkpoint folder (model.safetensors + model.json, ...)

or from the command line: ``synface train CONFIG key=value ...`` (one process), or
``torchrun --nproc_per_node N -m synface.cli train CONFIG`` (data-parallel).
"""

from synface.train.config import (
    HeadConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    ValidationConfig,
    bundled_configs,
    load_run_config,
)
from synface.train.loop import evaluate, fit, train_one_epoch
from synface.train.schedule import learning_rate, milestone_epochs, milestone_steps, scaled_lr

__all__ = [
    "HeadConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "ValidationConfig",
    "bundled_configs",
    "evaluate",
    "fit",
    "learning_rate",
    "load_run_config",
    "milestone_epochs",
    "milestone_steps",
    "scaled_lr",
    "train_one_epoch",
]
