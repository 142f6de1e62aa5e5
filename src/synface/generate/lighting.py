"""Random real-world-like illumination, projected into the renderer's 27 SH light coefficients.

An environment is uniform ambient light plus a few lights, each a von Mises-Fisher
lobe (concentration 0 = the whole sky, infinite = a point-like sun or lamp), with a
colour from a black-body temperature. Strengths are in albedo units: a light of
strength ``s`` seen head-on renders ``albedo * s`` on a matte surface, and ambient
level ``a`` renders ``albedo * a`` everywhere. Each environment's radiance is
projected onto real spherical harmonics up to band 2 (Ramamoorthi & Hanrahan 2001)
and converted into the coefficient convention of :mod:`synface.generate.shading`.

Light directions are in the camera frame: azimuth 0 is light from the camera,
positive azimuth comes from image right, positive elevation from above.

The sampler mixes indoor scenes (a key light, optional fills, warm to neutral
lamps, soft to hard) with outdoor ones (blue-ish sky from above, a hard warm sun
unless overcast, a dim ground bounce from below). Some keys are an on-camera flash
(hard, frontal, little ambient) or a strong side light. A camera then meters the
result as photos are exposed: the average light on the front of a face is scaled
to a random target brightness (auto-exposure), and its colour cast is mostly
removed (auto white balance), so that the key and fill colours differ but the
face is rarely tinted as a whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synface.config import ConfigBase, require
from synface.generate.shading import SH_SCALE

# Normalisation making the polynomials 1, -y, z, -x, xy, -yz, 3z^2-1, -xz, x^2-y^2 orthonormal
# real spherical harmonics (public: tests and analysis project onto them).
SH_NORM = np.array([
    1.0 / math.sqrt(4 * math.pi),
    *[math.sqrt(3 / (4 * math.pi))] * 3,
    math.sqrt(15 / (4 * math.pi)), math.sqrt(15 / (4 * math.pi)),
    math.sqrt(5 / (16 * math.pi)),
    math.sqrt(15 / (4 * math.pi)), math.sqrt(15 / (16 * math.pi)),
])
_BAND = np.array([0, 1, 1, 1, 2, 2, 2, 2, 2])
# Lambertian (clamped cosine) convolution factors A_l per band.
_LAMBERT = np.array([math.pi, 2 * math.pi / 3, math.pi / 4])[_BAND]
# Radiance SH coefficient -> renderer coefficient (outgoing radiance = albedo * E / pi).
_TO_RENDERER = _LAMBERT * SH_NORM / (math.pi * np.array(SH_SCALE))
_LUMINANCE = np.array([0.2126, 0.7152, 0.0722])
# CIE XYZ -> linear sRGB, rows R, G, B (scalar arithmetic: a sample draws a few colours,
# where numpy's per-call overhead dominates).
_XYZ_TO_RGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))
# The camera's light meter: the mean albedo multiplier over the visible half of a sphere
# facing the camera (normals weighted by projected area, n_z), per renderer coefficient.
# Its polynomial means are 1, 0, 2/3, 0, 0, 0, 3 E[z^2] - 1 = 1/2, 0, 0.
_METER = np.array(SH_SCALE) * np.array([1.0, 0.0, 2.0 / 3.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
_MAX_EXPOSURE_GAIN = 4.0  # a backlit face is brightened at most this much


@dataclass(frozen=True)
class LightConfig(ConfigBase):
    """Ranges of the random illumination (``(low, high)`` pairs are uniform ranges).

    Attributes:
        frozen: every sample gets the same fixed, frontal, neutral light.
        outdoor_probability: chance of an outdoor scene (sky, sun, ground bounce).
        overcast_probability: chance that an outdoor scene has no direct sun.
        ambient: level of uniform ambient light (albedo units).
        key_strength: strength of the main light (albedo units, head-on).
        fill_lights: ``(min, max)`` number of extra indoor lights.
        fill_ratio: strength of each fill light relative to the key.
        elevation_deg: key light elevation (positive from above).
        azimuth_deg: key light azimuth (0 from the camera, positive from image right).
        spread_deg: angular radius of indoor lights (0 is a point light, larger is softer).
        indoor_temperature_k: black-body colour temperature of indoor lamps.
        sun_temperature_k: colour temperature of direct sun.
        sky_temperature_k: colour temperature of skylight.
        colour_saturation: 1 keeps black-body colours, 0 makes every light white.
        flash_probability: chance that the key is an on-camera flash: hard, from next
            to the lens, with dim ambient light.
        side_light_probability: chance of a strong side light: the key 60-100 degrees
            to a side, with dim ambient light.
        white_balance: how much of the scene's overall colour cast the camera removes
            (0 none, 1 all of it), a uniform range.
        exposure: brightness the camera exposes the face to: the mean albedo multiplier
            over the front of a face (1 renders a frontally lit matte face at its albedo).
    """

    frozen: bool = False
    outdoor_probability: float = 0.35
    overcast_probability: float = 0.3
    ambient: tuple[float, float] = (0.1, 0.45)
    key_strength: tuple[float, float] = (0.4, 1.1)
    fill_lights: tuple[int, int] = (0, 2)
    fill_ratio: tuple[float, float] = (0.15, 0.6)
    elevation_deg: tuple[float, float] = (-15.0, 60.0)
    azimuth_deg: tuple[float, float] = (-100.0, 100.0)
    spread_deg: tuple[float, float] = (0.0, 45.0)
    indoor_temperature_k: tuple[float, float] = (2700.0, 6500.0)
    sun_temperature_k: tuple[float, float] = (4500.0, 6000.0)
    sky_temperature_k: tuple[float, float] = (6500.0, 12000.0)
    colour_saturation: float = 0.35
    flash_probability: float = 0.12
    side_light_probability: float = 0.12
    white_balance: tuple[float, float] = (0.6, 1.0)
    exposure: tuple[float, float] = (0.8, 1.25)

    def validate(self) -> None:
        for name in ("outdoor_probability", "overcast_probability", "colour_saturation", "flash_probability",
                     "side_light_probability"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, name, f"{value} is outside [0, 1]")
        for name in ("ambient", "key_strength", "fill_ratio", "spread_deg", "exposure",
                     "indoor_temperature_k", "sun_temperature_k", "sky_temperature_k", "fill_lights"):
            low, high = getattr(self, name)
            require(0 <= low <= high, name, f"{[low, high]} must satisfy 0 <= low <= high")
        require(self.flash_probability + self.side_light_probability <= 1.0, "side_light_probability",
                f"{self.side_light_probability} plus flash_probability {self.flash_probability} exceeds 1")
        low, high = self.white_balance
        require(0.0 <= low <= high <= 1.0, "white_balance", f"{[low, high]} must satisfy 0 <= low <= high <= 1")
        for name in ("indoor_temperature_k", "sun_temperature_k", "sky_temperature_k"):
            low, high = getattr(self, name)
            require(1667 <= low and high <= 25000, name, f"{[low, high]} is outside [1667, 25000] K")
        require(self.spread_deg[1] <= 90, "spread_deg", f"{list(self.spread_deg)} exceeds 90 degrees")
        for name, limit in (("elevation_deg", 90.0), ("azimuth_deg", 180.0)):
            low, high = getattr(self, name)
            require(-limit <= low <= high <= limit, name, f"{[low, high]} is outside [-{limit}, {limit}]")


def direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector (3,) towards a light at this azimuth/elevation, camera frame."""
    azimuth, elevation = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                     math.cos(elevation) * math.cos(azimuth)])


