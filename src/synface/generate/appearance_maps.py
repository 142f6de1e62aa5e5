"""Per-model constant maps the appearance model paints with: absorbance maps, noise fields, zone coordinates.

Everything here depends only on the face model (its mean shape, regions and
landmarks, through :class:`~synface.generate.appearance_geometry.FaceGeometry`) and a
fixed seed, never on an identity: it is computed once per model and then reused for
every batch. Vertices are split into four groups painted differently: skin-like
(skin, lips, brows, scalp, neck, ears), eyes (sclera and iris), mouth interior, teeth.
Within the skin group, smaller index sets pick the vertices where brows, facial
hair and scalp hair can appear, so those layers cost only what they cover.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit

from synface.generate.appearance_fields import (
    SpotLayout,
    scatter_spots,
    smooth_fields,
    strand_texture,
)
from synface.generate.appearance_geometry import FaceGeometry, polyline_coordinates
from synface.generate.appearance_sampling import NUM_FRECKLE, NUM_HAIRLINE, NUM_MOTTLE

_SEED = 20210813  # fixed: the maps are part of the model, identical on every run and device

# Linear absorbance maps: name -> optical density per unit coefficient in (R, G, B).
ABSORBANCE = {
    "redness": (0.04, 0.5, 0.35),       # haemoglobin: cheeks, nose, ears, chin
    "under_eye": (0.25, 0.35, 0.25),    # dark circles
    "forehead": (0.5, 0.55, 0.6),       # wrinkles read as fine shadows
    "nasolabial": (0.5, 0.55, 0.6),
    "eyes": (0.5, 0.55, 0.6),           # crow's feet and lines under the eyes
    "lash_line": (1.0, 1.0, 1.0),
    "eye_makeup": (0.8, 0.95, 0.95),
    "texture": (0.1, 0.12, 0.14),       # pores and fine grain
    "occlusion": (0.7, 0.8, 0.8),       # creases the renderer does not shadow
    "pigment_rings": (0.3, 0.4, 0.5),   # darker skin around the eyes and mouth, marked in darker skin
    "contour": (0.45, 0.6, 0.6),        # adult bone structure: hollow cheeks and temples, deep-set eyes, folds
    "contour_side": (0.45, 0.6, 0.6),   # the same, signed by side (+ image right): asymmetric faces
    "under_eye_side": (0.25, 0.35, 0.25),
}
MOTTLE_ABSORBANCE = (0.3, 0.45, 0.5)  # blotchy pigment and blood variation


@dataclass
class PaintTables:
    """Tensors of one face model's paint constants (see the module docstring); all float32 unless noted.

    Index sets are int64 into the full vertex list (``skin``, ``eyes``, ``mouth``, ``teeth``)
    or into the skin group (``brow``, ``beard``, ``hair``).
    """

    skin: torch.Tensor
    eyes: torch.Tensor
    mouth: torch.Tensor
    teeth: torch.Tensor
    order: torch.Tensor             # (V,) int64: vertex -> its row in the groups stacked skin, eyes, mouth, teeth
    absorbance: torch.Tensor        # (len(ABSORBANCE) + NUM_MOTTLE, S * 3): maps, then mottle fields
    freckles: SpotLayout            # small spots, mixed by the freckle coefficients
    age_spots: SpotLayout           # larger spots, mixed by the mottle coefficients
    tzone: torch.Tensor             # (S,) oily forehead and nose
    gloss: torch.Tensor             # (S,) 1, less in downward-facing creases
    lips: torch.Tensor              # (Nl,) into skin: where lip colour may appear
    lip_d: torch.Tensor             # (Nl,) signed distance to the outer lip contour
    lower_lip: torch.Tensor         # (Nl,) 1 on the lower lip
    brow: torch.Tensor              # (Nb,) into skin
    brow_t: torch.Tensor
    brow_d: torch.Tensor
    brow_strands: torch.Tensor
    brow_side: torch.Tensor         # (Nb,) +1 on the image-right brow, -1 on the left
    beard: torch.Tensor             # (Nd,) into skin
    beard_low: torch.Tensor         # lowest beard line (chin only) minus height, (Nd,)
    beard_high: torch.Tensor        # highest beard line (full cheeks) minus height
    moustache_zone: torch.Tensor
    outside_lips: torch.Tensor
    jaw_drop: torch.Tensor
    beard_strands: torch.Tensor
    hair: torch.Tensor              # (Nh,) into skin
    hair_v: torch.Tensor
    hair_segment: torch.Tensor      # (Nh,) int64 anchor segment of each vertex's azimuth
    hair_fraction: torch.Tensor     # (Nh,) position within it
    hair_depth: torch.Tensor        # (Nh,) baldness depth at the vertex's azimuth
    hair_fields: torch.Tensor       # (NUM_HAIRLINE, Nh)
    hair_strands: torch.Tensor      # (Nh,) in [0, 1]
    hair_grey_order: torch.Tensor   # (Nh,) in [0, 1]: which hairs grey first
    hair_shade: torch.Tensor        # (Nh,) slow brightness variation
    hair_temple: torch.Tensor       # (Nh,) 1 at the temples (they grey first)
    hair_long: torch.Tensor         # (Nh,) 1 where long hair falls: around and below the ears, the nape
    beard_fields: torch.Tensor      # (NUM_HAIRLINE, Nd)
    eye_iris: torch.Tensor          # (Ne,) distance from the eye axis in iris radii (-1 behind)
    eye_shade: torch.Tensor         # (Ne,) lid shadow factor
    eye_pattern: torch.Tensor       # (Ne,) iris streak noise
    eye_caruncle: torch.Tensor      # (Ne,) inner-corner pink
    mouth_colour: torch.Tensor      # (Nm, 3) linear albedo of walls, tongue and throat
    teeth_depth: torch.Tensor       # (Nt,)
    teeth_crown: torch.Tensor       # (Nt,) 1 on the crowns, 0 on the roots hidden in the gums
    cavity: torch.Tensor            # (V,) ambient occlusion of creases and cavities, vertex order
    pores: torch.Tensor             # (S,) zero-mean fine noise that breaks up the skin's highlights
    anchors: dict[str, float] = dataclasses.field(default_factory=dict)

    def to(self, device: torch.device | str) -> PaintTables:
        """A copy with every tensor on ``device``."""
        moved = {f.name: (getattr(self, f.name).to(device)
                          if isinstance(getattr(self, f.name), (torch.Tensor, SpotLayout))
                          else getattr(self, f.name)) for f in dataclasses.fields(self)}
        return PaintTables(**moved)


def _gauss(x: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * (x / width) ** 2)


def _window(x: np.ndarray, low: float, high: float, soft: float) -> np.ndarray:
    """Smooth box: about 1 inside [low, high], falling over ``soft`` outside."""
    return expit((x - low) / soft) * expit((high - x) / soft)


def _wrinkle_maps(g: FaceGeometry, front: np.ndarray) -> dict[str, np.ndarray]:
    """Forehead and frown lines, nasolabial and marionette folds, crow's feet and lines under the eyes."""
    k = g.anchors
    brow_top = k["brow_top"]
    waviness = 0.012 * np.sin(6.0 * g.a)
    lines = np.maximum(0.0, np.cos(2 * np.pi * (g.v - brow_top + waviness) / 0.085)) ** 6
    forehead = lines * _window(g.v - brow_top, 0.1, 0.6, 0.03) * _window(g.a, -1.0, 0.7, 0.06) * front
    glabella = (np.maximum(0.0, np.cos(2 * np.pi * g.a / 0.07)) ** 6 * _window(g.a, -1.0, 0.09, 0.02)
                * _window(g.v, brow_top - 0.2, brow_top + 0.05, 0.03) * front)
    middle = 0.6 + 0.4 * np.sin(np.pi * np.clip(g.fold_t, 0, 1))  # folds are deepest halfway down
    fold = _gauss(g.fold_d, 0.022) * _window(g.fold_t, 0.0, 1.0, 0.05) * middle
    marionette_curve = np.array([[k["mouth_corner_a"] + 0.02, k["mouth_corner_v"] - 0.04],
                                 [k["mouth_corner_a"] + 0.05, k["chin_v"] + 0.3]])
    marionette_t, marionette_d, _ = polyline_coordinates(marionette_curve, np.stack([g.a, g.v], 1))
    marionette = 0.6 * _gauss(marionette_d, 0.02) * _window(marionette_t, 0.0, 1.0, 0.08)
    fan = np.maximum(0.0, np.cos(2 * np.pi * g.corner_angle / 16.0)) ** 4
    crows = fan * _window(g.corner_r, 0.06, 0.28, 0.03) * _window(g.corner_angle, -55.0, 45.0, 8.0)
    under = 0.6 * _gauss(g.lid_low - 0.16, 0.015) * _window(g.lid_t, 0.1, 0.9, 0.08)
    return {"forehead": forehead + glabella, "nasolabial": fold + marionette, "eyes": crows + under}


