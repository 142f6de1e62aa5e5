"""Procedural photo backgrounds behind synthetic face crops, drawn as parameter vectors and rendered in batches.

A real face crop shows a bit of the scene around the head: walls, doors, shelves and
windows indoors, sky and foliage outdoors, studio backdrops, and sometimes another
person at the border. :func:`sample_background` draws one scene as a fixed-length float
vector (:data:`PARAM_NAMES`; positions are fractions of the image, colours sRGB) and
:func:`render_background` turns a batch of vectors into images on any device: a colour
gradient, soft rectangles, blurred blobs, a noise texture, an optional person-like
skin/hair blob at a side, then a defocus blur and vignetting.
"""

from __future__ import annotations

import colorsys
import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from synface.config import ConfigBase, require
from synface.errors import DataError
from synface.generate.appearance_noise import SEED_LIMIT, fractal_noise, seeds_from_params, value_noise
from synface.generate.quality import gaussian_blur

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("plain", "indoor", "outdoor", "texture")
NUM_RECTS = 4
NUM_BLOBS = 6
_RECT_FIELDS = ("x", "y", "half_width", "half_height", "softness", "red", "green", "blue", "alpha")
_BLOB_FIELDS = ("x", "y", "radius", "red", "green", "blue", "alpha")
PARAM_NAMES: tuple[str, ...] = (
    ("top_red", "top_green", "top_blue", "bottom_red", "bottom_green", "bottom_blue", "gradient_angle")
    + tuple(f"rect{i}_{f}" for i in range(NUM_RECTS) for f in _RECT_FIELDS)
    + tuple(f"blob{i}_{f}" for i in range(NUM_BLOBS) for f in _BLOB_FIELDS)
    + ("texture_coarse", "texture_fine", "texture_chroma", "texture_seed")
    + ("person_x", "person_y", "person_size", "person_skin_red", "person_skin_green", "person_skin_blue",
       "person_hair_red", "person_hair_green", "person_hair_blue", "person_alpha")
    + ("blur_sigma", "vignette")
)
_INDEX = {name: i for i, name in enumerate(PARAM_NAMES)}
_GRADIENT = slice(0, 7)
_RECTS = slice(7, 7 + NUM_RECTS * len(_RECT_FIELDS))
_BLOBS = slice(_RECTS.stop, _RECTS.stop + NUM_BLOBS * len(_BLOB_FIELDS))


@dataclass(frozen=True)
class BackgroundConfig(ConfigBase):
    """Which kinds of scene appear how often, and how they are finished.

    ``kind_weights`` are relative frequencies of ``plain``, ``indoor``, ``outdoor`` and
    ``texture`` scenes. ``frozen`` gives every image the same flat background of
    ``frozen_colour`` (a controlled setting for ablations).
    """

    frozen: bool = False
    frozen_colour: tuple[float, float, float] = (0.5, 0.5, 0.5)
    kind_weights: tuple[float, float, float, float] = (0.2, 0.4, 0.3, 0.1)
    person_probability: float = 0.12
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    vignette: tuple[float, float] = (0.0, 0.35)

    def validate(self) -> None:
        require(len(self.frozen_colour) == 3 and all(0.0 <= c <= 1.0 for c in self.frozen_colour),
                "frozen_colour", f"{self.frozen_colour} must be three values in [0, 1]")
        require(len(self.kind_weights) == len(KINDS) and all(w >= 0 for w in self.kind_weights)
                and sum(self.kind_weights) > 0, "kind_weights",
                f"{self.kind_weights} must be {len(KINDS)} non-negative weights ({', '.join(KINDS)}), not all 0")
        require(0.0 <= self.person_probability <= 1.0, "person_probability",
                f"{self.person_probability} is outside [0, 1]")
        require(0.0 <= self.blur_sigma[0] <= self.blur_sigma[1] <= 20.0, "blur_sigma",
                f"{self.blur_sigma} must be (min, max) with 0 <= min <= max <= 20 pixels")
        require(0.0 <= self.vignette[0] <= self.vignette[1] <= 1.0, "vignette",
                f"{self.vignette} must be (min, max) within [0, 1]")


