"""Turn a batch of appearance parameters into per-vertex albedo and specular strength, layer by layer.

Skin starts from a base colour per identity, darkened by linear absorbance maps
(redness, wrinkles, lash line, makeup, pores, creases) and by identity-mixed noise
fields (mottling, freckles, age spots); lips, brows, facial hair and scalp hair are
then laid over it with soft per-vertex coverage. Eyes, mouth and teeth are painted
separately. Every operation is a smooth function of the parameters, batched over
identities, on the device of the tables. Lengths are in inter-ocular distances.
"""

from __future__ import annotations

import math

import torch

from synface.generate.appearance_colour import (
    grey_hair_colour,
    hair_colour,
    iris_colour,
    lip_colour,
    skin_colour,
)
from synface.generate.appearance_maps import ABSORBANCE, PaintTables, SpotLayout
from synface.generate.appearance_sampling import (
    INDEX,
    NUM_FRECKLE,
    NUM_HAIRLINE,
    NUM_MOTTLE,
    PARAM_NAMES,
)

_MELANIN_ABSORBANCE = (0.35, 0.55, 0.75)  # extra pigment in freckles and age spots
_LIPSTICK = ((0.33, 0.025, 0.035), (0.5, 0.12, 0.17), (0.28, 0.1, 0.07))  # red, pink, nude-brown
_SCLERA = (0.4, 0.37, 0.35)
# Wet eyes: glossy enough that the shading's gloss mapping gives a point-like catch-light, not a veil.
_EYE_SPECULAR = 0.75
_CAVITY = 0.8  # exponent of the cavity occlusion applied to all albedo (1: full strength)
_CARUNCLE = (0.45, 0.2, 0.18)
_PUPIL = (0.01, 0.01, 0.01)
_STUBBLE_TINT = (0.45, 0.48, 0.56)
_TEETH = (0.52, 0.48, 0.4)  # enamel in the shade of the lips, not a white glow
_GUMS = (0.3, 0.08, 0.08)


def _fields(params: torch.Tensor, prefix: str, count: int, fields: torch.Tensor) -> torch.Tensor:
    """Identity mix of fixed noise fields: (B, count) coefficients @ (count, N) / sqrt(count)."""
    start = INDEX[f"{prefix}_0"]
    return params[:, start:start + count] @ fields / math.sqrt(count)


def _spots(params: torch.Tensor, prefix: str, count: int, layout: SpotLayout, amount: torch.Tensor) -> torch.Tensor:
    """(B, S) coverage of the spots an identity shows: more spots as ``amount`` (B,) grows.

    Each candidate spot has a score, a fixed projection of the identity's coefficients;
    it shows (smoothly) once the score passes a threshold that falls with ``amount``.
    """
    start = INDEX[f"{prefix}_0"]
    score = params[:, start:start + count] @ layout.basis.T / math.sqrt(count)  # (B, K), unit variance
    threshold = 2.2 - 2.6 * amount[:, None]
    visible = torch.sigmoid((score - threshold) / 0.2) * layout.gain * (3.0 * amount[:, None]).clamp(max=1.0)
    return visible[:, layout.index] * layout.weight