def _eye_area_maps(g: FaceGeometry, front: np.ndarray) -> dict[str, np.ndarray]:
    """Dark circles, the lash line, eyeliner and lid shadow, and darker skin rings around eyes and mouth."""
    inner = np.clip(1.2 - g.lid_t, 0.0, 1.0)
    under_eye = _gauss(g.lid_low - 0.09, 0.05) * _window(g.lid_t, -0.15, 0.95, 0.05) * inner * front
    on_lid = _window(g.lid_t, -0.04, 1.06, 0.025)
    width = 0.018 + 0.014 * np.clip(g.lid_t, 0, 1)  # lashes are densest towards the outer corner
    upper, lower = np.maximum(g.lid_up, 0.0), np.maximum(g.lid_low, 0.0)
    near_upper, near_lower = g.lid_up > -0.015, g.lid_low > -0.015
    lash_line = (_gauss(upper, width) * near_upper + 0.35 * _gauss(lower, 0.012) * near_lower) * on_lid
    liner = (_gauss(upper, 0.035 + 0.015 * np.clip(g.lid_t, 0, 1)) * near_upper * _window(g.lid_t, -0.02, 1.15, 0.03)
             + 0.5 * _gauss(lower, 0.02) * near_lower * _window(g.lid_t, 0.2, 1.1, 0.05))
    shadow = 0.35 * _window(g.lid_up, 0.0, 0.16, 0.03) * _window(g.lid_t, -0.05, 1.05, 0.06)
    rings = (_window(g.lid_up, 0.0, 0.22, 0.04) * _window(g.brow_d, -1.0, -0.02, 0.03)
             + _window(g.lid_low, 0.0, 0.18, 0.04)) * _window(g.lid_t, -0.25, 1.2, 0.08)
    mouth_ring = _gauss(np.clip(g.lip_d - 0.02, 0.0, None), 0.06) * (g.lip_d > 0) * _window(g.theta, -1.0, 50.0, 5.0)
    return {
        "under_eye": under_eye, "lash_line": lash_line, "eye_makeup": liner + shadow,
        "pigment_rings": np.clip(rings, 0.0, 1.0) * front + 0.6 * mouth_ring,
    }