def blackbody_rgb(temperature_k: float, saturation: float = 1.0) -> np.ndarray:
    """Linear sRGB colour (3,) of a black body, luminance 1, chroma scaled by ``saturation``.

    Uses the cubic-spline fit of the Planckian locus in CIE 1931 xy (Kim et al. 2002).
    """
    t = min(max(float(temperature_k), 1667.0), 25000.0)
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    big_x, big_z = x / y, (1.0 - x - y) / y
    rgb = [max(r * big_x + g + b * big_z, 1e-3) for r, g, b in _XYZ_TO_RGB]
    luminance = rgb[0] * 0.2126 + rgb[1] * 0.7152 + rgb[2] * 0.0722
    return np.array([1.0 + saturation * (c / luminance - 1.0) for c in rgb])


def sh_polynomials(vector: np.ndarray) -> np.ndarray:
    """The nine signed SH polynomials (9,) of a unit vector (the renderer's basis order)."""
    x, y, z = vector
    return np.array([1.0, -y, z, -x, x * y, -y * z, 3 * z * z - 1, -x * z, x * x - y * y])


def lobe_attenuation(spread_deg: float) -> np.ndarray:
    """Per-band factors (3,) of a von Mises-Fisher lobe of angular radius ``spread_deg``.

    The concentration is ``kappa = 1 / (1 - cos(spread))``; the normalised lobe's SH
    coefficients are the point light's times ``1, coth k - 1/k, 1 - 3 (coth k - 1/k)/k``.
    """
    if spread_deg <= 1e-3:
        return np.ones(3)
    kappa = 1.0 / (1.0 - math.cos(math.radians(spread_deg)))
    band1 = 1.0 / math.tanh(kappa) - 1.0 / kappa
    return np.array([1.0, band1, 1.0 - 3.0 * band1 / kappa])


