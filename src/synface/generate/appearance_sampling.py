"""The appearance parameter layout and the distribution identities' appearance parameters are drawn from.

Every parameter is continuous, so identity mixup (a linear blend of two parameter
vectors) decodes to an in-between person. Discrete choices (sex, hair colour group,
whether a man wears a beard) exist only inside :func:`sample_appearance`, where they
shape the distribution: they are soft correlations, never stored switches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synface.config import ConfigBase, require

NUM_MOTTLE = 8    # smooth blotch fields mixed per identity (mottling, age spots)
NUM_FRECKLE = 8   # small-spot fields mixed per identity (freckles)
NUM_HAIRLINE = 4  # fields that make each hairline and beard edge irregular in its own way

SCALAR_NAMES: tuple[str, ...] = (
    "skin_melanin", "skin_haemoglobin", "skin_undertone", "skin_redness", "skin_mottle",
    "skin_freckles", "skin_texture", "skin_shine", "under_eye",
    "lip_redness", "lip_darkness", "lip_definition",
    "lipstick", "lipstick_hue", "eye_makeup",
    "iris_melanin", "iris_green", "sclera_tint", "lash_line",
    "brow_thickness", "brow_density", "brow_arch", "brow_length", "brow_height", "brow_darkness",
    "hair_eumelanin", "hair_pheomelanin", "hair_grey", "hairline_height", "hair_recession",
    "hair_baldness", "hair_sides", "hair_density", "hair_fringe",
    "stubble", "moustache", "beard", "beard_extent", "beard_neck",
    "wrinkle_forehead", "wrinkle_nasolabial", "wrinkle_eyes", "age_spots",
    "hair_volume", "hair_length", "hair_curl",  # drawn last, after the noise-field coefficients
    "face_structure", "asymmetry", "asymmetry_side",
)
PARAM_NAMES: tuple[str, ...] = (
    SCALAR_NAMES
    + tuple(f"mottle_{k}" for k in range(NUM_MOTTLE))
    + tuple(f"freckle_{k}" for k in range(NUM_FRECKLE))
    + tuple(f"hairline_{k}" for k in range(NUM_HAIRLINE))
)
INDEX = {name: i for i, name in enumerate(PARAM_NAMES)}

# Melanin centres and spreads of the light, medium and dark skin-tone groups.
_TONE_CENTRES = (0.14, 0.45, 0.8)
_TONE_SPREADS = (0.08, 0.1, 0.09)


def _probability(value: float, name: str) -> None:
    require(0.0 <= value <= 1.0, name, f"{value} is outside [0, 1]")


@dataclass(frozen=True)
class AppearanceConfig(ConfigBase):
    """The population the identities' skin, eyes, hair and facial hair are drawn from.

    Attributes:
        frozen: every identity gets the same average appearance (shape alone tells them apart).
        skin_tone_weights: relative frequencies of light, medium and dark skin.
        melanin_range: skin melanin is clipped to this range (0 lightest, 1 darkest).
        male_fraction: share of identities drawn with male tendencies.
        age_range: youngest and oldest age (years); ages follow a beta(2, 3) over it.
        facial_hair_probability: chance that a man has a beard or moustache.
        stubble_probability: chance that a man shows stubble.
        makeup_probability: chance that a woman wears lipstick and eye makeup.
        light_eye_probability: chance of blue, green or hazel eyes at the lightest skin
            (falling to zero for medium and dark skin).
        hair_colour_weights: black, brown, blond and red hair frequencies among light-skinned
            identities (darker skin tends to black hair).
        freckle_probability: chance of freckles at the lightest skin.
        greying_age: age at which the typical person's hair is about 30% grey.
        baldness_probability: chance that a man of 70 shows pattern baldness (less when younger).
        fringe_probability: chance that a woman wears a fringe (a third of it for men).
        long_hair_probability: chance that a woman's hair reaches below the ears (an
            eighth of it for men).
        curly_hair_probability: chance of tightly curled hair at the darkest skin (a
            quarter of it at the lightest).
    """

    frozen: bool = False
    skin_tone_weights: tuple[float, float, float] = (0.4, 0.35, 0.25)
    melanin_range: tuple[float, float] = (0.0, 1.0)
    male_fraction: float = 0.5
    age_range: tuple[float, float] = (18.0, 80.0)
    facial_hair_probability: float = 0.3
    stubble_probability: float = 0.35
    makeup_probability: float = 0.5
    light_eye_probability: float = 0.55
    hair_colour_weights: tuple[float, float, float, float] = (0.2, 0.5, 0.22, 0.08)
    freckle_probability: float = 0.3
    greying_age: float = 55.0
    baldness_probability: float = 0.5
    fringe_probability: float = 0.35
    long_hair_probability: float = 0.6
    curly_hair_probability: float = 0.6

    def validate(self) -> None:
        require(len(self.skin_tone_weights) == 3 and min(self.skin_tone_weights) >= 0
                and sum(self.skin_tone_weights) > 0, "skin_tone_weights",
                f"{self.skin_tone_weights} must be three non-negative weights (light, medium, dark), not all 0")
        low, high = self.melanin_range
        require(0.0 <= low <= high <= 1.0, "melanin_range", f"{self.melanin_range} must satisfy 0 <= min <= max <= 1")
        low, high = self.age_range
        require(10.0 <= low <= high <= 100.0, "age_range", f"{self.age_range} must satisfy 10 <= min <= max <= 100")
        require(len(self.hair_colour_weights) == 4 and min(self.hair_colour_weights) >= 0
                and sum(self.hair_colour_weights) > 0, "hair_colour_weights",
                f"{self.hair_colour_weights} must be four non-negative weights (black, brown, blond, red), not all 0")
        require(20.0 <= self.greying_age <= 100.0, "greying_age", f"{self.greying_age} is outside [20, 100]")
        for name in ("male_fraction", "facial_hair_probability", "stubble_probability", "makeup_probability",
                     "light_eye_probability", "freckle_probability", "baldness_probability", "fringe_probability",
                     "long_hair_probability", "curly_hair_probability"):
            _probability(getattr(self, name), name)


def mean_appearance() -> np.ndarray:
    """(Ka,) float32: a middle-of-the-road adult without facial hair, makeup or ageing cues."""
    values = dict.fromkeys(PARAM_NAMES, 0.0)
    values.update(
        skin_melanin=0.4, skin_haemoglobin=0.5, skin_redness=0.3, skin_mottle=0.4, skin_texture=0.5,
        skin_shine=0.4, under_eye=0.3, lip_redness=0.5, lip_darkness=0.3, lip_definition=0.6,
        iris_melanin=0.8, sclera_tint=0.2, lash_line=0.7, brow_thickness=0.5, brow_density=0.7,
        brow_arch=0.5, brow_length=0.5, brow_height=0.5, brow_darkness=0.5, hair_eumelanin=0.8,
        hair_pheomelanin=0.15, hairline_height=0.5, hair_sides=0.7, hair_density=0.8,
        hair_volume=0.4, hair_length=0.1, hair_curl=0.2, face_structure=0.4, asymmetry_side=0.5,
    )
    return np.array([values[name] for name in PARAM_NAMES], dtype=np.float32)


def _hair_pigments(rng: np.random.Generator, melanin: float, config: AppearanceConfig) -> tuple[float, float]:
    """(eumelanin, pheomelanin) from a hair colour group that depends on skin tone."""
    weights = np.asarray(config.hair_colour_weights, dtype=np.float64)
    # Light hair is rare beyond light skin: shift the weight to black as melanin grows.
    lightness = np.clip(1.0 - (melanin - 0.2) / 0.25, 0.0, 1.0)
    weights = weights * np.array([1.0, 1.0, lightness, lightness])
    weights[0] += (1.0 - lightness) * weights.sum()
    group = rng.choice(4, p=weights / weights.sum())
    if group == 0:
        return rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.15)
    if group == 1:
        return rng.uniform(0.45, 0.85), rng.uniform(0.05, 0.35)
    if group == 2:
        return rng.uniform(0.02, 0.35), rng.uniform(0.05, 0.35)
    return rng.uniform(0.1, 0.35), rng.uniform(0.6, 1.0)


@dataclass(frozen=True)
class _Person:
    """The latent traits one identity's parameters are correlated through."""

    male: bool
    age: float
    old: float  # 0 until 25, 1 from 75
    melanin: float
    light: float  # 1 for the lightest skin, 0 from medium skin on