def _contour_map(g: FaceGeometry, front: np.ndarray) -> np.ndarray:
    """Where a lean adult face is shadowed by its bone structure: under the cheekbones, the temples,
    the eye sockets below the brow ridge and a soft band along the nasolabial fold."""
    k = g.anchors
    query = np.stack([g.a, g.v], 1)
    hollow_curve = np.array([[k["jaw_angle_a"] + 0.05, k["nose_tip_v"] - 0.05],
                             [k["mouth_corner_a"] + 0.32, k["mouth_corner_v"] - 0.05]])
    hollow_t, hollow_d, _ = polyline_coordinates(hollow_curve, query)
    cheek = _gauss(hollow_d, 0.1) * _window(hollow_t, 0.0, 1.0, 0.15)
    temple = 0.7 * _gauss(np.hypot(g.a - k["eye_outer_a"] - 0.32, g.v - k["brow_top"] + 0.1), 0.13)
    socket = 0.6 * _window(g.lid_up, 0.04, 0.3, 0.04) * _window(g.brow_d, -1.0, -0.04, 0.03) * _window(
        g.lid_t, -0.3, 1.15, 0.08)
    fold = 0.6 * _gauss(g.fold_d, 0.06) * _window(g.fold_t, 0.05, 1.0, 0.1)
    return (cheek + temple + socket + fold) * front * ~g.mask("lips", "ears")