def radiance_to_light(radiance: np.ndarray) -> np.ndarray:
    """Renderer coefficients (27,) from radiance SH coefficients (9, 3) of an environment.

    ``radiance[k, c]`` is the projection of channel c's radiance onto the orthonormal
    real harmonic ``SH_NORM[k] * P_k`` (the renderer's signed polynomials, see
    :func:`sh_polynomials`). The result renders the Lambertian outgoing radiance,
    ``albedo / pi * irradiance``.
    """
    radiance = np.asarray(radiance, dtype=np.float64).reshape(9, 3)
    return (radiance * _TO_RENDERER[:, None]).T.reshape(27)


def environment_to_sh(
    ambient_rgb: np.ndarray, lights: list[tuple[np.ndarray, np.ndarray, float]]
) -> np.ndarray:
    """Project ambient light plus lobes into the renderer's 27 coefficients.

    Args:
        ambient_rgb: (3,) uniform ambient level per channel (albedo units).
        lights: ``(direction (3,), strength_rgb (3,), spread_deg)`` per light.

    Returns:
        (27,) float64 coefficients ``[R0..R8, G0..G8, B0..B8]``.
    """
    # Uniform radiance a has L_0 = a sqrt(4 pi) and irradiance pi a; a light of
    # irradiance pi s from unit direction d has L_k = pi s Y_k(d).
    radiance = np.zeros((9, 3))
    radiance[0] += np.asarray(ambient_rgb, dtype=np.float64) * math.sqrt(4 * math.pi)
    if lights:  # all lights at once: (L, 3) directions and strengths
        units = np.array([unit for unit, _, _ in lights], dtype=np.float64)
        units = units / np.sqrt((units * units).sum(1, keepdims=True))
        x, y, z = units.T
        polynomials = np.stack([np.ones_like(x), -y, z, -x, x * y, -y * z, 3 * z * z - 1, -x * z, x * x - y * y], 1)
        attenuation = np.array([lobe_attenuation(spread) for _, _, spread in lights])[:, _BAND]  # (L, 9)
        strengths = np.array([strength for _, strength, _ in lights], dtype=np.float64)  # (L, 3)
        radiance += math.pi * (SH_NORM * polynomials * attenuation).T @ strengths
    return radiance_to_light(radiance)


def frozen_light() -> np.ndarray:
    """The fixed neutral light: ambient 0.35 plus a white light 0.65 from slightly above the camera."""
    white = np.ones(3)
    return environment_to_sh(0.35 * white, [(direction(0.0, 15.0), 0.65 * white, 20.0)]).astype(np.float32)


_Light = tuple[np.ndarray, np.ndarray, float]  # direction, strength_rgb, spread_deg


def _outdoor(rng: np.random.Generator, config: LightConfig, key_direction: np.ndarray, key: float,
             dim: float) -> tuple[np.ndarray, list[_Light]]:
    """Sky ambient, skylight from above, a dim ground bounce and (unless overcast) a hard sun."""
    sky = blackbody_rgb(rng.uniform(*config.sky_temperature_k), config.colour_saturation)
    ambient = rng.uniform(*config.ambient) * dim * sky
    lights = [(np.array([0.0, 1.0, 0.0]), 0.5 * key * dim * sky, 75.0),
              (np.array([0.0, -1.0, 0.0]), 0.15 * key * np.array([1.0, 0.95, 0.85]), 70.0)]
    if rng.random() >= config.overcast_probability:
        sun = blackbody_rgb(rng.uniform(*config.sun_temperature_k), config.colour_saturation)
        lights.append((key_direction, key * sun, float(rng.uniform(0.0, 3.0))))
    else:
        ambient = ambient * 1.5
    return ambient, lights


