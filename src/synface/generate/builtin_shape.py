"""The built-in head's mean skin surface: an implicit solid and the ray caster that samples it.

The head is a smooth union of anatomical masses (cranium, face, jaw, chin, neck,
brow ridge, cheekbones, a height-field nose, lips) minus the philtrum, lip contact
slit and nostrils, written as a signed-distance-like function in the model frame
(centimetres, +x to the subject's left, +y up, +z forward). Around each eye a
closed-eye fill is cut back onto the eyeball so the lid margins rest on the globe.
The skin mesh samples the surface along rays from :data:`RAY_ORIGIN` (and, for the
eye and mouth patches, from viewpoints in front of them) with :class:`RayCaster`.
Feature positions shared with the mesh, landmark and blendshape code live in
:data:`LAYOUT`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synface.generate.builtin_sdf import (
    FAR,
    ellipsoid,
    ellipsoid_two_sided,
    local_ellipsoid,
    rotated_x,
    smooth_max,
    smooth_min,
    smooth_subtract,
    smoothstep,
)


@dataclass(frozen=True)
class FaceLayout:
    """Positions of the mean face's features (the subject's left side, x > 0; centimetres)."""

    eye_centre: tuple[float, float] = (3.15, 3.5)          # pupil, frontal (x, y)
    eyeball_z: float = 8.4                                  # eyeball centre depth
    eyeball_radius: float = 1.2
    canthus_inner: tuple[float, float] = (1.75, 3.36)
    canthus_outer: tuple[float, float] = (4.55, 3.56)
    lid_upper_sagitta: float = 0.5                          # upper lid arc height over the canthal chord
    lid_lower_sagitta: float = 0.42
    mouth_y: float = -3.45                                  # lip contact line at the midline
    mouth_half_width: float = 2.6
    mouth_corner_drop: float = 0.12                         # corners sit this much below the midline
    lip_bend: float = 0.21                                  # dental-arch curvature: z falls by bend * x^2
    mouth_front_z: float = 11.4                             # lip contact line depth at the midline


LAYOUT = FaceLayout()
# Nostril pockets under the nose (subject's left; mirrored).
NOSTRIL_CENTRE = (0.54, -1.3, 11.42)
NOSTRIL_RADII = (0.26, 0.16, 0.44)
RAY_ORIGIN = np.array([0.0, 1.5, 0.5])


def mouth_line_y(x: np.ndarray, layout: FaceLayout = LAYOUT) -> np.ndarray:
    """Height of the lip contact line at frontal position ``x`` (cm)."""
    t = np.clip(np.abs(x) / layout.mouth_half_width, 0.0, 1.0)
    return layout.mouth_y - layout.mouth_corner_drop * t**2


def fissure_distance(xy: np.ndarray, layout: FaceLayout = LAYOUT) -> np.ndarray:
    """2D signed distance (negative inside) to the almond-shaped eye opening; x is mirrored.

    The opening is the intersection of two discs through both canthi, so the upper
    and lower lid margins are circular arcs with the given sagittae.
    """
    x, y = np.abs(xy[:, 0]), xy[:, 1]
    inner, outer = np.asarray(layout.canthus_inner), np.asarray(layout.canthus_outer)
    middle, chord = (inner + outer) / 2.0, outer - inner
    half = np.linalg.norm(chord) / 2.0
    normal = np.array([-chord[1], chord[0]]) / (2.0 * half)  # points up
    if normal[1] < 0:
        normal = -normal
    distances = []
    for sagitta, sign in ((layout.lid_upper_sagitta, 1.0), (layout.lid_lower_sagitta, -1.0)):
        radius = (half**2 + sagitta**2) / (2.0 * sagitta)
        centre = middle + sign * normal * (sagitta - radius)
        distances.append(np.hypot(x - centre[0], y - centre[1]) - radius)
    return np.maximum(distances[0], distances[1])


def eye_support(points: np.ndarray, layout: FaceLayout = LAYOUT) -> np.ndarray:
    """Distance to the surface the lids rest on: the eyeball plus soft pads at both canthi.

    The canthi lie beyond the globe's silhouette, the medial one well in front of
    it, so the lid corners need something to rest on there.
    """
    local = np.column_stack([np.abs(points[:, 0]), points[:, 1], points[:, 2]])
    centre = np.array([layout.eye_centre[0], layout.eye_centre[1], layout.eyeball_z])
    globe = np.linalg.norm(local - centre, axis=-1) - (layout.eyeball_radius + 0.03)
    inner, outer = layout.canthus_inner, layout.canthus_outer
    medial = ellipsoid(local, (inner[0] - 0.05, inner[1], layout.eyeball_z + 0.5), (0.5, 0.32, 0.42))
    lateral = ellipsoid(local, (outer[0] - 0.05, outer[1], layout.eyeball_z - 0.15), (0.38, 0.28, 0.45))
    return smooth_min(smooth_min(globe, medial, 0.25), lateral, 0.2)


def _bent(points: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """Points in the mouth's frame: z increased by ``bend * x^2`` so the lips follow the dental arch."""
    bent = points.copy(order="F")
    bent[:, 2] += layout.lip_bend * points[:, 0] ** 2
    return bent