def asymmetry(p: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B,) signed asymmetry: positive raises the brow and darkens the eye of the image-right side."""
    return p["asymmetry"] * (2.0 * p["asymmetry_side"] - 1.0)


def _over(target: torch.Tensor, index: torch.Tensor, layer: torch.Tensor, alpha: torch.Tensor) -> None:
    """In place: ``target[:, index] = lerp(target[:, index], layer, alpha)``; alpha (B, N), target (B, S[, 3])."""
    if target.ndim == 3:
        alpha = alpha[..., None]
    current = target.index_select(1, index)
    target.index_copy_(1, index, torch.lerp(current, layer.expand_as(current), alpha))


def _any(amount: torch.Tensor) -> bool:
    """Whether a layer shows on any identity of the batch (skipping it otherwise changes nothing)."""
    return bool((amount > 0).any())


def paint(tables: PaintTables, params: torch.Tensor, num_vertices: int) -> dict[str, torch.Tensor]:
    """Albedo of a batch.

    Args:
        tables: the model's paint constants, on the device to paint on.
        params: (B, Ka) appearance parameters on the same device.
        num_vertices: V of the face model.

    Returns:
        ``diffuse`` (B, V, 3) linear RGB in [0, 1] and ``specular`` (B, V) in [0, 1]; how
        fully scalp hair and beard or moustache cover their candidate vertices
        (``tables.hair``, ``tables.beard``): ``scalp_cover`` (B, Nh) and ``beard_cover``
        (B, Nd); and the colour of those hairs: ``scalp_colour`` (B, Nh, 3) and
        ``beard_colour`` (B, Nd, 3).
    """
    assert params.shape[1] == len(PARAM_NAMES)
    p = {name: params[:, i] for i, name in enumerate(PARAM_NAMES)}
    batch = params.shape[0]
    base = skin_colour(p["skin_melanin"], p["skin_haemoglobin"], p["skin_undertone"])  # (B, 3)
    colour, specular = _skin(tables, params, p, base)  # (B, S, 3), (B, S); layers below paint in place
    _lips(tables, p, base, colour, specular)
    pigment = hair_colour(p["hair_eumelanin"], p["hair_pheomelanin"])  # (B, 3)
    _brows(tables, p, colour, specular)
    beard, beard_colour = params.new_zeros(batch, tables.beard.shape[0]), None
    if _any(p["stubble"] + p["beard"] + p["moustache"]):
        beard, beard_colour = _facial_hair(tables, params, p, pigment, colour, specular)
    if beard_colour is None:
        beard_colour = pigment[:, None, :].expand(batch, tables.beard.shape[0], 3)
    scalp, scalp_colour = _scalp_hair(tables, params, p, pigment, colour, specular)

    yellowing = 1.0 - 0.25 * p["wrinkle_nasolabial"][:, None] * params.new_tensor([0.0, 0.3, 0.7])  # (B, 3)
    colours = (
        colour,
        _eyes(tables, p),
        tables.mouth_colour[None].expand(batch, -1, -1),
        _teeth(tables, params.new_tensor(_TEETH) * yellowing),
    )
    shines = (
        specular,
        specular.new_full((batch, tables.eyes.shape[0]), _EYE_SPECULAR),
        specular.new_full((batch, tables.mouth.shape[0]), 0.35),
        specular.new_full((batch, tables.teeth.shape[0]), 0.3),
    )
    # One gather puts the groups back in vertex order (cheaper than scattering each group);
    # creases and cavities receive less light, diffuse and specular alike.
    occlusion = tables.cavity.pow(_CAVITY)[None]  # (1, V)
    diffuse = (torch.cat(colours, 1).index_select(1, tables.order) * occlusion[..., None]).clamp_(0.0, 1.0)
    shine = (torch.cat(shines, 1).index_select(1, tables.order) * occlusion).clamp_(0.0, 1.0)
    return {"diffuse": diffuse, "specular": shine, "scalp_cover": scalp, "beard_cover": beard,
            "scalp_colour": scalp_colour, "beard_colour": beard_colour}


def _skin(tables: PaintTables, params: torch.Tensor, p: dict[str, torch.Tensor],
          base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Skin colour (B, S, 3) and specular (B, S) before the lip and hair layers."""
    batch, count = params.shape[0], tables.skin.shape[0]
    tilt = asymmetry(p)
    coefficients = {
        "redness": 0.15 + 0.55 * p["skin_redness"],
        "under_eye": 0.6 * p["under_eye"],
        "forehead": 0.35 * p["wrinkle_forehead"],
        "nasolabial": 0.45 * p["wrinkle_nasolabial"] + 0.2 * p["face_structure"],
        "eyes": 0.4 * p["wrinkle_eyes"],
        "lash_line": 1.2 + 1.0 * p["lash_line"],
        "eye_makeup": 2.0 * p["eye_makeup"],
        "texture": 0.3 * p["skin_texture"],
        "occlusion": torch.ones_like(p["skin_melanin"]),
        "pigment_rings": 0.1 + 0.35 * p["skin_melanin"] + 0.2 * p["under_eye"],
        "contour": 0.1 + 0.4 * p["face_structure"],
        "contour_side": 0.12 * tilt,
        "under_eye_side": 0.25 * tilt,
    }
    start = INDEX["mottle_0"]
    mottle_weights = params[:, start:start + NUM_MOTTLE] * (0.1 / math.sqrt(NUM_MOTTLE)) * p["skin_mottle"][:, None]
    weights = torch.cat([torch.stack([coefficients[name] for name in ABSORBANCE], 1), mottle_weights], 1)
    absorbance = (weights @ tables.absorbance).reshape(batch, count, 3)
    pigment = None
    for layout, prefix, size, amount, strength in (
        (tables.freckles, "freckle", NUM_FRECKLE, p["skin_freckles"], 0.5),
        (tables.age_spots, "mottle", NUM_MOTTLE, p["age_spots"], 0.8),
    ):
        rows = (amount > 0).nonzero().squeeze(1)  # most identities have none: paint only the others
        if len(rows):
            spots = torch.zeros(batch, count, device=params.device, dtype=params.dtype)
            spots.index_copy_(0, rows, strength * _spots(params[rows], prefix, size, layout, amount[rows]))
            pigment = spots if pigment is None else pigment + spots
    if pigment is not None:
        absorbance = absorbance + pigment[..., None] * params.new_tensor(_MELANIN_ABSORBANCE)
    colour = base[:, None, :] * torch.exp(-absorbance)
    # Pores and fine relief break the highlight up instead of a smooth plastic sheen.
    relief = (1.0 + 0.25 * tables.pores).clamp(min=0.2)
    specular = (0.05 + 0.2 * p["skin_shine"])[:, None] * ((1.0 + 0.8 * tables.tzone) * tables.gloss * relief)
    return colour, specular


