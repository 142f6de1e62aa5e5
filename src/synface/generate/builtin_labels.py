"""Semantic regions and landmark vertices of the built-in head.

Regions follow :data:`synface.generate.facemodel.REGIONS`: mesh parts map
directly (eyeballs, teeth, mouth cavity, ears), the lips are the mouth patch's
rows up to the vermilion border, the upper lash line (lid margin rows) joins the
brows as hair, the nostril pockets count as mouth interior (a dark cavity), and
the brows, scalp and neck are areas of the skin bounded by smooth curves (a brow
band above each eye; a hairline with a slight temple recession, sideburns and a
nape line; the skin below the jaw).
Landmarks are single vertices: the 5-point set uses the pupil centres, the nose
tip and the mouth corners; the 68-point set follows the iBUG layout.
"""

from __future__ import annotations

import numpy as np

from synface.generate.builtin_mesh import HeadMesh, Part
from synface.generate.builtin_sdf import ellipsoid
from synface.generate.builtin_shape import NOSTRIL_CENTRE, NOSTRIL_RADII
from synface.generate.builtin_skin import EYE_LOOP, LIP_ROWS, MOUTH_LOOP
from synface.generate.facemodel import REGIONS

# Hairline height (cm) by azimuth about the vertical axis (degrees from the front).
_HAIRLINE = np.array([
    [0.0, 9.7], [25.0, 9.8], [42.0, 9.4], [55.0, 8.0], [64.0, 6.3], [70.0, 4.8], [76.0, 3.3],
    [82.0, 3.3], [90.0, 5.4], [104.0, 5.0], [116.0, 1.6], [135.0, -2.6], [160.0, -4.6], [180.0, -5.0],
])
# Brow centre line (x, y) from the inner end outwards, and the band's half-thickness there.
_BROW = np.array([[1.0, 5.55, 0.4], [2.0, 5.85, 0.38], [3.1, 6.05, 0.33], [4.2, 6.0, 0.27], [5.1, 5.72, 0.2], [5.75, 5.35, 0.14]])
_BROW_TOP_Z = 6.5


def _scalp(vertices: np.ndarray) -> np.ndarray:
    """(V,) bool: above the hairline (an azimuth-dependent height around the skull)."""
    azimuth = np.degrees(np.arctan2(np.abs(vertices[:, 0]), vertices[:, 2] - 0.5))
    return vertices[:, 1] > np.interp(azimuth, _HAIRLINE[:, 0], _HAIRLINE[:, 1])


def _brows(vertices: np.ndarray) -> np.ndarray:
    """(V,) bool: inside the brow band above either eye, on the front of the face."""
    x, y = np.abs(vertices[:, 0]), vertices[:, 1]
    centre = np.interp(x, _BROW[:, 0], _BROW[:, 1])
    half = np.interp(x, _BROW[:, 0], _BROW[:, 2])
    inside = (x > _BROW[0, 0]) & (x < _BROW[-1, 0]) & (np.abs(y - centre) < half)
    return inside & (vertices[:, 2] > _BROW_TOP_Z)


