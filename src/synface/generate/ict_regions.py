"""Label every vertex of the ICT-FaceKit head with a synface region and locate its pupils.

Materials give the eyes, irises, teeth and the inside of the mouth. The skin
regions are cut by geometry on the neutral head, anchored to its 68 landmarks
(iBUG layout) so the cuts follow the face: lips are the surface enclosed by the
outer lip contour, brows a tapered band along the brow landmarks, ears whatever
stands out from a smooth fit of the side of the head, scalp above a hairline and
neck below the jaw line, both written as heights over the azimuth around the
head's vertical axis (0 degrees in front, 180 at the back).

The eyeball's sclera mesh also carries the clear cornea over the iris (a
transparent shader shows the iris through it); an opaque renderer would draw it
white, so the cornea is labelled ``iris``.

Frame: centimetres, +x image right, +y up, +z towards the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PlanePath
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import ConvexHull

from synface.generate.facemodel import REGIONS

# Material -> region; the face and head skin materials start as skin.
MATERIAL_REGIONS = {
    "M_GumsTongue": "mouth_interior",
    "M_Teeth": "teeth",
    "M_ScleraLeft": "eyes",
    "M_ScleraRight": "eyes",
    "M_IrisLeft": "iris",
    "M_IrisRight": "iris",
}
FACE_MATERIAL = "M_Face"
HEAD_MATERIAL = "M_BackHead"
EYE_MATERIALS = (("M_ScleraLeft", "M_IrisLeft"), ("M_ScleraRight", "M_IrisRight"))

# iBUG 68 landmark numbers (0-based).
JAW_CHIN = 8
BROW_RIGHT = (21, 20, 19, 18, 17)  # image left, from the inner end outwards
BROW_LEFT = (22, 23, 24, 25, 26)
BROWS = tuple(range(17, 27))
EYE_RIGHT = tuple(range(36, 42))
EYE_LEFT = tuple(range(42, 48))
OUTER_LIP = tuple(range(48, 60))
MOUTH = tuple(range(48, 68))

# Brow band in cm: the iBUG brow points trace the brow's upper edge, so the band
# reaches a little above them and mostly below, thinning towards the tail.
BROW_ABOVE = 0.2
BROW_BELOW_INNER = 1.0
BROW_BELOW_OUTER = 0.45
BROW_END_CAP = 0.25  # how far the band runs past the first and last point

EAR_PROTRUSION = 0.5  # cm out of the smooth side-of-head fit that marks the auricle
EAR_MARGIN = 0.15  # cm grown around the auricle's side-view outline


@dataclass(frozen=True)
class Eye:
    """One eyeball: where it is, where it looks and which vertices ring its pupil."""

    centre: np.ndarray  # (3,) centre of the sclera sphere
    axis: np.ndarray  # (3,) unit gaze direction
    pupil_ring: np.ndarray  # (n,) iris vertices around the pupil; their mean is the pupil centre
    limbus_radius: float  # cm from the axis to the iris edge
    sclera: np.ndarray  # (m,) sclera vertex indices


def _vertex_mask(triangles: np.ndarray, selected: np.ndarray, count: int) -> np.ndarray:
    """(V,) bool: vertices used by the ``selected`` (F,) triangles."""
    mask = np.zeros(count, dtype=bool)
    mask[triangles[selected].ravel()] = True
    return mask


def _edge_graph(vertices: np.ndarray, triangles: np.ndarray) -> csr_matrix:
    """(V, V) symmetric sparse graph of triangle edges weighted by their length."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    graph = coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(len(vertices),) * 2).tocsr()
    return graph.maximum(graph.T)


