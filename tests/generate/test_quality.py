"""Photo degradations: neutral parameters change nothing, each effect matches a slow reference."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from synface.errors import ConfigError, DataError
from synface.generate import quality
from synface.generate.quality import (
    IDENTITY,
    PARAM_NAMES,
    QualityConfig,
    blockiness,
    degrade,
    gaussian_blur,
    jpeg_compress,
    motion_blur,
    sample_quality,
)


def smooth_images(batch: int = 4, height: int = 112, width: int = 96, seed: int = 0) -> torch.Tensor:
    """Photo-like test images: smooth random structure plus a few edges, in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, height // 8, width // 8, generator=generator)
    images = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    images[:, :, height // 3 + 3:height // 2 + 3, width // 4 + 3:] += 0.3  # edges off the 8x8 grid
    return images.clamp(0.0, 1.0)


def params_with(batch: int, **values: float) -> torch.Tensor:
    rows = np.tile(IDENTITY, (batch, 1))
    for name, value in values.items():
        rows[:, PARAM_NAMES.index(name)] = value
    return torch.from_numpy(rows)


def test_identity_params_return_input_exactly() -> None:
    images = torch.rand(5, 3, 112, 96)
    assert torch.equal(degrade(images, params_with(5)), images)
    # Neutral rows stay untouched even when other rows of the batch are degraded.
    mixed = torch.from_numpy(np.stack([sample_quality(np.random.default_rng(i), QualityConfig(
        blur_probability=1, noise_probability=1, jpeg_probability=1, tone_probability=1)) for i in range(5)]))
    mixed[[1, 3]] = torch.from_numpy(IDENTITY)
    out = degrade(images, mixed)
    assert torch.equal(out[[1, 3]], images[[1, 3]])
    assert not torch.equal(out[0], images[0])


def test_frozen_config_samples_identity_and_sampling_is_deterministic() -> None:
    assert np.array_equal(sample_quality(np.random.default_rng(3), QualityConfig(frozen=True)), IDENTITY)
    a = sample_quality(np.random.default_rng([1, 2]))
    b = sample_quality(np.random.default_rng([1, 2]))
    assert a.dtype == np.float32 and a.shape == (len(PARAM_NAMES),)
    assert np.array_equal(a, b)
    draws = np.stack([sample_quality(np.random.default_rng(i)) for i in range(400)])
    jpeg = draws[:, PARAM_NAMES.index("jpeg_quality")] > 0
    expected = QualityConfig().jpeg_probability
    assert expected - 0.1 < jpeg.mean() < expected + 0.1


def test_degrade_is_deterministic_and_in_range() -> None:
    images = smooth_images(6)
    config = QualityConfig(blur_probability=0.5, motion_probability=0.5, resample_probability=0.5,
                           noise_probability=1.0, jpeg_probability=0.5)
    params = torch.from_numpy(np.stack([sample_quality(np.random.default_rng(i), config) for i in range(6)]))
    first, second = degrade(images, params), degrade(images, params)
    assert torch.equal(first, second)
    assert first.shape == images.shape and first.min() >= 0 and first.max() <= 1
    # Per-image results do not depend on the rest of the batch.
    alone = degrade(images[2:3], params[2:3])
    assert torch.allclose(alone, first[2:3], atol=1e-5)


def test_gaussian_blur_matches_scipy() -> None:
    images = smooth_images(2, 40, 32) + 0.2 * torch.rand(2, 3, 40, 32)
    sigma = torch.tensor([0.7, 1.6])
    out = gaussian_blur(images, sigma)
    for i, s in enumerate(sigma.tolist()):
        radius = int(np.ceil(3 * s))
        reference = ndimage.gaussian_filter(images[i].numpy(), sigma=(0, s, s), mode="nearest",
                                            truncate=(radius + 0.25) / s)
        assert np.abs(out[i].numpy() - reference).max() < 1e-5


def test_motion_blur_streaks_along_its_angle() -> None:
    image = torch.zeros(2, 3, 31, 31)
    image[:, :, 15, 15] = 1.0
    out = motion_blur(image, torch.tensor([7.0, 7.0]), torch.tensor([0.0, 90.0]))
    assert torch.allclose(out.sum((2, 3)), torch.ones(2, 3), atol=1e-5)  # energy preserved
    horizontal, vertical = out[0, 0], out[1, 0]
    assert (horizontal[15] > 0.05).sum() >= 6 and (horizontal[:, 15] > 0.05).sum() <= 1
    assert (vertical[:, 15] > 0.05).sum() >= 6 and (vertical[15] > 0.05).sum() <= 1
    flat = torch.full((1, 3, 20, 20), 0.4)
    assert torch.allclose(motion_blur(flat, torch.tensor([5.0]), torch.tensor([33.0])), flat, atol=1e-6)


def test_jpeg_matches_libjpeg_closely() -> None:
    images = smooth_images(3, 112, 96, seed=1) * 0.8 + 0.1 * torch.rand(3, 3, 112, 96)
    for q in (30, 75):
        out = jpeg_compress(images, torch.full((3,), float(q)))
        for i in range(3):
            pixels = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=q, subsampling=2)
            reference = np.asarray(Image.open(buffer), dtype=np.float32) / 255.0
            ours = out[i].permute(1, 2, 0).numpy()
            assert np.abs(ours - reference).mean() < 0.01, q
            assert np.abs(ours - pixels / 255.0).mean() > 0.003  # it really compressed


