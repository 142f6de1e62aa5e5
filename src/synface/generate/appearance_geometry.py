"""Per-vertex coordinates the appearance model paints with, derived once from a face model's mean shape.

Procedural patterns (brows, lash lines, beard zones, hairlines, wrinkles) are placed
relative to the mean shape's 68 landmarks, so they land on the same facial features
for any face model. All lengths are in units of the inter-ocular distance (``iod``,
between the two eye centres of the five landmarks), measured from the midpoint of the
eyes: ``u`` towards image right, ``v`` up, ``w`` towards the camera. Left/right
symmetric features use the mirrored coordinate ``a = |u|`` and landmark curves
averaged over both sides. The head's vertical axis runs through the ears (the
centre of the head when there are no ears); around it ``theta`` is the azimuth
(0 in front, 180 degrees at the back, the same on both sides) and ``rho`` the
distance from the axis.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PlanePath
from scipy import sparse

from synface.errors import AssetError
from synface.generate.facemodel import REGIONS, FaceModel

# iBUG-68 landmarks on the image-right side and their image-left mirrors.
_MIRROR = {
    **{16 - k: k for k in range(8)},
    **{26 - k: 17 + k for k in range(5)},
    35: 31, 34: 32, 45: 36, 44: 37, 43: 38, 42: 39, 47: 40, 46: 41,
    54: 48, 53: 49, 52: 50, 55: 59, 56: 58, 64: 60, 63: 61, 65: 67,
}
BROW = (22, 23, 24, 25, 26)          # inner -> outer
UPPER_LID = (42, 43, 44, 45)         # inner corner -> outer corner
LOWER_LID = (42, 47, 46, 45)
OUTER_LIPS = tuple(range(48, 60))
JAW = tuple(range(8, 17))            # chin -> jaw angle -> ear


@dataclass
class FaceGeometry:
    """Mean-shape coordinates and landmark-relative distances, each (V,) float32 unless noted.

    Attributes:
        iod: inter-ocular distance of the mean shape, cm.
        u, v, w: face-frame coordinates (module docstring); a = |u|.
        theta, rho, height: azimuth (degrees), distance from the head axis and height
            ``v``, all about the vertical head axis.
        region: (V,) int64 region index into :data:`REGIONS`.
        normal_y, normal_z: upward and forward components of the mean-shape vertex normals.
        brow_t, brow_d: position along the brow curve (0 inner end, 1 tail) and signed
            distance from it (positive above).
        lid_t, lid_up, lid_low: position along the upper lid (0 inner corner, 1 outer),
            signed distance above the upper lid and below the lower lid (both negative
            inside the eye opening).
        lip_d: signed distance to the outer lip contour (negative inside).
        mouth_v: height above the line through the mouth corners and the lip gap.
        fold_d, fold_t: distance from the nasolabial fold curve and position along it.
        corner_r, corner_angle: polar coordinates about the outer eye corner (angle 0
            points outwards, positive up, degrees).
        jaw_drop: distance below the jaw line (0 on it, negative above), in the vertical
            plane through the head axis.
        eye_r: distance of eye vertices from their eyeball's viewing axis in iris radii
            (1 at the limbus), -1 behind the eyeball's centre.
        cavity: ambient occlusion estimate in (0, 1]: 1 on open surfaces, less in creases
            and cavities (:func:`cavity_occlusion`).
        anchors: named landmark-derived scalars (brow top, eye corner, ear height, ...).
    """

    iod: float
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    a: np.ndarray
    theta: np.ndarray
    rho: np.ndarray
    region: np.ndarray
    normal_y: np.ndarray
    normal_z: np.ndarray
    brow_t: np.ndarray
    brow_d: np.ndarray
    lid_t: np.ndarray
    lid_up: np.ndarray
    lid_low: np.ndarray
    lip_d: np.ndarray
    mouth_v: np.ndarray
    fold_d: np.ndarray
    fold_t: np.ndarray
    corner_r: np.ndarray
    corner_angle: np.ndarray
    jaw_drop: np.ndarray
    eye_r: np.ndarray
    cavity: np.ndarray
    anchors: dict[str, float]

    def mask(self, *names: str) -> np.ndarray:
        """(V,) bool: vertices in any of the named regions."""
        return np.isin(self.region, [REGIONS.index(n) for n in names])

    def points(self, selected: np.ndarray) -> np.ndarray:
        """(N, 3) float64 face-frame positions (u, v, w) of the ``selected`` (V,) vertices."""
        return np.stack([self.u, self.v, self.w], 1)[selected].astype(np.float64)


def polyline_coordinates(points: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest point on a 2D polyline: (position 0..1 by arc length, may extend past the ends,
    unsigned distance, signed distance positive to the left of the direction of travel)."""
    segments = np.diff(points, axis=0)
    lengths = np.linalg.norm(segments, axis=1)
    starts = np.concatenate([[0.0], np.cumsum(lengths)])[:-1]
    total = lengths.sum()
    best = np.full(len(query), np.inf)
    position = np.zeros(len(query))
    signed = np.zeros(len(query))
    last = len(segments) - 1
    for k, (origin, segment, length) in enumerate(zip(points[:-1], segments, lengths)):
        direction = segment / length
        rel = query - origin
        along = rel @ direction
        # The end segments extend past the polyline's ends; inner ones are clamped.
        clamped = np.clip(along, -np.inf if k == 0 else 0.0, np.inf if k == last else length)
        across = rel[:, 0] * -direction[1] + rel[:, 1] * direction[0]
        distance = np.hypot(along - clamped, across)
        closer = distance < best
        best = np.where(closer, distance, best)
        position = np.where(closer, (starts[k] + clamped) / total, position)
        signed = np.where(closer, np.where(across >= 0, distance, -distance), signed)
    return position, best, signed


