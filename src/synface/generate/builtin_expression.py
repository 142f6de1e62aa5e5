"""Expression blendshapes of the built-in head, named after ARKit's (``_L`` = subject's left, +x).

Each blendshape is the vertex offset at weight 1. The jaw, lids and gaze are
(linearised) rotations about anatomical axes: the jaw about the
temporomandibular axis, lids and eyeballs about the eyeball centre. Mouth, cheek
and brow shapes are masked offsets. Where the two lips or the two lids must part
or meet, weights come from the mesh's loop structure (upper versus lower half of
the lip contact line and lid margin), not from space, so the opening really opens.
"""

from __future__ import annotations

import numpy as np

from synface.generate.builtin_identity import _gauss, _rotate_x
from synface.generate.builtin_mesh import HeadMesh, Part
from synface.generate.builtin_sdf import smoothstep
from synface.generate.builtin_shape import LAYOUT
from synface.generate.builtin_skin import EYE_LOOP, EYE_ROWS, MOUTH_LOOP, MOUTH_ROWS

JAW_AXIS = (0.0, 1.2, 0.8)      # temporomandibular hinge (y, z) the jaw rotates about
JAW_OPEN_DEG = 19.0


def _upper_half(loop: int) -> np.ndarray:
    """(loop,) 1 on the upper half of a loop that starts at the +x corner going over the top, 0.5 at corners."""
    index = np.arange(loop)
    upper = ((index > 0) & (index < loop // 2)).astype(float)
    upper[[0, loop // 2]] = 0.5
    return upper


def _mouth_lower(mesh: HeadMesh) -> np.ndarray:
    """(V,) how much each vertex belongs to the lower lip / lower mouth, by topology near the mouth.

    Mouth-patch vertices blend from the loop half (at the contact line) to the
    spatial jaw weight (at the patch border); cavity loops use the loop half, fading
    towards the throat; lower teeth are 1.
    """
    weight = _spatial_jaw(mesh.vertices)
    lower = 1.0 - _upper_half(MOUTH_LOOP)
    rows = mesh.skin.mouth_rows
    blend = smoothstep(0.0, 1.0, np.arange(MOUTH_ROWS) / (MOUTH_ROWS - 1))[:, None]
    weight[rows] = blend * weight[rows] + (1.0 - blend) * lower[None]
    depth = np.linspace(0.0, 1.0, len(mesh.cavity_rows) + 1)[1:, None]
    weight[mesh.cavity_rows] = lower[None] * (1.0 - 0.6 * depth)
    weight[mesh.part == Part.LOWER_TEETH] = 1.0
    weight[mesh.part == Part.UPPER_TEETH] = 0.0
    return weight


def _spatial_jaw(vertices: np.ndarray) -> np.ndarray:
    """(V,) share of the mandible's motion: below the line from the mouth corners to the jaw hinge."""
    y, z = vertices[:, 1], vertices[:, 2]
    corner_y, corner_z = LAYOUT.mouth_y - 0.15, 10.0
    line = corner_y + (z - corner_z) * (JAW_AXIS[1] - corner_y) / (JAW_AXIS[2] - corner_z)
    weight = smoothstep(line + 0.4, line - 1.6, y)
    weight *= smoothstep(-11.5, -8.8, y) * smoothstep(-0.5, 2.5, z)
    return weight


def jaw_open(mesh: HeadMesh) -> np.ndarray:
    """Mandible rotated down about the hinge; the lower lip, lower teeth and cavity floor follow."""
    weight = _mouth_lower(mesh)
    return _rotate_x(mesh.vertices, weight, (0.0, *JAW_AXIS[1:]), JAW_OPEN_DEG)


def jaw_sideways(mesh: HeadMesh, direction: float) -> np.ndarray:
    """Mandible shifted towards ``direction`` (+1 = +x)."""
    weight = _mouth_lower(mesh)
    return weight[:, None] * np.array([0.45 * direction, 0.0, 0.0])


def _eye_columns(mesh: HeadMesh, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Per lid-margin column: (upper-half indicator, closing angle in degrees)."""
    margin = mesh.vertices[mesh.skin.eye_rows[side][0]]
    centre_y, centre_z = LAYOUT.eye_centre[1], LAYOUT.eyeball_z
    angle = np.degrees(np.arctan2(margin[:, 1] - centre_y, margin[:, 2] - centre_z))
    upper = _upper_half(EYE_LOOP) if side > 0 else _upper_half(EYE_LOOP)[(-np.arange(EYE_LOOP)) % EYE_LOOP]
    opposite = (-np.arange(EYE_LOOP)) % EYE_LOOP  # same distance from the outer canthus, other lid
    closing = np.abs(angle - angle[opposite])
    return upper, closing


def _lid_rotation(mesh: HeadMesh, side: int, upper_share: float, lower_share: float, bulge: float = 1.0) -> np.ndarray:
    """Rotate the lids of one eye about the eyeball's horizontal axis.

    The upper lid turns down by ``upper_share`` of the local opening angle, the lower
    lid up by ``lower_share`` (negative shares open the eye). The margin rows turn
    fully, fading to zero at the eye patch border so the surrounding skin is still;
    ``bulge`` scales the rotated lid radially so it clears the globe mid-way.
    """
    upper, closing = _eye_columns(mesh, side)
    centre = np.array([side * LAYOUT.eye_centre[0], LAYOUT.eye_centre[1], LAYOUT.eyeball_z])
    offsets = np.zeros_like(mesh.vertices)
    skin_rows = mesh.skin.eye_rows[side]
    fade = 1.0 - smoothstep(0.2, 1.0, np.arange(EYE_ROWS) / (EYE_ROWS - 1))
    rows = np.concatenate([skin_rows, mesh.lining_rows[side]])
    fade = np.concatenate([fade, np.ones(len(mesh.lining_rows[side]))])
    for row, strength in zip(rows, fade):
        share = upper * upper_share - (1.0 - upper) * lower_share
        angle = np.radians(share * closing * strength)  # positive turns the front of the lid down
        local = mesh.vertices[row] - centre
        cos, sin = np.cos(angle), np.sin(angle)
        turned = np.column_stack([local[:, 0], cos * local[:, 1] - sin * local[:, 2], sin * local[:, 1] + cos * local[:, 2]])
        turned *= 1.0 + (bulge - 1.0) * np.abs(share)[:, None] * strength
        offsets[row] = turned - local
    return offsets


def blink(mesh: HeadMesh, side: int) -> np.ndarray:
    """Lids meet a little below the middle; the globe retracts slightly, as in a real blink."""
    offsets = _lid_rotation(mesh, side, 0.86, 0.14, bulge=1.06)
    globe = ((mesh.part == Part.SCLERA) | (mesh.part == Part.IRIS)) & (mesh.side == side)
    offsets[globe] += np.array([0.0, 0.0, -0.05])
    return offsets


def gaze(mesh: HeadMesh, side: int, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Rotate one eyeball (yaw about +y, pitch about +x); the upper lid follows vertical gaze a little."""
    globe = ((mesh.part == Part.SCLERA) | (mesh.part == Part.IRIS)) & (mesh.side == side)
    centre = np.array([side * LAYOUT.eye_centre[0], LAYOUT.eye_centre[1], LAYOUT.eyeball_z])
    local = mesh.vertices[globe] - centre
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    rot_y = np.array([[np.cos(yaw), 0.0, np.sin(yaw)], [0.0, 1.0, 0.0], [-np.sin(yaw), 0.0, np.cos(yaw)]])
    rot_x = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(pitch), -np.sin(pitch)], [0.0, np.sin(pitch), np.cos(pitch)]])
    offsets = np.zeros_like(mesh.vertices)
    offsets[globe] = local @ (rot_x @ rot_y).T - local
    if pitch_deg:
        offsets += _lid_rotation(mesh, side, -0.35 * np.sign(pitch_deg) * abs(pitch_deg) / 20.0, 0.0)
    return offsets


def _masked(mesh: HeadMesh, centre, widths, offset, side: int = 0) -> np.ndarray:
    """Gaussian-masked constant offset; ``side`` mirrors the centre (and the x offset) to that side."""
    centre = np.array(centre, dtype=float)
    offset = np.array(offset, dtype=float)
    if side < 0:
        centre[0], offset[0] = -centre[0], -offset[0]
    weight = _gauss(mesh.vertices, centre, widths) * (mesh.part != Part.UPPER_TEETH) * (mesh.part != Part.LOWER_TEETH)
    weight *= (mesh.part != Part.SCLERA) * (mesh.part != Part.IRIS)
    return weight[:, None] * offset[None]


def _lip_half(mesh: HeadMesh, upper: bool) -> np.ndarray:
    """(V,) 1 on the chosen lip (and its cavity loops) by topology, fading out over the mouth patch."""
    weight = np.zeros(len(mesh.vertices))
    half = _upper_half(MOUTH_LOOP) if upper else 1.0 - _upper_half(MOUTH_LOOP)
    fade = 1.0 - smoothstep(0.3, 1.0, np.arange(MOUTH_ROWS) / (MOUTH_ROWS - 1))
    weight[mesh.skin.mouth_rows] = fade[:, None] * half[None]
    weight[mesh.cavity_rows[:2]] = half[None]
    return weight


def _push_from(mesh: HeadMesh, weight: np.ndarray, anchor, amount: float) -> np.ndarray:
    """Offsets of ``amount * weight`` pointing away from ``anchor``."""
    direction = mesh.vertices - np.asarray(anchor, dtype=float)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-6)
    return direction * (amount * weight)[:, None]


def _side_mask(mesh: HeadMesh, side: int, centre_x: float = 1.6, width: float = 1.5) -> np.ndarray:
    """(V,) Gaussian weight across x centred on one side of the mouth."""
    return np.exp(-(((mesh.vertices[:, 0] - side * centre_x) / width) ** 2))


def _lip_press(mesh: HeadMesh, side: int) -> np.ndarray:
    """Lips pressed together on one side: vermilion flattened towards the contact line and rolled in."""
    lips = _lip_half(mesh, True) + _lip_half(mesh, False)
    weight = lips * _side_mask(mesh, side) * (mesh.part == Part.SKIN)
    line = LAYOUT.mouth_y
    offsets = np.zeros_like(mesh.vertices)
    offsets[:, 1] = -0.3 * (mesh.vertices[:, 1] - line) * weight
    offsets[:, 2] = -0.12 * weight
    return offsets


def _pucker(mesh: HeadMesh, forward: float, narrowing: float) -> np.ndarray:
    """Lips pushed forward and drawn towards the midline."""
    weight = _gauss(mesh.vertices, (0.0, -3.5, 11.0), (2.6, 1.5, 2.2)) * (mesh.part != Part.UPPER_TEETH) * (mesh.part != Part.LOWER_TEETH)
    offsets = np.zeros_like(mesh.vertices)
    offsets[:, 0] = -narrowing * mesh.vertices[:, 0] * weight
    offsets[:, 2] = forward * weight
    return offsets


def _smile(mesh: HeadMesh, side: int) -> np.ndarray:
    corner = _masked(mesh, (2.6, -3.6, 10.0), (1.3, 1.1, 1.7), (0.55, 0.6, -0.3), side)
    cheek = _masked(mesh, (3.8, -1.0, 9.0), (1.5, 1.4, 1.5), (0.06, 0.25, 0.12), side)
    return corner + cheek + _lid_rotation(mesh, side, 0.0, 0.12)


def _eye_shapes(mesh: HeadMesh) -> dict[str, np.ndarray]:
    shapes = {}
    for suffix, side in (("L", 1), ("R", -1)):
        shapes[f"eyeBlink_{suffix}"] = blink(mesh, side)
        shapes[f"eyeWide_{suffix}"] = _lid_rotation(mesh, side, -0.32, -0.08)
        shapes[f"eyeSquint_{suffix}"] = _lid_rotation(mesh, side, 0.12, 0.28) + _masked(mesh, (3.6, 1.6, 9.3), (1.3, 0.9, 1.2), (0.0, 0.12, 0.04), side)
        shapes[f"eyeLookUp_{suffix}"] = gaze(mesh, side, 0.0, -20.0)
        shapes[f"eyeLookDown_{suffix}"] = gaze(mesh, side, 0.0, 20.0)
        shapes[f"eyeLookIn_{suffix}"] = gaze(mesh, side, -side * 22.0, 0.0)
        shapes[f"eyeLookOut_{suffix}"] = gaze(mesh, side, side * 22.0, 0.0)
    return shapes


def _brow_cheek_shapes(mesh: HeadMesh) -> dict[str, np.ndarray]:
    shapes = {}
    for suffix, side in (("L", 1), ("R", -1)):
        shapes[f"browDown_{suffix}"] = _masked(mesh, (2.2, 5.8, 10.0), (1.7, 0.85, 1.3), (-0.12, -0.32, 0.06), side)
        shapes[f"browInnerUp_{suffix}"] = _masked(mesh, (1.4, 5.9, 10.3), (1.1, 1.0, 1.3), (0.0, 0.45, 0.0), side)
        shapes[f"browOuterUp_{suffix}"] = _masked(mesh, (4.5, 5.9, 9.2), (1.3, 0.95, 1.5), (0.0, 0.42, 0.0), side)
        puff = _gauss(mesh.vertices, (side * 4.1, -2.8, 8.6), (1.6, 1.7, 1.9)) * (mesh.part == Part.SKIN)
        shapes[f"cheekPuff_{suffix}"] = _push_from(mesh, puff, (side * 2.2, -2.6, 6.0), 0.55)
        shapes[f"cheekSquint_{suffix}"] = _masked(mesh, (3.8, 1.3, 9.3), (1.3, 1.0, 1.3), (0.0, 0.24, 0.07), side) + _lid_rotation(mesh, side, 0.0, 0.12)
        sneer = _masked(mesh, (1.45, 0.0, 10.9), (0.8, 1.1, 1.1), (0.03, 0.26, 0.03), side)
        shapes[f"noseSneer_{suffix}"] = sneer + (_lip_half(mesh, True) * _side_mask(mesh, side, 0.8, 1.0))[:, None] * np.array([0.0, 0.1, 0.0])
    return shapes


def _mouth_shapes(mesh: HeadMesh) -> dict[str, np.ndarray]:
    shapes = {"mouthPucker": _pucker(mesh, 0.55, 0.3)}
    funnel = _pucker(mesh, 0.4, 0.18)
    centre = np.exp(-((mesh.vertices[:, 0] / 1.4) ** 2))
    funnel[:, 1] += 0.22 * centre * (_lip_half(mesh, True) - _lip_half(mesh, False))
    shapes["mouthFunnel"] = funnel
    for suffix, side in (("L", 1), ("R", -1)):
        shapes[f"mouthSmile_{suffix}"] = _smile(mesh, side)
        frown = _masked(mesh, (2.6, -3.7, 10.0), (1.2, 1.0, 1.5), (0.1, -0.35, -0.05), side)
        shapes[f"mouthFrown_{suffix}"] = frown + _masked(mesh, (1.8, -5.6, 10.4), (1.2, 1.0, 1.2), (0.0, -0.08, 0.0), side)
        stretch = _masked(mesh, (2.6, -3.6, 10.0), (1.3, 1.1, 1.6), (0.42, -0.18, -0.15), side)
        lower = (_lip_half(mesh, False) * _side_mask(mesh, side))[:, None] * np.array([0.0, -0.14, 0.0])
        shapes[f"mouthStretch_{suffix}"] = stretch + lower
        shapes[f"mouthPress_{suffix}"] = _lip_press(mesh, side)
        upper_lip = (_lip_half(mesh, True) * _side_mask(mesh, side))[:, None]
        shapes[f"mouthUpperUp_{suffix}"] = upper_lip * np.array([0.0, 0.36, 0.05])
        lower_lip = (_lip_half(mesh, False) * _side_mask(mesh, side))[:, None]
        shapes[f"mouthLowerDown_{suffix}"] = lower_lip * np.array([0.0, -0.36, 0.03])
    shift = _gauss(mesh.vertices, (0.0, -3.6, 10.8), (2.8, 1.6, 2.2)) * (mesh.part != Part.UPPER_TEETH) * (mesh.part != Part.LOWER_TEETH)
    shapes["mouthLeft"] = shift[:, None] * np.array([0.45, 0.0, 0.0])
    shapes["mouthRight"] = shift[:, None] * np.array([-0.45, 0.0, 0.0])
    return shapes


def expression_shapes(mesh: HeadMesh) -> dict[str, np.ndarray]:
    """Every blendshape as (V, 3) offsets at weight 1, keyed by ARKit name."""
    shapes = {"jawOpen": jaw_open(mesh), "jawLeft": jaw_sideways(mesh, 1.0), "jawRight": jaw_sideways(mesh, -1.0)}
    shapes["jawForward"] = _mouth_lower(mesh)[:, None] * np.array([0.0, 0.0, 0.4])
    shapes.update(_brow_cheek_shapes(mesh))
    shapes.update(_eye_shapes(mesh))
    shapes.update(_mouth_shapes(mesh))
    return dict(sorted(shapes.items()))
