"""Expression prior: sparse, left/right-coupled, deterministic weights in [0, 1]; config checks."""

from __future__ import annotations

import numpy as np
import pytest

from synface.errors import ConfigError
from synface.generate.expression import (
    ARCHETYPES,
    DEFAULT_PROBABILITIES,
    ExpressionConfig,
    ExpressionPrior,
)

# ICT-FaceKit's 53 blendshapes, in its order
ICT_NAMES = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
    "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward",
    "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R", "mouthFrown_L",
    "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L",
    "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L",
    "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)


def draw(prior: ExpressionPrior, count: int, seed: int = 0) -> np.ndarray:
    return np.stack([prior.sample(np.random.default_rng([seed, i])) for i in range(count)])


def test_samples_are_sparse_float32_weights_in_the_unit_interval() -> None:
    samples = draw(ExpressionPrior(ICT_NAMES), 500)
    assert samples.dtype == np.float32 and samples.shape == (500, 53)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    active = (samples > 0).sum(1)
    assert active.max() <= 24 and active.mean() < 14  # archetype + a little jitter + gaze, not all 53
    strong = (samples > 0.3).sum(1)
    assert np.median(strong) <= 4
    assert (strong == 0).mean() > 0.2  # neutral and faint faces are common
    assert samples.max(0)[ICT_NAMES.index("mouthSmile_L")] > 0.6  # yet strong expressions occur


def test_left_and_right_move_together_with_small_asymmetry() -> None:
    config = ExpressionConfig(jitter_count=0, gaze=0.0, archetypes={"smile": 1.0, "surprise": 1.0}, asymmetry=0.1)
    samples = draw(ExpressionPrior(ICT_NAMES, config), 300)
    for base in ("mouthSmile", "browOuterUp", "cheekSquint", "eyeWide"):
        left, right = samples[:, ICT_NAMES.index(base + "_L")], samples[:, ICT_NAMES.index(base + "_R")]
        both = np.maximum(left, right)
        assert ((left > 0) == (right > 0)).all()
        assert (np.abs(left - right) <= 2 * 0.1 * both / 0.9 + 1e-6).all()
        assert (left != right).any()  # not identical either
    uncoupled = draw(ExpressionPrior(ICT_NAMES, config.replace(asymmetry=0.0)), 50)
    np.testing.assert_array_equal(uncoupled[:, ICT_NAMES.index("mouthSmile_L")],
                                  uncoupled[:, ICT_NAMES.index("mouthSmile_R")])


def test_one_sided_archetypes_pick_either_side() -> None:
    config = ExpressionConfig(archetypes={"smirk": 1.0}, jitter_count=0, gaze=0.0, asymmetry=0.0)
    samples = draw(ExpressionPrior(ICT_NAMES, config), 200)
    left, right = samples[:, ICT_NAMES.index("mouthSmile_L")], samples[:, ICT_NAMES.index("mouthSmile_R")]
    assert ((left > 0) ^ (right > 0)).all()
    assert 0.3 < (left > 0).mean() < 0.7


def test_gaze_moves_both_eyes_the_same_way() -> None:
    config = ExpressionConfig(archetypes={"neutral": 1.0}, jitter_count=0, gaze=0.3)
    samples = draw(ExpressionPrior(ICT_NAMES, config), 200)
    index = ICT_NAMES.index
    looking_left = samples[:, index("eyeLookOut_L")]
    np.testing.assert_array_equal(looking_left, samples[:, index("eyeLookIn_R")])
    assert ((looking_left > 0) & (samples[:, index("eyeLookOut_R")] > 0)).sum() == 0
    np.testing.assert_array_equal(samples[:, index("eyeLookUp_L")], samples[:, index("eyeLookUp_R")])
    assert samples.max() <= 0.3 + 1e-6


def test_same_rng_state_gives_the_same_expression() -> None:
    prior = ExpressionPrior(ICT_NAMES)
    first, second = draw(prior, 50, seed=3), draw(prior, 50, seed=3)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, draw(prior, 50, seed=4))
    again = ExpressionPrior(ICT_NAMES, ExpressionConfig.from_dict(ExpressionConfig().to_dict()))
    np.testing.assert_array_equal(first, draw(again, 50, seed=3))


def test_frozen_gives_the_neutral_face() -> None:
    prior = ExpressionPrior(ICT_NAMES, ExpressionConfig(frozen=True))
    np.testing.assert_array_equal(draw(prior, 20), np.zeros((20, 53), np.float32))
    np.testing.assert_array_equal(prior.neutral(), np.zeros(53, np.float32))


def test_names_the_model_lacks_are_ignored() -> None:
    names = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "unrelated")
    prior = ExpressionPrior(names, ExpressionConfig(jitter_count=0))
    samples = draw(prior, 300)
    assert samples.shape == (300, 6)
    assert samples[:, names.index("unrelated")].max() == 0.0
    assert samples[:, 3].max() > 0.3 and samples[:, 1].max() > 0.3  # Left/Right spelling is recognised
    np.testing.assert_array_equal(samples[:, 1] > 0, samples[:, 2] > 0)
    assert draw(ExpressionPrior((), ExpressionConfig()), 3).shape == (3, 0)


def test_every_archetype_uses_known_blendshapes() -> None:
    bases = {name[:-2] if name.endswith(("_L", "_R")) else name for name in ICT_NAMES}
    for archetype, weights in ARCHETYPES.items():
        for name in weights:
            assert name in ICT_NAMES or name in bases, (archetype, name)
            assert 0.0 < weights[name] <= 1.0
    assert set(DEFAULT_PROBABILITIES) == set(ARCHETYPES)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"archetypes": {"smile": 1.0, "laughing": 0.5}}, "archetypes.laughing: unknown archetype; valid: neutral"),
        ({"archetypes": {"smile": -1.0}}, "archetypes.smile: -1.0 must not be negative"),
        ({"archetypes": {"smile": 0.0}}, "archetypes: needs at least one positive probability"),
        ({"intensity": [0.8, 0.2]}, "intensity:"),
        ({"intensity": [0.0, 1.5]}, "intensity:"),
        ({"asymmetry": 2.0}, "asymmetry: 2.0 is outside [0, 1]"),
        ({"jitter_count": -1}, "jitter_count: -1 must not be negative"),
        ({"gaze": -0.1}, "gaze:"),
        ({"frozen": "yes"}, "frozen: expected true or false"),
    ],
)
def test_bad_config_values_name_the_field(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        ExpressionConfig.from_dict(overrides)
    assert message in str(error.value)


def test_config_overrides_reach_the_archetype_table() -> None:
    config = ExpressionConfig().with_overrides(["archetypes.smile=0.9", "intensity=[0.5, 0.6]"])
    assert config.archetypes["smile"] == 0.9 and config.intensity == (0.5, 0.6)
    with pytest.raises(ConfigError, match="archetypes.grin: unknown archetype"):
        ExpressionConfig().with_overrides(["archetypes.grin=0.2"])
