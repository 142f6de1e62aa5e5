"""The learning-rate schedule against a slow, obvious reference."""

from __future__ import annotations

import pytest

from synface.train import TrainConfig, learning_rate, milestone_epochs, milestone_steps, scaled_lr


def reference_lr(epochs: int, steps_per_epoch: int, step: int, lr: float, milestones_at_epochs: list[float],
                 warmup_steps: int = 0) -> float:
    """Epoch-based reference: lr / 10 for every milestone epoch passed, linear warm-up over the first steps."""
    value = lr
    for milestone in milestones_at_epochs:
        if step >= round(milestone * steps_per_epoch):
            value /= 10
    if step < warmup_steps:
        value *= (step + 1) / warmup_steps
    return value


def test_paper_milestones_are_epochs_24_30_36_of_40() -> None:
    cfg = TrainConfig(epochs=40)
    assert milestone_epochs(cfg) == [24.0, 30.0, 36.0]
    assert milestone_steps(cfg, 100) == [2400, 3000, 3600]
    assert learning_rate(cfg, 2399, 100, 512) == pytest.approx(0.1)
    assert learning_rate(cfg, 2400, 100, 512) == pytest.approx(0.01)
    assert learning_rate(cfg, 3000, 100, 512) == pytest.approx(0.001)
    assert learning_rate(cfg, 3999, 100, 512) == pytest.approx(0.0001)


@pytest.mark.parametrize(("epochs", "expected"), [(40, [24, 30, 36]), (20, [12, 15, 18]), (10, [6, 7.5, 9])])
def test_milestones_scale_with_epochs(epochs: int, expected: list[float]) -> None:
    cfg = TrainConfig(epochs=epochs, warmup_epochs=1.0)
    assert milestone_epochs(cfg) == pytest.approx(expected)
    steps_per_epoch = 8
    for step in range(epochs * steps_per_epoch):
        assert learning_rate(cfg, step, steps_per_epoch, 512) == pytest.approx(
            reference_lr(epochs, steps_per_epoch, step, 0.1, expected, warmup_steps=8), rel=1e-12)


def test_lr_scales_linearly_with_global_batch() -> None:
    cfg = TrainConfig()
    assert scaled_lr(cfg, 512) == pytest.approx(0.1)
    assert scaled_lr(cfg, 1024) == pytest.approx(0.2)
    assert scaled_lr(cfg, 128) == pytest.approx(0.025)
    assert scaled_lr(cfg.replace(lr_reference_batch=0), 128) == pytest.approx(0.1)
    assert learning_rate(cfg, 0, 10, 256) == pytest.approx(0.05)


def test_warmup_rises_linearly_to_the_base_lr() -> None:
    cfg = TrainConfig(epochs=10, warmup_epochs=0.5)
    values = [learning_rate(cfg, step, 20, 512) for step in range(12)]
    assert values[:10] == pytest.approx([0.1 * (k + 1) / 10 for k in range(10)])
    assert values[10:] == pytest.approx([0.1, 0.1])