def _lash_line(mesh: HeadMesh) -> np.ndarray:
    """Indices of the upper lid margin and the first row above it: the lashes, hair-coloured like the brows.

    At crop resolution the lash line is what outlines an eye; without it the lid
    margin has the skin's colour and eyes look unfinished.
    """
    lashes = []
    for side, rows in mesh.skin.eye_rows.items():
        count = rows.shape[1]
        upper = np.arange(2, count // 2 - 1) if side > 0 else np.arange(count // 2 + 2, count - 1)
        lashes.append(rows[:2, upper].ravel())
    return np.concatenate(lashes)


def _neck(vertices: np.ndarray) -> np.ndarray:
    """(V,) bool: below the jaw line in front, below the nape line behind."""
    limit = np.interp(vertices[:, 2], [-10.0, -4.0, 3.5, 12.0], [-5.8, -6.5, -9.0, -9.0])
    return vertices[:, 1] < limit


def _nostrils(vertices: np.ndarray) -> np.ndarray:
    """(V,) bool: on the walls of the nostril pockets (shaded like the mouth's interior, as a cavity)."""
    mirrored = np.column_stack([np.abs(vertices[:, 0]), vertices[:, 1], vertices[:, 2]])
    inflated = tuple(r + 0.04 for r in NOSTRIL_RADII)
    return ellipsoid(mirrored, NOSTRIL_CENTRE, inflated) < 0.0


def regions(mesh: HeadMesh) -> np.ndarray:
    """(V,) int64 indices into ``REGIONS`` for every vertex of ``mesh``."""
    code = {name: index for index, name in enumerate(REGIONS)}
    out = np.full(len(mesh.vertices), code["skin"], dtype=np.int64)
    skin = mesh.part == Part.SKIN
    vertices = mesh.vertices
    out[skin & _neck(vertices)] = code["neck"]
    out[skin & _scalp(vertices)] = code["scalp"]
    out[skin & _brows(vertices)] = code["brows"]
    out[_lash_line(mesh)] = code["brows"]
    out[skin & _nostrils(vertices)] = code["mouth_interior"]
    out[mesh.skin.mouth_rows[:LIP_ROWS].ravel()] = code["lips"]
    for part, name in ((Part.SCLERA, "eyes"), (Part.IRIS, "iris"), (Part.CAVITY, "mouth_interior"),
                       (Part.UPPER_TEETH, "teeth"), (Part.LOWER_TEETH, "teeth"), (Part.EAR, "ears")):
        out[mesh.part == part] = code[name]
    return out


def _front_vertex(mesh: HeadMesh, x: float, y: float, radius: float = 0.35) -> int:
    """The front-most skin vertex within ``radius`` of frontal position (x, y)."""
    vertices = mesh.vertices
    near = (mesh.part == Part.SKIN) & (np.hypot(vertices[:, 0] - x, vertices[:, 1] - y) < radius)
    candidates = np.flatnonzero(near)
    assert candidates.size, f"no skin vertex near ({x}, {y})"
    return int(candidates[np.argmax(vertices[candidates, 2])])


def _loop_vertex(mesh: HeadMesh, loop: np.ndarray, x: float, upper: bool, mirrored: bool = False) -> int:
    """Vertex of ``loop``'s upper (or lower) half closest in x to ``x``.

    Loops start at their +x corner and run over the top first (``mirrored`` loops,
    the x < 0 eye's, run under the bottom first); the two corners belong to neither half.
    """
    count = len(loop)
    first = np.arange(1, count // 2)
    second = np.arange(count // 2 + 1, count)
    half = loop[first if upper != mirrored else second]
    return int(half[np.argmin(np.abs(mesh.vertices[half, 0] - x))])


def _eye68(mesh: HeadMesh, side: int) -> list[int]:
    """Six lid-margin landmarks of one eye in iBUG order for that eye."""
    margin = mesh.skin.eye_rows[side][0]
    outer, inner = int(margin[0]), int(margin[EYE_LOOP // 2])
    x_outer, x_inner = mesh.vertices[outer, 0], mesh.vertices[inner, 0]
    third, two_thirds = x_outer + (x_inner - x_outer) / 3.0, x_outer + 2.0 * (x_inner - x_outer) / 3.0
    mirrored = side < 0
    upper = [_loop_vertex(mesh, margin, third, True, mirrored), _loop_vertex(mesh, margin, two_thirds, True, mirrored)]
    lower = [_loop_vertex(mesh, margin, two_thirds, False, mirrored), _loop_vertex(mesh, margin, third, False, mirrored)]
    if side < 0:  # image-left eye: outer corner, upper lid towards the nose, inner corner, lower lid back
        return [outer, *upper, inner, *lower]
    return [inner, *upper[::-1], outer, *lower[::-1]]


def landmarks68(mesh: HeadMesh) -> np.ndarray:
    """(68,) vertex indices in the iBUG 68-point layout (image-left side first)."""
    jaw = [(-7.25, 3.6), (-7.15, 1.5), (-6.85, -0.5), (-6.45, -2.45), (-5.7, -4.6), (-4.45, -6.4), (-3.1, -7.4), (-1.6, -7.95), (0.0, -8.2)]
    jaw = jaw + [(-x, y) for x, y in jaw[-2::-1]]
    points = [_front_vertex(mesh, x, y) for x, y in jaw]
    brow = [(5.6, 5.45), (4.7, 5.85), (3.7, 6.1), (2.6, 6.05), (1.4, 5.8)]
    points += [_front_vertex(mesh, -x, y, 0.25) for x, y in brow]
    points += [_front_vertex(mesh, x, y, 0.25) for x, y in brow[::-1]]
    points += [_front_vertex(mesh, 0.0, y, 0.25) for y in (3.85, 2.65, 1.45, 0.3)]
    points += [_front_vertex(mesh, x, y, 0.2) for x, y in ((-1.2, -1.0), (-0.6, -1.15), (0.0, -1.2), (0.6, -1.15), (1.2, -1.0))]
    points += _eye68(mesh, -1) + _eye68(mesh, 1)
    contact, border = mesh.skin.mouth_rows[0], mesh.skin.mouth_rows[LIP_ROWS - 1]
    right_corner, left_corner = int(contact[MOUTH_LOOP // 2]), int(contact[0])
    width = mesh.vertices[left_corner, 0]
    outer_upper = [_loop_vertex(mesh, border, f * width, True) for f in (-0.66, -0.27, 0.0, 0.27, 0.66)]
    outer_lower = [_loop_vertex(mesh, border, f * width, False) for f in (0.66, 0.36, 0.0, -0.36, -0.66)]
    points += [right_corner, *outer_upper, left_corner, *outer_lower]
    inner_upper = [_loop_vertex(mesh, contact, f * width, True) for f in (-0.4, 0.0, 0.4)]
    inner_lower = [_loop_vertex(mesh, contact, f * width, False) for f in (0.4, 0.0, -0.4)]
    inner_corners = [_loop_vertex(mesh, contact, -0.85 * width, True), _loop_vertex(mesh, contact, 0.85 * width, True)]
    points += [inner_corners[0], *inner_upper, inner_corners[1], *inner_lower]
    assert len(points) == 68
    return np.array(points, dtype=np.int64)


def landmarks5(mesh: HeadMesh) -> np.ndarray:
    """(5,) vertex indices: image-left pupil, image-right pupil, nose tip, image-left and image-right mouth corner."""
    skin = np.flatnonzero((mesh.part == Part.SKIN) & (np.abs(mesh.vertices[:, 0]) < 0.05) & (np.abs(mesh.vertices[:, 1]) < 2.0))
    tip = int(skin[np.argmax(mesh.vertices[skin, 2])])
    contact = mesh.skin.mouth_rows[0]
    return np.array([mesh.pupils[-1], mesh.pupils[1], tip, int(contact[MOUTH_LOOP // 2]), int(contact[0])], dtype=np.int64)