def _lips(tables: PaintTables, p: dict[str, torch.Tensor], base: torch.Tensor, colour: torch.Tensor,
          specular: torch.Tensor) -> None:
    width = (0.006 + 0.02 * (1.0 - p["lip_definition"]))[:, None]
    weight = torch.sigmoid(-(tables.lip_d + 0.004) / width)  # (B, Nl)
    ratio = lip_colour(base, p["lip_redness"], p["lip_darkness"]) / base  # (B, 3)
    tint = ratio[:, None, :] * (1.0 + 0.08 * tables.lower_lip)[None, :, None]
    colour.index_copy_(1, tables.lips, colour.index_select(1, tables.lips) * (1.0 + weight[..., None] * (tint - 1.0)))
    if _any(p["lipstick"]):
        hue = p["lipstick_hue"].clamp(0.0, 1.0)[:, None] * 2.0
        red, pink, nude = (colour.new_tensor(c) for c in _LIPSTICK)
        lipstick = torch.where(hue < 1.0, torch.lerp(red, pink, hue), torch.lerp(pink, nude, (hue - 1.0).clamp(min=0)))
        _over(colour, tables.lips, lipstick[:, None, :], weight * 0.6 * p["lipstick"][:, None])
    _over(specular, tables.lips, (0.25 + 0.2 * p["lipstick"])[:, None], weight)


def _brows(tables: PaintTables, p: dict[str, torch.Tensor], colour: torch.Tensor, specular: torch.Tensor) -> None:
    t, d = tables.brow_t[None], tables.brow_d[None]  # (1, Nb)
    col = lambda name: p[name][:, None]
    arch = torch.exp(-(((t - 0.62) / 0.3) ** 2))
    half = (0.04 + 0.06 * col("brow_thickness")) * (1.0 - 0.5 * t.clamp(0.0, 1.0))
    # The landmarks trace the brow's upper edge: the band hangs below them.
    centre = (-0.8 * half + 0.06 * (col("brow_height") - 0.5) + 0.05 * (col("brow_arch") - 0.5) * arch
              - 0.06 * torch.relu(t - 0.8) + 0.03 * asymmetry(p)[:, None] * tables.brow_side[None])
    end = 0.8 + 0.35 * col("brow_length")
    alpha = ((0.5 + 0.5 * col("brow_density")) * torch.sigmoid((half - (d - centre).abs()) / 0.012)
             * torch.sigmoid((t + 0.08) / 0.04) * torch.sigmoid((end - t) / 0.05)
             * (0.6 + 0.4 * tables.brow_strands) * (0.75 + 0.25 * (t / 0.3).clamp(0.0, 1.0)))  # (B, Nb)
    pigment = hair_colour((p["hair_eumelanin"] + 0.1 + 0.3 * p["brow_darkness"]).clamp(max=1.0), p["hair_pheomelanin"])
    brow = torch.lerp(pigment, grey_hair_colour(pigment), 0.3 * p["hair_grey"][:, None] ** 2)  # (B, 3)
    _over(colour, tables.brow, brow[:, None, :], alpha)
    _over(specular, tables.brow, specular.new_tensor(0.03), alpha)