def _components(triangles: np.ndarray, count: int) -> np.ndarray:
    """(V,) connected-component label of each vertex over the edges of ``triangles``."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def find_eyes(vertices: np.ndarray, triangles: np.ndarray, materials: np.ndarray) -> list[Eye]:
    """Fit both eyeballs: sphere centre from the sclera, gaze axis and pupil ring from the iris.

    Returns:
        The eyes in order of increasing x (image left first).
    """
    eyes = []
    for sclera_name, iris_name in EYE_MATERIALS:
        sclera = np.flatnonzero(_vertex_mask(triangles, materials == sclera_name, len(vertices)))
        iris = np.flatnonzero(_vertex_mask(triangles, materials == iris_name, len(vertices)))
        points = vertices[sclera]
        # |p|^2 = 2 p.c + (r^2 - |c|^2) is linear in the centre c
        design = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
        solution = np.linalg.lstsq(design, (points**2).sum(1), rcond=None)[0]
        centre = solution[:3]
        radius = np.sqrt(solution[3] + centre @ centre)
        relative = vertices[iris] - centre
        axis = relative.mean(0) / np.linalg.norm(relative.mean(0))
        for _ in range(20):  # the iris disc is symmetric about the gaze axis
            front = relative[relative @ axis > 0.85 * radius]
            axis = front.mean(0) / np.linalg.norm(front.mean(0))
        along = relative @ axis
        across = np.linalg.norm(relative - along[:, None] * axis, axis=1)
        disc = along > 0.85 * radius
        ring = disc & (across < across[disc].min() + 0.03)
        limbus = across[disc & (along > along[disc].max() - 0.1)].max()
        eyes.append(Eye(centre, axis, iris[ring], float(limbus), sclera))
    return sorted(eyes, key=lambda eye: eye.centre[0])


def _head_parts(
    vertices: np.ndarray, triangles: np.ndarray, materials: np.ndarray, landmarks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(V,) bool masks of the mouth socket and the eye sockets inside the head material.

    The head material holds the back of the head and neck plus separate sockets
    behind the lips and eyeballs; the widest part is the head, and every other
    part goes to whichever of mouth or eyes it is nearest.
    """
    selected = materials == HEAD_MATERIAL
    labels = _components(triangles[selected], len(vertices))
    used = _vertex_mask(triangles, selected, len(vertices))
    parts = np.unique(labels[used])
    extents = [np.ptp(vertices[used & (labels == part)], axis=0).max() for part in parts]
    mouth = vertices[landmarks[list(MOUTH)]].mean(0)
    eyes = [vertices[landmarks[list(eye)]].mean(0) for eye in (EYE_RIGHT, EYE_LEFT)]
    mouth_socket = np.zeros(len(vertices), dtype=bool)
    eye_sockets = np.zeros(len(vertices), dtype=bool)
    for part, extent in zip(parts, extents):
        if extent == max(extents):
            continue
        members = used & (labels == part)
        centre = vertices[members].mean(0)
        if np.linalg.norm(centre - mouth) < min(np.linalg.norm(centre - eye) for eye in eyes):
            mouth_socket |= members
        else:
            eye_sockets |= members
    return mouth_socket, eye_sockets


def _lips(vertices: np.ndarray, face_triangles: np.ndarray, landmarks: np.ndarray, rim: np.ndarray) -> np.ndarray:
    """(V,) bool: the face surface enclosed by the outer lip contour (landmarks 48-59).

    The contour is closed with shortest edge paths between consecutive landmark
    vertices; the lips are that loop plus everything reachable from the inner
    rim of the mouth without crossing it.
    """
    contour = landmarks[list(OUTER_LIP)]
    _, predecessors = dijkstra(_edge_graph(vertices, face_triangles), indices=contour, return_predecessors=True)
    loop = np.zeros(len(vertices), dtype=bool)
    for row, (start, end) in enumerate(zip(contour, np.roll(contour, -1))):
        node = end
        while node >= 0 and node != start:
            loop[node] = True
            node = predecessors[row, node]
        loop[start] = True
    open_triangles = face_triangles[(~loop)[face_triangles].all(1)]
    labels = _components(open_triangles, len(vertices))
    inside = np.isin(labels, np.unique(labels[rim & ~loop])) & ~loop
    # a leak past the contour would spread over the face; the box stops it
    low = vertices[contour, :2].min(0) - 1.0
    high = vertices[contour, :2].max(0) + 1.0
    in_box = ((vertices[:, :2] > low) & (vertices[:, :2] < high)).all(1)
    return (loop | inside) & in_box