def _polygon_signed_distance(polygon: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Signed distance to a closed 2D polygon (negative inside)."""
    closed = np.concatenate([polygon, polygon[:1]])
    distance = np.full(len(query), np.inf)
    for origin, end in itertools.pairwise(closed):
        segment = end - origin
        t = np.clip(((query - origin) @ segment) / (segment @ segment), 0.0, 1.0)
        distance = np.minimum(distance, np.linalg.norm(query - origin - t[:, None] * segment, axis=1))
    inside = PlanePath(polygon).contains_points(query)
    return np.where(inside, -distance, distance)


def mesh_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals of a mesh (zero for unused vertices)."""
    face = np.cross(vertices[triangles[:, 1]] - vertices[triangles[:, 0]],
                    vertices[triangles[:, 2]] - vertices[triangles[:, 0]])
    normals = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(normals, triangles[:, corner], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


# (smoothing steps, depth in cm that darkens by 1/e, weight): fine creases, eye sockets, large hollows.
_CAVITY_SCALES = ((4, 0.05, 0.4), (16, 0.15, 0.4), (64, 0.5, 0.3))


def cavity_occlusion(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V,) ambient occlusion of a mesh from how far each vertex lies below smoothed copies of it.

    Smoothing a mesh (repeated neighbour averaging) lifts its creases and cavities
    towards the surrounding surface; how far a vertex lies below a smoothed copy, along
    its normal, measures how deep a hollow of that copy's scale it sits in. Nostrils,
    lip lines and eye corners show at fine scales, eye sockets and the space under the
    jaw at coarse ones. Convex surfaces (and the eyeballs) stay at 1.

    Args:
        vertices: (V, 3) positions in cm.
        triangles: (F, 3) vertex indices.

    Returns:
        (V,) float32 in (0, 1].
    """
    count = len(vertices)
    normals = mesh_normals(vertices, triangles)
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    rows, columns = np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]]
    adjacency = sparse.coo_matrix((np.ones(len(rows)), (rows, columns)), shape=(count, count)).tocsr()
    adjacency.data[:] = 1.0  # an edge shared by two triangles counts once
    degree = np.maximum(np.asarray(adjacency.sum(1)).ravel(), 1.0)
    average = sparse.diags(1.0 / degree) @ adjacency
    smoothed, occlusion = vertices.astype(np.float64), np.ones(count)
    for step in range(1, max(scale[0] for scale in _CAVITY_SCALES) + 1):
        smoothed = 0.5 * (smoothed + average @ smoothed)
        for steps, depth, weight in _CAVITY_SCALES:
            if step == steps:
                below = np.clip(((smoothed - vertices) * normals).sum(1), 0.0, None)  # (V,) cm
                occlusion *= np.exp(-weight * below / depth)
    return occlusion.astype(np.float32)


def _mirrored(marks: np.ndarray) -> np.ndarray:
    """(68, 2) landmark (a, v) averaged with each point's mirror image."""
    out = np.stack([np.abs(marks[:, 0]), marks[:, 1]], 1)
    for right, left in _MIRROR.items():
        out[right] = out[left] = 0.5 * (out[right] + out[left])
    return out


def _eye_axes(vertices: np.ndarray, region: np.ndarray, marks3: np.ndarray) -> np.ndarray:
    """(V,) distance of each eye vertex from its eyeball's viewing axis in iris radii; -1 elsewhere or behind.

    The eyeball centre is a least-squares sphere fit of that side's eye vertices. The
    axis points through the iris region's front disc when the model has one (refined
    like the disc's symmetry axis), else through the centre of the eye opening
    (landmarks 36-41, 42-47). The iris radius is the disc's extent, or 22% of the eye's
    corner-to-corner width without a disc (human irises span about 40% of it).
    """
    eye_r = np.full(len(vertices), -1.0)
    eyes = np.isin(region, [REGIONS.index("eyes"), REGIONS.index("iris")])
    iris_region = region == REGIONS.index("iris")
    for side, opening, corners in ((-1.0, range(36, 42), (36, 39)), (1.0, range(42, 48), (42, 45))):
        members = eyes & (np.sign(vertices[:, 0]) == side)
        if members.sum() < 8:
            continue
        points = vertices[members]
        design = np.c_[2.0 * points, np.ones(len(points))]
        solution = np.linalg.lstsq(design, (points ** 2).sum(1), rcond=None)[0]
        centre = solution[:3]
        radius = float(np.sqrt(max(solution[3] + centre @ centre, 1e-12)))
        axis = marks3[list(opening)].mean(0) - centre
        axis /= np.linalg.norm(axis)
        iris_radius = 0.22 * float(np.linalg.norm(marks3[corners[0]] - marks3[corners[1]]))
        disc = vertices[iris_region & members] - centre
        if len(disc) >= 8:
            for _ in range(10):
                front = disc[disc @ axis > 0.8 * radius]
                if len(front) < 8:
                    break
                axis = front.mean(0) / np.linalg.norm(front.mean(0))
            front = disc[disc @ axis > 0.8 * radius]
            if len(front) >= 8:
                across = np.linalg.norm(front - (front @ axis)[:, None] * axis, axis=1)
                iris_radius = float(np.percentile(across, 98))
        rel = points - centre
        along = rel @ axis
        radial = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        eye_r[members] = np.where(along > 0, radial / max(iris_radius, 1e-6), -1.0)
    return eye_r


def _feature_curves(mirror: np.ndarray, marks: np.ndarray, u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """Brow, lid, lip, nasolabial and eye-corner coordinates of points (u, v) (see :class:`FaceGeometry`)."""
    a = np.abs(u)
    query = np.stack([a, v], 1)
    # Curves run outwards (+a), so "left of the direction of travel" is above.
    brow_t, _, brow_d = polyline_coordinates(mirror[list(BROW)], query)
    lid_t, _, lid_up = polyline_coordinates(mirror[list(UPPER_LID)], query)
    _, _, lid_above_lower = polyline_coordinates(mirror[list(LOWER_LID)], query)
    gap = 0.5 * (mirror[62, 1] + mirror[66, 1])
    # Nasolabial fold: a gentle arc from just outside the nose wing to just outside the mouth corner.
    start = mirror[35] + np.array([0.09, 0.03])
    end = mirror[54] + np.array([0.1, -0.1])
    control = 0.5 * (start + end) + np.array([0.07, 0.0])
    s = np.linspace(0.0, 1.0, 12)[:, None]
    fold_t, fold_d, _ = polyline_coordinates((1 - s) ** 2 * start + 2 * s * (1 - s) * control + s ** 2 * end, query)
    corner = mirror[45]
    return {
        "brow_t": brow_t, "brow_d": brow_d, "lid_t": lid_t, "lid_up": lid_up, "lid_low": -lid_above_lower,
        "lip_d": _polygon_signed_distance(marks[list(OUTER_LIPS), :2], np.stack([u, v], 1)),
        "mouth_v": v - np.interp(a, [0.0, mirror[54, 0]], [gap, mirror[54, 1]]),
        "fold_t": fold_t, "fold_d": fold_d,
        "corner_r": np.hypot(a - corner[0], v - corner[1]),
        "corner_angle": np.degrees(np.arctan2(v - corner[1], a - corner[0])),
    }


def _head_coordinates(local: np.ndarray, marks: np.ndarray, axis_w: float) -> dict[str, np.ndarray]:
    """Azimuth ``theta``, axis distance ``rho`` and ``jaw_drop`` about the vertical axis at depth ``axis_w``."""
    u, v, w = local.T
    theta = np.degrees(np.arctan2(np.abs(u), w - axis_w))
    rho = np.hypot(u, w - axis_w)
    jaw = marks[list(JAW)]
    jaw_theta = np.degrees(np.arctan2(np.abs(jaw[:, 0]), jaw[:, 2] - axis_w))
    order = np.argsort(jaw_theta)
    jaw_y = np.interp(theta, jaw_theta[order], jaw[order, 1])
    jaw_rho = np.interp(theta, jaw_theta[order], np.hypot(jaw[order, 0], jaw[order, 2] - axis_w))
    # Below the jaw, count the way back under the chin as well as the way down the neck.
    jaw_drop = np.where(v < jaw_y, np.hypot(jaw_y - v, np.clip(jaw_rho - rho, 0.0, None)), jaw_y - v)
    return {"theta": theta, "rho": rho, "jaw_drop": jaw_drop}


def _anchors(mirror: np.ndarray, marks: np.ndarray, v: np.ndarray, theta: np.ndarray, ears: np.ndarray,
             axis_w: float) -> dict[str, float]:
    """Landmark-derived heights and widths the painters place their patterns by."""
    has_ears = bool(ears.any())
    return {
        "brow_top": float(mirror[list(BROW), 1].max()),
        "eye_outer_a": float(mirror[45, 0]), "eye_inner_a": float(mirror[42, 0]),
        "nose_tip_v": float(marks[30, 1]), "nose_base_v": float(marks[33, 1]), "nose_wing_a": float(mirror[35, 0]),
        "lip_top_v": float(marks[51, 1]), "lip_bottom_v": float(marks[57, 1]),
        "mouth_corner_a": float(mirror[54, 0]), "mouth_corner_v": float(mirror[54, 1]),
        "chin_v": float(marks[8, 1]), "jaw_angle_a": float(mirror[12, 0]), "jaw_angle_v": float(mirror[12, 1]),
        "ear_top": float(v[ears].max()) if has_ears else float(marks[0, 1]),
        "ear_bottom": float(v[ears].min()) if has_ears else float(marks[2, 1]),
        "ear_front": float(np.percentile(theta[ears], 2)) if has_ears else 80.0,
        "ear_back": float(np.percentile(theta[ears], 98)) if has_ears else 110.0,
        "head_top": float(v.max()), "axis_w": axis_w,
    }


def _landmarks(model: FaceModel, vertices: np.ndarray, count: int) -> np.ndarray:
    """(count, 3) landmark positions of the mean shape, computed on the CPU whatever the model's device."""
    index = getattr(model, f"landmarks{count}_index").detach().cpu().numpy()
    weight = getattr(model, f"landmarks{count}_weight").detach().cpu().double().numpy()
    return (vertices[index] * weight[..., None]).sum(1)


def face_geometry(model: FaceModel) -> FaceGeometry:
    """Compute the appearance coordinates of ``model``'s mean shape.

    Args:
        model: any face model with 5 and 68 landmarks and regions.

    Returns:
        The per-vertex :class:`FaceGeometry`.

    Raises:
        AssetError: the model's eye landmarks coincide (no face frame).
    """
    vertices = model.vertices.detach().cpu().double().numpy()
    region = model.regions.detach().cpu().numpy().astype(np.int64)
    five, marks3 = _landmarks(model, vertices, 5), _landmarks(model, vertices, 68)
    origin = 0.5 * (five[0] + five[1])
    iod = float(np.linalg.norm(five[1] - five[0]))
    if not np.isfinite(iod) or iod < 1e-6:
        raise AssetError(f"{model.name}: the eye landmarks coincide; appearance patterns cannot be placed")
    local = (vertices - origin) / iod  # (V, 3)
    marks = (marks3 - origin) / iod
    mirror = _mirrored(marks)
    ears = region == REGIONS.index("ears")
    # The head's vertical axis runs through the ears (else halfway back from the eyes).
    axis_w = float(local[ears, 2].mean()) if ears.any() else 0.5 * float(local[:, 2].min())
    head = _head_coordinates(local, marks, axis_w)
    normals = mesh_normals(vertices, model.triangles.detach().cpu().numpy())
    as32 = lambda x: np.asarray(x, dtype=np.float32)
    return FaceGeometry(
        iod=iod, u=as32(local[:, 0]), v=as32(local[:, 1]), w=as32(local[:, 2]), a=as32(np.abs(local[:, 0])),
        region=region, normal_y=as32(normals[:, 1]), normal_z=as32(normals[:, 2]),
        eye_r=as32(_eye_axes(vertices, region, marks3)),
        cavity=cavity_occlusion(vertices, model.triangles.detach().cpu().numpy()),
        anchors=_anchors(mirror, marks, local[:, 1], head["theta"], ears, axis_w),
        **{name: as32(value) for name, value in head.items()},
        **{name: as32(value) for name, value in _feature_curves(mirror, marks, local[:, 0], local[:, 1]).items()},
    )
