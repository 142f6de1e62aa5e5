"""Throughput of the generator: aligned face crops per second, images kept on the device.

Measures what online training pays per batch: drawing the per-sample factors on
the CPU, then mixing identities, building shapes and albedo, rendering the
background and the face straight into the aligned crop, degrading and quantising
on the device. Identity coefficients are drawn once up front (the writer and online
training cache them per identity); that one-off cost is reported separately.

Shared machines make wall time noisy, so the CPU time of this process is reported
beside it (``images_per_cpu_second``: throughput per busy core).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

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


def default_benchmark_config(overrides: Sequence[str] = ()) -> GenerateConfig:
    """The paper's 10K_50 with identity mixup, with ``"dotted.key=value"`` overrides applied."""
    config = GenerateConfig(layout=LayoutConfig(name="10K_50"), mixup=MixupConfig(mode="grid"))
    return config.with_overrides(list(overrides)) if overrides else config


def run_generate_benchmark(
    batch_size: int = 64,
    iterations: int = 5,
    device: torch.device | str = "cpu",
    config: GenerateConfig | None = None,
    warmup: int = 1,
    sampling_workers: int = 0,
    generator: FaceGenerator | None = None,
    render_threads: int | None = None,
) -> dict[str, float | int | str]:
    """Time the generator on batches of distinct samples.

    Args:
        batch_size: images per batch.
        iterations: timed batches (after ``warmup`` untimed ones).
        device: where to render.
        config: what to generate (default: :func:`default_benchmark_config`).
        warmup: untimed batches first (allocator, kernels, caches).
        sampling_workers: processes drawing factors (see :class:`FaceGenerator`).
        generator: a ready generator (built from ``config`` when None).
        render_threads: CPU threads drawing a batch (see :class:`FaceGenerator`).

    Returns:
        ``images_per_second``: end to end, the next batch's factors drawn while the
        current one renders (with sampling workers); ``images_per_cpu_second``: the
        same images over this process's CPU time; ``sampling_images_per_second`` and
        ``device_images_per_second`` (with ``device_images_per_cpu_second``): each stage
        alone; ``identity_seconds_per_identity`` (the one-off identity draws); and the
        sizes and settings involved.
    """
    device = torch.device(device)
    config = default_benchmark_config() if config is None else config
    own = generator is None
    if own:
        generator = FaceGenerator(config, device, sampling_workers=sampling_workers, render_threads=render_threads)
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

    device_seconds = device_cpu = 0.0
    for step, drawn in enumerate(factors):
        start, cpu = time.perf_counter(), time.process_time()
        images, _ = generator.render_factors(drawn)
        _synchronize(device)
        if step >= warmup:
            device_seconds += time.perf_counter() - start
            device_cpu += time.process_time() - cpu

    # End to end: sampling of batch k + 1 overlaps rendering of batch k (with workers).
    pending = generator.sample_async(*batches[warmup])
    start, cpu = time.perf_counter(), time.process_time()
    for step in range(warmup, steps):
        current = pending.result()
        if step + 1 < steps:
            pending = generator.sample_async(*batches[step + 1])
        images, _ = generator.render_factors(current)
        _synchronize(device)
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    images_timed = batch_size * iterations
    result = {
        "images_per_second": images_timed / total,
        "images_per_cpu_second": images_timed / max(total_cpu, 1e-9),
        "sampling_images_per_second": batch_size * steps / sampling,
        "device_images_per_second": images_timed / device_seconds,
        "device_images_per_cpu_second": images_timed / max(device_cpu, 1e-9),
        "identity_seconds_per_identity": identity_seconds / max(len(involved), 1),
        "batch_size": batch_size,
        "iterations": iterations,
        "device": str(device),
        "sampling_workers": generator.sampling_workers,
        "render_threads": generator.render_threads,
        "torch_threads": torch.get_num_threads(),
        "face_model": generator.model.name,
        "vertices": generator.renderer.model.num_vertices,
        "triangles": int(generator.renderer.model.triangles.shape[0]),
        "height": generator.height,
        "width": generator.width,
        "supersample": config.render.supersample,
        "image_dtype": str(images.dtype).replace("torch.", ""),
    }
    logger.info("generate benchmark: %.1f img/s on %s (batch %d)", result["images_per_second"], device, batch_size)
    return result
