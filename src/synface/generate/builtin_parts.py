"""Closed inner parts of the built-in head: eyeballs, eye-socket linings, mouth cavity and teeth.

Each builder returns ``(vertices, triangles)`` (triangles counter-clockwise seen
from outside the part) plus, where a part hangs off the skin, the skin loop it
continues from. Sizes are adult means in centimetres.
"""

from __future__ import annotations

import numpy as np

from synface.generate.builtin_shape import LAYOUT, FaceLayout, mouth_line_y
from synface.generate.builtin_topology import (
    fan_triangles,
    grid_triangles,
    ring_triangles,
)

IRIS_RADIUS = 0.6
EYE_SEGMENTS = 36


def eyeball(side: int, layout: FaceLayout = LAYOUT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A globe looking along +z with a slightly recessed iris disc.

    Returns:
        vertices (N, 3), triangles (F, 3), and an (N,) bool mask of iris vertices.
    """
    radius = layout.eyeball_radius
    limbus = np.arcsin(IRIS_RADIUS / radius)
    iris_rows = np.linspace(0.12, 1.0, 7) * limbus
    sclera_rows = limbus + (np.pi - limbus) * (np.linspace(0.0, 1.0, 14)[1:-1] ** 1.3)
    polar = np.concatenate([iris_rows, [limbus * 1.04], sclera_rows])
    azimuth = 2.0 * np.pi * np.arange(EYE_SEGMENTS) / EYE_SEGMENTS
    ring = np.sin(polar)[:, None] * radius
    x, y = ring * np.cos(azimuth), ring * np.sin(azimuth)
    z = np.cos(polar)[:, None] * radius * np.ones_like(azimuth)
    # The iris is a shallow dish just behind the limbus: flatter than the globe, the pupil deepest.
    in_iris = polar <= limbus + 1e-9
    fraction = (ring[in_iris] / IRIS_RADIUS) ** 2
    z[in_iris] = radius * np.cos(limbus) - 0.02 - 0.05 * (1.0 - fraction)
    front = np.array([[0.0, 0.0, radius * np.cos(limbus) - 0.07]])
    back = np.array([[0.0, 0.0, -radius]])
    local = np.concatenate([front, np.stack([x, y, z], -1).reshape(-1, 3), back])
    centre = np.array([side * layout.eye_centre[0], layout.eye_centre[1], layout.eyeball_z])
    rows = len(polar)
    triangles = np.concatenate([
        fan_triangles(1, EYE_SEGMENTS, 0, flip=True),
        ring_triangles(rows, EYE_SEGMENTS, offset=1, flip=True),
        fan_triangles(1 + (rows - 1) * EYE_SEGMENTS, EYE_SEGMENTS, len(local) - 1),
    ])
    iris = np.zeros(len(local), dtype=bool)
    iris[0] = True
    iris[1:1 + int(in_iris.sum()) * EYE_SEGMENTS] = True
    return local + centre, triangles, iris


def socket_lining(margin: np.ndarray, side: int, layout: FaceLayout = LAYOUT) -> np.ndarray:
    """Loops continuing the lid margin into the socket behind the globe, then its apex.

    The first loop tucks just behind the margin (the lid's inner edge), the rest
    shrink towards a point behind the eyeball, all hidden by the globe except in
    the canthal corners.

    Args:
        margin: (L, 3) positions of the lid margin loop.

    Returns:
        (3 * L + 1, 3) vertices: three loops then the apex.
    """
    centre = np.array([side * layout.eye_centre[0], layout.eye_centre[1], layout.eyeball_z])
    towards = centre - margin
    towards /= np.linalg.norm(towards, axis=1, keepdims=True)
    first = margin + 0.12 * towards
    second = centre + 0.85 * (margin - centre) - np.array([0.0, 0.0, 0.35])
    third = centre + 0.6 * (margin - centre) - np.array([0.0, 0.0, 0.9])
    apex = centre - np.array([0.0, 0.0, 1.0])
    return np.concatenate([first, second, third, apex[None]])


# Mouth cavity loops behind the lip contact line: depth behind it, half-width, half-height (cm).
_CAVITY = np.array([
    [0.3, 2.5, 0.25],
    [0.8, 2.55, 0.9],
    [1.6, 2.75, 1.35],
    [2.7, 2.85, 1.5],
    [3.9, 2.6, 1.4],
    [4.9, 1.9, 1.15],
    [5.6, 1.0, 0.7],
])


def mouth_cavity(loop: int, layout: FaceLayout = LAYOUT) -> np.ndarray:
    """Loops of the mouth cavity behind the lip contact line, then the throat apex.

    Loop vertices follow the contact line's parametrisation (vertex 0 at the +x
    corner, upper half first), so loop ``k`` vertex ``i`` lies behind contact
    vertex ``i``; the cavity bends back with the dental arch.

    Returns:
        (len(_CAVITY) * loop + 1, 3) vertices.
    """
    angle = 2.0 * np.pi * np.arange(loop) / loop
    loops = []
    for depth, half_width, half_height in _CAVITY:
        x = half_width * np.cos(angle)
        y = mouth_line_y(np.clip(x, -layout.mouth_half_width, layout.mouth_half_width), layout) + half_height * np.sin(angle)
        z = layout.mouth_front_z - 0.3 - layout.lip_bend * np.minimum(x**2, layout.mouth_half_width**2) - depth
        loops.append(np.column_stack([x, y, z]))
    apex = np.array([[0.0, layout.mouth_y - 0.1, layout.mouth_front_z - 0.3 - 6.0]])
    return np.concatenate(loops + [apex])


# Crown widths (cm) from the midline back, per side: incisors, canine, premolars, molars.
_TOOTH_WIDTHS = np.array([0.86, 0.68, 0.78, 0.7, 0.68, 1.0, 0.95])


def dental_arch(upper: bool, layout: FaceLayout = LAYOUT, columns: int = 56) -> tuple[np.ndarray, np.ndarray]:
    """One row of teeth as a closed tube along a parabolic arch, with notches between crowns.

    Returns:
        vertices (N, 3) and triangles (F, 3).
    """
    front = layout.mouth_front_z - 0.3 - (0.95 if upper else 1.55)  # lower incisors close behind the upper ones
    curvature = 0.62
    # Arc-length parametrisation of the parabola z = front - curvature * x^2.
    xs = np.linspace(-2.45, 2.45, 2001)
    middle = 0.5 * (xs[1:] + xs[:-1])  # midpoint rule keeps the parametrisation symmetric
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(xs), 2.0 * curvature * middle * np.diff(xs)))])
    arc -= arc[1000]
    half_length = arc[-1]
    s = np.linspace(-half_length, half_length, columns)
    x = np.interp(s, arc, xs)
    z = front - curvature * x**2
    tangent = np.column_stack([np.ones_like(x), -2.0 * curvature * x])
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    outward = np.column_stack([-tangent[:, 1], tangent[:, 0]])  # (x, z) pointing out of the arch
    outward *= np.sign(outward[:, 1:2] + 1e-9)
    # Gaps between crowns: depth of the notch at each column.
    edges = np.cumsum(_TOOTH_WIDTHS) * half_length / _TOOTH_WIDTHS.sum()
    phase = np.min(np.abs(np.abs(s)[:, None] - np.concatenate([[0.0], edges])[None]), axis=1)
    notch = np.exp(-((phase / 0.06) ** 2))
    line = float(mouth_line_y(np.zeros(1), layout)[0])
    edge_y = line - 0.25 if upper else line
    height = 1.05 if upper else 0.95
    sign = 1.0 if upper else -1.0
    thickness = 0.55 + 0.35 * np.clip(np.abs(s) / half_length, 0.0, 1.0)
    # Cross-section (offset along outward, offset along y from the incisal edge), counter-clockwise.
    section = np.array([[0.0, 0.05], [0.0, 0.5], [0.0, 1.0], [-0.5, 1.0], [-1.0, 1.0], [-1.0, 0.5], [-1.0, 0.05], [-0.5, 0.0]])
    rows = []
    for offset, rise in section:
        depth = offset * thickness - 0.03 * notch * (offset == 0.0)
        lift = (rise * height + 0.06 * notch * (rise < 0.1)) * sign + edge_y
        px = x + depth * outward[:, 0]
        pz = z + depth * outward[:, 1]
        rows.append(np.column_stack([px, np.broadcast_to(lift, px.shape), pz]))
    ring = np.stack(rows, axis=1)  # (columns, 8, 3)
    count = ring.shape[1]
    vertices = np.concatenate([ring.reshape(-1, 3), ring[0].mean(0, keepdims=True), ring[-1].mean(0, keepdims=True)])
    triangles = grid_triangles(columns, count)
    caps = np.concatenate([
        fan_triangles(0, count, len(vertices) - 2),
        fan_triangles((columns - 1) * count, count, len(vertices) - 1, flip=True),
    ])
    triangles = np.concatenate([triangles, caps])
    if not upper:
        triangles = triangles[:, ::-1].copy()
    return vertices, triangles