def _cranium_and_face(p: np.ndarray, pm: np.ndarray) -> np.ndarray:
    """Cranium, midface, jaw, chin and neck: the head's large masses."""
    cranium = ellipsoid_two_sided(p, (0.0, 5.6, 0.6), (7.6, 9.3, 9.4), (7.6, 9.3, 10.0))
    forehead = ellipsoid(p, (0.0, 7.0, 5.0), (6.0, 4.8, 5.15))
    parietal = ellipsoid(p, (0.0, 9.6, -1.0), (6.7, 5.2, 7.6))
    head = smooth_min(smooth_min(cranium, forehead, 1.5), parietal, 1.5)
    midface = ellipsoid(p, (0.0, 1.2, 3.4), (7.0, 4.6, 7.1))
    jaw = ellipsoid_two_sided(rotated_x(p, (0.0, -2.6, 3.2), -14.0), (0.0, -2.6, 3.2), (5.6, 5.9, 7.6), (5.6, 5.0, 7.9))
    chin = ellipsoid(p, (0.0, -6.7, 8.5), (2.9, 1.8, 2.45))
    gonion = ellipsoid(pm, (5.0, -4.7, 1.9), (1.0, 1.6, 2.0))
    mandible = ellipsoid(pm, (3.0, -6.2, 6.6), (1.5, 1.3, 2.2))
    lower = smooth_min(smooth_min(smooth_min(jaw, chin, 1.6), gonion, 1.8), mandible, 1.6)
    face = smooth_min(midface, lower, 2.2)
    head = smooth_min(head, face, 2.5)
    # Neck: an elliptic cylinder leaning forward as it rises, flaring a little at its base.
    y = p[:, 1]
    axis_z = -0.6 + 0.45 * (y + 10.0)
    axis_z = np.where(y > -10.0, -0.6 + 0.2 * (y + 10.0), axis_z)
    flare = 1.0 + 0.22 * smoothstep(-12.5, -17.0, y)
    neck_xz = np.hypot(p[:, 0] / (5.3 * flare), (p[:, 2] - axis_z) / 5.6) - 1.0
    neck = smooth_max(neck_xz * 5.4, -(y + 17.0), 0.4)
    neck = smooth_max(neck, y - 4.0, 1.0)
    return smooth_min(head, neck, 2.6)


