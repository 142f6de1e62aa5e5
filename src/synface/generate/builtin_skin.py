"""The built-in head's skin mesh: sampled surface with clean loops around the eyes and lips.

Vertices are rays cast onto the implicit head. Around each eye opening and around
the mouth they come from ring patches laid out in the frontal plane (so lid margins,
the lip contact line and the vermilion border are edge loops), cast from a
viewpoint in front of the patch; everywhere else from a density-graded,
mirror-symmetric set of directions from :data:`~synface.generate.builtin_shape.RAY_ORIGIN`,
triangulated by its convex hull. Each patch's border is an ellipse in that
direction space, so the hull leaves exactly the patch's hole. The mouth's
innermost loop (the lip contact line) is placed directly, a little inside the
lips, where the mouth interior attaches; the x < 0 eye is the mirror image of the
x > 0 one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolygonPath
from scipy.spatial import cKDTree

from synface.generate.builtin_shape import (
    LAYOUT,
    FaceLayout,
    RayCaster,
    mouth_line_y,
)
from synface.generate.builtin_topology import (
    hull_with_holes,
    ring_triangles,
    skin_directions,
)

EYE_LOOP = 64          # vertices around each eye opening
EYE_ROWS = 11          # loops from the lid margin out to the patch border
MOUTH_LOOP = 112       # vertices around the lip contact line
LIP_ROWS = 9           # loops from the contact line to the vermilion border (inclusive)
MOUTH_ROWS = 17        # loops from the contact line to the patch border
# Each patch is sampled from its own viewpoint so overhangs (brow, upper lip) hide nothing.
PATCH_ORIGINS = {1: np.array([2.0, 3.6, 1.0]), 0: np.array([0.0, -3.2, 1.0])}


@dataclass
class SkinMesh:
    """The skin surface and the index loops other parts attach to.

    Attributes:
        vertices: (N, 3) positions (cm).
        triangles: (F, 3) counter-clockwise seen from outside.
        eye_rows: side (+1 subject's left, -1 right) -> (EYE_ROWS, EYE_LOOP) vertex
            indices; row 0 is the lid margin, starting at the outer canthus.
        mouth_rows: (MOUTH_ROWS, MOUTH_LOOP) vertex indices; row 0 is the contact
            line (first vertex at the +x corner, upper lip first), row
            ``LIP_ROWS - 1`` the vermilion border.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    eye_rows: dict[int, np.ndarray]
    mouth_rows: np.ndarray


def _almond(layout: FaceLayout, count: int) -> np.ndarray:
    """Lid margin of the +x eye: (count, 2) frontal points, CCW from the outer canthus."""
    inner, outer = np.asarray(layout.canthus_inner), np.asarray(layout.canthus_outer)
    middle, chord = (inner + outer) / 2.0, outer - inner
    half = np.linalg.norm(chord) / 2.0
    normal = np.array([-chord[1], chord[0]]) / (2.0 * half)
    normal = normal if normal[1] > 0 else -normal
    points = []
    for sagitta, sign, start, end in ((layout.lid_upper_sagitta, 1.0, outer, inner), (layout.lid_lower_sagitta, -1.0, inner, outer)):
        radius = (half**2 + sagitta**2) / (2.0 * sagitta)
        centre = middle + sign * normal * (sagitta - radius)
        a0 = np.arctan2(*(start - centre)[::-1])
        a1 = np.arctan2(*(end - centre)[::-1])
        if sign > 0 and a1 < a0:
            a1 += 2.0 * np.pi
        if sign < 0 and a1 < a0:
            a1 += 2.0 * np.pi
        angles = a0 + (a1 - a0) * np.arange(count // 2) / (count // 2)
        points.append(centre + radius * np.column_stack([np.cos(angles), np.sin(angles)]))
    return np.concatenate(points)


def _resample_closed(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced in arc length along a closed polyline, starting at its first point."""
    closed = np.vstack([points, points[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    marks = np.arange(count) * arc[-1] / count
    return np.column_stack([np.interp(marks, arc, closed[:, 0]), np.interp(marks, arc, closed[:, 1])])


def eye_patch(layout: FaceLayout = LAYOUT, border: np.ndarray | None = None) -> np.ndarray:
    """Frontal (x, y) of the +x eye's ring patch: (EYE_ROWS, EYE_LOOP, 2), row 0 the lid margin.

    ``border`` (EYE_LOOP, 2) replaces the default elliptical outer row.
    """
    margin = _almond(layout, EYE_LOOP)
    if border is None:
        centre = np.array([layout.eye_centre[0] + 0.12, layout.eye_centre[1] + 0.22])
        angles = np.linspace(0.0, 2.0 * np.pi, 721)[:-1]
        border = _resample_closed(centre + np.column_stack([1.85 * np.cos(angles), 1.6 * np.sin(angles)]), EYE_LOOP)
    fractions = (np.arange(EYE_ROWS) / (EYE_ROWS - 1)) ** 1.45
    return margin[None] + fractions[:, None, None] * (border - margin)[None]


def upper_vermilion(x: np.ndarray, half_width: float) -> np.ndarray:
    """Height of the upper lip's vermilion border above the contact line (Cupid's bow)."""
    t = np.clip(np.abs(x) / half_width, 0.0, 1.0)
    return 0.97 * (1.0 - t**2) ** 0.85 - 0.13 * np.exp(-((x / 0.32) ** 2))


def lower_vermilion(x: np.ndarray, half_width: float) -> np.ndarray:
    """Depth of the lower lip's vermilion border below the contact line."""
    t = np.clip(np.abs(x) / half_width, 0.0, 1.0)
    return 1.02 * (1.0 - t**2) ** 0.6


def mouth_patch(layout: FaceLayout = LAYOUT, border: np.ndarray | None = None) -> np.ndarray:
    """Frontal (x, y) of the mouth's ring patch: (MOUTH_ROWS, MOUTH_LOOP, 2); row 0 the contact line.

    ``border`` (MOUTH_LOOP, 2) replaces the default elliptical outer row.
    """
    half = MOUTH_LOOP // 2
    angle = np.pi * np.arange(MOUTH_LOOP) / half  # 0 at the +x corner, upper lip first
    cosine, upper = np.cos(angle), np.arange(MOUTH_LOOP) < half
    sign = np.where(upper, 1.0, -1.0)
    upper[0] = False
    width = layout.mouth_half_width
    x0 = width * cosine
    slit = np.column_stack([x0, mouth_line_y(x0, layout) + sign * 0.012 * np.abs(np.sin(angle))])
    border_width = width + 0.14
    xv = border_width * cosine
    height = np.where(upper, upper_vermilion(xv, border_width), -lower_vermilion(xv, border_width))
    vermilion = np.column_stack([xv, mouth_line_y(xv, layout) + height])
    if border is None:
        border = np.column_stack([3.75 * cosine, layout.mouth_y - 0.35 + 2.3 * np.sin(angle)])
    lips = (np.arange(LIP_ROWS) / (LIP_ROWS - 1)) ** 1.25
    rows = [slit + f * (vermilion - slit) for f in lips]
    outer = (np.arange(1, MOUTH_ROWS - LIP_ROWS + 1) / (MOUTH_ROWS - LIP_ROWS)) ** 1.2
    rows += [vermilion + f * (border - vermilion) for f in outer]
    return np.stack(rows)


def _directions_for(frontal: np.ndarray, caster: RayCaster, depth_guess: float = 10.5, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rays whose surface hits project (nearly) onto the given frontal (x, y); returns (directions, hits).

    Damped fixed-point iteration on the aim point's depth; damping keeps it stable
    where the surface is steep (nose sides).
    """
    aim = np.column_stack([frontal, np.full(len(frontal), depth_guess)])
    origin, distance = caster.origin, None
    for _ in range(rounds):
        directions = (aim - origin) / np.linalg.norm(aim - origin, axis=1, keepdims=True)
        distance = caster.cast(directions, guess=distance)
        hits = origin + distance[:, None] * directions
        aim[:, :2] += 0.6 * (frontal - hits[:, :2])
        aim[:, 2] = hits[:, 2]
    return directions, hits


def _mirror_rows(rows: np.ndarray) -> np.ndarray:
    """Mirror a patch to x < 0, reversing each loop so it still runs counter-clockwise."""
    order = (-np.arange(rows.shape[1])) % rows.shape[1]
    mirrored = rows[:, order].copy()
    mirrored[..., 0] *= -1.0
    return mirrored


def _contact_line(frontal: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """3D lip contact line: just behind the lips' fronts, following the dental arch."""
    depth = layout.mouth_front_z - layout.lip_bend * frontal[:, 0] ** 2 - 0.3
    return np.column_stack([frontal, depth])


def _convex_border(frontal: np.ndarray, caster: RayCaster) -> tuple[np.ndarray, np.ndarray]:
    """Directions and surface points of a patch's outer row, made an exact ellipse in ray-direction space.

    The skin's hull can only leave a clean hole for a convex loop; depth changes
    along the requested frontal loop would make it wobble, so the loop is replaced
    by the ellipse with the same centre and second moments in the gnomonic chart
    of ``caster``'s rays, keeping each vertex's angle about the centre.
    """
    directions, _ = _directions_for(frontal, caster)
    chart = directions[:, :2] / directions[:, 2:]
    centre = chart.mean(0)
    values, vectors = np.linalg.eigh(np.cov((chart - centre).T, bias=True))
    axes = np.sqrt(2.0 * values)
    local = (chart - centre) @ vectors / axes
    angle = np.arctan2(local[:, 1], local[:, 0])
    ellipse = centre + (np.column_stack([np.cos(angle), np.sin(angle)]) * axes) @ vectors.T
    directions = np.column_stack([ellipse, np.ones(len(ellipse))])
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions, caster.origin + caster.cast(directions)[:, None] * directions


def _nose_tip_direction(caster: RayCaster) -> np.ndarray:
    """Ray through the front-most point of the nose's midline (so the nose-tip landmark is exact)."""
    heights = np.linspace(-0.4, 0.9, 53)
    aims = np.column_stack([np.zeros_like(heights), heights, np.full_like(heights, 13.0)]) - caster.origin
    aims /= np.linalg.norm(aims, axis=1, keepdims=True)
    depth = (caster.origin + caster.cast(aims)[:, None] * aims)[:, 2]
    return aims[np.argmax(depth)]


def _free_directions(borders: list[np.ndarray], anchors: np.ndarray, face_spacing: float, face_angle: float,
                     back_ratio: float) -> np.ndarray:
    """Sphere directions for the skin outside the patches, clear of patch borders and anchors."""
    sphere = skin_directions(face_spacing, 11.5, face_angle, back_ratio)
    keep = np.ones(len(sphere), dtype=bool)
    chart = sphere[:, :2] / np.maximum(sphere[:, 2:], 1e-6)
    front = sphere[:, 2] > 0.3
    for loop in borders:
        loop_chart = loop[:, :2] / loop[:, 2:]
        spacing = np.linalg.norm(np.roll(loop_chart, -1, axis=0) - loop_chart, axis=1)
        inside = PolygonPath(loop_chart).contains_points(chart) & front
        distance, nearest = cKDTree(loop_chart).query(chart)
        keep &= ~inside & ~(front & (distance < 0.7 * np.maximum(spacing[nearest], 0.9 * face_spacing / 11.5)))
    distance, _ = cKDTree(anchors).query(sphere)
    keep &= distance > 0.6 * face_spacing / 11.5
    # Keep mirror pairs together (border tests can differ by rounding on the two sides).
    _, partner = cKDTree(sphere).query(sphere * np.array([-1.0, 1.0, 1.0]))
    keep &= keep[partner]
    return np.concatenate([anchors, sphere[keep]])


def _patch(key: int, template: np.ndarray, common: RayCaster, layout: FaceLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (frontal), vertex positions and border directions of one patch (``key`` 1: +x eye, 0: mouth)."""
    border_directions, border_hits = _convex_border(template[-1], common)
    rows = mouth_patch(layout, border_hits[:, :2]) if key == 0 else eye_patch(layout, border_hits[:, :2])
    inner = rows[1:-1] if key == 0 else rows[:-1]
    _, hits = _directions_for(inner.reshape(-1, 2), RayCaster(PATCH_ORIGINS[key]))
    first = [_contact_line(rows[0], layout)] if key == 0 else []
    return rows, np.concatenate(first + [hits, border_hits]), border_directions


def build_skin(face_spacing: float = 0.22, face_angle: float = 0.95, back_ratio: float = 0.07, layout: FaceLayout = LAYOUT) -> SkinMesh:
    """Sample and triangulate the skin (see the module docstring)."""
    common = RayCaster(fan=600)
    patches, positions, borders = {}, {}, {}
    patches[1], positions[1], borders[1] = _patch(1, eye_patch(layout), common, layout)
    # The head is mirror-symmetric: the x < 0 eye is the mirror image, loops reversed to stay counter-clockwise.
    patches[-1] = _mirror_rows(patches[1])
    order = (-np.arange(EYE_LOOP)) % EYE_LOOP
    positions[-1] = (positions[1].reshape(EYE_ROWS, EYE_LOOP, 3)[:, order] * np.array([-1.0, 1.0, 1.0])).reshape(-1, 3)
    borders[-1] = borders[1][order] * np.array([-1.0, 1.0, 1.0])
    patches[0], positions[0], borders[0] = _patch(0, mouth_patch(layout), common, layout)
    free = _free_directions(list(borders.values()), _nose_tip_direction(common)[None], face_spacing, face_angle, back_ratio)
    # Hull over the free directions plus every patch's border; the hole each border encloses stays open.
    offsets, start = {}, len(free)
    for key, rows in patches.items():
        offsets[key] = start
        start += rows.shape[0] * rows.shape[1]
    hull_points = [free] + [borders[key] for key in patches]
    hull_index = np.concatenate([np.arange(len(free))] + [
        offsets[key] + (rows.shape[0] - 1) * rows.shape[1] + np.arange(rows.shape[1]) for key, rows in patches.items()])
    bounds = np.cumsum([0] + [len(p) for p in hull_points])
    holes = [np.arange(bounds[k], bounds[k + 1]) for k in range(1, len(hull_points))]
    triangles = [hull_index[hull_with_holes(np.concatenate(hull_points), holes)]]
    for key, rows in patches.items():
        triangles.append(ring_triangles(rows.shape[0], rows.shape[1], offsets[key], flip=True))
    vertices = np.concatenate([common.origin + common.cast_symmetric(free)[:, None] * free] + [positions[k] for k in patches])
    eye_rows = {side: offsets[side] + np.arange(EYE_ROWS * EYE_LOOP).reshape(EYE_ROWS, EYE_LOOP) for side in (1, -1)}
    mouth_rows = offsets[0] + np.arange(MOUTH_ROWS * MOUTH_LOOP).reshape(MOUTH_ROWS, MOUTH_LOOP)
    return SkinMesh(vertices, np.concatenate(triangles), eye_rows, mouth_rows)
