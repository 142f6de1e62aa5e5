"""The training loop: ``train_one_epoch``, ``evaluate``, and ``fit``, which runs a config with checkpoints and resume.

One process on a CPU or a GPU needs no ``torch.distributed``; under torchrun every
rank runs the same code on its part of each batch and only rank 0 logs and saves::

    synface train CONFIG.yaml train.epochs=10                      # one process
    torchrun --nproc_per_node 8 -m synface.cli train CONFIG.yaml   # 8 data-parallel ranks

Everything random in an epoch is a function of ``(seed, epoch, rank)``: the data
order and augmentation (``data.seed``), dropout (``train.seed``). A run resumed
from the checkpoint of epoch ``e`` therefore continues exactly as if it had never
stopped.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synface.data.loader import TrainSource, build_train_source
from synface.errors import SynfaceError
from synface.progress import progress
from synface.train.checkpoints import (
    check_resumable,
    head_state,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from synface.train.config import RunConfig, ValidationConfig
from synface.train.distributed import Placement, all_reduce, barrier, setup, teardown
from synface.train.logging_utils import MetricsLogger, format_interval
from synface.train.parts import (
    TrainingParts,
    build_parts,
    predicted_classes,
    primary_labels,
    set_learning_rate,
    train_step,
    wrap,
)
from synface.train.schedule import learning_rate, milestone_epochs, scaled_lr

logger = logging.getLogger(__name__)

NO_BAD_STEP = 2**62  # "no non-finite loss seen" in the device-side step tracker
TRAIN_STREAM = 7101  # last seed key of the per-epoch torch seed
TEST_PROTOCOLS = ("lfw", "cfp-ff", "cfp-fp")


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of one rank's epoch (dropout and any other global-RNG draw)."""
    return int(np.random.SeedSequence([seed, epoch, rank, TRAIN_STREAM]).generate_state(1)[0])


class StepStatistics:
    """Loss, correct predictions, samples and steps summed on the device, plus the first non-finite step.

    Adding a step costs no host sync; :meth:`read` sums over ranks and reads (one sync)
    and keeps the epoch's totals for :meth:`epoch_means`.
    """

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, correct, seen, steps
        self.first_bad = torch.full((), NO_BAD_STEP, dtype=torch.int64, device=device)
        self.totals = [0.0, 0.0, 0.0, 0.0]  # the same sums over the epoch, all ranks

    def add(self, loss: torch.Tensor, correct: torch.Tensor, batch: int, step: int) -> None:
        """Count one step (``loss`` and ``correct`` are 0-d device tensors)."""
        self.first_bad = torch.where(torch.isfinite(loss) | (self.first_bad != NO_BAD_STEP), self.first_bad, step)
        # Python scalars go in as kernel arguments: no host-to-device copy.
        self.sums[0] += loss
        self.sums[1] += correct
        self.sums[2] += batch
        self.sums[3] += 1

    def read(self, placement: Placement) -> dict[str, float]:
        """Sums over all ranks since the last read: mean ``loss``, ``accuracy``, ``steps``, ``bad_step``."""
        bad_step = int(all_reduce(self.first_bad.clone(), placement, op="min"))
        sums = all_reduce(self.sums, placement).tolist()
        self.sums.zero_()
        self.totals = [total + value for total, value in zip(self.totals, sums)]
        loss_sum, correct, seen, steps = sums
        return {"loss": loss_sum / max(steps, 1.0),  # both summed over ranks
                "accuracy": correct / max(seen, 1.0), "steps": steps / placement.world_size,
                "bad_step": bad_step}

    def epoch_means(self) -> tuple[float, float]:
        """Mean loss and accuracy of everything read so far."""
        loss_sum, correct, seen, steps = self.totals
        return loss_sum / max(steps, 1.0), correct / max(seen, 1.0)