def test_jpeg_blockiness_grows_as_quality_drops() -> None:
    images = smooth_images(1, seed=2).expand(4, -1, -1, -1).contiguous()
    params = params_with(4, jpeg_quality=0.0)
    params[:, PARAM_NAMES.index("jpeg_quality")] = torch.tensor([0.0, 90.0, 40.0, 10.0])
    scores = blockiness(degrade(images, params))
    assert scores[0] < scores[1] < scores[2] < scores[3]
    assert scores[3] > 2.0 * scores[0]


def test_noise_has_the_requested_strength() -> None:
    images = torch.full((2, 3, 112, 96), 0.5)
    params = params_with(2, noise_sigma=0.02, noise_seed=7.0)
    params[1, PARAM_NAMES.index("noise_seed")] = 8.0
    out = degrade(images, params)
    residual = out - images
    assert abs(float(residual.std()) - 0.02) < 0.002 and abs(float(residual.mean())) < 0.002
    assert not torch.equal(out[0], out[1])  # different seeds, different noise
    assert torch.equal(out, degrade(images, params))


def test_tone_and_colour_effects() -> None:
    images = smooth_images(2)
    grey = degrade(images, params_with(2, saturation=0.0))
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-6) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-6)
    warm = degrade(images, params_with(2, gain_red=1.2, gain_blue=0.8))
    assert (warm[:, 0] - images[:, 0]).mean() > 0.02 and (warm[:, 2] - images[:, 2]).mean() < -0.02
    brighter = degrade(images, params_with(2, exposure=1.3))
    assert brighter.mean() > images.mean()


def test_resampling_removes_fine_detail() -> None:
    images = torch.rand(2, 3, 112, 96)
    out = degrade(images, params_with(2, resample_scale=0.4))
    detail = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()
    assert detail(out) < 0.5 * detail(images)


def test_bad_inputs_raise() -> None:
    with pytest.raises(DataError, match="params"):
        degrade(torch.rand(2, 3, 8, 8), torch.zeros(3, len(PARAM_NAMES)))
    with pytest.raises(DataError, match="images"):
        degrade(torch.rand(2, 8, 8), torch.zeros(2, len(PARAM_NAMES)))
    with pytest.raises(ConfigError, match="jpeg_probability"):
        QualityConfig(jpeg_probability=1.5)
    with pytest.raises(ConfigError, match="blur_sigma"):
        QualityConfig(blur_sigma=(2.0, 1.0))
    assert quality.QualityConfig.from_dict({"noise_probability": 0.0}).noise_probability == 0.0