def beard_cover(tables: PaintTables, params: torch.Tensor, p: dict[str, torch.Tensor],
                soft: float = 0.0) -> torch.Tensor:
    """(B, Nd) how fully a beard or moustache covers each candidate vertex (``tables.beard``).

    Args:
        tables, params, p: as in :func:`paint`.
        soft: widen the beard's edges by this much (inter-ocular distances) and move them
            inwards by as much: a smooth version of the cover for the hair volume.
    """
    col = lambda name: p[name][:, None]
    # Strand noise frays the edges: hairs stop at slightly different places.
    fray = 0.03 * (tables.beard_strands[None] - 0.5)  # (1, Nd)
    edge = 0.03 * _fields(params, "hairline", NUM_HAIRLINE, tables.beard_fields) + fray  # (B, Nd)
    line = tables.beard_low + col("beard_extent") * (tables.beard_high - tables.beard_low) + edge
    zone = torch.sigmoid((line - soft) / (0.03 + soft)) * tables.outside_lips
    neck = torch.sigmoid((0.12 + 0.45 * col("beard_neck") - tables.jaw_drop + fray - soft) / (0.04 + soft))
    moustache = (tables.moustache_zone * (1.0 + 4.0 * fray)).clamp(0.0, 1.0) * tables.outside_lips
    return (col("beard") * zone * neck + col("moustache") * moustache).clamp(max=1.0)


def _facial_hair(tables: PaintTables, params: torch.Tensor, p: dict[str, torch.Tensor], pigment: torch.Tensor,
                 colour: torch.Tensor, specular: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint stubble, beard and moustache in place; returns their cover (B, Nd) and hair colour (B, Nd, 3)."""
    col = lambda name: p[name][:, None]
    edge = 0.03 * _fields(params, "hairline", NUM_HAIRLINE, tables.beard_fields)  # (B, Nd)
    full = (torch.sigmoid((tables.beard_high + edge - 0.02) / 0.05) * tables.outside_lips
            * torch.sigmoid((0.35 - tables.jaw_drop) / 0.05))
    moustache = tables.moustache_zone * tables.outside_lips
    strands = tables.beard_strands[None]
    stubble = col("stubble") * 0.35 * torch.maximum(full, moustache) * (0.4 + 0.6 * strands)
    beard = beard_cover(tables, params, p) * (0.8 + 0.15 * strands)
    grey = (col("hair_grey") * (0.8 + 0.4 * strands)).clamp(0.0, 1.0)[..., None]
    red = hair_colour(p["hair_eumelanin"], (p["hair_pheomelanin"] + 0.1).clamp(max=1.0))
    hair = torch.lerp(red[:, None, :], grey_hair_colour(red)[:, None, :], grey) * (0.85 + 0.3 * strands)[..., None]
    # Stubble is hair under and just out of the skin: a bluish shadow, browner for light hair.
    current = colour.index_select(1, tables.beard)
    shadow = torch.lerp(current * colour.new_tensor(_STUBBLE_TINT), pigment[:, None, :].expand_as(current), 0.3)
    _over(colour, tables.beard, shadow, stubble)
    _over(colour, tables.beard, hair, beard)
    _over(specular, tables.beard, specular.new_tensor(0.03), beard)
    return beard, hair


def _hairline_heights(p: dict[str, torch.Tensor], anchors: dict[str, float]) -> torch.Tensor:
    """(B, 11) hairline height at each azimuth anchor (see ``appearance_maps._hair_anchors``)."""
    brow, ear_top, ear_bottom = anchors["brow_top"], anchors["ear_top"], anchors["ear_bottom"]
    front = brow + 0.4 + 0.4 * p["hairline_height"]
    fringe, recession, sides = p["hair_fringe"], p["hair_recession"], p["hair_sides"]
    over_ear = torch.full_like(front, ear_top + 0.06)
    sideburn = ear_top - 0.05 - 0.3 * sides
    return torch.stack([
        torch.lerp(front, torch.full_like(front, brow + 0.08), 0.95 * fringe),
        torch.lerp(front + 0.02, torch.full_like(front, brow + 0.12), 0.85 * fringe),
        torch.lerp(front + 0.05, torch.full_like(front, brow + 0.3), 0.5 * fringe) + 0.45 * recession,
        ear_top + 0.45 + 0.35 * recession,
        sideburn, sideburn, over_ear, over_ear,
        ear_bottom + 0.25 - 0.3 * sides,
        ear_bottom - 0.05 - 0.35 * sides,
        ear_bottom - 0.1 - 0.4 * sides,
    ], 1)


def scalp_cover(tables: PaintTables, params: torch.Tensor, p: dict[str, torch.Tensor],
                soft: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """How fully hair covers each hair-bearing vertex (``tables.hair``), before density.

    Args:
        tables, params, p: as in :func:`paint`.
        soft: widen the hairline and the bald patch's edge by this much (inter-ocular
            distances) and move them into the hair by as much: a smooth version of the
            cover for the hair volume.

    Returns:
        ``(cover, bald)``, both (B, Nh) in [0, 1]: cover is 1 well inside the hairline and
        falls to 0 across it; bald is where pattern baldness removed the hair.
    """
    heights = _hairline_heights(p, tables.anchors)  # (B, 11)
    fraction = tables.hair_fraction[None]
    line = heights[:, tables.hair_segment] * (1.0 - fraction) + heights[:, tables.hair_segment + 1] * fraction
    height = tables.hair_v[None] + 0.03 * _fields(params, "hairline", NUM_HAIRLINE, tables.hair_fields)
    cover = torch.sigmoid((height - line - soft) / (0.02 + soft))
    # Long hair falls over the ears, the nape and the sides of the face below them: it fades
    # in over that zone as the length grows (moving the hairline that far would jump when mixing).
    long_hair = ((p["hair_length"] - 0.3) / 0.7).clamp(0.0, 1.0)[:, None]
    cover = torch.maximum(cover, long_hair * tables.hair_long[None])
    # Pattern baldness thins the top first and spreads down to a horseshoe at full strength.
    crown_line = tables.anchors["head_top"] + 0.08 - tables.hair_depth[None] - soft
    bald = (1.6 * p["hair_baldness"][:, None] * torch.sigmoid((height - crown_line) / (0.08 + soft))).clamp(max=1.0)
    # Hair thins out over the last few millimetres before the hairline.
    return cover * (1.0 - bald) * (0.6 + 0.4 * torch.sigmoid((height - line - 0.05) / 0.03)), bald


def _scalp_hair(tables: PaintTables, params: torch.Tensor, p: dict[str, torch.Tensor], pigment: torch.Tensor,
                colour: torch.Tensor, specular: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint scalp hair in place; returns its :func:`scalp_cover` (B, Nh) and hair colour (B, Nh, 3)."""
    col = lambda name: p[name][:, None]
    cover, bald = scalp_cover(tables, params, p)
    strands = tables.hair_strands[None]
    alpha = cover * (0.55 + 0.43 * col("hair_density")) * (0.85 + 0.15 * strands)  # (B, Nh)
    # Greying mixes white hairs in strand by strand: at this scale a gradual blend, temples first.
    grey_level = col("hair_grey") * (1.0 + 0.3 * tables.hair_temple[None])
    grey = (grey_level * (0.75 + 0.5 * tables.hair_grey_order[None])).clamp(0.0, 1.0)[..., None]
    hair = torch.lerp(pigment[:, None, :], grey_hair_colour(pigment)[:, None, :], grey)
    hair = hair * ((0.8 + 0.4 * strands) * (1.0 + 0.1 * tables.hair_shade[None]))[..., None]
    _over(colour, tables.hair, hair, alpha)
    specular.index_add_(1, tables.hair, 0.1 * bald)
    _over(specular, tables.hair, specular.new_tensor(0.05), alpha)
    return cover, hair


