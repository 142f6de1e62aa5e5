"""The learning-rate schedule: linear scaling by batch size, optional warm-up, step decay at fractional milestones.

The schedule is a pure function of the optimizer step, so resuming a run needs
only the step count. Milestones are fractions of all training steps: the paper's
epochs 24/30/36 of 40 are ``(0.6, 0.75, 0.9)``, and the same config scales to any
number of epochs.
"""

from __future__ import annotations

from synface.train.config import TrainConfig


def scaled_lr(cfg: TrainConfig, global_batch: int) -> float:
    """The base learning rate for ``global_batch`` images per step (linear scaling rule).

    Args:
        cfg: the training config (``lr`` is given for ``lr_reference_batch`` images).
        global_batch: images per optimizer step over all ranks.

    Returns:
        ``lr * global_batch / lr_reference_batch``, or ``lr`` when the reference is 0.
    """
    if cfg.lr_reference_batch == 0:
        return cfg.lr
    return cfg.lr * global_batch / cfg.lr_reference_batch


def milestone_steps(cfg: TrainConfig, steps_per_epoch: int) -> list[int]:
    """The optimizer steps from which each decay applies (rounded to whole steps)."""
    total = cfg.epochs * steps_per_epoch
    return [round(fraction * total) for fraction in cfg.milestones]


def milestone_epochs(cfg: TrainConfig) -> list[float]:
    """The milestones in epochs, e.g. ``[24.0, 30.0, 36.0]`` for the paper's 40 epochs."""
    return [fraction * cfg.epochs for fraction in cfg.milestones]


def learning_rate(cfg: TrainConfig, step: int, steps_per_epoch: int, global_batch: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based).

    Args:
        cfg: the training config.
        step: optimizer steps already taken.
        steps_per_epoch: optimizer steps in one epoch.
        global_batch: images per optimizer step over all ranks.

    Returns:
        ``base * warmup * lr_decay ** (milestones passed)``; during warm-up the
        factor rises linearly, reaching 1 at the first step after it.
    """
    base = scaled_lr(cfg, global_batch)
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    warmup = (step + 1) / warmup_steps if step < warmup_steps else 1.0
    passed = sum(step >= milestone for milestone in milestone_steps(cfg, steps_per_epoch))
    return base * warmup * cfg.lr_decay**passed