def _brow_band(vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(V,) bool: within the tapered band along one brow's landmark polyline (inner end first)."""
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    total = lengths.sum()
    nearest = np.full(len(vertices), np.inf)
    inside = np.zeros(len(vertices), dtype=bool)
    start = 0.0
    for a, b, length in zip(points[:-1], points[1:], lengths):
        direction = (b - a) / length
        along = (vertices - a) @ direction  # (V,) cm along this segment
        low = -BROW_END_CAP if start == 0.0 else 0.0
        high = length + (BROW_END_CAP if start + length >= total - 1e-9 else 0.0)
        offset = vertices - (a + np.clip(along, low, high)[:, None] * direction)  # (V, 3)
        distance = np.linalg.norm(offset, axis=1)
        fraction = np.clip((start + np.clip(along, 0.0, length)) / total, 0.0, 1.0)
        below = BROW_BELOW_INNER + (BROW_BELOW_OUTER - BROW_BELOW_INNER) * fraction
        limit = np.where(offset[:, 1] >= 0.0, BROW_ABOVE, below)
        closer = distance < nearest
        inside = np.where(closer, distance <= limit, inside)
        nearest = np.minimum(nearest, distance)
        start += length
    return inside


def _side_fit_residual(vertices: np.ndarray, window: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """Lateral distance of the window's vertices from a robust cubic fit of the skull side."""
    y, z = vertices[window, 1], vertices[window, 2]
    basis = np.stack([np.ones_like(y), y, z, y * y, y * z, z * z, y**3, z**3, y * y * z, y * z * z], 1)
    target = lateral[window]
    inliers = np.ones(len(target), dtype=bool)
    for _ in range(10):  # refit without what sticks out, so the ear does not bend the fit
        coefficients = np.linalg.lstsq(basis[inliers], target[inliers], rcond=None)[0]
        residual = target - basis @ coefficients
        spread = 1.4826 * np.median(np.abs(residual[inliers]))
        inliers = np.abs(residual) < max(0.2, 3.0 * spread)
    return residual


def _ears(vertices: np.ndarray, triangles: np.ndarray, candidates: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """(V,) bool: both auricles plus the skin they cover in a side view."""
    ears = np.zeros(len(vertices), dtype=bool)
    brow_top, chin = marks[list(BROWS), 1].max(), marks[JAW_CHIN, 1]
    for sign, jaw_top in ((-1.0, marks[0]), (1.0, marks[16])):
        lateral = sign * vertices[:, 0]
        window = (  # the side of the head between chin and brow height, behind the face
            candidates
            & (lateral > 0.6 * sign * jaw_top[0])
            & (vertices[:, 1] > chin + 2.5)
            & (vertices[:, 1] < brow_top + 1.0)
            & (vertices[:, 2] < jaw_top[2] + 1.5)
            & (vertices[:, 2] > jaw_top[2] - 10.0)
        )
        protruding = np.zeros(len(vertices), dtype=bool)
        protruding[np.flatnonzero(window)[_side_fit_residual(vertices, window, lateral) > EAR_PROTRUSION]] = True
        if protruding.sum() < 10:
            continue
        labels = _components(triangles[protruding[triangles].all(1)], len(vertices))
        auricle = protruding & (labels == np.bincount(labels[protruding]).argmax())
        side_view = vertices[:, [2, 1]]  # (V, 2) as (z, y)
        hull = side_view[auricle][ConvexHull(side_view[auricle]).vertices]
        radial = hull - hull.mean(0)
        grown = hull.mean(0) + radial * (1.0 + EAR_MARGIN / np.linalg.norm(radial, axis=1, keepdims=True))
        ears |= window & PlanePath(grown).contains_points(side_view)
    return ears


def _scalp_and_neck(vertices: np.ndarray, marks: np.ndarray, ears: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V,) bool masks above the hairline and below the jaw line, as heights over azimuth."""
    axis_z = vertices[ears, 2].mean()
    ear_top, ear_bottom = vertices[ears, 1].max(), vertices[ears, 1].min()
    ear_theta = np.degrees(np.arctan2(np.abs(vertices[ears, 0]), vertices[ears, 2] - axis_z))
    ear_front, ear_back = np.percentile(ear_theta, 2), np.percentile(ear_theta, 98)
    brow_top, chin = marks[list(BROWS), 1].max(), marks[JAW_CHIN, 1]
    theta = np.degrees(np.arctan2(np.abs(vertices[:, 0]), vertices[:, 2] - axis_z))  # (V,)
    hairline = [
        (0.0, brow_top + 4.7),
        (25.0, brow_top + 4.6),
        (ear_front - 24.0, ear_top + 2.5),  # temple
        (ear_front - 11.0, ear_top + 0.8),
        (ear_front - 9.0, ear_top - 2.2),  # front edge of the sideburn
        (ear_front, ear_top - 2.2),
        (ear_front + 4.0, ear_top + 0.4),  # over the ear
        (ear_back, ear_top + 0.4),
        (ear_back + 5.0, ear_bottom + 1.0),  # behind the ear
        (180.0, ear_bottom - 2.2),  # nape
    ]
    jawline = [
        (0.0, chin - 0.5),
        (40.0, chin + 1.5),
        (ear_front - 10.0, ear_bottom - 2.5),  # angle of the jaw
        (ear_front + 10.0, ear_bottom - 0.8),
        (ear_back + 5.0, ear_bottom + 1.0),
        (180.0, ear_bottom - 2.2),
    ]
    above = vertices[:, 1] > np.interp(theta, *zip(*hairline))
    below = vertices[:, 1] < np.interp(theta, *zip(*jawline))
    return above, below & ~above


def segment_regions(
    vertices: np.ndarray, triangles: np.ndarray, materials: np.ndarray, landmarks: np.ndarray
) -> np.ndarray:
    """Region index per vertex (into :data:`~synface.generate.facemodel.REGIONS`).

    Args:
        vertices: (V, 3) neutral head in centimetres.
        triangles: (F, 3) vertex indices.
        materials: (F,) material name of each triangle (ICT ``usemtl`` names).
        landmarks: (68,) vertex index of each iBUG landmark.

    Returns:
        (V,) int64 region indices.
    """
    count = len(vertices)
    index = {name: i for i, name in enumerate(REGIONS)}
    regions = np.full(count, index["skin"], dtype=np.int64)
    face = _vertex_mask(triangles, materials == FACE_MATERIAL, count)
    head = _vertex_mask(triangles, materials == HEAD_MATERIAL, count)
    for material, region in MATERIAL_REGIONS.items():
        regions[_vertex_mask(triangles, materials == material, count) & ~face & ~head] = index[region]
    for eye in find_eyes(vertices, triangles, materials):
        relative = vertices[eye.sclera] - eye.centre
        along = relative @ eye.axis
        across = np.linalg.norm(relative - along[:, None] * eye.axis, axis=1)
        regions[eye.sclera[(along > 0) & (across <= eye.limbus_radius)]] = index["iris"]  # cornea
    mouth_socket, eye_sockets = _head_parts(vertices, triangles, materials, landmarks)
    regions[mouth_socket & ~face] = index["mouth_interior"]
    skin = (face | head) & ~((mouth_socket | eye_sockets) & ~face) & (regions == index["skin"])

    marks = vertices[landmarks]
    ears = _ears(vertices, triangles, skin, marks)
    regions[ears] = index["ears"]
    skin &= ~ears
    lips = skin & face & _lips(vertices, triangles[materials == FACE_MATERIAL], landmarks, mouth_socket & face)
    regions[lips] = index["lips"]
    brows = _brow_band(vertices, marks[list(BROW_RIGHT)]) | _brow_band(vertices, marks[list(BROW_LEFT)])
    regions[brows & skin & face & ~lips] = index["brows"]
    skin &= regions == index["skin"]
    scalp, neck = _scalp_and_neck(vertices, marks, ears)
    regions[skin & scalp] = index["scalp"]
    regions[skin & neck] = index["neck"]
    return regions
