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
    expose,
    frozen_light,
    lobe_attenuation,
    meter,
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


def _front_mean(light: np.ndarray) -> np.ndarray:
    """Slow reference of the camera's meter: the shading averaged over a camera-facing
    hemisphere, each normal weighted by its projected area n_z (midpoint quadrature)."""
    steps = 400
    theta = (np.arange(steps) + 0.5) * (np.pi / 2) / steps
    phi = (np.arange(2 * steps) + 0.5) * (2 * np.pi) / (2 * steps)
    t, f = np.meshgrid(theta, phi, indexing="ij")
    normals = np.stack([np.sin(t) * np.cos(f), np.sin(t) * np.sin(f), np.cos(t)], -1).reshape(-1, 3)
    weight = (np.cos(t) * np.sin(t)).reshape(-1)  # n_z times the solid-angle element
    return (_shade(light, normals) * weight[:, None]).sum(0) / weight.sum()


def test_meter_equals_the_hemisphere_average() -> None:
    for seed in range(5):
        light = np.random.default_rng(seed).normal(size=27)
        np.testing.assert_allclose(meter(light), _front_mean(light), rtol=1e-4, atol=1e-5)


def test_exposure_meets_its_target_and_removes_the_cast() -> None:
    warm = environment_to_sh(np.array([0.3, 0.2, 0.1]), [(direction(30.0, 20.0), np.array([1.5, 1.0, 0.6]), 10.0)])
    luminance = np.array([0.2126, 0.7152, 0.0722])
    exposed = expose(warm, brightness=0.9, balance=0.0)
    assert meter(exposed) @ luminance == pytest.approx(0.9, rel=1e-6)
    ratio = meter(exposed) / meter(warm)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)  # no balance: one gain for all channels
    grey = meter(expose(warm, brightness=0.9, balance=1.0))
    np.testing.assert_allclose(grey, 0.9, rtol=1e-6)  # full balance: a neutral front at the target
    dark = environment_to_sh(np.full(3, 0.01), [])
    assert meter(expose(dark, 0.9, 0.0)) @ luminance == pytest.approx(4.0 * 0.01, rel=1e-6)  # gain capped


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="ambient"):
        LightConfig(ambient=(0.5, 0.1))
    with pytest.raises(ConfigError, match="outdoor_probability"):
        LightConfig(outdoor_probability=1.5)
    with pytest.raises(ConfigError, match="indoor_temperature_k"):
        LightConfig(indoor_temperature_k=(500.0, 3000.0))
    with pytest.raises(ConfigError, match="azimuth_deg"):
        LightConfig(azimuth_deg=(-200.0, 0.0))
    with pytest.raises(ConfigError, match="side_light_probability"):
        LightConfig(flash_probability=0.7, side_light_probability=0.5)
    with pytest.raises(ConfigError, match="white_balance"):
        LightConfig(white_balance=(0.5, 1.2))
    assert LightConfig.from_dict({"ambient": [0.1, 0.2]}).ambient == (0.1, 0.2)
