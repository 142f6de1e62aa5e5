"""Triangulations for the built-in head: ray directions, ring patches and closed parts.

The skin is a triangulated sphere of ray directions (see
:mod:`synface.generate.builtin_shape`): a mirror-symmetric point set, denser towards
the face, triangulated by its convex hull. The eye openings and the lips are
structured ring patches (rows of loops from an opening out to an ellipse) so lid
margins and lip edges are clean edge loops; the hull leaves a hole where each patch
goes and the patch's outer loop closes it. Helpers here also build the small closed
parts (eyeballs, teeth) as indexed grids.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull

# Direction the skin sampling is densest around: the face, seen from the ray origin.
FACE_AXIS = np.array([0.0, -0.15, 1.0]) / np.hypot(0.15, 1.0)


def _frame(axis: np.ndarray) -> np.ndarray:
    """Rows: two unit vectors orthogonal to ``axis`` (the first is +x), then ``axis``."""
    first = np.array([1.0, 0.0, 0.0])
    second = np.cross(axis, first)
    return np.stack([first, second / np.linalg.norm(second), axis])


def _density(polar: np.ndarray, face_angle: float, back_ratio: float) -> np.ndarray:
    """Relative point density at angle ``polar`` from the face axis: 1 on the face, ``back_ratio`` behind."""
    t = np.clip((polar - face_angle) / (np.pi * 0.55 - face_angle), 0.0, 1.0)
    return 1.0 + (back_ratio - 1.0) * t * t * (3.0 - 2.0 * t)


def _polar_quantile(face_angle: float, back_ratio: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Tabulated inverse of the area-weighted density CDF over the polar angle, and the total weight."""
    polar = np.linspace(0.0, np.pi, 4001)
    weight = _density(polar, face_angle, back_ratio) * np.sin(polar)
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (weight[1:] + weight[:-1]) * np.diff(polar))])
    return cumulative / cumulative[-1], polar, 2.0 * np.pi * cumulative[-1]


def skin_directions(face_spacing: float, face_radius: float, face_angle: float, back_ratio: float) -> np.ndarray:
    """Mirror-symmetric unit directions, ``face_spacing`` cm apart on a face ``face_radius`` cm away.

    A spherical Fibonacci set is warped in polar angle about :data:`FACE_AXIS` so
    the density follows :func:`_density`; points with x > 0 are kept and mirrored
    and a row of points is laid along the midline, so the triangulation can be
    (nearly) symmetric.

    Returns:
        (N, 3) unit vectors.
    """
    angular = face_spacing / face_radius
    per_steradian = 1.0 / (np.sqrt(0.75) * angular**2)  # hexagonal packing
    quantile, polar_grid, total = _polar_quantile(face_angle, back_ratio)
    count = round(per_steradian * total)
    index = np.arange(count) + 0.5
    uniform_cos = 1.0 - 2.0 * index / count
    polar = np.interp((1.0 - uniform_cos) / 2.0, quantile, polar_grid)
    azimuth = np.pi * (1.0 + 5.0**0.5) * index
    local = np.column_stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)])
    frame = _frame(FACE_AXIS)
    points = local @ frame
    # Midline row: spacing follows the local density along the great circle x = 0.
    angles = np.linspace(-np.pi, np.pi, 20001)[:-1]
    circle = np.cos(angles)[:, None] * frame[2] + np.sin(angles)[:, None] * frame[1]
    step_weight = np.sqrt(_density(np.abs(angles), face_angle, back_ratio)) / angular
    arc = np.concatenate([[0.0], np.cumsum(step_weight[1:] * np.diff(angles))])
    marks = np.arange(0.5, arc[-1], 1.0)
    midline = circle[np.searchsorted(arc, marks).clip(0, angles.size - 1)]
    midline[:, 0] = 0.0
    spacing = angular / np.sqrt(_density(np.arccos(np.clip(points @ FACE_AXIS, -1.0, 1.0)), face_angle, back_ratio))
    side = points[points[:, 0] > 0.5 * spacing]
    mirrored = side * np.array([-1.0, 1.0, 1.0])
    directions = np.concatenate([midline, side, mirrored])
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def ring_triangles(rows: int, loop: int, offset: int = 0, flip: bool = False) -> np.ndarray:
    """Triangles joining ``rows`` closed loops of ``loop`` vertices stored row after row.

    Loop ``k`` vertex ``i`` has index ``offset + k * loop + i``. With loops running
    counter-clockwise as seen from outside and rows growing outwards, the triangles
    wind counter-clockwise seen from outside; ``flip`` reverses them.

    Returns:
        (2 * (rows - 1) * loop, 3) int64.
    """
    k, i = np.meshgrid(np.arange(rows - 1), np.arange(loop), indexing="ij")
    a = offset + k * loop + i
    b = offset + k * loop + (i + 1) % loop
    c = a + loop
    d = b + loop
    tris = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return tris[:, ::-1].copy() if flip else tris


