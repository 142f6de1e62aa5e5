"""The built-in head's ears: a closed, ear-shaped shell (helix rim, antihelix, concha, tragus, lobe).

Each ear is built in its own frame (u forwards along the head, v up, w out of the
ear's front face) as a polar grid over an ear-shaped outline: a front surface with
the relief of the auricle and a flat back, joined along the rim. The frame is then
placed on the side of the head, tilted back and standing out from it, with its
front edge sunk into the skin so the ear meets the head without a gap.
"""

from __future__ import annotations

import numpy as np

from synface.generate.builtin_topology import (
    fan_triangles,
    orient_closed,
    ring_triangles,
)

EAR_SEGMENTS = 44
EAR_RINGS = 11
EAR_HEIGHT = 6.2
EAR_WIDTH = 3.3
# Where the ear sits (subject's left; mirrored for the right), its tilt and how far it stands out.
EAR_CENTRE = np.array([7.6, 2.1, -0.9])
EAR_TILT_DEG = 14.0
EAR_FLARE_DEG = 24.0


def _outline(angle: np.ndarray) -> np.ndarray:
    """Ear outline (u, v) at polar ``angle``: rounded top, straighter front edge, narrow lobe."""
    sin, cos = np.sin(angle), np.cos(angle)
    half_height = 0.5 * EAR_HEIGHT * np.where(sin > 0.0, 1.0, 0.92)
    half_width = 0.5 * EAR_WIDTH * (1.0 - 0.28 * np.clip(-sin, 0.0, 1.0) ** 2)
    # Front edge (u > 0) is flatter than the rolled back edge.
    width = half_width * np.where(cos > 0.0, 0.9, 1.0) * (1.0 + 0.08 * sin)
    return np.column_stack([width * np.sign(cos) * np.abs(cos) ** 0.85, half_height * sin])


def _relief(radial: np.ndarray, angle: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Front-surface height (cm) over the ear plane: helix rim, antihelix, concha bowl, tragus."""
    sin = np.sin(angle)
    back_or_top = np.clip(0.6 - np.cos(angle), 0.0, 1.0) * np.clip(sin + 0.75, 0.0, 1.0)
    helix = 0.42 * np.exp(-(((radial - 0.9) / 0.085) ** 2)) * np.clip(back_or_top * 1.6, 0.0, 1.0)
    antihelix = 0.26 * np.exp(-(((radial - 0.62) / 0.11) ** 2)) * np.clip(0.35 - np.cos(angle), 0.0, 1.0)
    concha = 0.62 * np.exp(-(((u - 0.35) / 0.7) ** 2 + ((v + 0.25) / 0.95) ** 2))
    tragus = 0.3 * np.exp(-(((u - 1.2) / 0.28) ** 2 + ((v + 0.55) / 0.4) ** 2))
    lobe = 0.12 * np.exp(-(((v + 2.4) / 0.5) ** 2))
    return 0.35 + helix + antihelix - concha + tragus + lobe


def _frame(side: int) -> np.ndarray:
    """Rows u, v, w of the ear frame in model coordinates."""
    flare, tilt = np.radians(EAR_FLARE_DEG), np.radians(EAR_TILT_DEG)
    w = np.array([side * np.cos(flare), 0.0, np.sin(flare)])
    u = np.array([-side * np.sin(flare), 0.0, np.cos(flare)])
    v = np.array([0.0, 1.0, 0.0])
    # Lean the long axis backwards about w.
    u_t = np.cos(tilt) * u - np.sin(tilt) * v
    v_t = np.sin(tilt) * u + np.cos(tilt) * v
    return np.stack([u_t, v_t, w])


def ear(side: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed ear shell for ``side`` (+1 subject's left, x > 0; -1 right).

    Returns:
        vertices (N, 3) and triangles (F, 3), counter-clockwise seen from outside.
    """
    angle = 2.0 * np.pi * np.arange(EAR_SEGMENTS) / EAR_SEGMENTS
    outline = _outline(angle)
    radial = (np.arange(1, EAR_RINGS + 1) / EAR_RINGS) ** 0.8
    plane = radial[:, None, None] * outline[None]  # (rings, segments, 2)
    u, v = plane[..., 0], plane[..., 1]
    height = _relief(radial[:, None], angle[None], u, v)
    # Round the rim: both faces meet at the outline with a small bulge.
    roll = np.maximum(np.sqrt(np.clip(1.0 - ((radial[:, None] - 0.88) / 0.12).clip(0.0) ** 2, 0.0, 1.0)), 0.35)
    front = height * np.where(radial[:, None] > 0.88, roll, 1.0)
    back = -0.25 * np.where(radial[:, None] > 0.88, roll, 1.0)
    centre_height = float(_relief(np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1))[0])
    front_points = np.concatenate([[[0.0, 0.0, centre_height]], np.stack([u, v, front], -1).reshape(-1, 3)])
    back_points = np.concatenate([[[0.0, 0.0, -0.25]], np.stack([u, v, np.broadcast_to(back, u.shape)], -1).reshape(-1, 3)])
    local = np.concatenate([front_points, back_points])
    # Front faces +w, back faces -w (same grid, reversed winding); the outermost rings are stitched.
    front_tris = np.concatenate([fan_triangles(1, EAR_SEGMENTS, 0), ring_triangles(EAR_RINGS, EAR_SEGMENTS, 1)])
    base = len(front_points)
    back_tris = front_tris[:, ::-1] + base
    i = np.arange(EAR_SEGMENTS)
    j = (i + 1) % EAR_SEGMENTS
    rim_front = 1 + (EAR_RINGS - 1) * EAR_SEGMENTS + i
    rim_back = base + rim_front
    rim = np.concatenate([np.stack([rim_front, rim_back[j], rim_back], -1), np.stack([rim_front, rim_front[j], rim_back[j]], -1)])
    triangles = np.concatenate([front_tris, back_tris, rim])
    frame = _frame(side)
    centre = EAR_CENTRE * np.array([side, 1.0, 1.0])
    vertices = centre + local @ frame
    return vertices, orient_closed(vertices, triangles)
