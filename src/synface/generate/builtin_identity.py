"""Identity shape modes of the built-in head: named, anatomically meaningful displacement fields.

Each mode is a smooth vector field in space (a masked translation, scaling,
rotation or outward push) evaluated at every vertex of the mean head, so skin,
eyeballs, linings, mouth cavity and teeth move together and nothing tears. Masks
around the eyes and mouth are flat-topped, so an eye or the mouth moves as a unit
with its lids or lips. Amplitudes are one standard deviation of adult variation
(centimetres at the feature). :func:`identity_basis` nearly orthogonalises the raw
modes (regularised symmetric orthogonalisation: each stays as close as possible
to its named shape) and restores their sizes, so N(0, I) coefficients add up to
plausible, distinct faces instead of piling variance on features several modes share.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from synface.generate.builtin_mesh import Part
from synface.generate.builtin_sdf import smoothstep

Field = Callable[[np.ndarray, np.ndarray], np.ndarray]

EYE = (3.15, 3.5, 8.6)
MOUTH = (0.0, -3.6, 10.6)


def _mask(p: np.ndarray, centre, radii, inner: float = 0.0, outer: float = 1.0, mirror: bool = False) -> np.ndarray:
    """1 inside ``inner`` (in units of ``radii`` around ``centre``), easing to 0 at ``outer``."""
    local = p.copy()
    if mirror:
        local[:, 0] = np.abs(local[:, 0])
    r = np.linalg.norm((local - np.asarray(centre)) / np.asarray(radii), axis=1)
    return 1.0 - smoothstep(inner, outer, r)


def _gauss(p: np.ndarray, centre, widths, mirror: bool = False) -> np.ndarray:
    """Gaussian weight exp(-|(p - c) / w|^2), optionally mirrored across x = 0."""
    local = p.copy()
    if mirror:
        local[:, 0] = np.abs(local[:, 0])
    return np.exp(-np.sum(((local - np.asarray(centre)) / np.asarray(widths)) ** 2, axis=1))


def _side(p: np.ndarray) -> np.ndarray:
    """+1 on the subject's left (x > 0), -1 on the right, smoothly through 0 at the midline."""
    return np.tanh(p[:, 0] / 0.4)


def _vector(weight: np.ndarray, direction) -> np.ndarray:
    """(V, 3) displacement ``weight * direction``."""
    return weight[:, None] * np.asarray(direction, dtype=float)[None]


def _lateral(p: np.ndarray, weight: np.ndarray, amount: float) -> np.ndarray:
    """Move both sides outwards (away from x = 0) by ``amount * weight``."""
    return _vector(weight * amount * _side(p), (1.0, 0.0, 0.0))


def _push(p: np.ndarray, weight: np.ndarray, centre, amount: float, mirror: bool = True) -> np.ndarray:
    """Push away from an inner point (mirrored to both sides): an outward bulge for a blob-shaped feature."""
    anchor = np.tile(np.asarray(centre, dtype=float), (len(p), 1))
    if mirror:
        anchor[:, 0] *= np.sign(p[:, 0] + 1e-12)
    direction = p - anchor
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-6)
    return direction * (weight * amount)[:, None]


def _scale(p: np.ndarray, weight: np.ndarray, centre, factors) -> np.ndarray:
    """Masked anisotropic scaling about ``centre`` (x mirrored so both sides scale alike)."""
    anchor = np.tile(np.asarray(centre, dtype=float), (len(p), 1))
    anchor[:, 0] *= np.sign(p[:, 0] + 1e-12)
    return (p - anchor) * np.asarray(factors)[None] * weight[:, None]


def _rotate_x(p: np.ndarray, weight: np.ndarray, centre, degrees: float) -> np.ndarray:
    """Masked rotation about the x axis through ``centre``: ``weight`` times the exact rotation's offset.

    Right-handed: a positive angle turns +z towards -y (the front of the face down).
    """
    angle = np.radians(degrees)
    local = p - np.asarray(centre)
    cos, sin = np.cos(angle), np.sin(angle)
    turned = np.column_stack([local[:, 0], cos * local[:, 1] - sin * local[:, 2], sin * local[:, 1] + cos * local[:, 2]])
    return (turned - local) * weight[:, None]


