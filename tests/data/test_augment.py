"""Augmentation: determinism, identities (p=0, flip twice), exact geometry and value ranges."""

from __future__ import annotations

import pickle

import pytest
import torch

from synface.data import augment
from synface.data.augment import (
    ColorJitter,
    Compose,
    HorizontalFlip,
    RandomErasing,
    RandomWarp,
    create_augmentation,
    homography_from_points,
)
from synface.errors import ConfigError

ALL_TRANSFORMS = [
    augment.HorizontalFlip, augment.RandomResizeCrop, augment.RandomErasing, augment.GaussianBlur,
    augment.GaussianNoise, augment.MotionBlur, augment.Grayscale, augment.DownUpSample,
    augment.JPEGCompression,
]


def _images(batch=6, height=16, width=12):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(3)) * 2 - 1


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["paper", "digiface"])
def test_pipelines_are_deterministic_and_in_range(name):
    images = _images(batch=24)
    pipeline = create_augmentation(name)
    first = pipeline(images, _generator(5))
    second = pickle.loads(pickle.dumps(pipeline))(images, _generator(5))
    assert torch.equal(first, second)
    assert not torch.equal(first, pipeline(images, _generator(6)))
    assert first.shape == images.shape and first.dtype == images.dtype
    assert first.min() >= -1.0 - 1e-5 and first.max() <= 1.0 + 1e-5


@pytest.mark.parametrize("transform", ALL_TRANSFORMS)
def test_probability_zero_is_the_identity(transform):
    images = _images()
    assert torch.equal(transform(p=0.0)(images, _generator()), images)


def test_colour_and_warp_with_zero_probabilities_are_the_identity():
    images = _images()
    jitter = ColorJitter(p_brightness=0, p_contrast=0, p_hue=0, p_saturation=0)
    assert torch.allclose(jitter(images, _generator()), images, atol=1e-6)
    assert torch.equal(RandomWarp(p_aspect=0, p_affine=0, p_perspective=0)(images, _generator()), images)


def test_flip_is_a_true_mirror_and_twice_is_the_identity():
    images = _images()
    flip = HorizontalFlip(p=1.0)
    once = flip(images, _generator())
    width = images.shape[-1]
    for x in range(width):
        assert torch.equal(once[..., x], images[..., width - 1 - x])
    assert torch.equal(flip(once, _generator()), images)


def test_transforms_leave_unchosen_samples_untouched():
    images = _images(batch=32)
    out = Compose([HorizontalFlip(p=0.5)])(images, _generator(1))
    changed = [not torch.equal(a, b) for a, b in zip(out, images)]
    assert 0 < sum(changed) < 32
    for a, b, moved in zip(out, images, changed):
        assert torch.equal(a, b.flip(-1) if moved else b)


def test_erasing_fills_one_rectangle_of_bounded_area():
    images = torch.ones(16, 3, 20, 20)
    out = RandomErasing(p=1.0, area=(0.1, 0.2), value=0.0)(images, _generator())
    for image in out:
        erased = (image[0] == 0)
        rows, cols = erased.any(1).nonzero().flatten(), erased.any(0).nonzero().flatten()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert erased.sum() == box  # a solid rectangle
        assert 0.1 * 400 * 0.5 <= box <= 0.2 * 400 * 1.5  # rounding of sides allowed
        assert torch.equal(image[0] == 0, image[2] == 0)


def test_warp_translation_and_half_turn_are_exact():
    images = _images(batch=2)
    height, width = images.shape[-2:]
    to_normalised = torch.diag(torch.tensor([2.0 / width, 2.0 / height, 1.0], dtype=torch.float64))

    def warp_by(forward):
        sample = to_normalised @ torch.linalg.inv(forward) @ torch.linalg.inv(to_normalised)
        return augment._warp(images, sample.expand(2, 3, 3).float())

    shift = torch.eye(3, dtype=torch.float64)
    shift[0, 2] = 2.0  # two pixels to the right
    moved = warp_by(shift)
    assert torch.allclose(moved[..., 2:], images[..., :-2], atol=1e-5)
    assert torch.allclose(moved[..., :2], torch.zeros_like(moved[..., :2]))
    half_turn = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))
    assert torch.allclose(warp_by(half_turn), images.flip(-1).flip(-2), atol=1e-5)


def test_homography_maps_the_four_points_exactly():
    source = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]], dtype=torch.float64)
    target = source + torch.tensor([[[0.1, -0.05], [0.0, 0.2], [-0.1, 0.0], [0.05, 0.05]]], dtype=torch.float64)
    matrix = homography_from_points(source, target)
    points = torch.cat([source, torch.ones(1, 4, 1, dtype=torch.float64)], dim=-1) @ matrix.transpose(1, 2)
    assert torch.allclose(points[..., :2] / points[..., 2:], target, atol=1e-12)


def test_unknown_augmentation_lists_valid_names():
    with pytest.raises(ConfigError, match="valid: none, paper, digiface"):
        create_augmentation("heavy")