def sample_appearance(rng: np.random.Generator, config: AppearanceConfig = AppearanceConfig()) -> np.ndarray:
    """Draw one identity's appearance parameters.

    Args:
        rng: the identity's appearance generator.
        config: the population.

    Returns:
        (Ka,) float32 in the order of :data:`PARAM_NAMES`.
    """
    if config.frozen:
        return mean_appearance()
    male = bool(rng.random() < config.male_fraction)
    # Adults of all ages, most between 25 and 60 (a beta(2, 3) over the range).
    age = config.age_range[0] + (config.age_range[1] - config.age_range[0]) * rng.beta(2.0, 3.0)
    tones = np.asarray(config.skin_tone_weights, dtype=np.float64)
    group = rng.choice(3, p=tones / tones.sum())
    melanin = float(np.clip(rng.normal(_TONE_CENTRES[group], _TONE_SPREADS[group]), *config.melanin_range))
    person = _Person(male=male, age=age, old=float(np.clip((age - 25.0) / 50.0, 0.0, 1.0)), melanin=melanin,
                     light=float(np.clip(1.0 - melanin / 0.4, 0.0, 1.0)))
    p: dict[str, float] = {}
    _sample_skin(rng, p, person, config)
    _sample_features(rng, p, person, config)
    eumelanin, pheomelanin = _hair_pigments(rng, melanin, config)
    p["hair_eumelanin"], p["hair_pheomelanin"] = eumelanin, pheomelanin
    onset = rng.normal(config.greying_age - 10.0, 8.0)
    p["hair_grey"] = np.clip((age - onset) / 35.0, 0, 1)
    _sample_hairstyle(rng, p, male, age, config)
    _sample_facial_hair(rng, p, male, config)
    for name in PARAM_NAMES[len(SCALAR_NAMES):]:
        p[name] = rng.normal()
    _sample_hair_volume(rng, p, person, config)
    _sample_structure(rng, p, person)
    return np.array([p[name] for name in PARAM_NAMES], dtype=np.float32)


