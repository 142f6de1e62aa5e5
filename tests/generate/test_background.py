"""Procedural backgrounds: deterministic parameters, frozen scenes, valid images, every component visible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.errors import ConfigError, DataError
from synface.generate.background import (
    KINDS,
    PARAM_NAMES,
    BackgroundConfig,
    render_background,
    sample_background,
)


def draw(count: int, config: BackgroundConfig | None = None, seed: int = 0) -> torch.Tensor:
    config = config or BackgroundConfig()
    return torch.from_numpy(np.stack([sample_background(np.random.default_rng([seed, i]), config)
                                      for i in range(count)]))


def test_sampling_is_deterministic_and_shaped() -> None:
    a, b = draw(8), draw(8)
    assert a.dtype == torch.float32 and a.shape == (8, len(PARAM_NAMES))
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_render_is_a_pure_function_of_the_parameters() -> None:
    params = draw(6, BackgroundConfig(person_probability=0.5, blur_sigma=(0.5, 3.0)))
    images = render_background(params, 112, 96)
    assert images.shape == (6, 3, 112, 96) and images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert torch.equal(images, render_background(params, 112, 96))
    # An image does not depend on the rest of its batch.
    assert torch.allclose(render_background(params[3:4], 112, 96), images[3:4], atol=1e-5)
    assert render_background(params, 112, 112, device="cpu").shape == (6, 3, 112, 112)


def test_frozen_backgrounds_are_identical() -> None:
    config = BackgroundConfig(frozen=True, frozen_colour=(0.2, 0.4, 0.6))
    images = render_background(draw(4, config), 112, 96)
    assert torch.equal(images, images[:1].expand_as(images))
    assert torch.allclose(images[0, :, 56, 48], torch.tensor([0.2, 0.4, 0.6]), atol=0.02)


def test_scenes_vary_in_colour_and_structure() -> None:
    images = render_background(draw(32), 56, 48)
    means = images.mean((2, 3))  # (32, 3)
    assert means.std(0).min() > 0.08  # colours differ between scenes
    structure = images.std((2, 3)).mean(1)
    assert (structure > 0.03).float().mean() > 0.3  # many scenes are not flat


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_can_be_drawn_alone(kind: str) -> None:
    weights = tuple(1.0 if k == kind else 0.0 for k in KINDS)
    images = render_background(draw(8, BackgroundConfig(kind_weights=weights, person_probability=0.0)), 56, 48)
    assert torch.isfinite(images).all()
    flatness = images.std((2, 3)).mean()
    if kind == "plain":
        assert flatness < 0.1
    if kind in ("indoor", "outdoor", "texture"):
        assert flatness > 0.02


def test_people_at_the_border_look_like_skin() -> None:
    config = BackgroundConfig(person_probability=1.0, kind_weights=(1.0, 0.0, 0.0, 0.0), blur_sigma=(0.0, 0.0))
    params = draw(16, config)
    column = params[:, PARAM_NAMES.index("person_x")]
    assert ((column < 0.1) | (column > 0.9)).all()
    images = render_background(params, 112, 96)
    plain = params.clone()
    plain[:, PARAM_NAMES.index("person_alpha")] = 0.0
    changed = (images - render_background(plain, 112, 96)).abs().sum(1) > 0.05  # (B, H, W)
    centre = changed[:, :, 40:56].float().mean()
    borders = torch.cat([changed[:, :, :12], changed[:, :, -12:]], 2).float().mean()
    assert borders > 0.1 and centre < borders / 4


def test_bad_inputs_raise() -> None:
    with pytest.raises(DataError, match="params"):
        render_background(torch.zeros(2, 5), 112, 96)
    with pytest.raises(ConfigError, match="kind_weights"):
        BackgroundConfig(kind_weights=(0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="person_probability"):
        BackgroundConfig(person_probability=-0.1)
