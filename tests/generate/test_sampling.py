"""Factor sampling: deterministic keys, independent streams, frozen factors, config validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import norm

from synface.errors import ConfigError
from synface.generate.lighting import frozen_light
from synface.generate.quality import IDENTITY as PRISTINE
from synface.generate.sampling import (
    AngleConfig,
    FactorSampler,
    GenerateConfig,
    PoseConfig,
    bundled_configs,
    load_generate_config,
    sample_angle,
    sample_pose,
    sample_rng,
    truncated_normal,
)

NAMES = ("jawOpen", "eyeBlink_L", "eyeBlink_R", "mouthSmile_L", "mouthSmile_R", "browInnerUp")
FIELDS = ("mix_partner", "mix_phi", "expression", "pose", "light", "camera", "landmark_jitter", "background", "quality")


def _sampler(config: GenerateConfig) -> FactorSampler:
    return FactorSampler(config, NAMES, 7)


def _config(**overrides: object) -> GenerateConfig:
    base = GenerateConfig.from_dict({"layout": "6_4", "mixup": {"mode": "grid"}})
    return base.with_overrides([f"{k}={v}" for k, v in overrides.items()])


def test_a_sample_depends_only_on_its_key_not_on_the_batch() -> None:
    sampler = _sampler(_config())
    batch = sampler.samples(np.array([0, 3, 5, 3]), np.array([1, 0, 2, 3]))
    alone = sampler.samples(np.array([3]), np.array([0]))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(batch, name)[1:2], getattr(alone, name), err_msg=name)
    # Different samples of one identity, and the same sample under another seed, differ.
    assert not np.array_equal(batch.pose[1], batch.pose[3])
    other_seed = _sampler(_config(seed=1)).samples(np.array([3]), np.array([0]))
    assert not np.array_equal(other_seed.pose, alone.pose)


def test_keys_follow_the_documented_streams() -> None:
    """Sample (i, j) draws its pose from default_rng([seed, 1, i, j, 1]) (stream order of SAMPLE_STREAMS)."""
    config = _config(seed=11)
    factors = _sampler(config).samples(np.array([2]), np.array([3]))
    expected = sample_pose(np.random.default_rng([11, 1, 2, 3, 1]), config.pose)
    np.testing.assert_array_equal(factors.pose[0], expected)


@pytest.mark.parametrize(
    ("frozen", "changed"),
    [("pose", ("pose",)), ("expression", ("expression",)), ("light", ("light",)),
     ("noise", ("camera", "landmark_jitter", "background", "quality"))],
)
def test_freezing_one_factor_leaves_the_others_unchanged(frozen: str, changed: tuple[str, ...]) -> None:
    ids, samples = np.array([0, 1, 2, 4, 5]), np.array([0, 3, 1, 2, 3])
    free = _sampler(_config()).samples(ids, samples)
    fixed = _sampler(_config(**{f"{frozen}.frozen": "true"})).samples(ids, samples)
    for name in FIELDS:
        if name in changed:
            assert not np.array_equal(getattr(free, name), getattr(fixed, name)), name
            # A frozen factor is the same canonical value for every sample.
            values = getattr(fixed, name)
            assert np.all(values == values[:1]), name
        else:
            np.testing.assert_array_equal(getattr(free, name), getattr(fixed, name), err_msg=name)


def test_canonical_values_of_frozen_factors() -> None:
    config = _config(**{"pose.frozen": "true", "expression.frozen": "true", "light.frozen": "true",
                        "noise.frozen": "true", "noise.camera_distance": "[80, 120]"})
    factors = _sampler(config).samples(np.array([0, 1]), np.array([0, 1]))
    np.testing.assert_array_equal(factors.pose, 0.0)
    np.testing.assert_array_equal(factors.expression, 0.0)
    np.testing.assert_array_equal(factors.light, np.tile(frozen_light(), (2, 1)))
    np.testing.assert_array_equal(factors.camera, 100.0)
    np.testing.assert_array_equal(factors.landmark_jitter, 0.0)
    np.testing.assert_array_equal(factors.quality, np.tile(PRISTINE, (2, 1)))
    np.testing.assert_array_equal(factors.background, factors.background[:1].repeat(2, 0))


def test_changing_one_factors_ranges_leaves_the_others_unchanged() -> None:
    ids, samples = np.array([0, 1, 2]), np.array([0, 1, 2])
    base = _sampler(_config()).samples(ids, samples)
    changed = _sampler(_config(**{"light.ambient": "[0.0, 0.1]", "pose.yaw.std": "25.0"})).samples(ids, samples)
    for name in ("expression", "camera", "background", "quality", "mix_partner", "mix_phi"):
        np.testing.assert_array_equal(getattr(base, name), getattr(changed, name), err_msg=name)
    assert not np.array_equal(base.light, changed.light)
    np.testing.assert_array_equal(base.pose[:, 1:], changed.pose[:, 1:])  # pitch and roll have their own draws


def test_identity_coefficients_are_keyed_per_identity_and_truncated() -> None:
    config = _config(**{"identity.truncation": "1.5", "identity.shape_std": "2.0"})
    sampler = _sampler(config)
    shape, appearance = sampler.identities(np.arange(300))
    assert shape.shape == (300, 7) and shape.dtype == np.float32
    assert np.abs(shape).max() <= 2.0 * 1.5 + 1e-5
    again, again_appearance = sampler.identities(np.array([299, 4]))
    np.testing.assert_array_equal(again, shape[[299, 4]])
    np.testing.assert_array_equal(again_appearance, appearance[[299, 4]])
    expected = 2.0 * truncated_normal(np.random.default_rng([config.seed, 0, 4, 0]), 7, 1.5)
    np.testing.assert_allclose(shape[4], expected, rtol=1e-6)


@pytest.mark.parametrize("truncation", [0.5, 1.0, 2.5])
def test_truncated_normal_matches_the_analytic_moments(truncation: float) -> None:
    draws = truncated_normal(np.random.default_rng(0), 200_000, truncation)
    assert np.abs(draws).max() <= truncation
    expected_variance = 1 - 2 * truncation * norm.pdf(truncation) / (2 * norm.cdf(truncation) - 1)
    assert draws.var() == pytest.approx(expected_variance, rel=0.02)
    assert abs(draws.mean()) < 0.01
    untruncated = truncated_normal(np.random.default_rng(0), 200_000, 0.0)
    assert untruncated.std() == pytest.approx(1.0, rel=0.01)


def test_angle_distribution_core_and_wide_draws() -> None:
    config = AngleConfig(std=15.0, limit=30.0, wide_probability=0.1, wide_limit=60.0)
    rng = np.random.default_rng(5)
    angles = np.array([sample_angle(rng, config) for _ in range(20_000)])
    assert np.abs(angles).max() <= 60.0
    beyond = np.abs(angles) > 30.0
    # Wide draws are uniform on [-60, 60]: half of them land beyond the core's +-30.
    assert beyond.mean() == pytest.approx(0.1 * 0.5, abs=0.006)
    assert np.abs(angles).max() > 55.0
    assert (np.abs(angles) < 15.0).mean() > 0.55  # mostly near-frontal


def test_default_pose_is_lfw_like() -> None:
    config = PoseConfig()
    poses = np.stack([sample_pose(sample_rng(0, i, 0, "pose"), config) for i in range(1000)])
    yaw = poses[:, 0]
    assert np.median(np.abs(yaw)) < 15.0
    assert (np.abs(yaw) <= 30.0).mean() > 0.9
    assert np.abs(poses[:, 2]).max() <= 15.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["seed=-1"], "seed"),
        (["layout=1_5"], r"layout\.name"),
        (["layout.group_identities=[2,1]", "layout.group_samples=[3,-1]", "layout.name="], r"layout\.group_samples\[1\]"),
        (["layout.name=1K_UB1", "layout.num_images=100"], r"layout\.num_images"),
        (["mixup.phi=1.2"], r"mixup\.phi"),
        (["mixup.grid=[0.5, 2.0]"], r"mixup\.grid\[1\]"),
        (["mixup.mode=grid", "layout.group_identities=[1]", "layout.group_samples=[4]", "layout.name="],
         r"mixup\.mode"),
        (["pose.yaw.std=-3"], r"pose\.yaw\.std"),
        (["noise.camera_distance=[200, 100]"], r"noise\.camera_distance"),
        (["shard_size=0"], "shard_size"),
        (["identity.truncation=-1"], r"identity\.truncation"),
    ],
)
def test_bad_values_name_the_field(overrides: list[str], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}"):
        GenerateConfig().with_overrides(overrides)


@pytest.mark.parametrize("name", bundled_configs())
def test_bundled_configs_load(name: str) -> None:
    config = load_generate_config(name)
    layout = config.layout.resolve()
    assert layout.num_samples > 0
    if "ub" in name:
        assert (layout.num_identities, layout.num_samples) == (2000, 100_000)
    if name.startswith("syn_lfw_r"):
        assert config.mixup.mode == "attack" and config.mixup.phi == int(name[-2:]) / 100


def test_bundled_config_set_is_complete() -> None:
    expected = {"tiny", "syn_10k_50", "syn_10k_50_im", "syn_2k_ub1", "syn_2k_ub2", "syn_5k_50_non",
                "syn_5k_50_expression", "syn_5k_50_pose", "syn_5k_50_illumination", "syn_lfw",
                "syn_lfw_r60", "syn_lfw_r70", "syn_lfw_r80", "syn_lfw_r90"}
    assert expected <= set(bundled_configs())


def test_unknown_config_name_lists_the_bundled_ones(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such config file or bundled config; bundled: .*tiny"):
        load_generate_config("nonexistent")
    with pytest.raises(ConfigError, match="config file not found"):
        load_generate_config(tmp_path / "missing.yaml")


def test_config_hash_tracks_every_field() -> None:
    config = _config()
    assert config.content_hash() == _config().content_hash()
    assert config.content_hash() != config.replace(shard_size=7).content_hash()
    assert config.content_hash() != dataclasses.replace(config, seed=3).content_hash()