def train_one_epoch(parts: TrainingParts, source: TrainSource, cfg: RunConfig, placement: Placement,
                    epoch: int, step: int, metrics: MetricsLogger) -> tuple[int, dict[str, float]]:
    """Train for one epoch of ``source``.

    Losses and accuracies are summed on the device and read once per
    ``log_interval`` steps (a host sync), which is also when a non-finite loss is
    detected; the error names the first bad step.

    Args:
        parts: built and wrapped training parts.
        source: the training batches (``set_epoch`` already called).
        cfg: the run config.
        placement: this process's rank and device.
        epoch: 0-based epoch index.
        step: optimizer steps taken before this epoch.
        metrics: where interval records go.

    Returns:
        ``(step, metrics)``: the step count after the epoch and ``train/epoch_loss``,
        ``train/epoch_accuracy`` and ``train/epoch_seconds``.

    Raises:
        SynfaceError: the loss became NaN or infinite.
    """
    train, steps = cfg.train, len(source)
    global_batch = cfg.data.batch_size * placement.world_size
    assert parts.classifier is not None
    parts.classifier.train()
    statistics, epoch_start = StepStatistics(placement.device), step
    started = tick = time.perf_counter()
    bar = progress(total=steps, desc=f"epoch {epoch + 1}/{train.epochs}", unit="step",
                   disable=None if placement.is_main else True)
    for index, (images, targets, weights) in enumerate(source):
        if index == 0:
            # After the loader has started (its workers draw a seed from the global RNG).
            torch.manual_seed(epoch_seed(train.seed, epoch, placement.rank))
        set_learning_rate(parts, learning_rate(train, step, steps, global_batch))
        parts.head.check_labels = index == 0  # datasets check labels on load; one host sync per epoch here
        output = train_step(parts, images, targets, weights, train)
        predicted = predicted_classes(parts.head, output.cosine, len(images), placement)  # (B,)
        statistics.add(output.loss.detach(), (predicted == primary_labels(targets, weights)).sum(), len(images), step)
        step += 1
        bar.update()
        if step % train.log_interval and index + 1 < steps:
            continue
        summary = statistics.read(placement)
        if summary["bad_step"] != NO_BAD_STEP:
            raise _diverged(summary["bad_step"], epoch, epoch_start, steps)
        now = time.perf_counter()
        record = {"train/loss": summary["loss"], "train/accuracy": summary["accuracy"],
                  "train/lr": parts.optimizer.param_groups[0]["lr"],
                  "train/images_per_second": summary["steps"] * global_batch / max(now - tick, 1e-9)}
        if placement.is_main:
            eta = (train.epochs * steps - step) * (now - tick) / max(summary["steps"], 1.0)
            logger.info(format_interval(epoch, train.epochs, index + 1, steps, record, eta))
            bar.set_postfix(loss=f"{summary['loss']:.3f}", acc=f"{100 * summary['accuracy']:.1f}%",
                            img_s=f"{record['train/images_per_second']:.0f}")
        metrics.log(step, epoch + 1, record)
        tick = now
    bar.close()
    loss, accuracy = statistics.epoch_means()
    return step, {"train/epoch_loss": loss, "train/epoch_accuracy": accuracy,
                  "train/epoch_seconds": time.perf_counter() - started}


def _diverged(bad_step: int, epoch: int, epoch_start: int, steps: int) -> SynfaceError:
    return SynfaceError(
        f"training diverged: the loss became NaN or infinite at step {bad_step + 1} (epoch {epoch + 1}, "
        f"batch {bad_step - epoch_start + 1} of {steps}); the last checkpoint was kept. Lower train.lr, "
        "add train.warmup_epochs, or use train.precision=bf16 instead of fp16")


def evaluate(model: nn.Module, pair_set: Any, cfg: ValidationConfig, device: torch.device,
             precision: str = "fp32") -> dict[str, float]:
    """Verification metrics of ``model`` on a validation pair set.

    Args:
        model: the plain backbone (put back in training mode afterwards).
        pair_set: a ``synface.eval.protocols.PairSet``.
        cfg: rules, batch size and crop.
        device: where the model runs.
        precision: autocast the forward pass unless ``fp32``.

    Returns:
        ``val/<set>/<rule>[+flip]/{accuracy,accuracy_std,auc,eer}``.
    """
    from synface.eval.report import evaluate_model

    was_training = model.training
    results = evaluate_model(model, pair_set, cfg.rules, batch_size=cfg.batch_size, device=device,
                             amp=precision != "fp32", crop=cfg.crop)
    model.train(was_training)
    metrics = {}
    for result in results:
        prefix = f"val/{result.protocol}/{result.rule.name}{'+flip' if result.flip else ''}"
        metrics.update({f"{prefix}/accuracy": result.folds.mean, f"{prefix}/accuracy_std": result.folds.std,
                        f"{prefix}/auc": result.auc, f"{prefix}/eer": result.eer})
    return metrics


def load_validation(cfg: ValidationConfig, placement: Placement) -> Any:
    """The validation pair set (main process only; None when validation is off)."""
    if not cfg.protocol or not placement.is_main:
        return None
    from synface.eval.protocols import load_protocol

    if cfg.protocol in TEST_PROTOCOLS:
        logger.warning("validating on %r, a test protocol: checkpoints are never chosen by it, but prefer "
                       "lfw-view1 or a held-out synthetic set", cfg.protocol)
    return load_protocol(cfg.protocol, cfg.data or None, cfg.pairs or None, **cfg.options)


def fit(cfg: RunConfig) -> dict[str, Any]:
    """Train ``cfg`` to the end (or resume it), saving a checkpoint every ``checkpoint_every`` epochs.

    Args:
        cfg: the run config; ``train.output_dir`` is the run folder.

    Returns:
        ``run_dir``, ``checkpoint`` (the last one), ``epochs``, ``steps``,
        ``num_classes`` and ``metrics`` (of the last epoch).

    Raises:
        SynfaceError: a bad setting, a run folder that already holds another run
            (without ``train.resume``), a checkpoint of a different config, or a
            diverged loss. Nothing in the run folder is overwritten in those cases.
    """
    placement = setup(cfg.train.device)
    try:
        return _fit(cfg, placement)
    finally:
        teardown(placement)


