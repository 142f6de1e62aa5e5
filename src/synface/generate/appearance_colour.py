"""Per-identity base colours of skin, hair, irises and lips as smooth functions of pigment parameters.

Skin follows measured CIELAB ranges of human skin (lightness from about 74 for the
lightest to about 24 for the darkest skin, redness a* about 8-16, yellowness b* about
12-24) as a function of a melanin level, with haemoglobin shifting a* and an undertone
shifting b*. Hair is a white keratin colour absorbed by eumelanin (brown-black) and
pheomelanin (red-yellow), iris colours blend blue (melanin-free stroma), green/hazel
and brown. Every function is smooth in its inputs, so blending two identities'
parameters blends their colours. Inputs are (B,) tensors; outputs (B, 3) linear RGB.
"""

from __future__ import annotations

import torch

# Skin CIELAB (L*, a*, b*) at melanin knots 0, 0.25, 0.5, 0.75, 1.
_SKIN_KNOTS = (
    (74.0, 10.0, 14.0),
    (64.0, 13.0, 18.0),
    (53.0, 14.5, 22.0),
    (40.0, 13.5, 20.0),
    (23.0, 8.0, 11.0),
)
# Linear-RGB absorbance (optical density per unit pigment) of hair pigments.
_EUMELANIN = (3.8, 4.0, 4.1)
_PHEOMELANIN = (0.35, 1.5, 2.7)
_KERATIN = (0.62, 0.57, 0.48)  # unpigmented (white) hair
_GREY = (0.42, 0.42, 0.41)
# Iris colours (linear RGB): blue stroma, green-hazel, light brown, dark brown.
_IRIS_BLUE = (0.06, 0.1, 0.16)
_IRIS_GREEN = (0.07, 0.09, 0.045)
_IRIS_LIGHT_BROWN = (0.09, 0.045, 0.018)
_IRIS_DARK_BROWN = (0.028, 0.014, 0.007)


def lab_to_linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65) (..., 3) to linear sRGB (..., 3), unclipped."""
    lightness, a, b = lab.unbind(-1)
    fy = (lightness + 16.0) / 116.0
    fx, fz = fy + a / 500.0, fy - b / 200.0
    delta = 6.0 / 29.0

    def inverse(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t > delta, t ** 3, 3.0 * delta ** 2 * (t - 4.0 / 29.0))

    xyz = torch.stack([0.95047 * inverse(fx), inverse(fy), 1.08883 * inverse(fz)], -1)
    matrix = lab.new_tensor([
        [3.2404542, -1.5371385, -0.4985314],
        [-0.9692660, 1.8760108, 0.0415560],
        [0.0556434, -0.2040259, 1.0572252],
    ])
    return xyz @ matrix.T


def _knots(table: tuple[tuple[float, ...], ...], t: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of equally spaced rows of ``table`` at t in [0, 1]; (B,) -> (B, C)."""
    values = t.new_tensor(table)  # (K, C)
    position = t.clamp(0.0, 1.0) * (len(table) - 1)
    low = position.floor().clamp(max=len(table) - 2).long()
    frac = (position - low)[:, None]
    return values[low] * (1.0 - frac) + values[low + 1] * frac


def skin_colour(melanin: torch.Tensor, haemoglobin: torch.Tensor, undertone: torch.Tensor) -> torch.Tensor:
    """Base skin albedo.

    Args:
        melanin: (B,) in [0, 1], lightest to darkest skin.
        haemoglobin: (B,) in [0, 1], sallow to ruddy (a* -3 .. +4).
        undertone: (B,) in [-1, 1], pink to olive/golden (b* -4 .. +4).

    Returns:
        (B, 3) linear RGB.
    """
    lab = _knots(_SKIN_KNOTS, melanin)
    # Pigment shifts are weaker in very dark skin, where melanin masks them.
    visibility = 1.0 - 0.5 * melanin.clamp(0.0, 1.0)
    shift = torch.stack([
        -1.5 * (haemoglobin - 0.5),
        (7.0 * haemoglobin - 3.0) * visibility,
        4.0 * undertone * visibility,
    ], -1)
    return lab_to_linear_rgb(lab + shift).clamp(0.003, 1.0)


def hair_colour(eumelanin: torch.Tensor, pheomelanin: torch.Tensor) -> torch.Tensor:
    """Hair albedo of unmixed (not greyed) hair: (B,) pigment levels in [0, 1] -> (B, 3) linear RGB."""
    eu = eumelanin.clamp(0.0, 1.0)[:, None]
    pheo = pheomelanin.clamp(0.0, 1.0)[:, None]
    # Red pigment shows only where eumelanin leaves light to absorb.
    density = eu * eu.new_tensor(_EUMELANIN) + pheo * (1.0 - 0.6 * eu) * eu.new_tensor(_PHEOMELANIN)
    return eu.new_tensor(_KERATIN) * torch.exp(-density)


def grey_hair_colour(colour: torch.Tensor) -> torch.Tensor:
    """The colour a hair of pigment colour (B, 3) turns when it loses its pigment: greyish white."""
    return colour.new_tensor(_GREY).expand_as(colour)


def iris_colour(melanin: torch.Tensor, green: torch.Tensor) -> torch.Tensor:
    """Iris albedo: melanin (B,) 0 blue .. 0.6 light brown .. 1 dark brown; green (B,) in [0, 1] hazel/green tint."""
    m = melanin.clamp(0.0, 1.0)
    log_table = torch.log(m.new_tensor([_IRIS_BLUE, _IRIS_LIGHT_BROWN, _IRIS_DARK_BROWN]))
    # Interpolate in log space: the brown-blue path then passes through grey-hazel, not purple.
    position = torch.where(m < 0.6, m / 0.6, 1.0 + (m - 0.6) / 0.4)
    low = position.floor().clamp(max=1).long()
    frac = (position - low)[:, None]
    colour = torch.exp(log_table[low] * (1.0 - frac) + log_table[low + 1] * frac)
    # Green/hazel needs some yellow pigment: strongest for light and medium irises.
    tint = (green.clamp(0.0, 1.0) * (1.0 - m ** 2))[:, None]
    return colour * (1.0 - tint) + m.new_tensor(_IRIS_GREEN) * tint


def lip_colour(skin: torch.Tensor, redness: torch.Tensor, darkness: torch.Tensor) -> torch.Tensor:
    """Lip albedo relative to the skin (B, 3): redness and pigmentation (B,) in [0, 1]."""
    red = redness.clamp(0.0, 1.0)[:, None]
    dark = darkness.clamp(0.0, 1.0)[:, None]
    # Lips have thin skin over blood vessels: less green/blue, a little darker.
    tint = skin.new_tensor([0.92, 0.62, 0.66]) + red * skin.new_tensor([0.05, -0.22, -0.16])
    return skin * tint * (1.0 - 0.45 * dark)
