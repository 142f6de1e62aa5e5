"""Throughput of the generator: aligned face crops per second, images kept on the device.

Measures what online training pays per batch: drawing the per-sample factors on
the CPU, then mixing identities, building shapes and albedo, rendering the
background and the face straight into the aligned crop, degrading and quantising
on the device. Identity coefficients are drawn once up front (the writer and online
training cache them per identity); that one-off cost is reported separately.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from synface.generate.generator import FaceGenerator
from synface.generate.layout import LayoutConfig
from synface.generate.mixup import MixupConfig
from synface.generate.sampling import GenerateConfig

logger = logging.getLogger(__name__)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_generate_benchmark(
    batch_size: int = 64,
    iterations: int = 5,
    device: torch.device | str = "cpu",
    config: GenerateConfig | None = None,
    warmup: int = 1,
    sampling_workers: int = 0,
    generator: FaceGenerator | None = None,
) -> dict[str, float | int | str]:
    """Time the generator on batches of distinct samples.

    Args:
        batch_size: images per batch.
        iterations: timed batches (after ``warmup`` untimed ones).
        device: where to render.
        config: what to generate (default: the paper's 10K_50 with identity mixup).
        warmup: untimed batches first (allocator, kernels, caches).
        sampling_workers: processes drawing factors (see :class:`FaceGenerator`).
        generator: a ready generator (built from ``config`` when None).

    Returns:
        ``images_per_second``: end to end, the next batch's factors drawn while the
        current one renders; ``sampling_images_per_second`` and
        ``device_images_per_second``: each stage alone; ``identity_seconds_per_identity``
        (the one-off identity draws); and the sizes involved.
    """
    device = torch.device(device)
    if config is None:
        config = GenerateConfig(layout=LayoutConfig(name="10K_50"), mixup=MixupConfig(mode="grid"))
    own = generator is None
    generator = FaceGenerator(config, device, sampling_workers=sampling_workers) if own else generator
    try:
        return _measure(generator, config, device, batch_size, iterations, warmup)
    finally:
        if own:
            generator.close()


def _measure(generator: FaceGenerator, config: GenerateConfig, device: torch.device, batch_size: int,
             iterations: int, warmup: int) -> dict[str, float | int | str]:
    layout = config.layout.resolve()
    steps = warmup + iterations
    # Distinct samples spread over many identities, as a shuffled epoch visits them.
    positions = np.arange(batch_size * steps) * 7919 % layout.num_samples
    identity, sample_index = layout.locate_positions(positions)
    batches = [(identity[k * batch_size:(k + 1) * batch_size], sample_index[k * batch_size:(k + 1) * batch_size])
               for k in range(steps)]

    start = time.perf_counter()
    factors = [pending.result() for pending in [generator.sample_async(*b) for b in batches]]
    sampling = time.perf_counter() - start
    involved = np.unique(np.concatenate([np.concatenate([f.identity, f.mix_partner]) for f in factors]))
    start = time.perf_counter()
    generator.identity_coefficients(involved)
    identity_seconds = time.perf_counter() - start

    device_seconds = 0.0
    for step, drawn in enumerate(factors):
        start = time.perf_counter()
        images, _ = generator.render_factors(drawn)
        _synchronize(device)
        if step >= warmup:
            device_seconds += time.perf_counter() - start

    # End to end: sampling of batch k + 1 overlaps rendering of batch k (with workers).
    pending = generator.sample_async(*batches[warmup])
    start = time.perf_counter()
    for step in range(warmup, steps):
        current = pending.result()
        if step + 1 < steps:
            pending = generator.sample_async(*batches[step + 1])
        images, _ = generator.render_factors(current)
        _synchronize(device)
    total = time.perf_counter() - start
    images_timed = batch_size * iterations
    result = {
        "images_per_second": images_timed / total,
        "sampling_images_per_second": batch_size * steps / sampling,
        "device_images_per_second": images_timed / device_seconds,
        "identity_seconds_per_identity": identity_seconds / max(len(involved), 1),
        "batch_size": batch_size,
        "iterations": iterations,
        "device": str(device),
        "sampling_workers": generator.sampling_workers,
        "face_model": generator.model.name,
        "vertices": generator.model.num_vertices,
        "height": generator.height,
        "width": generator.width,
        "supersample": config.render.supersample,
        "image_dtype": str(images.dtype).replace("torch.", ""),
    }
    logger.info("generate benchmark: %.1f img/s on %s (batch %d)", result["images_per_second"], device, batch_size)
    return result