def _hsv(rng: np.random.Generator, hue: tuple[float, float], saturation: tuple[float, float],
         value: tuple[float, float]) -> np.ndarray:
    """An sRGB colour drawn uniformly in an HSV box (hue in turns, may wrap)."""
    return np.array(colorsys.hsv_to_rgb(rng.uniform(*hue) % 1.0, rng.uniform(*saturation),
                                        rng.uniform(*value)))


def _palette(rng: np.random.Generator, kind: str) -> np.ndarray:
    """One scene colour typical of ``kind``."""
    if kind == "outdoor":
        choice = rng.integers(4)
        boxes = [((0.52, 0.64), (0.1, 0.6), (0.6, 1.0)),    # sky
                 ((0.17, 0.4), (0.2, 0.6), (0.15, 0.65)),   # foliage
                 ((0.05, 0.15), (0.05, 0.4), (0.2, 0.8)),   # buildings, ground
                 ((0.0, 1.0), (0.0, 0.1), (0.3, 0.95))]     # overcast, concrete
        return _hsv(rng, *boxes[choice])
    if kind == "indoor":
        choice = rng.integers(4)
        boxes = [((0.05, 0.15), (0.05, 0.35), (0.55, 0.95)),  # beige, cream walls
                 ((0.0, 1.0), (0.0, 0.08), (0.1, 0.95)),      # greys, white, black
                 ((0.02, 0.1), (0.3, 0.7), (0.15, 0.6)),      # wood
                 ((0.0, 1.0), (0.1, 0.45), (0.2, 0.9))]       # painted, posters
        return _hsv(rng, *boxes[choice])
    return _hsv(rng, (0.0, 1.0), (0.0, 0.35), (0.05, 0.95))


def sample_background(rng: np.random.Generator, config: BackgroundConfig = BackgroundConfig()) -> np.ndarray:
    """Draw one background scene.

    Args:
        rng: the sample's generator.
        config: kinds, frequencies and finishing ranges.

    Returns:
        (Kb,) float32 in the order of :data:`PARAM_NAMES`.
    """
    params = np.zeros(len(PARAM_NAMES), dtype=np.float32)
    if config.frozen:
        params[0:6] = np.tile(config.frozen_colour, 2)
        return params
    weights = np.asarray(config.kind_weights, dtype=np.float64)
    kind = KINDS[rng.choice(len(KINDS), p=weights / weights.sum())]
    top = _palette(rng, kind)
    bottom = np.clip(top * rng.uniform(0.6, 1.2) + rng.normal(0, 0.06, 3), 0, 1)
    params[_GRADIENT] = [*top, *bottom, rng.normal(0.0, 25.0)]
    if kind == "indoor":
        for i in range(rng.integers(1, NUM_RECTS + 1)):
            centre = rng.uniform(0.0, 1.0, 2)
            size = rng.uniform(0.05, 0.6, 2)
            if rng.random() < 0.5:  # door frames, shelves, window edges: long thin structures
                size[rng.integers(2)] = rng.uniform(0.01, 0.05)
            start = _RECTS.start + i * len(_RECT_FIELDS)
            params[start:start + 9] = [*centre, *size, rng.uniform(0.003, 0.05),
                                       *_palette(rng, "indoor"), rng.uniform(0.5, 1.0)]
    blob_count = {"plain": 0, "indoor": rng.integers(0, 3), "outdoor": rng.integers(2, NUM_BLOBS + 1),
                  "texture": rng.integers(0, 2)}[kind]
    for i in range(blob_count):
        start = _BLOBS.start + i * len(_BLOB_FIELDS)
        params[start:start + 7] = [*rng.uniform(-0.1, 1.1, 2), rng.uniform(0.08, 0.45),
                                   *_palette(rng, "outdoor" if kind == "outdoor" else "indoor"),
                                   rng.uniform(0.4, 1.0)]
    coarse, fine = {"plain": (0.01, 0.005), "indoor": (0.03, 0.01), "outdoor": (0.08, 0.04),
                    "texture": (0.15, 0.1)}[kind]
    params[_INDEX["texture_coarse"]] = rng.uniform(0.0, coarse)
    params[_INDEX["texture_fine"]] = rng.uniform(0.0, fine)
    params[_INDEX["texture_chroma"]] = rng.uniform(0.0, 0.3)
    params[_INDEX["texture_seed"]] = float(rng.integers(1, SEED_LIMIT))
    if rng.random() < config.person_probability:
        skin = _hsv(rng, (0.03, 0.09), (0.25, 0.6), (0.25, 0.95))
        hair = _hsv(rng, (0.03, 0.12), (0.2, 0.7), (0.03, 0.6))
        side = rng.choice([-0.05, 1.05])
        params[_INDEX["person_x"]:_INDEX["person_alpha"] + 1] = [
            side + rng.normal(0, 0.05), rng.uniform(0.1, 0.7), rng.uniform(0.2, 0.4),
            *skin, *hair, rng.uniform(0.7, 1.0)]
    params[_INDEX["blur_sigma"]] = rng.uniform(*config.blur_sigma)
    params[_INDEX["vignette"]] = rng.uniform(*config.vignette)
    return params