def _fit(cfg: RunConfig, placement: Placement) -> dict[str, Any]:
    run_dir = Path(cfg.train.output_dir)
    if placement.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # input sizes never change: pick the fastest kernels once
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None and not cfg.train.resume:
        raise SynfaceError(f"{run_dir} already holds a run (last checkpoint {checkpoint.name}); pass --resume "
                           "(train.resume=true) to continue it, or choose another train.output_dir")
    if checkpoint is not None:
        check_resumable(checkpoint, cfg, {})  # settings first: refuse before reading any data
    source = build_train_source(cfg.data_config(), placement.device, placement.rank, placement.world_size)
    facts = {"num_classes": source.num_classes, "world_size": placement.world_size,
             "global_batch": cfg.data.batch_size * placement.world_size, "steps_per_epoch": len(source)}
    parts = build_parts(cfg, placement, source.num_classes)
    start_epoch, step, last_metrics = _restore(checkpoint, cfg, parts, facts)
    if placement.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")
    metrics = MetricsLogger(run_dir, placement.is_main, step if checkpoint is not None else None,
                            cfg.train.tensorboard)
    try:
        pair_set = load_validation(cfg.validation, placement)
        wrap(parts, cfg, placement)
        _log_plan(cfg, placement, source, parts, facts["global_batch"])
        for epoch in range(start_epoch, cfg.train.epochs):
            source.set_epoch(epoch)
            step, last_metrics = train_one_epoch(parts, source, cfg, placement, epoch, step, metrics)
            last = epoch + 1 == cfg.train.epochs
            if pair_set is not None and ((epoch + 1) % cfg.validation.every == 0 or last):
                last_metrics.update(evaluate(parts.model, pair_set, cfg.validation, placement.device,
                                             cfg.train.precision))
            barrier(placement)
            metrics.log(step, epoch + 1, last_metrics)
            _log_epoch(epoch, cfg.train.epochs, last_metrics, placement)
            if (epoch + 1) % cfg.train.checkpoint_every == 0 or last:
                _save(run_dir, cfg, parts, placement, {**facts, "epoch": epoch + 1, "step": step}, last_metrics)
    finally:
        metrics.close()
    checkpoint = latest_checkpoint(run_dir)
    return {"run_dir": str(run_dir), "checkpoint": str(checkpoint) if checkpoint else None,
            "epochs": cfg.train.epochs, "steps": step, "num_classes": source.num_classes,
            "metrics": last_metrics}


def _restore(checkpoint: Path | None, cfg: RunConfig, parts: TrainingParts,
             facts: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
    """Load ``checkpoint`` into ``parts`` when resuming; returns ``(epoch, step, metrics)`` to continue from."""
    if checkpoint is None:
        if cfg.train.resume:
            logger.info("no checkpoint in %s: starting a new run", cfg.train.output_dir)
        return 0, 0, {}
    metrics = check_resumable(checkpoint, cfg, facts).get("metrics", {})
    state = load_checkpoint(checkpoint, parts.model, parts.head, parts.optimizer, parts.head_optimizer, parts.scaler)
    logger.info("resuming %s from %s (epoch %d, step %d)", cfg.train.output_dir, checkpoint.name,
                state["epoch"], state["step"])
    return state["epoch"], state["step"], metrics


def _save(run_dir: Path, cfg: RunConfig, parts: TrainingParts, placement: Placement, progress_record: dict[str, Any],
          metrics: dict[str, float]) -> None:
    """Checkpoint the finished epoch (every rank takes part in gathering a sharded head; rank 0 writes)."""
    head = head_state(parts.head, parts.head_optimizer, placement)
    if placement.is_main:
        finite = {key: value if math.isfinite(value) else None for key, value in metrics.items()}
        save_checkpoint(run_dir, cfg, parts.model, head, parts.optimizer, parts.scaler,
                        {**progress_record, "metrics": finite})
    barrier(placement)


def _log_plan(cfg: RunConfig, placement: Placement, source: TrainSource, parts: TrainingParts,
              global_batch: int) -> None:
    if not placement.is_main:
        return
    parameters = sum(p.numel() for p in parts.model.parameters())
    logger.info("%s (%.1fM parameters) + %s head over %d classes; %d steps/epoch x %d epochs, global batch %d "
                "(%d rank(s) on %s), lr %.4g, decay at epochs %s, %s",
                cfg.model.name, parameters / 1e6, cfg.head.name, source.num_classes, len(source),
                cfg.train.epochs, global_batch, placement.world_size, placement.device,
                scaled_lr(cfg.train, global_batch),
                "/".join(f"{e:g}" for e in milestone_epochs(cfg.train)), cfg.train.precision)


def _log_epoch(epoch: int, epochs: int, metrics: dict[str, float], placement: Placement) -> None:
    if not placement.is_main:
        return
    parts = [f"epoch {epoch + 1}/{epochs} done in {metrics['train/epoch_seconds']:.1f}s:",
             f"loss {metrics['train/epoch_loss']:.4f}", f"acc {100 * metrics['train/epoch_accuracy']:.2f}%"]
    parts += [f"{key} {100 * value:.2f}%" for key, value in metrics.items()
              if key.startswith("val/") and key.endswith("/accuracy") and math.isfinite(value)]
    logger.info(" ".join(parts))
