"""Appearance model: parameter sampling, albedo ranges, continuity under mixing, and where each colour lands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.errors import AssetError, ConfigError, DataError
from synface.generate.appearance import PARAM_NAMES, AppearanceConfig, AppearanceModel
from synface.generate.appearance_sampling import sample_appearance
from synface.generate.facemodel import REGIONS, FaceModel

LUMINANCE = torch.tensor([0.2126, 0.7152, 0.0722])


@pytest.fixture(scope="module")
def appearance(face_model: FaceModel) -> AppearanceModel:
    """An appearance model on each face model this checkout can provide."""
    return AppearanceModel(face_model)


def draw(appearance: AppearanceModel, count: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.stack([appearance.sample(np.random.default_rng([seed, 0, i])) for i in range(count)]))


def with_values(appearance: AppearanceModel, base: np.ndarray | None = None, **values: float) -> torch.Tensor:
    row = (appearance.mean() if base is None else base).copy()
    for name, value in values.items():
        row[PARAM_NAMES.index(name)] = value
    return torch.from_numpy(row)[None]


def region(appearance: AppearanceModel, *names: str) -> torch.Tensor:
    return torch.from_numpy(appearance.geometry.mask(*names))


def test_sampling_is_deterministic_and_in_range(appearance: AppearanceModel) -> None:
    a = appearance.sample(np.random.default_rng([3, 0, 7]))
    assert a.dtype == np.float32 and a.shape == (appearance.num_params,) == (len(appearance.param_names),)
    assert np.array_equal(a, appearance.sample(np.random.default_rng([3, 0, 7])))
    params = draw(appearance, 200).numpy()
    assert np.isfinite(params).all()
    scalars = params[:, :PARAM_NAMES.index("mottle_0")]
    undertone = PARAM_NAMES.index("skin_undertone")
    others = np.delete(scalars, undertone, axis=1)
    assert others.min() >= 0.0 and others.max() <= 1.0
    assert -1.0 <= scalars[:, undertone].min() and scalars[:, undertone].max() <= 1.0


def test_albedo_shapes_ranges_and_purity(appearance: AppearanceModel) -> None:
    params = draw(appearance, 6)
    albedo = appearance.albedo(params)
    v = appearance.num_vertices
    assert albedo.diffuse.shape == (6, v, 3) and albedo.specular.shape == (6, v)
    assert albedo.diffuse.dtype == torch.float32 and albedo.specular.dtype == torch.float32
    assert albedo.diffuse.min() >= 0 and albedo.diffuse.max() <= 1
    assert albedo.specular.min() >= 0 and albedo.specular.max() <= 1
    assert torch.equal(appearance.albedo(params).diffuse, albedo.diffuse)
    alone = appearance.albedo(params[4:5])  # an identity looks the same in any batch
    assert torch.allclose(alone.diffuse, albedo.diffuse[4:5], atol=1e-5)
    assert not torch.allclose(albedo.diffuse[0], albedo.diffuse[1], atol=1e-3)


def test_mixing_is_continuous(appearance: AppearanceModel) -> None:
    params = draw(appearance, 4, seed=1)
    # Make the pairs differ in every on/off-looking feature: beard, baldness, freckles, lipstick.
    extremes = {"beard": 1.0, "moustache": 1.0, "stubble": 1.0, "hair_baldness": 1.0, "skin_freckles": 1.0,
                "age_spots": 1.0, "skin_melanin": 0.9}
    for name, value in extremes.items():
        params[0, PARAM_NAMES.index(name)] = value
        params[1, PARAM_NAMES.index(name)] = 0.0
    params[2, PARAM_NAMES.index("lipstick")] = 1.0
    params[3, PARAM_NAMES.index("hair_fringe")] = 1.0
    phis = torch.linspace(0.0, 1.0, 21)[:, None]
    for first, second in ((0, 1), (2, 3)):
        blend = phis * params[first] + (1.0 - phis) * params[second]  # (21, Ka)
        diffuse = appearance.albedo(blend).diffuse  # (21, V, 3)
        ends = appearance.albedo(params[[second, first]]).diffuse
        assert torch.allclose(diffuse[[0, -1]], ends, atol=1e-5)
        steps = (diffuse[1:] - diffuse[:-1]).abs()
        assert steps.max() < 0.15, "a 0.05 step of phi jumps"
        path = phis[:, :, None] * ends[1] + (1.0 - phis[:, :, None]) * ends[0]
        assert (diffuse - path).abs().mean() < 0.03, "the blend leaves the straight path between the two people"


def test_skin_tones_span_dark_to_light(appearance: AppearanceModel) -> None:
    g = appearance.geometry
    # Open skin only: creases are darkened by ambient occlusion, which is not skin tone.
    cheek = torch.from_numpy((g.region == REGIONS.index("skin")) & (np.hypot(g.a - 0.5, g.v + 0.35) < 0.15)
                             & (g.cavity > 0.9))
    assert cheek.sum() > 5
    luminance = (appearance.albedo(draw(appearance, 500, seed=2)).diffuse[:, cheek] @ LUMINANCE).mean(1)
    low, high = np.percentile(luminance.numpy(), [5, 95])
    assert low < 0.1 and high > 0.3
    assert luminance.min() < 0.06 and luminance.max() > 0.35
    assert ((luminance > 0.1) & (luminance < 0.3)).float().mean() > 0.3  # medium tones are common


def test_regions_get_their_colours(appearance: AppearanceModel) -> None:
    g = appearance.geometry
    diffuse = appearance.albedo(draw(appearance, 16, seed=3)).diffuse
    luminance = diffuse @ LUMINANCE  # (B, V)
    eyes = region(appearance, "eyes", "iris")
    iris = eyes & torch.from_numpy((g.eye_r >= 0) & (g.eye_r < 0.8))
    sclera = eyes & torch.from_numpy(g.eye_r > 1.3) & torch.from_numpy(g.lid_up < -0.03)
    assert iris.sum() > 5 and sclera.sum() > 5
    assert (luminance[:, iris].mean(1) < luminance[:, sclera].mean(1)).all()
    pupil = eyes & torch.from_numpy((g.eye_r >= 0) & (g.eye_r < 0.2))
    assert luminance[:, pupil].max() < 0.05
    lips = torch.from_numpy((g.lip_d < -0.02) & appearance.geometry.mask("lips", "skin"))
    around = torch.from_numpy((g.lip_d > 0.06) & (g.lip_d < 0.15) & (g.theta < 50) & g.mask("skin"))
    redness = diffuse[..., 0] / diffuse[..., 1].clamp_min(1e-4)  # (B, V) red over green
    assert (redness[:, lips].mean(1) > 1.15 * redness[:, around].mean(1)).all()
    teeth, mouth = region(appearance, "teeth"), region(appearance, "mouth_interior")
    if teeth.any() and mouth.any():
        assert (luminance[:, teeth].mean(1) > luminance[:, mouth].mean(1)).all()


def test_facial_hair_only_where_it_belongs(appearance: AppearanceModel) -> None:
    g = appearance.geometry
    k = g.anchors
    shaved = with_values(appearance, stubble=0.0, beard=0.0, moustache=0.0)
    bearded = with_values(appearance, stubble=1.0, beard=1.0, moustache=1.0, beard_extent=1.0, beard_neck=1.0)
    change = (appearance.albedo(torch.cat([shaved, bearded])).diffuse.diff(dim=0)[0]).abs().sum(-1)  # (V,)
    above = torch.from_numpy(g.v > k["nose_base_v"] + 0.05)
    lips = torch.from_numpy(g.lip_d < -0.03)
    assert change[above].max() < 1e-6 and change[lips].max() < 0.02  # (rounding differs between batch rows)
    chin = torch.from_numpy((g.v < k["lip_bottom_v"] - 0.1) & (g.a < 0.2) & (g.jaw_drop < 0) & g.mask("skin"))
    upper_lip = torch.from_numpy((g.lip_d > 0.02) & (g.mouth_v > 0.02) & (g.a < 0.15) & (g.v < k["nose_base_v"] - 0.05))
    assert chin.sum() > 3 and upper_lip.sum() > 3
    assert change[chin].mean() > 0.1 and change[upper_lip].mean() > 0.1
    women = AppearanceConfig(male_fraction=0.0)
    hair = [PARAM_NAMES.index(n) for n in ("stubble", "moustache", "beard")]
    assert all(sample_appearance(np.random.default_rng(i), women)[hair].max() == 0.0 for i in range(100))


def test_scalp_hair_colour_and_greying(appearance: AppearanceModel) -> None:
    g = appearance.geometry
    top = torch.from_numpy((g.v > g.anchors["head_top"] - 0.3) & g.mask("skin", "scalp"))
    rows = torch.cat([
        with_values(appearance, hair_eumelanin=1.0, hair_grey=0.0, hair_density=1.0),
        with_values(appearance, hair_eumelanin=0.1, hair_grey=0.0, hair_density=1.0),
        with_values(appearance, hair_eumelanin=1.0, hair_grey=1.0, hair_density=1.0),
        with_values(appearance, hair_eumelanin=1.0, hair_baldness=1.0),
    ])
    luminance = (appearance.albedo(rows).diffuse[:, top] @ LUMINANCE).mean(1)
    black, blond, grey, bald = luminance.tolist()
    assert black < 0.05 and blond > 3 * black and grey > 3 * black
    assert bald > 2 * black  # skin shows where the hair is gone


def test_identity_details_are_fixed_by_the_parameters(appearance: AppearanceModel) -> None:
    base = appearance.sample(np.random.default_rng(11))
    freckled = with_values(appearance, base, skin_freckles=1.0, skin_melanin=0.1)
    other = freckled.clone()
    other[0, PARAM_NAMES.index("freckle_0"):PARAM_NAMES.index("freckle_0") + 8] *= -1.0
    diffuse = appearance.albedo(torch.cat([freckled, freckled, other])).diffuse
    assert torch.equal(diffuse[0], diffuse[1])
    assert (diffuse[0] - diffuse[2]).abs().max() > 0.03  # another freckle pattern is another person


def test_bad_input_raises(appearance: AppearanceModel) -> None:
    with pytest.raises(DataError, match="params"):
        appearance.albedo(torch.zeros(2, appearance.num_params + 1))
    bad = torch.from_numpy(appearance.mean())[None].clone()
    bad[0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        appearance.albedo(bad)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="skin_tone_weights"):
        AppearanceConfig(skin_tone_weights=(0.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="melanin_range"):
        AppearanceConfig(melanin_range=(0.8, 0.2))
    with pytest.raises(ConfigError, match="male_fraction"):
        AppearanceConfig(male_fraction=1.5)
    with pytest.raises(ConfigError, match="age_range"):
        AppearanceConfig(age_range=(50.0, 20.0))
    config = AppearanceConfig.from_dict({"skin_tone_weights": [1, 0, 0], "melanin_range": [0.0, 0.3]})
    assert config.skin_tone_weights == (1.0, 0.0, 0.0)


def test_frozen_config_gives_everyone_the_same_appearance() -> None:
    config = AppearanceConfig(frozen=True)
    assert np.array_equal(sample_appearance(np.random.default_rng(1), config),
                          sample_appearance(np.random.default_rng(2), config))


def test_skin_tone_mix_follows_the_config() -> None:
    melanin = PARAM_NAMES.index("skin_melanin")
    light = [sample_appearance(np.random.default_rng(i), AppearanceConfig(skin_tone_weights=(1, 0, 0)))[melanin]
             for i in range(100)]
    dark = [sample_appearance(np.random.default_rng(i), AppearanceConfig(skin_tone_weights=(0, 0, 1)))[melanin]
            for i in range(100)]
    assert np.mean(light) < 0.25 and np.mean(dark) > 0.65


def test_degenerate_model_is_refused(tiny_model: FaceModel) -> None:
    with pytest.raises(AssetError, match="eye landmarks"):
        AppearanceModel(tiny_model)
