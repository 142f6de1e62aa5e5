"""Identity mixup: partners, ratios, soft labels and coefficient mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.errors import ConfigError
from synface.generate.mixup import (
    MixupConfig,
    draw_mixup,
    mix_coefficients,
    soft_labels,
)


def _draws(config: MixupConfig, num_identities: int, count: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    identity = np.arange(count) % num_identities
    pairs = [draw_mixup(config, np.random.default_rng([3, 1, int(i), k]), int(i), num_identities)
             for k, i in enumerate(identity)]
    partner, phi = (np.asarray(v) for v in zip(*pairs))
    return identity, partner, phi


def test_default_grid_is_the_papers() -> None:
    np.testing.assert_allclose(MixupConfig(mode="grid").phi_values(), np.arange(21) * 0.05, atol=1e-12)
    np.testing.assert_allclose(MixupConfig(mode="grid", grid_low=0.6, grid_steps=11).phi_values(),
                               np.linspace(0.6, 1.0, 11))
    assert MixupConfig(mode="grid", grid=(0.5, 1.0)).phi_values().tolist() == [0.5, 1.0]


@pytest.mark.parametrize("mode", ["fixed", "grid", "attack"])
def test_partner_is_never_self_and_stays_in_the_dataset(mode: str) -> None:
    identity, partner, _ = _draws(MixupConfig(mode=mode), num_identities=5)
    assert np.all(partner != identity)
    assert partner.min() >= 0 and partner.max() <= 4
    # Every other identity is reachable: the skip of self must not drop the last one.
    for i in range(5):
        assert set(partner[identity == i].tolist()) == set(range(5)) - {i}


def test_two_identities_always_pair_with_each_other() -> None:
    identity, partner, _ = _draws(MixupConfig(mode="grid"), num_identities=2, count=50)
    np.testing.assert_array_equal(partner, 1 - identity)


def test_grid_phi_values_come_from_the_grid_and_cover_it() -> None:
    config = MixupConfig(mode="grid", grid_low=0.6, grid_high=1.0, grid_steps=11)
    _, _, phi = _draws(config, num_identities=7, count=2000)
    grid = config.phi_values()
    assert np.all(np.isin(phi, grid))
    assert set(phi.tolist()) == set(grid.tolist())


def test_fixed_and_attack_use_the_configured_ratio_and_share_partners() -> None:
    _, partner_fixed, phi_fixed = _draws(MixupConfig(mode="fixed", phi=0.7), num_identities=9)
    _, partner_attack, phi_attack = _draws(MixupConfig(mode="attack", phi=0.7), num_identities=9)
    assert np.all(phi_fixed == 0.7) and np.all(phi_attack == 0.7)
    np.testing.assert_array_equal(partner_fixed, partner_attack)


def test_none_mode_keeps_the_identity() -> None:
    rng = np.random.default_rng(0)
    assert draw_mixup(MixupConfig(), rng, 3, 10) == (3, 1.0)


def test_soft_labels_mixed_plain_and_attack() -> None:
    identity, partner, phi = np.array([0, 4]), np.array([2, 1]), np.array([0.8, 0.05])
    labels, weights = soft_labels(identity, partner, phi)
    np.testing.assert_array_equal(labels, [[0, 2], [4, 1]])
    np.testing.assert_allclose(weights, [[0.8, 0.2], [0.05, 0.95]], rtol=1e-6)
    assert labels.dtype == np.int64 and weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-6)
    # An unmixed image gets the plain label from the same formula.
    labels, weights = soft_labels(identity, identity, np.ones(2))
    np.testing.assert_array_equal(labels, [[0, 0], [4, 4]])
    np.testing.assert_array_equal(weights, [[1, 0], [1, 0]])
    # The attack sets keep the primary's label whatever the mixing.
    labels, weights = soft_labels(identity, partner, phi, keep_primary=True)
    np.testing.assert_array_equal(labels, [[0, 0], [4, 4]])
    np.testing.assert_array_equal(weights, [[1, 0], [1, 0]])


def test_mix_coefficients_matches_a_row_loop() -> None:
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    phi = torch.tensor([0.0, 0.25, 0.5, 0.8, 1.0, 0.05])
    expected = torch.stack([p * x + (1 - p) * y for p, x, y in zip(phi, a, b)])
    torch.testing.assert_close(mix_coefficients(a, b, phi), expected)
    torch.testing.assert_close(mix_coefficients(a, b, torch.ones(6)), a, rtol=0, atol=0)
    np.testing.assert_allclose(mix_coefficients(a.numpy(), b.numpy(), phi.numpy()), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"phi": 1.5}, "phi"), ({"phi": -0.1}, "phi"), ({"grid": (0.5, 1.2)}, r"grid\[1\]"),
     ({"grid_low": 0.9, "grid_high": 0.5}, "grid_high"), ({"grid_steps": 0}, "grid_steps")],
)
def test_bad_mixup_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        MixupConfig(mode="grid", **kwargs)
