"""Domain mixup: blend each synthetic batch with a real batch and append the real label.

As in the paper (Sec. 3.4) and its official code: one ratio ``lam`` per batch from
``{0, 0.05, ..., 1}``; ``x = lam * x_syn + (1 - lam) * x_real`` paired by batch
position, on float images in ``[-1, 1]``; real labels are offset by the number of
synthetic classes (one classifier over both); the small real set is oversampled,
cycled and reshuffled on every pass, to the synthetic loader's length. Output
labels are ``targets (B, 3) = (a, b, r + num_syn_classes)`` and ``weights (B, 3) =
(lam * w_a, lam * w_b, 1 - lam)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from synface.data.base import Batch

# np.linspace(0, 1, 21) as exact k / 20 values.
MIXUP_RATIOS: tuple[float, ...] = tuple(k / 20 for k in range(21))
REAL_STREAM = 7002  # last seed key of the real-set shuffles (see loader.EPOCH_STREAM)


def draw_ratio(generator: torch.Generator, ratios: tuple[float, ...] = MIXUP_RATIOS) -> float:
    """One mixing ratio ``lam``, uniform over ``ratios``."""
    return ratios[int(torch.randint(len(ratios), (1,), generator=generator))]


def domain_mixup(synthetic: Batch, real: Batch, lam: float, num_synthetic_classes: int) -> Batch:
    """Mix a synthetic and a real batch of the same size.

    Args:
        synthetic: images (B, 3, H, W) float in [-1, 1], targets (B, 2), weights (B, 2).
        real: images (B, 3, H, W) float, targets (B, 2) plain real labels (column 0 is
            used), weights (B, 2).
        lam: the synthetic share of this batch.
        num_synthetic_classes: offset added to real labels.

    Returns:
        images (B, 3, H, W), targets (B, 3) int64, weights (B, 3) float32.
    """
    syn_images, syn_targets, syn_weights = synthetic
    real_images, real_targets, _ = real
    assert syn_images.shape == real_images.shape, (syn_images.shape, real_images.shape)
    images = lam * syn_images + (1.0 - lam) * real_images
    real_column = real_targets[:, :1].to(syn_targets.device) + num_synthetic_classes
    targets = torch.cat([syn_targets, real_column], dim=1)
    weights = torch.cat([lam * syn_weights, torch.full_like(syn_weights[:, :1], 1.0 - lam)], dim=1)
    return images, targets, weights.float()


def oversampled_batches(
    num_real: int,
    batch_size: int,
    num_batches: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
) -> list[np.ndarray]:
    """Real-set index batches for one epoch: the set cycled, reshuffled on every pass.

    The index stream is ``perm_0 + perm_1 + ...`` with ``perm_p`` drawn from
    ``default_rng([seed, epoch, p, REAL_STREAM])``; global batch ``t`` of rank ``r`` is the
    stream's slice number ``t * world_size + r``, so ranks read disjoint parts.

    Args:
        num_real: real samples available.
        batch_size: samples per batch (per rank).
        num_batches: batches per rank this epoch (the synthetic loader's length).
        seed, epoch: fix the shuffles.
        rank, world_size: data-parallel position.

    Returns:
        ``num_batches`` arrays of ``batch_size`` indices.
    """
    assert num_real > 0 and batch_size > 0
    total = num_batches * batch_size * world_size
    passes = max(1, math.ceil(total / num_real))
    stream = np.concatenate([np.random.default_rng([seed, epoch, p, REAL_STREAM]).permutation(num_real)
                             for p in range(passes)])
    return [
        stream[(t * world_size + rank) * batch_size:(t * world_size + rank + 1) * batch_size]
        for t in range(num_batches)
    ]


def mix_stream(
    synthetic: Iterable[Batch],
    real: Iterable[Batch],
    generator: torch.Generator,
    num_synthetic_classes: int,
) -> Iterator[Batch]:
    """Pair float batches from two equally long streams and mix each pair with a fresh ``lam``.

    A short last synthetic batch is paired with the first rows of its real batch.
    """
    for syn_batch, real_batch in zip(synthetic, real, strict=True):
        size = len(syn_batch[0])
        real_batch = tuple(t[:size] for t in real_batch)  # type: ignore[assignment]
        yield domain_mixup(syn_batch, real_batch, draw_ratio(generator), num_synthetic_classes)