def _teeth(tables: PaintTables, colour: torch.Tensor) -> torch.Tensor:
    """(B, Nt, 3) tooth colour (B, 3) on the crowns, gum colour on the roots, darker further in."""
    crown = tables.teeth_crown[None, :, None]
    tooth = torch.lerp(colour.new_tensor(_GUMS).expand(colour.shape[0], 1, 3), colour[:, None, :], crown)
    return tooth * tables.teeth_depth[None, :, None]


def _eyes(tables: PaintTables, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, Ne, 3) sclera, iris and pupil colours."""
    r = tables.eye_iris[None, :, None]  # (1, Ne, 1), iris radii from the eye axis, -1 behind
    inside = (r >= 0).to(r.dtype)
    iris_weight = torch.sigmoid((1.0 - r) / 0.04) * inside
    pupil_weight = torch.sigmoid((0.36 - r) / 0.035) * inside
    limbal = torch.sigmoid((r - 0.85) / 0.05)
    iris = (iris_colour(p["iris_melanin"], p["iris_green"])[:, None, :]
            * (1.0 - 0.5 * limbal) * (1.0 + 0.18 * tables.eye_pattern[None, :, None]))
    tint = p["sclera_tint"][:, None] * r.new_tensor([0.06, -0.05, -0.12])  # (B, 3)
    sclera = (r.new_tensor(_SCLERA) * (1.0 + tint))[:, None, :]
    sclera = torch.lerp(sclera, r.new_tensor(_CARUNCLE).expand_as(sclera), tables.eye_caruncle[None, :, None])
    eye = torch.lerp(sclera, iris, iris_weight)
    eye = torch.lerp(eye, r.new_tensor(_PUPIL).expand_as(eye), pupil_weight)
    return eye * tables.eye_shade[None, :, None]