def _grid(params: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates as image fractions, each (1, H, W)."""
    y = (torch.arange(height, device=params.device, dtype=torch.float32) + 0.5) / height
    x = (torch.arange(width, device=params.device, dtype=torch.float32) + 0.5) / width
    return y[None, :, None].expand(1, height, width), x[None, None, :].expand(1, height, width)


def _over(canvas: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Composite ``colour`` (B, 3) with coverage ``alpha`` (B, H, W) over ``canvas`` (B, 3, H, W)."""
    alpha = alpha[:, None]
    return canvas * (1.0 - alpha) + colour[:, :, None, None] * alpha


def _person(canvas: torch.Tensor, p: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A blurry head at a side: a hair ellipse with a skin ellipse in front of it."""
    i = _INDEX
    cx, cy, size = p[:, i["person_x"], None, None], p[:, i["person_y"], None, None], p[:, i["person_size"], None, None]
    alpha = p[:, i["person_alpha"], None, None]
    size = size.clamp_min(1e-3)
    hair = ((x - cx) / (0.8 * size)) ** 2 + ((y - cy + 0.15 * size) / size) ** 2
    face = ((x - cx) / (0.65 * size)) ** 2 + ((y - cy - 0.1 * size) / (0.9 * size)) ** 2
    canvas = _over(canvas, p[:, i["person_hair_red"]:i["person_hair_blue"] + 1],
                   alpha * torch.sigmoid((1.0 - hair) * 12.0))
    return _over(canvas, p[:, i["person_skin_red"]:i["person_skin_blue"] + 1],
                 alpha * torch.sigmoid((1.0 - face) * 12.0))


def render_background(params: torch.Tensor, height: int, width: int,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Render background scenes.

    Args:
        params: (B, Kb) rows from :func:`sample_background`.
        height, width: image size in pixels.
        device: where to render (default: the parameters' device).

    Returns:
        (B, 3, H, W) sRGB in [0, 1]; a pure function of the parameters.

    Raises:
        DataError: parameters of the wrong shape.
    """
    if params.ndim != 2 or params.shape[1] != len(PARAM_NAMES):
        raise DataError(f"render_background: params must be (B, {len(PARAM_NAMES)}), got {tuple(params.shape)}")
    p = params.to(device=device or params.device, dtype=torch.float32)
    # Everything but the fine grain is smooth: draw it at half resolution, then upsample.
    small_h, small_w = (height + 1) // 2, (width + 1) // 2
    canvas = _scene(p, small_h, small_w)
    sigma = p[:, _INDEX["blur_sigma"]] / 2.0
    blurred = sigma > 0.05
    if bool(blurred.any()):
        index = blurred.nonzero().squeeze(1)
        canvas = canvas.clone()
        canvas[index] = gaussian_blur(canvas[index], sigma[index])
    canvas = F.interpolate(canvas, size=(height, width), mode="bilinear", align_corners=False)
    canvas = _texture(canvas, p)
    y, x = _grid(p, height, width)
    vignette = p[:, _INDEX["vignette"], None, None, None]
    radius2 = ((x - 0.5) ** 2 + (y - 0.5) ** 2)[:, None] * 2.0  # 1 at the corners
    return (canvas * (1.0 - vignette * radius2)).clamp(0.0, 1.0)


def _scene(p: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Gradient, rectangles, blobs, coarse texture and person of each scene, (B, 3, H, W)."""
    y, x = _grid(p, height, width)
    angle = torch.deg2rad(p[:, 6])[:, None, None]
    # Gradient coordinate along the tilted vertical, 0 at the top and 1 at the bottom.
    t = ((y - 0.5) * torch.cos(angle) + (x - 0.5) * torch.sin(angle) + 0.5).clamp(0.0, 1.0)
    canvas = _over(p[:, 0:3, None, None].expand(-1, -1, height, width), p[:, 3:6], t)
    for i in range(NUM_RECTS):
        r = p[:, _RECTS.start + i * len(_RECT_FIELDS):_RECTS.start + (i + 1) * len(_RECT_FIELDS)]
        if not bool((r[:, 8] > 0).any()):
            continue
        soft = r[:, 4, None, None].clamp_min(1e-3)
        inside_x = torch.sigmoid((r[:, 2, None, None] - (x - r[:, 0, None, None]).abs()) / soft)
        inside_y = torch.sigmoid((r[:, 3, None, None] - (y - r[:, 1, None, None]).abs()) / soft)
        canvas = _over(canvas, r[:, 5:8], r[:, 8, None, None] * inside_x * inside_y)
    aspect = width / height
    for i in range(NUM_BLOBS):
        b = p[:, _BLOBS.start + i * len(_BLOB_FIELDS):_BLOBS.start + (i + 1) * len(_BLOB_FIELDS)]
        if not bool((b[:, 6] > 0).any()):
            continue
        distance2 = ((x - b[:, 0, None, None]) * aspect) ** 2 + (y - b[:, 1, None, None]) ** 2
        radius = b[:, 2, None, None].clamp_min(1e-3)
        canvas = _over(canvas, b[:, 3:6], b[:, 6, None, None] * torch.exp(-0.5 * distance2 / radius ** 2))
    seeds = seeds_from_params(p[:, _INDEX["texture_seed"]])
    coarse = fractal_noise(seeds, 4, height, width, cell=max(height, width) / 4.0, octaves=3, mode="bilinear")
    canvas = canvas + _coloured(coarse, p, "texture_coarse")
    if bool((p[:, _INDEX["person_alpha"]] > 0).any()):
        canvas = _person(canvas, p, y, x)
    return canvas


def _coloured(noise: torch.Tensor, p: torch.Tensor, amount: str) -> torch.Tensor:
    """Mix grey (channel 0) and coloured (channels 1..3) noise (B, 4, H, W) by ``texture_chroma``."""
    chroma = p[:, _INDEX["texture_chroma"], None, None, None]
    return p[:, _INDEX[amount], None, None, None] * ((1.0 - chroma) * noise[:, :1] + chroma * noise[:, 1:])


def _texture(canvas: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Add the fine grey grain (a few pixels across) at full resolution."""
    h, w = canvas.shape[-2:]
    seeds = seeds_from_params(p[:, _INDEX["texture_seed"]])
    grain = (value_noise(seeds + 7919, 1, h, w, cell=3.0, mode="bilinear") - 0.5) * 4.9  # about unit variance
    return canvas + p[:, _INDEX["texture_fine"], None, None, None] * grain