def _rotate_z(p: np.ndarray, weight: np.ndarray, centre, degrees: float, mirror: bool = True) -> np.ndarray:
    """Masked rotation about the z axis through ``centre`` (mirrored: both sides tilt symmetrically)."""
    sign = np.sign(p[:, 0] + 1e-12) if mirror else np.ones(len(p))
    anchor = np.tile(np.asarray(centre, dtype=float), (len(p), 1))
    anchor[:, 0] *= sign
    local = p - anchor
    angle = np.radians(degrees) * sign
    cos, sin = np.cos(angle), np.sin(angle)
    turned = np.column_stack([cos * local[:, 0] - sin * local[:, 1], sin * local[:, 0] + cos * local[:, 1], local[:, 2]])
    return (turned - local) * weight[:, None]


def _eye_region(p: np.ndarray) -> np.ndarray:
    """Flat-topped weight covering each eyeball, its lids and socket (both eyes)."""
    return _mask(p, EYE, (1.8, 1.55, 2.2), 1.0, 1.9, mirror=True)


def _mouth_region(p: np.ndarray) -> np.ndarray:
    """Flat-topped weight covering lips, mouth cavity and teeth."""
    return _mask(p, MOUTH, (3.1, 1.7, 4.0), 0.95, 1.7)


def _ears(part: np.ndarray) -> np.ndarray:
    return (part == Part.EAR).astype(float)


def _face(p: np.ndarray) -> np.ndarray:
    """Soft weight over the face (front of the head between hairline and chin)."""
    return smoothstep(1.0, 6.0, p[:, 2]) * (1.0 - smoothstep(7.0, 10.5, p[:, 1]))


