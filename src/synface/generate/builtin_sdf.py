"""Signed-distance primitives and smooth boolean operators for the built-in head.

All functions work on numpy arrays of points ``(N, 3)`` in centimetres and return
``(N,)`` signed distances (negative inside). The ellipsoid distance is the usual
first-order bound ``k0 (k0 - 1) / k1``: exact on the surface, close to the true
distance near it, which is all the smooth operators and the ray caster need.
"""

from __future__ import annotations

import numpy as np

# Value standing for "far outside" where a local primitive is not evaluated.
FAR = 1.0e3


def ellipsoid(points: np.ndarray, centre: tuple[float, float, float], radii: tuple[float, float, float]) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid."""
    # Column-wise arithmetic: fast for the Fortran-ordered point arrays the head builds.
    u = (points[:, 0] - centre[0]) / radii[0]
    v = (points[:, 1] - centre[1]) / radii[1]
    w = (points[:, 2] - centre[2]) / radii[2]
    k0 = np.sqrt(u * u + v * v + w * w)
    u, v, w = u / radii[0], v / radii[1], w / radii[2]
    k1 = np.sqrt(u * u + v * v + w * w)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def local_ellipsoid(
    points: np.ndarray, centre: tuple[float, float, float], radii: tuple[float, float, float], margin: float
) -> np.ndarray:
    """:func:`ellipsoid` evaluated only inside its bounding box grown by ``margin``; ``FAR`` elsewhere.

    Exact wherever the primitive can change a smooth union or subtraction with blend
    width below ``margin``; elsewhere the sign of the combined function is unchanged.
    """
    near = np.abs(points[:, 0] - centre[0]) < radii[0] + margin
    near &= np.abs(points[:, 1] - centre[1]) < radii[1] + margin
    near &= np.abs(points[:, 2] - centre[2]) < radii[2] + margin
    out = np.full(points.shape[0], FAR)
    if near.any():
        out[near] = ellipsoid(points[near], centre, radii)
    return out


def ellipsoid_two_sided(
    points: np.ndarray,
    centre: tuple[float, float, float],
    radii_negative: tuple[float, float, float],
    radii_positive: tuple[float, float, float],
) -> np.ndarray:
    """Ellipsoid whose semi-axis on each side of the centre can differ (an egg-like solid).

    The radius along each axis is chosen by the sign of the local coordinate; the
    implicit function stays C1 because ``(x / r)^2`` has zero slope at ``x = 0``.
    """
    scaled, squared = [], []
    for axis in range(3):
        local = points[:, axis] - centre[axis]
        radius = np.where(local < 0.0, radii_negative[axis], radii_positive[axis])
        scaled.append(local / radius)
        squared.append(scaled[-1] / radius)
    k0 = np.sqrt(scaled[0] ** 2 + scaled[1] ** 2 + scaled[2] ** 2)
    k1 = np.sqrt(squared[0] ** 2 + squared[1] ** 2 + squared[2] ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union) with blend width ``k``."""
    if k <= 0.0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def smooth_max(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth maximum (smooth intersection) with blend width ``k``."""
    return -smooth_min(-a, -b, k)


def smooth_subtract(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Remove solid ``b`` from solid ``a`` with a rounded edge of width ``k``."""
    return smooth_max(a, -b, k)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``edge0`` to 1 at ``edge1`` (either order)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def rotated_x(points: np.ndarray, centre: tuple[float, float, float], degrees: float) -> np.ndarray:
    """Points expressed in a frame turned by ``degrees`` about the x axis through ``centre``.

    Evaluating a primitive on these points turns the primitive by ``-degrees``.
    """
    angle = np.radians(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    y, z = points[:, 1] - centre[1], points[:, 2] - centre[2]
    out = np.empty_like(points, order="F")
    out[:, 0] = points[:, 0]
    out[:, 1] = centre[1] + cos * y - sin * z
    out[:, 2] = centre[2] + sin * y + cos * z
    return out