def _occlusion_map(g: FaceGeometry, front: np.ndarray) -> np.ndarray:
    """Creases real light barely reaches and the renderer does not shadow: nostrils, lid crease, corners."""
    k = g.anchors
    nostrils = (_window(g.v, k["nose_base_v"] - 0.03, k["nose_tip_v"] - 0.05, 0.02)
                * _window(g.a, -1.0, k["nose_wing_a"] - 0.02, 0.02) * np.clip(-g.normal_y - 0.2, 0, 1) * 1.5)
    crease = 0.25 * _gauss(g.lid_up - 0.07, 0.02) * _window(g.lid_t, 0.0, 1.0, 0.05)
    corners = 0.4 * _gauss(np.hypot(g.a - k["mouth_corner_a"], g.v - k["mouth_corner_v"]), 0.025)
    alar = 0.4 * _gauss(np.hypot(g.a - k["nose_wing_a"] - 0.02, g.v - k["nose_base_v"] - 0.04), 0.035)
    eye_corner = 0.5 * _gauss(np.hypot(g.a - k["eye_inner_a"] + 0.02, g.v), 0.04) * (g.lid_up > 0)
    socket = (0.2 * _window(g.lid_up, 0.03, 0.3, 0.03) * _window(g.brow_d, -1.0, -0.06, 0.03)
              * _window(g.lid_t, -0.2, 1.1, 0.08)
              + 0.35 * _gauss(np.hypot(g.a - k["eye_inner_a"] + 0.1, g.v - 0.06), 0.07))
    # The jaw and chin shade the top of the neck from every light above the horizon.
    under_jaw = 0.45 * _window(g.jaw_drop, 0.02, 0.5, 0.06) * _window(g.theta, -1.0, 100.0, 8.0)
    return (nostrils + crease + corners + alar + eye_corner + socket) * front + under_jaw