def fan_triangles(loop_start: int, loop: int, apex: int, flip: bool = False) -> np.ndarray:
    """Triangles closing a loop onto one apex vertex (CCW seen from outside if the loop is CCW seen from the apex side)."""
    i = np.arange(loop)
    tris = np.stack([loop_start + i, np.full(loop, apex), loop_start + (i + 1) % loop], -1)
    return tris[:, ::-1].copy() if flip else tris


def grid_triangles(rows: int, columns: int, offset: int = 0, wrap: bool = True) -> np.ndarray:
    """Triangles of a (rows, columns) vertex grid, optionally closed around the columns."""
    last = columns if wrap else columns - 1
    k, i = np.meshgrid(np.arange(rows - 1), np.arange(last), indexing="ij")
    a = offset + k * columns + i
    b = offset + k * columns + (i + 1) % columns
    c, d = a + columns, b + columns
    return np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])


def hull_with_holes(directions: np.ndarray, hole_loops: list[np.ndarray]) -> np.ndarray:
    """Triangulate unit ``directions`` on the sphere, leaving each hole loop open.

    ``hole_loops`` are index arrays of loops (counter-clockwise seen from outside)
    with no points inside; hull triangles with all three corners on one loop whose
    centre lies inside it span that hole and are dropped.

    Returns:
        (F, 3) int64 triangles, counter-clockwise seen from outside the sphere.
    """
    hull = ConvexHull(directions)
    tris = hull.simplices.astype(np.int64)
    normals = np.cross(directions[tris[:, 1]] - directions[tris[:, 0]], directions[tris[:, 2]] - directions[tris[:, 0]])
    inward = np.einsum("ij,ij->i", normals, directions[tris].mean(1)) < 0.0
    tris[inward] = tris[inward][:, ::-1]
    keep = np.ones(len(tris), dtype=bool)
    for loop in hole_loops:
        on_loop = np.isin(tris, loop).all(axis=1)
        keep &= ~(on_loop & _inside_loop(directions[tris].mean(1), directions[loop]))
    return tris[keep]


def _inside_loop(points: np.ndarray, loop: np.ndarray) -> np.ndarray:
    """Whether directions ``points`` lie inside a loop of directions, tested in a gnomonic chart at its centre."""
    from matplotlib.path import Path as PolygonPath

    axis = loop.mean(0)
    frame = np.linalg.svd(loop - axis)[2]
    axis = axis / np.linalg.norm(axis)
    u, v = frame[0] - (frame[0] @ axis) * axis, frame[1] - (frame[1] @ axis) * axis

    def chart(x: np.ndarray) -> np.ndarray:
        depth = x @ axis
        return np.column_stack([x @ u, x @ v]) / np.maximum(depth, 1e-9)[:, None]

    facing = points @ axis > 0.0
    return PolygonPath(chart(loop)).contains_points(chart(points)) & facing


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Closed loops of boundary edges (edges used by exactly one triangle), each in traversal order."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    key = np.sort(edges, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = edges[counts[inverse.ravel()] == 1]
    following = dict(zip(boundary[:, 0].tolist(), boundary[:, 1].tolist()))
    loops, seen = [], set()
    for start in following:
        if start in seen:
            continue
        loop, vertex = [], start
        while vertex not in seen:
            seen.add(vertex)
            loop.append(vertex)
            vertex = following[vertex]
        loops.append(np.array(loop))
    return loops


def signed_volume(vertices: np.ndarray, triangles: np.ndarray) -> float:
    """Volume enclosed by a closed mesh; positive when triangles wind counter-clockwise seen from outside."""
    a, b, c = vertices[triangles[:, 0]], vertices[triangles[:, 1]], vertices[triangles[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def orient_closed(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """``triangles`` of a closed, consistently wound mesh, flipped if needed so they face outwards."""
    return triangles if signed_volume(vertices, triangles) > 0.0 else triangles[:, ::-1].copy()


def orient_against(triangles: np.ndarray, neighbour: np.ndarray, edge: tuple[int, int]) -> np.ndarray:
    """Flip ``triangles`` if needed so they run along the shared ``edge`` opposite to ``neighbour``.

    Two consistently wound surfaces joined along a loop traverse each shared edge
    in opposite directions; one edge of the loop decides.
    """
    def direction(tris: np.ndarray) -> int:
        """+1 if some triangle runs a -> b, -1 if b -> a (0 if the edge is absent)."""
        a, b = edge
        forward = ((tris == a) & (np.roll(tris, -1, axis=1) == b)).any()
        backward = ((tris == b) & (np.roll(tris, -1, axis=1) == a)).any()
        return int(forward) - int(backward)

    mine, theirs = direction(triangles), direction(neighbour)
    assert mine != 0 and theirs != 0, "surfaces do not share the given edge"
    return triangles[:, ::-1].copy() if mine == theirs else triangles


def loop_strip(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Triangles joining two index loops of equal length, vertex ``i`` facing vertex ``i``."""
    i = np.arange(len(first))
    j = (i + 1) % len(first)
    return np.concatenate([np.stack([first[i], second[i], second[j]], -1), np.stack([first[i], second[j], first[j]], -1)])