def _indoor(rng: np.random.Generator, config: LightConfig, key_direction: np.ndarray, key: float,
            dim: float) -> tuple[np.ndarray, list[_Light]]:
    """Lamp-coloured ambient, a key light and a few weaker fills, soft to hard."""
    saturation = config.colour_saturation
    lamp = blackbody_rgb(rng.uniform(*config.indoor_temperature_k), saturation)
    ambient = rng.uniform(*config.ambient) * dim * blackbody_rgb(rng.uniform(*config.indoor_temperature_k), saturation)
    lights = [(key_direction, key * lamp, float(rng.uniform(*config.spread_deg)))]
    low, high = config.fill_lights
    for _ in range(int(rng.integers(low, high + 1))):
        fill_direction = direction(rng.uniform(-120.0, 120.0), rng.uniform(-30.0, 60.0))
        fill_colour = blackbody_rgb(rng.uniform(*config.indoor_temperature_k), saturation)
        strength = rng.uniform(*config.fill_ratio) * dim * key * fill_colour
        lights.append((fill_direction, strength, float(rng.uniform(*config.spread_deg))))
    return ambient, lights


def _flash(rng: np.random.Generator, config: LightConfig, key: float) -> tuple[np.ndarray, list[_Light]]:
    """An on-camera flash (hard, from just beside the lens) over a dim, neutral room."""
    ambient = rng.uniform(*config.ambient) * 0.4 * blackbody_rgb(rng.uniform(*config.indoor_temperature_k),
                                                                 config.colour_saturation)
    flash = direction(rng.uniform(-8.0, 8.0), rng.uniform(-3.0, 12.0))
    return ambient, [(flash, key * np.ones(3), float(rng.uniform(0.0, 8.0)))]


def _key_direction(rng: np.random.Generator, config: LightConfig, side: bool) -> np.ndarray:
    """Unit vector towards the key: anywhere in the configured ranges, or well to one side."""
    azimuth, elevation = rng.uniform(*config.azimuth_deg), rng.uniform(*config.elevation_deg)
    if side:
        azimuth = math.copysign(rng.uniform(60.0, 100.0), azimuth)
        elevation = min(elevation, 40.0)
    return direction(azimuth, elevation)


def meter(coefficients: np.ndarray) -> np.ndarray:
    """(3,) mean albedo multiplier per channel over the front of a face (a camera-facing hemisphere).

    Args:
        coefficients: (27,) renderer SH coefficients.
    """
    return np.asarray(coefficients, dtype=np.float64).reshape(3, 9) @ _METER


def expose(coefficients: np.ndarray, brightness: float, balance: float) -> np.ndarray:
    """Scale a light as a camera exposes it (see the module docstring).

    Args:
        coefficients: (27,) renderer SH coefficients of the scene.
        brightness: target :func:`meter` luminance.
        balance: fraction of the metered colour cast removed, in [0, 1].

    Returns:
        (27,) float64 coefficients whose metered luminance is ``brightness`` (unless
        that needs a gain above _MAX_EXPOSURE_GAIN) and whose cast is reduced.
    """
    metered = np.maximum(meter(coefficients), 1e-6)
    luminance = float(metered @ _LUMINANCE)
    gains = (metered / luminance) ** -balance  # towards grey
    gains *= luminance / float((metered * gains) @ _LUMINANCE)  # white balance keeps the luminance
    gains *= min(brightness / luminance, _MAX_EXPOSURE_GAIN)
    return (np.asarray(coefficients, dtype=np.float64).reshape(3, 9) * gains[:, None]).reshape(27)


def sample_light(rng: np.random.Generator, config: LightConfig = LightConfig()) -> np.ndarray:
    """Draw one illumination: an indoor, outdoor or flash scene projected into SH, then exposed.

    Args:
        rng: the sample's generator; the result is a pure function of its state.
        config: ranges of the draw.

    Returns:
        (27,) float32 SH coefficients for :class:`synface.generate.render.FaceRenderer`.
    """
    if config.frozen:
        return frozen_light()
    outdoor = rng.random() < config.outdoor_probability
    style = rng.random()
    flash = style < config.flash_probability
    side = not flash and style < config.flash_probability + config.side_light_probability
    key_direction = _key_direction(rng, config, side)
    key = float(rng.uniform(*config.key_strength))
    if flash:
        ambient, lights = _flash(rng, config, key)
    else:
        ambient, lights = (_outdoor if outdoor else _indoor)(rng, config, key_direction, key, 0.5 if side else 1.0)
    brightness, balance = float(rng.uniform(*config.exposure)), float(rng.uniform(*config.white_balance))
    return expose(environment_to_sh(ambient, lights), brightness, balance).astype(np.float32)