def _sex(p: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Masculine (+) / feminine (-) axis: heavier brow, wider jaw, taller chin, larger nose, thinner lips."""
    brow = _push(p, _gauss(p, (2.3, 5.4, 10.2), (1.8, 0.8, 1.2), True), (2.3, 5.0, 6.0), 0.16)
    jaw = _lateral(p, _gauss(p, (5.2, -5.0, 3.0), (1.8, 2.2, 3.5), True), 0.2)
    chin = _vector(_gauss(p, (0.0, -7.6, 10.0), (2.2, 1.2, 2.5)), (0.0, -0.18, 0.05))
    nose = _scale(p, _gauss(p, (0.0, 0.8, 12.0), (1.6, 2.6, 1.6)), (0.0, 2.0, 10.5), (0.04, 0.04, 0.06))
    lips = _push(p, _gauss(p, (0.0, -3.45, 11.3), (1.6, 0.8, 0.8)), (0.0, -3.45, 10.3), -0.06, mirror=False)
    eyes = _scale(p, _eye_region(p), (3.15, 3.5, 8.4), (-0.025, -0.025, -0.025))
    return brow + jaw + chin + nose + lips + eyes


def _sag(p: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Age-related sagging: jowls and cheeks drop, lower lids and brow tail sink, nose tip droops, lobes lengthen."""
    jowls = _vector(_gauss(p, (4.2, -5.2, 8.0), (1.6, 1.6, 2.0), True), (0.0, -0.22, 0.0))
    cheeks = _vector(_gauss(p, (3.6, -1.0, 9.0), (1.5, 1.8, 1.6), True), (0.0, -0.15, -0.04))
    lids = _vector(_gauss(p, (3.2, 2.7, 9.4), (1.0, 0.45, 0.8), True), (0.0, -0.05, 0.0))
    brow = _vector(_gauss(p, (4.6, 5.6, 8.8), (1.2, 0.8, 1.5), True), (0.0, -0.1, 0.0))
    nose = _rotate_x(p, _gauss(p, (0.0, 0.0, 12.6), (1.0, 0.9, 1.0)), (0.0, 1.0, 10.5), 2.5)
    neck = _vector(_gauss(p, (0.0, -8.8, 7.0), (3.0, 1.2, 2.5)), (0.0, -0.15, 0.12))
    lobes = _vector(_ears(part) * smoothstep(1.0, -1.5, p[:, 1]), (0.0, -0.15, 0.0))
    return jowls + cheeks + lids + brow + nose + neck + lobes


def _weight(p: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Body fat: fuller cheeks, jowls and under-chin (the neck has its own mode)."""
    cheeks = _push(p, _gauss(p, (4.3, -1.8, 8.2), (1.9, 2.4, 2.2), True), (2.5, -1.5, 4.0), 0.28)
    jowls = _push(p, _gauss(p, (4.6, -5.0, 6.8), (1.8, 1.6, 2.4), True), (2.5, -4.0, 3.0), 0.22)
    chin = _vector(_gauss(p, (0.0, -9.0, 6.3), (3.4, 1.5, 2.6)), (0.0, -0.12, 0.08))
    return cheeks + jowls + chin


def _head_and_face_modes() -> list[tuple[str, Field]]:
    """Skull, face outline, jaw, chin, cheeks, forehead and brows."""
    face, g = _face, _gauss
    return [
        ("head_breadth", lambda p, k: _scale(p, smoothstep(-6.0, -1.0, p[:, 1]) * (k != Part.EAR) + (k == Part.EAR), (0, 0, 0), (0.035, 0, 0))),
        ("head_length", lambda p, k: _vector(smoothstep(2.0, -6.0, p[:, 2]) * smoothstep(-7.0, -2.0, p[:, 1]), (0, 0, -0.3))),
        ("head_height", lambda p, k: _vector(smoothstep(6.0, 13.0, p[:, 1]), (0, 0.32, 0))),
        ("crown_shape", lambda p, k: _push(p, g(p, (0, 13.0, -3.0), (4.5, 3.0, 4.5)), (0, 5, 0), 0.3, False)),
        ("occiput_shape", lambda p, k: _push(p, g(p, (0, 4.0, -8.5), (4.5, 3.5, 2.5)), (0, 4, 0), 0.3, False)),
        ("face_width", lambda p, k: _lateral(p, face(p) * smoothstep(-10.0, -4.0, p[:, 1]) * smoothstep(8.0, 3.0, p[:, 1]), 0.22) * np.abs(np.tanh(p[:, 0:1] / 4.0))),
        ("face_length", lambda p, k: _vector(smoothstep(3.0, -7.5, p[:, 1]) * smoothstep(-12.0, -2.0, p[:, 2]), (0, -0.38, 0))),
        ("lower_face_length", lambda p, k: _vector(smoothstep(-2.0, -7.5, p[:, 1]) * smoothstep(-1.0, 5.0, p[:, 2]), (0, -0.3, 0.04))),
        ("jaw_width", lambda p, k: _lateral(p, g(p, (5.3, -5.0, 3.0), (2.0, 2.4, 3.2), True), 0.3)),
        ("jaw_angle", lambda p, k: _vector(g(p, (5.2, -5.2, 2.2), (1.8, 1.8, 2.4), True), (0, 0.3, 0.0))),
        ("chin_height", lambda p, k: _vector(g(p, (0, -7.6, 10.0), (2.6, 1.4, 2.6)), (0, -0.3, 0))),
        ("chin_protrusion", lambda p, k: _vector(g(p, (0, -6.9, 10.6), (2.2, 1.6, 2.2)), (0, 0, 0.35))),
        ("chin_width", lambda p, k: _lateral(p, g(p, (1.8, -7.0, 9.6), (1.4, 1.4, 2.0), True), 0.22)),
        ("chin_cleft", lambda p, k: _vector(g(p, (0, -6.6, 11.0), (0.35, 0.8, 0.8)), (0, 0, -0.08))),
        ("cheekbone_prominence", lambda p, k: _push(p, g(p, (5.0, 1.6, 7.6), (1.6, 1.2, 1.8), True), (3.0, 1.0, 4.0), 0.24)),
        ("cheekbone_width", lambda p, k: _lateral(p, g(p, (5.8, 1.8, 5.5), (1.8, 1.6, 2.6), True), 0.25)),
        ("cheek_fullness", lambda p, k: _push(p, g(p, (3.9, -1.5, 8.8), (1.7, 1.9, 1.8), True), (2.0, -1.5, 5.0), 0.28)),
        ("face_roundness", lambda p, k: _push(p, g(p, (5.4, -3.2, 6.2), (1.8, 2.4, 2.6), True), (1.5, -2.0, 3.0), 0.22)),
        ("midface_projection", lambda p, k: _vector(g(p, (0, -0.8, 10.5), (3.2, 2.2, 3.0)), (0, 0, 0.22))),
        ("temple_width", lambda p, k: _lateral(p, g(p, (7.2, 5.6, 4.5), (1.4, 2.2, 2.6), True), 0.2)),
        ("forehead_height", lambda p, k: _vector(smoothstep(5.5, 10.0, p[:, 1]) * smoothstep(-2.0, 5.0, p[:, 2]), (0, 0.35, 0))),
        ("forehead_slope", lambda p, k: _vector(smoothstep(6.0, 12.0, p[:, 1]) * smoothstep(0.0, 7.0, p[:, 2]), (0, 0, -0.4))),
        ("brow_ridge", lambda p, k: _push(p, g(p, (2.4, 5.4, 10.0), (1.9, 0.9, 1.2), True), (2.4, 4.6, 6.0), 0.18)),
        ("glabella", lambda p, k: _vector(g(p, (0, 4.9, 10.6), (1.1, 0.9, 1.0)), (0, 0, 0.15))),
        ("brow_height", lambda p, k: _vector(g(p, (3.2, 5.9, 9.8), (2.0, 0.75, 1.4), True), (0, 0.2, 0))),
        ("brow_arch", lambda p, k: _vector(g(p, (4.3, 5.9, 9.2), (0.9, 0.6, 1.3), True), (0, 0.14, 0))),
    ]


def _eye_and_nose_modes() -> list[tuple[str, Field]]:
    """Eyes, lids and nose."""
    eye, g = _eye_region, _gauss
    return [
        ("eye_spacing", lambda p, k: _lateral(p, eye(p), 0.15)),
        ("eye_height", lambda p, k: _vector(eye(p), (0, 0.18, 0))),
        ("eye_depth", lambda p, k: _vector(eye(p), (0, 0, -0.18))),
        ("eye_size", lambda p, k: _scale(p, eye(p), EYE, (0.05, 0.05, 0.05))),
        ("eye_opening", lambda p, k: _rotate_x(p, g(p, (3.15, 4.1, 9.5), (1.5, 0.45, 0.6), True) * smoothstep(3.2, 3.7, p[:, 1]) * (k != Part.SCLERA) * (k != Part.IRIS), (0, 3.5, 8.4), -4.0)),
        ("eye_tilt", lambda p, k: _rotate_z(p, eye(p), (3.15, 3.5, 8.4), 3.0)),
        ("upper_lid_fullness", lambda p, k: _push(p, g(p, (3.2, 4.55, 9.8), (1.3, 0.35, 0.7), True), (3.15, 3.5, 8.4), 0.1)),
        ("lower_lid_bags", lambda p, k: _push(p, g(p, (3.2, 2.35, 9.6), (1.1, 0.4, 0.7), True), (3.15, 3.5, 8.4), 0.09)),
        ("nose_length", lambda p, k: _vector(smoothstep(4.0, 0.5, p[:, 1]) * g(p, (0, 0, 11.5), (2.2, 2.6, 2.2)), (0, -0.28, 0.04))),
        ("nose_width", lambda p, k: _lateral(p, g(p, (1.3, -0.5, 11.0), (0.9, 1.2, 1.3), True), 0.17)),
        ("nose_bridge_height", lambda p, k: _vector(g(p, (0, 2.6, 11.4), (0.9, 1.8, 1.4)), (0, 0, 0.2))),
        ("nose_bridge_width", lambda p, k: _lateral(p, g(p, (0.8, 2.8, 10.6), (0.8, 1.6, 1.2), True), 0.12)),
        ("nose_projection", lambda p, k: _vector(g(p, (0, 0.2, 12.7), (1.2, 1.2, 1.3)), (0, 0, 0.28))),
        ("nose_tip_rotation", lambda p, k: _rotate_x(p, g(p, (0, 0.0, 12.6), (1.1, 1.0, 1.1)), (0, 0.5, 10.5), 4.0)),
        ("nose_tip_width", lambda p, k: _lateral(p, g(p, (0.5, 0.2, 12.6), (0.55, 0.7, 0.7), True), 0.1)),
        ("nasal_hump", lambda p, k: _vector(g(p, (0, 2.0, 12.0), (0.6, 0.8, 0.8)), (0, 0, 0.13))),
        ("alar_flare", lambda p, k: _push(p, g(p, (1.4, -0.6, 11.0), (0.6, 0.6, 0.8), True), (0.6, -0.4, 10.4), 0.13)),
        ("nostril_height", lambda p, k: _vector(g(p, (0, -1.05, 11.8), (1.4, 0.5, 1.2)), (0, 0.1, 0))),
    ]


def _mouth_ear_and_global_modes() -> list[tuple[str, Field]]:
    """Mouth and lips, ears, neck, whole-face axes (weight, sex, age) and asymmetries."""
    eye, mouth, g = _eye_region, _mouth_region, _gauss
    return [
        ("mouth_width", lambda p, k: _scale(p, mouth(p), MOUTH, (0.06, 0, 0))),
        ("mouth_height", lambda p, k: _vector(mouth(p), (0, -0.18, 0))),
        ("lip_protrusion", lambda p, k: _vector(mouth(p), (0, 0, 0.25))),
        ("upper_lip_fullness", lambda p, k: _push(p, g(p, (0, -2.95, 11.6), (1.7, 0.45, 0.6)), (0, -3.5, 10.6), 0.14, False)),
        ("lower_lip_fullness", lambda p, k: _push(p, g(p, (0, -4.0, 11.4), (1.6, 0.5, 0.6)), (0, -3.4, 10.4), 0.15, False)),
        ("philtrum_depth", lambda p, k: _vector(g(p, (0, -2.0, 11.6), (0.35, 0.6, 0.5)), (0, 0, -0.06))),
        ("mouth_corner_angle", lambda p, k: _vector(g(p, (2.6, -3.6, 10.0), (0.8, 0.6, 1.2), True), (0, 0.12, 0))),
        ("nasolabial_fold", lambda p, k: _push(p, g(p, (2.4, -1.6, 10.4), (0.5, 1.4, 0.8), True), (1.5, -1.5, 8.0), -0.09)),
        ("ear_size", lambda p, k: _scale(p, _ears(k), (6.9, 2.1, -0.2), (0.09, 0.09, 0.09))),
        ("ear_protrusion", lambda p, k: _lateral(p, _ears(k) * np.clip(-(p[:, 2] - 0.3) / 2.5, 0.0, 2.0), 0.2)),
        ("ear_height", lambda p, k: _vector(_ears(k), (0, 0.3, 0))),
        ("neck_thickness", lambda p, k: _scale(p, smoothstep(-8.0, -11.0, p[:, 1]), (0, 0, -1.5), (0.07, 0, 0.07))),
        ("body_weight", _weight),
        ("sex_dimorphism", _sex),
        ("age_sagging", _sag),
        ("asymmetry_eyes", lambda p, k: _vector(eye(p) * np.tanh(p[:, 0] / 0.8), (0, 0.08, 0))),
        ("asymmetry_nose", lambda p, k: _vector(g(p, (0, 0.5, 12.2), (1.2, 2.2, 1.4)), (0.12, 0, 0))),
        ("asymmetry_jaw", lambda p, k: _vector(g(p, (0, -6.5, 9.0), (4.0, 2.2, 3.5)), (0.18, 0, 0))),
        ("asymmetry_mouth", lambda p, k: _vector(g(p, (2.6, -3.6, 10.0), (0.9, 0.7, 1.2), True) * np.sign(p[:, 0] + 1e-12), (0, 0.07, 0))),
    ]


def _mode_table() -> list[tuple[str, Field]]:
    """(name, field) for every identity mode, before orthogonalisation."""
    return _head_and_face_modes() + _eye_and_nose_modes() + _mouth_ear_and_global_modes()


identity_mode_names: tuple[str, ...] = tuple(name for name, _ in _mode_table())

# What a positive coefficient does (orthogonalised modes keep a cosine similarity > 0.85 to these fields).
identity_mode_meanings: dict[str, str] = {
    "head_breadth": "wider skull (and ears further apart)",
    "head_length": "longer skull front to back (occiput further back)",
    "head_height": "taller cranial vault",
    "crown_shape": "fuller, rounder crown",
    "occiput_shape": "more prominent back of the head",
    "face_width": "wider face between temples and jaw",
    "face_length": "longer face below the eyes (chin lower)",
    "lower_face_length": "longer lower third (mouth and chin lower relative to the nose)",
    "jaw_width": "wider jaw angles",
    "jaw_angle": "higher jaw angles (steeper mandible)",
    "chin_height": "taller chin (menton lower)",
    "chin_protrusion": "chin further forward",
    "chin_width": "broader chin",
    "chin_cleft": "slight vertical chin dimple",
    "cheekbone_prominence": "more prominent cheekbones",
    "cheekbone_width": "wider zygomatic arches",
    "cheek_fullness": "fuller front cheeks",
    "face_roundness": "rounder lower-lateral face",
    "midface_projection": "midface (maxilla, nose base) further forward",
    "temple_width": "fuller, wider temples",
    "forehead_height": "taller forehead",
    "forehead_slope": "forehead sloping further back",
    "brow_ridge": "heavier brow ridge",
    "glabella": "more prominent glabella",
    "brow_height": "brows higher above the eyes",
    "brow_arch": "more arched brow tails",
    "eye_spacing": "eyes further apart",
    "eye_height": "eyes higher in the face",
    "eye_depth": "deeper-set eyes",
    "eye_size": "larger eyes and orbits",
    "eye_opening": "wider-open upper lids",
    "eye_tilt": "outer canthi higher (upslanting eyes)",
    "upper_lid_fullness": "fuller, more hooded upper lids",
    "lower_lid_bags": "puffier lower lids",
    "nose_length": "longer nose (tip and base lower)",
    "nose_width": "wider nose base (alae further apart)",
    "nose_bridge_height": "higher nasal bridge",
    "nose_bridge_width": "wider upper nose",
    "nose_projection": "nose tip further forward",
    "nose_tip_rotation": "nose tip turned down",
    "nose_tip_width": "broader, bulbous tip",
    "nasal_hump": "dorsal hump",
    "alar_flare": "flared nostril wings",
    "nostril_height": "nose base higher",
    "mouth_width": "wider mouth",
    "mouth_height": "mouth lower (longer philtrum)",
    "lip_protrusion": "lips and teeth further forward",
    "upper_lip_fullness": "fuller upper lip",
    "lower_lip_fullness": "fuller lower lip",
    "philtrum_depth": "deeper philtrum",
    "mouth_corner_angle": "mouth corners higher at rest",
    "nasolabial_fold": "deeper nasolabial folds",
    "ear_size": "larger ears",
    "ear_protrusion": "ears standing further out",
    "ear_height": "ears higher on the head",
    "neck_thickness": "thicker neck",
    "body_weight": "more facial fat: cheeks, jowls, under the chin",
    "sex_dimorphism": "more masculine: heavier brow, wider jaw, taller chin, larger nose, thinner lips, smaller eyes",
    "age_sagging": "older: jowls, cheeks, lower lids and brow tails sag, nose tip droops, longer lobes",
    "asymmetry_eyes": "subject's left eye higher than the right",
    "asymmetry_nose": "nose deviates towards the subject's left",
    "asymmetry_jaw": "chin and jaw shifted towards the subject's left",
    "asymmetry_mouth": "subject's left mouth corner higher, right lower",
}


def raw_modes(vertices: np.ndarray, part: np.ndarray) -> np.ndarray:
    """(K, V, 3) named displacement fields at the mean vertices, one standard deviation each."""
    return np.stack([field(vertices, part) for _, field in _mode_table()])


def identity_basis(vertices: np.ndarray, part: np.ndarray, metric: np.ndarray, ridge: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Nearly orthogonalised modes, each rescaled to its raw size.

    Symmetric (Löwdin) orthogonalisation ``C^{-1/2} B`` of the unit-normalised modes
    (``C`` their correlation matrix under the per-vertex ``metric`` weights) gives the
    orthogonal basis closest to the raw modes, so each keeps its meaning while
    overlapping modes (e.g. face width and jaw width) stop adding up their shared
    variance. ``ridge`` regularises it, ``(C + ridge I)^{-1/2}``: nearly collinear
    pairs are pulled apart only partly instead of being amplified into sharp
    differences of two fields.

    Returns:
        basis (K, V, 3) and the cosine similarity (K,) of each mode to its raw field.
    """
    import torch  # its matrix products are far faster here than numpy's on this shape

    raw = raw_modes(vertices, part)
    flat = torch.from_numpy(raw.reshape(len(raw), -1))
    weighted = flat * torch.from_numpy(np.sqrt(np.repeat(metric, 3)))[None]
    gram = weighted @ weighted.T
    sizes = gram.diagonal().sqrt()
    correlation = gram / torch.outer(sizes, sizes)
    values, vectors = torch.linalg.eigh(correlation + ridge * torch.eye(len(raw), dtype=gram.dtype))
    mixing = (vectors @ torch.diag(values.rsqrt()) @ vectors.T) / sizes[None]  # acts on raw modes
    mixed_gram = mixing @ gram @ mixing.T
    mixing = mixing * (sizes / mixed_gram.diagonal().sqrt())[:, None]  # restore each mode's size
    similarity = (mixing @ gram).diagonal() / sizes**2
    return (mixing @ flat).numpy().reshape(raw.shape), similarity.numpy()