def _sample_skin(rng: np.random.Generator, p: dict[str, float], person: _Person, config: AppearanceConfig) -> None:
    """Skin tone and detail, and the ageing cues written into the skin."""
    u, old, light = rng.uniform, person.old, person.light
    p["skin_melanin"] = person.melanin
    p["skin_haemoglobin"] = np.clip(rng.normal(0.45 + 0.1 * person.male, 0.15), 0, 1)
    p["skin_undertone"] = np.clip(rng.normal(0.15 * (1 - light), 0.35), -1, 1)
    p["skin_redness"] = np.clip(rng.normal(0.25 + 0.25 * light + 0.1 * old, 0.15), 0, 1)
    p["skin_mottle"] = np.clip(u(0.1, 0.7) + 0.3 * old, 0, 1)
    p["skin_freckles"] = u(0.2, 1.0) if rng.random() < config.freckle_probability * light ** 2 else 0.0
    p["skin_texture"] = np.clip(u(0.2, 0.8) + 0.2 * person.male + 0.2 * old, 0, 1)
    p["skin_shine"] = u(0.0, 1.0)
    p["under_eye"] = np.clip(rng.normal(0.25 + 0.35 * old, 0.15), 0, 1)
    for name in ("wrinkle_forehead", "wrinkle_nasolabial", "wrinkle_eyes"):
        p[name] = np.clip(old * u(0.5, 1.3) + rng.normal(0.0, 0.08), 0, 1)
    p["age_spots"] = np.clip((person.age - 50.0) / 30.0 * u(0.0, 1.2), 0, 1) * (0.5 + 0.5 * light)


def _sample_features(rng: np.random.Generator, p: dict[str, float], person: _Person, config: AppearanceConfig) -> None:
    """Lips, makeup, eyes and brows."""
    u, old, male = rng.uniform, person.old, person.male
    p["lip_redness"] = np.clip(rng.normal(0.55 - 0.2 * old, 0.2), 0, 1)
    p["lip_darkness"] = np.clip(rng.normal(0.15 + 0.7 * person.melanin, 0.12), 0, 1)
    p["lip_definition"] = np.clip(u(0.3, 1.0) - 0.3 * old, 0, 1)
    makeup = not male and rng.random() < config.makeup_probability
    p["lipstick"] = u(0.3, 1.0) if makeup and rng.random() < 0.7 else 0.0
    p["lipstick_hue"] = u(0.0, 1.0)
    p["eye_makeup"] = u(0.2, 1.0) if makeup else 0.0
    light_eyes = rng.random() < config.light_eye_probability * person.light ** 1.5
    p["iris_melanin"] = u(0.0, 0.5) if light_eyes else u(0.6, 1.0)
    p["iris_green"] = u(0.0, 1.0) if light_eyes else u(0.0, 0.3)
    p["sclera_tint"] = np.clip(u(0.0, 0.5) + 0.3 * old, 0, 1)
    p["lash_line"] = np.clip(u(0.4, 1.0) + 0.15 * (not male), 0, 1)
    p["brow_thickness"] = np.clip(rng.normal(0.45 + 0.2 * male, 0.18), 0, 1)
    p["brow_density"] = np.clip(rng.normal(0.7 + 0.1 * male - 0.1 * old, 0.15), 0, 1)
    p["brow_arch"] = np.clip(rng.normal(0.6 - 0.25 * male, 0.2), 0, 1)
    p["brow_length"] = u(0.2, 1.0)
    p["brow_height"] = np.clip(rng.normal(0.5 + 0.1 * (not male), 0.18), 0, 1)
    p["brow_darkness"] = u(0.0, 1.0)


