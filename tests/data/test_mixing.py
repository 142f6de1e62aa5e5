"""Domain mixup: exact pixel and label arithmetic, ratio grid, and real-set oversampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.data.base import seeded_generator
from synface.data.mixing import MIXUP_RATIOS, domain_mixup, draw_ratio, mix_stream, oversampled_batches


def _batch(batch, seed, soft=False, classes=5):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, 4, 3, generator=generator) * 2 - 1
    a = torch.randint(classes, (batch,), generator=generator)
    b = torch.randint(classes, (batch,), generator=generator) if soft else a
    phi = torch.rand(batch, generator=generator) if soft else torch.ones(batch)
    return images, torch.stack([a, b], 1), torch.stack([phi, 1 - phi], 1)


def test_mixup_pixels_and_label_columns_are_exact():
    synthetic, real = _batch(6, 0, soft=True), _batch(6, 1)
    images, targets, weights = domain_mixup(synthetic, real, 0.35, num_synthetic_classes=100)
    for i in range(6):
        expected = 0.35 * synthetic[0][i] + 0.65 * real[0][i]
        assert torch.allclose(images[i], expected, atol=1e-7)
        assert targets[i].tolist() == [synthetic[1][i, 0], synthetic[1][i, 1], real[1][i, 0] + 100]
        assert weights[i].tolist() == pytest.approx(
            [0.35 * synthetic[2][i, 0].item(), 0.35 * synthetic[2][i, 1].item(), 0.65], abs=1e-6)
    assert torch.allclose(weights.sum(1), torch.ones(6), atol=1e-6)
    assert targets.dtype == torch.int64 and weights.dtype == torch.float32


def test_ratio_grid_and_fixed_seed_sequence():
    assert tuple(np.round(np.linspace(0, 1, 21), 10)) == MIXUP_RATIOS
    generator = seeded_generator(3, 0)
    again = [draw_ratio(generator) for _ in range(50)]
    assert all(value in MIXUP_RATIOS for value in again)
    generator = seeded_generator(3, 0)
    assert [draw_ratio(generator) for _ in range(50)] == again
    generator = seeded_generator(4, 0)
    assert [draw_ratio(generator) for _ in range(50)] != again
    assert len(set(again)) > 10  # spread over the grid, not one value


def test_mix_stream_uses_one_ratio_per_batch_and_trims_the_last():
    synthetic = [_batch(4, 0, soft=True), _batch(2, 1, soft=True)]
    real = [_batch(4, 2), _batch(4, 3)]
    mixed = list(mix_stream(synthetic, real, seeded_generator(9), num_synthetic_classes=10))
    generator = seeded_generator(9)
    for (images, targets, weights), syn, rea in zip(mixed, synthetic, real):
        lam = draw_ratio(generator)
        size = len(syn[0])
        assert torch.allclose(weights[:, 2], torch.full((size,), 1 - lam))
        assert torch.allclose(images, lam * syn[0] + (1 - lam) * rea[0][:size], atol=1e-7)
        assert torch.equal(targets[:, 2], rea[1][:size, 0] + 10)
    with pytest.raises(ValueError):
        list(mix_stream(synthetic, real[:1], seeded_generator(9), 10))


def test_oversampling_cycles_and_reshuffles_each_pass():
    batches = oversampled_batches(num_real=10, batch_size=4, num_batches=7, seed=0, epoch=0)
    assert len(batches) == 7 and all(len(b) == 4 for b in batches)
    stream = np.concatenate(batches)  # 28 = 2 full passes + 8
    first, second = stream[:10], stream[10:20]
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    assert len(set(stream[20:])) == 8
    same = oversampled_batches(10, 4, 7, seed=0, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, same))
    other_epoch = oversampled_batches(10, 4, 7, seed=0, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other_epoch))


def test_oversampling_ranks_read_disjoint_slices():
    ranks = [oversampled_batches(12, 3, 2, seed=1, epoch=0, rank=r, world_size=2) for r in range(2)]
    together = np.concatenate([np.concatenate(r) for r in ranks])
    assert sorted(together) == list(range(12))