def _absorbance_maps(g: FaceGeometry, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(V,) maps of each absorbance layer (see :data:`ABSORBANCE`)."""
    k = g.anchors
    front = _window(g.theta, -1.0, 70.0, 6.0)
    cheeks = _gauss(np.hypot(g.a - 0.5, g.v - (k["nose_tip_v"] + 0.08)), 0.17)
    nose = _gauss(np.hypot(g.a, g.v - k["nose_tip_v"]), 0.1) * (g.w > -0.25)
    chin = 0.35 * _gauss(np.hypot(g.a, g.v - k["chin_v"] - 0.15), 0.12)
    redness = np.clip((cheeks + nose + chin) * front + 0.8 * g.mask("ears"), 0.0, 1.0)
    eye_area, contour = _eye_area_maps(g, front), _contour_map(g, front)
    return {
        "redness": redness,
        **_wrinkle_maps(g, front),
        **eye_area,
        "texture": rng.normal(0.0, 1.0, len(g.u)),
        "occlusion": _occlusion_map(g, front),
        "contour": contour,
        "contour_side": contour * np.sign(g.u),
        "under_eye_side": eye_area["under_eye"] * np.sign(g.u),
    }


def _hair_anchors(k: dict[str, float]) -> tuple[float, ...]:
    """Azimuths (degrees) where the hairline height curve has its anchors."""
    front, back = k["ear_front"], k["ear_back"]
    return (0.0, 22.0, 40.0, max(45.0, front - 14.0), front - 6.0, front - 1.0, front + 2.0, back,
            min(back + 8.0, 135.0), 140.0, 180.0)


def _segments(theta: np.ndarray, anchors: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Anchor segment index and fraction within it for each azimuth."""
    edges = np.asarray(anchors)
    segment = np.clip(np.searchsorted(edges, theta, side="right") - 1, 0, len(edges) - 2)
    fraction = np.clip((theta - edges[segment]) / (edges[segment + 1] - edges[segment]), 0.0, 1.0)
    return segment, fraction


def _beard_lines(g: FaceGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) beard top line heights over a: a rounded chin patch and a full cheek beard.

    The full beard's cheek line runs diagonally from the moustache corner up to the
    sideburn at mid-ear height, as in real beards.
    """
    k = g.anchors
    corner, side = k["mouth_corner_a"], k["eye_outer_a"] + 0.35
    mid_ear = 0.5 * (k["ear_top"] + k["ear_bottom"])
    low = np.interp(g.a, [0.0, corner - 0.05, corner + 0.05, corner + 0.15, side],
                    [k["lip_bottom_v"] - 0.04, k["lip_bottom_v"] - 0.07, k["chin_v"] + 0.3, k["chin_v"],
                     k["jaw_angle_v"] - 0.5])
    high = np.interp(g.a, [0.0, corner + 0.04, corner + 0.2, side],
                     [k["lip_bottom_v"] - 0.03, k["mouth_corner_v"] + 0.05, k["mouth_corner_v"] + 0.2, mid_ear])
    return low, high


def _moustache_zone(g: FaceGeometry) -> np.ndarray:
    """(V,) moustache coverage: over the upper lip, thinning towards and drooping past the corners."""
    k = g.anchors
    corner = k["mouth_corner_a"]
    spread = np.clip(g.a / corner, 0.0, 1.5)
    top = k["nose_base_v"] - 0.03 - 0.09 * spread ** 2
    droop = _window(g.a, corner - 0.03, corner + 0.06, 0.015) * _window(g.v, k["mouth_corner_v"] - 0.08, 10.0, 0.015)
    above_mouth = _window(g.mouth_v, 0.0, 10.0, 0.012)
    return np.clip(above_mouth * _window(g.v, -10.0, top, 0.012) * _window(g.a, -1.0, corner + 0.05, 0.02)
                   + droop * _window(g.v, -10.0, top, 0.012), 0.0, 1.0)


def _eye_tables(g: FaceGeometry, eyes: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    inside_upper = np.clip(-g.lid_up[eyes], 0.0, None)
    inside_lower = np.clip(-g.lid_low[eyes], 0.0, None)
    shade = (1.0 - 0.6 * np.exp(-inside_upper / 0.05)) * (1.0 - 0.3 * np.exp(-inside_lower / 0.03))
    behind = g.eye_r[eyes] < 0
    # Radial streaks: noise smoothed along the angle around the eye axis is approximated by
    # per-vertex noise plus a few angular harmonics of the vertex position.
    angle = np.arctan2(g.v[eyes], g.u[eyes] * 3.0)
    pattern = 0.6 * rng.normal(0.0, 1.0, eyes.sum()) + 0.4 * np.sin(angle * 23.0 + rng.uniform(0, 6.3))
    caruncle = _window(g.lid_t[eyes], -0.3, 0.06, 0.02) * (g.eye_r[eyes] > 1.2)
    return {
        "eye_iris": g.eye_r[eyes], "eye_shade": np.where(behind, 0.25, shade),
        "eye_pattern": np.clip(pattern, -2.0, 2.0), "eye_caruncle": caruncle,
    }


def _tensor(values: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values), dtype=dtype)


def _skin_tables(g: FaceGeometry, skin: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
    k = g.anchors
    points = g.points(skin)
    maps = _absorbance_maps(g, rng)
    mottle = smooth_fields(points, NUM_MOTTLE, 0.12, rng)  # (NUM_MOTTLE, S)
    absorbance = np.concatenate([
        np.stack([maps[name][skin, None] * np.asarray(ABSORBANCE[name]) for name in ABSORBANCE]),
        mottle[:, :, None] * np.asarray(MOTTLE_ABSORBANCE),
    ])  # (L + NUM_MOTTLE, S, 3)
    front = _window(g.theta, -1.0, 70.0, 6.0)
    freckle_region = np.clip(0.3 + _gauss(np.hypot(g.a - 0.3, g.v - k["nose_tip_v"] - 0.1), 0.25), 0, 1) * front
    spot_region = (0.4 + 0.6 * _window(g.v, k["nose_tip_v"], 3.0, 0.2)) * ~g.mask("lips", "ears")
    tzone = (_gauss(g.a, 0.12) * _window(g.v, k["nose_tip_v"] - 0.02, k["brow_top"] + 0.1, 0.04)
             + 0.7 * _gauss(g.a, 0.35) * _window(g.v, k["brow_top"] + 0.05, k["brow_top"] + 0.7, 0.05)) * front
    # Nostrils and other downward-facing creases sit in shadow: little highlight there.
    gloss = np.clip(1.0 + 1.5 * np.minimum(g.normal_y + 0.3, 0.0), 0.2, 1.0)
    return {
        "absorbance": _tensor(absorbance.reshape(len(absorbance), -1)),
        "freckles": scatter_spots(points, (freckle_region * ~g.mask("lips", "brows"))[skin], 0.055, 0.022,
                                  NUM_FRECKLE, rng),
        "age_spots": scatter_spots(points, spot_region[skin], 0.2, 0.055, NUM_MOTTLE, rng),
        "tzone": _tensor(tzone[skin]), "gloss": _tensor(gloss[skin]),
    }


def _feature_tables(g: FaceGeometry, skin: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
    """Lips, brows and facial hair: index sets into the skin group and their coordinates."""
    k = g.anchors
    position = np.cumsum(skin) - 1  # vertex index -> index within the skin group
    not_features = ~g.mask("ears", "lips")
    lips = skin & g.mask("lips", "skin") & (g.theta < 60.0) & (g.lip_d < 0.12)
    brow = (skin & not_features & (g.brow_t > -0.35) & (g.brow_t < 1.5) & (g.brow_d > -0.3) & (g.brow_d < 0.22)
            & (g.theta < 80.0) & (g.lid_up > 0.0))
    beard = (skin & not_features & (g.lip_d > -0.01) & (g.v < k["nose_base_v"] + 0.02)
             & (g.theta < k["ear_front"] + 4.0) & (g.jaw_drop < 1.0))
    low, high = _beard_lines(g)
    return {
        "lips": _tensor(position[lips], torch.int64), "lip_d": _tensor(g.lip_d[lips]),
        "lower_lip": _tensor((g.mouth_v < 0)[lips]),
        "brow": _tensor(position[brow], torch.int64), "brow_t": _tensor(g.brow_t[brow]),
        "brow_d": _tensor(g.brow_d[brow]), "brow_side": _tensor(np.sign(g.u[brow])), "brow_strands": _tensor(strand_texture(g.points(brow), 0.02, rng, 0.5)),
        "beard": _tensor(position[beard], torch.int64), "beard_low": _tensor((low - g.v)[beard]),
        "beard_high": _tensor((high - g.v)[beard]), "moustache_zone": _tensor(_moustache_zone(g)[beard]),
        "outside_lips": _tensor(expit((g.lip_d - 0.01) / 0.006)[beard]), "jaw_drop": _tensor(g.jaw_drop[beard]),
        "beard_strands": _tensor(strand_texture(g.points(beard), 0.015, rng, 0.5)),
        "beard_fields": _tensor(smooth_fields(g.points(beard), NUM_HAIRLINE, 0.05, rng)),
    }


def _hair_tables(g: FaceGeometry, skin: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
    """Scalp hair: where it may grow, the hairline anchors' interpolation, strand and greying textures."""
    k = g.anchors
    hair = (skin & ~g.mask("ears", "lips") & ((g.v > k["brow_top"] + 0.08) | (g.theta > 55.0))
            & (g.v > k["ear_bottom"] - 0.9))
    points = g.points(hair)
    segment, fraction = _segments(g.theta, _hair_anchors(k))
    depth = np.interp(g.theta, [0.0, 40.0, 90.0, 140.0, 180.0], [0.95, 1.0, 1.15, 0.85, 0.8])
    return {
        "hair": _tensor((np.cumsum(skin) - 1)[hair], torch.int64), "hair_v": _tensor(g.v[hair]),
        "hair_segment": _tensor(segment[hair], torch.int64), "hair_fraction": _tensor(fraction[hair]),
        "hair_depth": _tensor(depth[hair]),
        "hair_fields": _tensor(smooth_fields(points, NUM_HAIRLINE, 0.06, rng)),
        "hair_strands": _tensor(strand_texture(points, 0.025, rng, 0.6)),
        "hair_grey_order": _tensor(strand_texture(points, 0.05, rng, 0.7)),
        "hair_shade": _tensor(smooth_fields(points, 1, 0.15, rng)[0]),
        "hair_temple": _tensor(_window(g.theta, 45.0, k["ear_front"], 8.0)[hair]),
        # Long hair ends above the edge of the candidate area, so it never shows that jagged edge.
        "hair_long": _tensor((_window(g.theta, 58.0, 400.0, 3.0)
                              * _window(g.v, k["ear_bottom"] - 0.7, k["ear_top"] + 0.25, 0.05))[hair]),
    }


# Linear albedo inside the mouth: the back of the throat, the walls and palate, the tongue.
_THROAT = (0.035, 0.008, 0.008)
_MOUTH_WALL = (0.36, 0.1, 0.1)
_TONGUE = (0.5, 0.17, 0.17)


def _mouth_tables(g: FaceGeometry, mouth: np.ndarray, teeth: np.ndarray) -> dict[str, object]:
    """Mouth interior colours and tooth shading; lengths in inter-ocular distances."""
    mouth_front = g.w[mouth].max() if mouth.any() else 0.0
    teeth_front = g.w[teeth].max() if teeth.any() else 0.0
    depth = np.clip(mouth_front - g.w[mouth], 0, None)
    # An open mouth shows pink walls fading into a dark throat, and the tongue on its floor.
    wall = np.exp(-depth / 0.45)[:, None]
    colour = np.asarray(_THROAT) + (np.asarray(_MOUTH_WALL) - np.asarray(_THROAT)) * wall
    tongue = (_window(g.mouth_v[mouth], -10.0, -0.05, 0.03) * np.exp(-depth / 0.7))[:, None]
    colour = colour + (np.asarray(_TONGUE) - colour) * tongue
    return {
        "mouth_colour": _tensor(colour),
        "teeth_depth": _tensor(np.exp(-np.clip(teeth_front - g.w[teeth], 0, None) / 0.3)),
        # Only the crowns near the lip gap should ever show; painting the roots like gums keeps
        # a tooth that pokes through a deformed lip or nose from showing as a white dot.
        "teeth_crown": _tensor(_window(g.mouth_v[teeth], -0.16, 0.13, 0.02)),
    }


def build_tables(g: FaceGeometry) -> PaintTables:
    """Compute every per-model paint constant from the face geometry (CPU tensors)."""
    rng = np.random.default_rng(_SEED)
    skin = g.mask("skin", "lips", "brows", "scalp", "neck", "ears")
    eyes, mouth, teeth = g.mask("eyes", "iris"), g.mask("mouth_interior"), g.mask("teeth")
    groups = {name: np.flatnonzero(mask) for name, mask in (("skin", skin), ("eyes", eyes), ("mouth", mouth),
                                                             ("teeth", teeth))}
    stacked = np.concatenate(list(groups.values()))
    assert len(stacked) == len(g.region), "the four vertex groups must cover every region exactly once"
    order = np.empty_like(stacked)
    order[stacked] = np.arange(len(stacked))
    groups = {name: _tensor(index, torch.int64) for name, index in groups.items()}
    groups["order"] = _tensor(order, torch.int64)
    eye_tables = {name: _tensor(value) for name, value in _eye_tables(g, eyes, rng).items()}
    # A second fixed stream for later maps, so the ones above keep their patterns.
    extra = np.random.default_rng(_SEED + 1)
    return PaintTables(
        **groups, **_skin_tables(g, skin, rng), **_feature_tables(g, skin, rng), **_hair_tables(g, skin, rng),
        **eye_tables, **_mouth_tables(g, mouth, teeth),
        # The occlusion estimate sees a closed mouth; open, its inside gets some light.
        cavity=_tensor(np.where(g.mask("mouth_interior"), np.maximum(g.cavity, 0.45), g.cavity)),
        pores=_tensor(np.clip(extra.normal(0.0, 1.0, int(skin.sum())), -2.5, 2.5)), anchors=dict(g.anchors),
    )
