"""Training throughput: images per second of full train steps (data, forward, margin head, backward, SGD).

The benchmark builds the same data source, model, head and optimizers as
:func:`synface.train.fit` and times :func:`synface.train.parts.train_step` after a
warm-up, so its figure is what training gets. Sources: ``random`` (uint8 images
made on the device: the network alone), ``disk`` (a generated dataset read by the
loader workers, uint8 shipped to the device: end to end) and ``online`` (faces
rendered on the device for each batch)::

    run_train_benchmark("iresnet50", batch_size=512, num_classes=10_000, precision="bf16",
                        channels_last=True, source="disk", data_path="datasets/syn_10k_50")
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import torch

from synface.data.base import Batch
from synface.data.loader import DataConfig, TrainSource, build_train_source
from synface.errors import ConfigError
from synface.models import create_model
from synface.train.config import HeadConfig, ModelConfig, RunConfig, TrainConfig
from synface.train.distributed import Placement, resolve_device
from synface.train.parts import build_parts, train_step, wrap

logger = logging.getLogger(__name__)

SOURCES = ("random", "disk", "online")


def _data_config(source: str, image_size: tuple[int, int], batch_size: int, num_classes: int, images: int,
                 data_path: str, augmentation: str, workers: int) -> DataConfig:
    """The data config of a benchmark source, large enough for ``images`` images in one epoch when possible."""
    common = {"image_size": image_size, "batch_size": batch_size, "augmentation": augmentation, "workers": workers}
    if source == "random":
        return DataConfig(kind="random", random_num_classes=num_classes, random_num_samples=images, **common)
    if source == "disk":
        if not data_path:
            raise ConfigError("bench train: source 'disk' needs data_path, a generated dataset folder")
        return DataConfig(kind="synthetic", path=data_path, **common)
    if source == "online":
        samples = max(1, math.ceil(images / num_classes))
        return DataConfig(kind="online", path=data_path, num_identities=num_classes,
                          samples_per_identity=samples, **common)
    raise ConfigError(f"bench train: unknown source {source!r}; valid: {', '.join(SOURCES)}")


def _endless(source: TrainSource) -> Iterator[Batch]:
    """Batches of consecutive epochs, for benchmarks longer than one epoch."""
    epoch = 0
    while True:
        source.set_epoch(epoch)
        yield from source
        epoch += 1


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_train_benchmark(
    model: str = "iresnet50",
    batch_size: int = 512,
    num_classes: int = 10_000,
    precision: str = "bf16",
    channels_last: bool = True,
    compile: bool = False,
    source: str = "random",
    device: torch.device | str = "auto",
    steps: int = 20,
    warmup: int = 5,
    data_path: str = "",
    augmentation: str = "paper",
    head: str = "arcface",
    num_features: int = 512,
    workers: int = 8,
    image_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Time full training steps after ``warmup`` untimed ones.

    Args:
        model: backbone registry name (its default input size is used).
        batch_size: images per step.
        num_classes: classifier size (``random``, ``online``; ``disk`` takes the dataset's).
        precision: ``fp32``, ``bf16`` or ``fp16``.
        channels_last: channels-last model and batches.
        compile: ``torch.compile`` the backbone (warm-up then includes compilation).
        source: ``random``, ``disk`` or ``online``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a device.
        steps: timed steps.
        warmup: untimed steps first (allocator, cuDNN autotuning, compilation).
        data_path: the generated dataset (``disk``) or generation config YAML (``online``, "" for defaults).
        augmentation: ``none``, ``paper`` or ``digiface``, applied on the device as in training.
        head: margin head name.
        num_features: embedding size.
        workers: loader processes for ``disk``.
        image_size: crop size (H, W); None takes the model's default.

    Returns:
        ``images_per_second`` and ``seconds_per_step`` over the timed steps, the
        settings, ``num_classes`` actually used, the last ``loss`` and, on CUDA,
        ``peak_memory_gb``.

    Raises:
        ConfigError: an unknown source or model, or ``disk`` without ``data_path``.
    """
    if steps < 1 or warmup < 0:
        raise ConfigError(f"bench train: steps ({steps}) must be >= 1 and warmup ({warmup}) >= 0")
    target = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    size: tuple[int, int] = tuple(image_size or create_model(model).input_size)  # type: ignore[assignment]
    data = _data_config(source, size, batch_size, num_classes, batch_size * (steps + warmup), data_path,
                        augmentation, workers)
    cfg = RunConfig(data=data, model=ModelConfig(name=model, num_features=num_features), head=HeadConfig(name=head),
                    train=TrainConfig(precision=precision, channels_last=channels_last,  # type: ignore[arg-type]
                                      compile=compile, tensorboard=False))
    placement = Placement(target)
    if target.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(target)
    train_source = build_train_source(cfg.data_config(), target)
    parts = build_parts(cfg, placement, train_source.num_classes)
    wrap(parts, cfg, placement)
    parts.classifier.train()  # type: ignore[union-attr]
    batches = _endless(train_source)
    loss = torch.zeros(())
    start = time.perf_counter()
    for index in range(warmup + steps):
        if index == warmup:
            _synchronize(target)
            start = time.perf_counter()
        images, targets, weights = next(batches)
        parts.head.check_labels = index == 0  # as in training: no per-step host sync
        loss = train_step(parts, images, targets, weights, cfg.train).loss
    _synchronize(target)
    elapsed = time.perf_counter() - start
    result: dict[str, Any] = {
        "images_per_second": steps * batch_size / elapsed,
        "seconds_per_step": elapsed / steps,
        "model": model, "batch_size": batch_size, "num_classes": train_source.num_classes,
        "precision": precision, "channels_last": channels_last, "compile": compile, "source": source,
        "augmentation": augmentation, "device": str(target), "steps": steps, "warmup": warmup,
        "image_size": list(size), "loss": float(loss.detach()),
    }
    if target.type == "cuda":
        result["peak_memory_gb"] = torch.cuda.max_memory_allocated(target) / 2**30
    logger.info("train benchmark: %.1f img/s (%s, batch %d, %s, %s source) on %s", result["images_per_second"],
                model, batch_size, precision, source, target)
    return result
