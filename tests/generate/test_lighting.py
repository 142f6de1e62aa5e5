"""Tests of the illumination sampler and the environment -> SH projection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.errors import ConfigError
from synface.generate.lighting import (
    LightConfig,
    blackbody_rgb,
    direction,
    environment_to_sh,
    frozen_light,
    lobe_attenuation,
    sample_light,
)
from synface.generate.shading import diffuse_irradiance, dominant_light


def _shade(light: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Albedo multiplier (N, 3) of one light at unit normals (N, 3)."""
    planes = torch.from_numpy(np.ascontiguousarray(normals.T)).double()[:, :, None]
    return diffuse_irradiance(planes, torch.from_numpy(np.asarray(light, dtype=np.float64))[None])[:, :, 0].T.numpy()


def _sphere(count: int = 2000) -> np.ndarray:
    n = np.random.default_rng(0).normal(size=(count, 3))
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def test_sampler_is_deterministic_and_varied() -> None:
    first = sample_light(np.random.default_rng([3, 1, 4]))
    again = sample_light(np.random.default_rng([3, 1, 4]))
    other = sample_light(np.random.default_rng([3, 1, 5]))
    assert first.shape == (27,) and first.dtype == np.float32
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_frozen_light_is_fixed_frontal_and_neutral() -> None:
    config = LightConfig(frozen=True)
    lights = [sample_light(np.random.default_rng(seed), config) for seed in range(3)]
    assert all(np.array_equal(lights[0], light) for light in lights)
    assert np.array_equal(lights[0], frozen_light())
    normals = _sphere()
    shade = _shade(lights[0], normals)
    np.testing.assert_allclose(shade[:, 0], shade[:, 2], atol=1e-6)  # neutral colour
    brightest = normals[shade[:, 0].argmax()]
    assert brightest[2] > 0.9 and brightest[1] > 0  # facing the camera, a little from above


def test_ambient_renders_exactly_its_level() -> None:
    light = environment_to_sh(np.array([0.2, 0.4, 0.6]), [])
    np.testing.assert_allclose(_shade(light, _sphere(50)), np.tile([0.2, 0.4, 0.6], (50, 1)), atol=1e-12)


def test_side_light_lights_its_side() -> None:
    light = environment_to_sh(np.zeros(3), [(direction(90.0, 0.0), np.ones(3), 0.0)])  # from image right
    facing_right, facing_left = _shade(light, np.array([[1.0, 0, 0], [-1.0, 0, 0]]))
    assert facing_right[0] == pytest.approx(1.0625)  # second-order SH of a unit clamped cosine
    assert facing_left[0] == pytest.approx(0.25 - 0.5 + 5 / 16)
    found, _ = dominant_light(torch.from_numpy(light)[None])
    np.testing.assert_allclose(found[0].numpy(), [1.0, 0.0, 0.0], atol=1e-12)


def test_soft_lights_spread_their_energy() -> None:
    hard = environment_to_sh(np.zeros(3), [(direction(0, 0), np.ones(3), 0.0)])
    soft = environment_to_sh(np.zeros(3), [(direction(0, 0), np.ones(3), 60.0)])
    assert soft[0] == pytest.approx(hard[0])  # same total energy
    facing, grazing = np.array([[0, 0, 1.0], [1.0, 0, 0]])  # towards the light, at 90 degrees to it
    normals = np.stack([facing, grazing])
    soft_shade, hard_shade = _shade(soft, normals)[:, 0], _shade(hard, normals)[:, 0]
    assert soft_shade[0] < hard_shade[0] and soft_shade[1] > hard_shade[1]
    factors = lobe_attenuation(60.0)
    assert factors[0] == 1.0 and 1.0 > factors[1] > factors[2] > 0.0
    np.testing.assert_array_equal(lobe_attenuation(0.0), np.ones(3))


def test_blackbody_colours() -> None:
    for temperature in (2000.0, 3000.0, 6500.0, 10000.0):
        rgb = blackbody_rgb(temperature)
        assert rgb @ np.array([0.2126, 0.7152, 0.0722]) == pytest.approx(1.0)
    warm, neutral, cool = blackbody_rgb(3000.0), blackbody_rgb(6500.0), blackbody_rgb(10000.0)
    assert warm[0] > warm[1] > warm[2]
    assert np.abs(neutral - 1.0).max() < 0.1
    assert cool[2] > cool[0]
    np.testing.assert_allclose(blackbody_rgb(3000.0, saturation=0.0), np.ones(3))


def test_samples_are_plausible() -> None:
    normals = _sphere(500)
    front = normals[normals[:, 2] > 0.5]
    brightness, outdoor_like = [], 0
    for seed in range(200):
        light = sample_light(np.random.default_rng([7, seed]))
        shade = _shade(light, normals)
        assert shade.min() > -0.15  # SH ringing only; no strongly negative light
        front_shade = _shade(light, front).mean(0)
        assert 0.05 < front_shade.mean() < 3.0
        assert 0.4 < front_shade[2] / front_shade[0] < 2.5  # colour casts stay moderate
        brightness.append(front_shade.mean())
        outdoor_like += front_shade[2] > front_shade[0]
    assert 0.4 < np.mean(brightness) < 1.6
    assert 10 < outdoor_like < 190  # both warm and cool scenes occur


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="ambient"):
        LightConfig(ambient=(0.5, 0.1))
    with pytest.raises(ConfigError, match="outdoor_probability"):
        LightConfig(outdoor_probability=1.5)
    with pytest.raises(ConfigError, match="indoor_temperature_k"):
        LightConfig(indoor_temperature_k=(500.0, 3000.0))
    with pytest.raises(ConfigError, match="azimuth_deg"):
        LightConfig(azimuth_deg=(-200.0, 0.0))
    assert LightConfig.from_dict({"ambient": [0.1, 0.2]}).ambient == (0.1, 0.2)