def _sample_hairstyle(rng: np.random.Generator, p: dict[str, float], male: bool, age: float,
                      config: AppearanceConfig) -> None:
    u = rng.uniform
    p["hairline_height"] = np.clip(rng.normal(0.45 + 0.1 * male, 0.2), 0, 1)
    ageing = float(np.clip((age - 20.0) / 50.0, 0.0, 1.0))
    p["hair_recession"] = np.clip(ageing * u(0.0, 1.2) + rng.normal(0, 0.1), 0, 1) if male else u(0.0, 0.15)
    bald = male and rng.random() < config.baldness_probability * ageing ** 1.5
    p["hair_baldness"] = u(0.2, 1.0) if bald else 0.0
    p["hair_sides"] = u(0.6, 1.0) if not male else u(0.2, 1.0)
    p["hair_density"] = np.clip(u(0.5, 1.0) - 0.3 * ageing * rng.random(), 0, 1)
    fringe = rng.random() < config.fringe_probability * (1.0 if not male else 0.33)
    p["hair_fringe"] = u(0.2, 1.0) if fringe else 0.0


def _sample_hair_volume(rng: np.random.Generator, p: dict[str, float], person: _Person,
                        config: AppearanceConfig) -> None:
    """How much the hair stands off the head, how far it falls and how curled it is (see ``hair.py``)."""
    u = rng.uniform
    long_hair = rng.random() < config.long_hair_probability * (1.0 if not person.male else 0.125)
    curly = rng.random() < config.curly_hair_probability * (0.25 + 0.75 * float(np.clip(person.melanin, 0, 1)))
    p["hair_volume"] = u(0.3, 1.0) if not person.male else u(0.0, 0.75)
    p["hair_length"] = u(0.4, 1.0) if long_hair else u(0.0, 0.3)
    p["hair_curl"] = u(0.6, 1.0) if curly else u(0.0, 0.45)


def _sample_structure(rng: np.random.Generator, p: dict[str, float], person: _Person) -> None:
    """How lean and bony the face reads (stronger in men and with age) and how asymmetric it is.

    ``asymmetry_side`` in [0, 1] says which side is higher and darker (0.5: neither), so that
    mixing two people with opposite sides passes through a symmetric face.
    """
    p["face_structure"] = np.clip(rng.normal(0.35 + 0.15 * person.male + 0.35 * person.old, 0.2), 0, 1)
    p["asymmetry"] = rng.uniform(0.0, 1.0) ** 1.5
    p["asymmetry_side"] = float(rng.random() < 0.5)


def _sample_facial_hair(rng: np.random.Generator, p: dict[str, float], male: bool,
                        config: AppearanceConfig) -> None:
    u = rng.uniform
    for name in ("stubble", "moustache", "beard", "beard_extent", "beard_neck"):
        p[name] = 0.0
    if not male:
        return
    if rng.random() < config.stubble_probability:
        p["stubble"] = u(0.2, 1.0)
    if rng.random() < config.facial_hair_probability:
        style = rng.random()
        if style < 0.25:  # moustache alone
            p["moustache"] = u(0.5, 1.0)
        else:  # beard, usually with a moustache
            p["beard"] = u(0.4, 1.0)
            p["moustache"] = u(0.4, 1.0) if rng.random() < 0.85 else u(0.0, 0.3)
            p["beard_extent"] = u(0.0, 1.0)
            p["beard_neck"] = u(0.0, 1.0)