def _brow_cheeks(d: np.ndarray, p: np.ndarray, pm: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """Brow ridge, temples, cheekbones and cheeks."""
    brow = local_ellipsoid(pm, (1.9, 5.25, 9.05), (2.5, 1.05, 1.6), 1.5)
    brow_outer = local_ellipsoid(pm, (4.4, 5.15, 7.9), (2.1, 1.0, 1.6), 1.5)
    glabella = local_ellipsoid(p, (0.0, 4.9, 9.6), (1.4, 1.3, 1.1), 1.5)
    d = smooth_min(d, smooth_min(smooth_min(brow, brow_outer, 1.0), glabella, 0.8), 1.1)
    temple = local_ellipsoid(pm, (8.3, 5.0, 5.3), (0.9, 2.2, 2.2), 1.5)
    d = smooth_subtract(d, temple, 1.0)
    cheekbone = local_ellipsoid(pm, (4.8, 1.7, 6.5), (2.1, 1.25, 2.2), 2.5)
    cheek = local_ellipsoid(pm, (3.2, -0.5, 8.1), (1.8, 2.0, 1.75), 2.5)
    buccal = local_ellipsoid(pm, (4.1, -1.9, 6.8), (1.8, 2.0, 2.1), 2.5)
    d = smooth_min(d, smooth_min(smooth_min(cheekbone, cheek, 1.3), buccal, 1.3), 1.3)
    return _eyelids(d, p, pm, layout)


def _lid_thickness(margin: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """How far the skin stands off the eye support at ``margin`` cm from the lid margin.

    Thin along the tarsal plate (the lid hugs the globe), then rising steeply into the
    brow fold above the upper-lid crease and into the cheek below the lower lid.
    """
    m = np.maximum(margin, 0.0)
    upper_lid = 0.03 + 0.45 * m + 1.0 * m**2
    lower_lid = 0.03 + 0.4 * m + 1.0 * m**2
    return np.where(upper, upper_lid, lower_lid)


def _eyelids(d: np.ndarray, p: np.ndarray, pm: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """Closed-eye fill, then cut back onto the eyeball near the opening so the lid margins rest on it."""
    centre = (layout.eye_centre[0], layout.eye_centre[1] + 0.1, layout.eyeball_z - 0.1)
    fill = local_ellipsoid(pm, centre, (1.95, 1.45, 1.85), 1.5)
    d = smooth_min(d, fill, 1.0)
    near = (np.abs(pm[:, 0] - layout.eye_centre[0]) < 3.0) & (np.abs(p[:, 1] - layout.eye_centre[1]) < 3.0)
    near &= p[:, 2] > layout.eyeball_z - 2.0
    q = p[near]
    margin = fissure_distance(q[:, :2], layout)
    lids = eye_support(q, layout) - _lid_thickness(margin, q[:, 1] > layout.eye_centre[1])
    d[near] = smooth_max(d[near], lids, 0.4)
    return d


def _nose_profile():
    """Splines over height y of the nose's midline depth and cross-section (drop, half-width, power)."""
    from scipy.interpolate import PchipInterpolator

    # y, ridge z, drop at the half-width, half-width, exponent of the cross-section |x|^n
    table = np.array([
        [-1.75, 10.75, 1.0, 1.0, 2.0],
        [-1.38, 11.6, 1.0, 1.0, 2.0],
        [-1.07, 12.2, 1.5, 1.0, 2.0],
        [-0.65, 12.75, 1.6, 1.2, 2.0],
        [-0.13, 13.0, 1.5, 1.5, 2.2],
        [0.29, 13.02, 1.6, 1.55, 2.2],
        [0.91, 12.72, 2.0, 1.5, 2.3],
        [1.96, 11.9, 1.3, 1.1, 3.0],
        [3.00, 11.3, 1.6, 1.2, 1.8],
        [3.8, 10.8, 1.4, 1.1, 1.9],
        [4.4, 10.58, 1.0, 1.0, 2.0],
        [5.2, 9.8, 1.0, 1.0, 2.0],
    ])
    return table[0, 0], table[-1, 0], [PchipInterpolator(table[:, 0], table[:, k]) for k in range(1, 5)]


_NOSE = _nose_profile()


def _nose(d: np.ndarray, p: np.ndarray, pm: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """Nose: a height field over the face (ridge profile, flat-topped sections), alae and nostrils."""
    low, high, (ridge, drop, half_width, power) = _NOSE
    y = p[:, 1]
    near = (y > low) & (y < high) & (np.abs(p[:, 0]) < 3.5) & (p[:, 2] > 8.0)
    x, yn, z = np.abs(p[near, 0]), y[near], p[near, 2]
    width, depth, exponent = half_width(yn), drop(yn), power(yn)
    relative = x / width
    height = ridge(yn) - depth * relative**exponent
    slope_x = depth * exponent * relative ** np.maximum(exponent - 1.0, 0.0) / width
    slope_y = ridge.derivative()(yn)
    nose = np.full(p.shape[0], FAR)
    nose[near] = (z - height) / np.sqrt(1.0 + slope_x**2 + slope_y**2)
    alae = local_ellipsoid(pm, (1.22, -0.72, 11.05), (0.56, 0.55, 0.78), 1.5)
    nose = smooth_min(nose, alae, 0.3)
    d = smooth_min(d, nose, 0.3)
    nostril = local_ellipsoid(pm, NOSTRIL_CENTRE, NOSTRIL_RADII, 1.5)
    return smooth_subtract(d, nostril, 0.08)


def _mouth(d: np.ndarray, p: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """Philtrum, lips, the lip contact crease and the mentolabial sulcus (in the arch-bent frame)."""
    q = _bent(p, layout)
    front, mouth_y = layout.mouth_front_z, layout.mouth_y
    maxilla = local_ellipsoid(q, (0.0, -1.6, front - 1.05), (2.6, 1.8, 1.3), 1.5)
    d = smooth_min(d, maxilla, 0.9)
    upper = local_ellipsoid(q, (0.0, mouth_y + 0.62, front - 0.42), (2.45, 0.62, 0.88), 1.5)
    lower = local_ellipsoid(q, (0.0, mouth_y - 0.6, front - 0.55), (2.2, 0.6, 0.84), 1.5)
    lips = smooth_min(upper, lower, 0.3)
    d = smooth_min(d, lips, 0.35)
    philtrum = local_ellipsoid(q, (0.0, mouth_y + 1.6, front + 0.36), (0.34, 0.75, 0.3), 1.5)
    d = smooth_subtract(d, philtrum, 0.25)
    sulcus = local_ellipsoid(q, (0.0, mouth_y - 1.55, front - 0.35), (1.6, 0.22, 0.4), 1.5)
    d = smooth_subtract(d, sulcus, 0.35)
    slit = np.maximum(np.abs(q[:, 1] - mouth_line_y(q[:, 0], layout)) - 0.012, np.abs(q[:, 0]) - layout.mouth_half_width)
    slit = np.maximum(slit, front - 1.2 - q[:, 2])
    near = slit < 0.5
    d[near] = smooth_subtract(d[near], slit[near], 0.1)
    return d


def head_sdf(points: np.ndarray, layout: FaceLayout = LAYOUT) -> np.ndarray:
    """Signed distance (approximately; negative inside) of ``points`` (N, 3) to the mean skin."""
    points = np.asfortranarray(points, dtype=float)  # contiguous columns for the primitives
    mirrored = points.copy(order="F")
    mirrored[:, 0] = np.abs(mirrored[:, 0])
    d = _cranium_and_face(points, mirrored)
    # Facial features only reach points in front of the ears between chin and forehead.
    front = (points[:, 2] > 1.5) & (points[:, 1] > -7.5) & (points[:, 1] < 9.0)
    if front.any():
        p, pm = np.asfortranarray(points[front]), np.asfortranarray(mirrored[front])
        face = _brow_cheeks(d[front], p, pm, layout)
        face = _nose(face, p, pm, layout)
        d[front] = _mouth(face, p, layout)
    return d


class RayCaster:
    """Finds where rays from ``origin`` leave the head for the last time (outermost crossing).

    Rays step inwards from a radius known to be outside (a caller's guess plus a
    margin, the largest radius among neighbouring rays of a sparse fan marched
    once from far away, or the plane in front of the face), evaluating a block of
    steps per call, then refine the bracket by the Illinois method. Outermost
    crossings keep thin grooves (lip contact line, lid crease) as grooves.
    """

    def __init__(self, origin: np.ndarray = RAY_ORIGIN, sdf=head_sdf, fan: int = 0, far: float = 24.0):
        self.origin, self.sdf, self.far = np.asarray(origin, dtype=float), sdf, far
        self.fan = None
        if fan:
            index = np.arange(fan) + 0.5
            polar = np.arccos(1.0 - 2.0 * index / fan)
            azimuth = np.pi * (1.0 + 5.0**0.5) * index
            self.fan = np.column_stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)])
            self.fan_radius, _ = self._march(self.fan, np.full(fan, far), 0.5, 48)

    def _march(self, directions: np.ndarray, start: np.ndarray, step: float, block: int) -> tuple[np.ndarray, np.ndarray]:
        """Step inwards from ``start`` (outside) in blocks of ``block`` samples; (inside, outside) radii."""
        inside, outside = np.full(len(start), np.nan), start.copy()
        todo = np.arange(len(start))
        while todo.size:
            radii = outside[todo, None] - step * np.arange(1, block + 1)  # (n, block)
            points = self.origin + radii[..., None] * directions[todo, None, :]
            hit = (self.sdf(points.reshape(-1, 3)).reshape(radii.shape) < 0.0) & (radii > 0.0)
            found = hit.any(axis=1)
            first = np.argmax(hit, axis=1)
            rows = np.arange(todo.size)
            inside[todo[found]] = radii[rows[found], first[found]]
            previous = np.where(first > 0, radii[rows, np.maximum(first - 1, 0)], outside[todo])
            outside[todo[found]] = previous[found]
            lost = ~found & (radii[:, -1] <= 0.0)
            if lost.any():
                raise AssertionError(f"{int(lost.sum())} rays never entered the head")
            outside[todo[~found]] = radii[~found, -1]
            todo = todo[~found]
        return inside, outside

    def upper_bound(self, directions: np.ndarray) -> np.ndarray:
        """A radius outside the head along each ray: from the fan, else the plane in front of the face."""
        if self.fan is not None:
            from scipy.spatial import cKDTree

            _, neighbours = cKDTree(self.fan).query(directions, k=6)
            return np.max(self.fan_radius[neighbours], axis=1) + 0.9
        forward = np.maximum(directions[:, 2], 1e-3)
        return np.minimum((13.8 - self.origin[2]) / forward, self.far)

    def cast_symmetric(self, directions: np.ndarray) -> np.ndarray:
        """:meth:`cast` for an origin on the midline, casting each mirror pair of rays once.

        The head is mirror-symmetric, so the ray to (-x, y, z) has the same length as
        the ray to (x, y, z).
        """
        assert self.origin[0] == 0.0
        folded = np.column_stack([np.abs(directions[:, 0]), directions[:, 1:]])
        unique, inverse = np.unique(folded, axis=0, return_inverse=True)
        return self.cast(unique)[inverse.ravel()]

    def cast(self, directions: np.ndarray, guess: np.ndarray | None = None, iterations: int = 5) -> np.ndarray:
        """Distances (N,) along unit rays (N, 3) to the outermost surface crossing."""
        origin, sdf = self.origin, self.sdf
        bound = self.upper_bound(directions)
        start = bound if guess is None else np.minimum(guess + 0.45, bound)
        if guess is not None:
            inside_already = sdf(origin + start[:, None] * directions) < 0.0
            start = np.where(inside_already, bound, start)
        step, block = (0.15, 4) if guess is not None else (0.25, 6)
        low, high = self._march(directions, start, step, block)
        f_low = sdf(origin + low[:, None] * directions)
        f_high = sdf(origin + high[:, None] * directions)
        for _ in range(iterations):
            denominator = np.where(f_high - f_low == 0.0, 1.0, f_high - f_low)
            middle = np.clip(high - f_high * (high - low) / denominator, np.minimum(low, high), np.maximum(low, high))
            value = sdf(origin + middle[:, None] * directions)
            inner = value < 0.0
            # Illinois: halve the value kept at the stale end so the bracket shrinks from both sides.
            f_high, high = np.where(inner, 0.5 * f_high, value), np.where(inner, high, middle)
            f_low, low = np.where(inner, value, 0.5 * f_low), np.where(inner, middle, low)
        denominator = np.where(f_high - f_low == 0.0, 1.0, f_high - f_low)
        return np.clip(high - f_high * (high - low) / denominator, np.minimum(low, high), np.maximum(low, high))
