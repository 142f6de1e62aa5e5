"""Assembly of the built-in head mesh: skin, eyeballs, socket linings, mouth cavity, teeth and ears.

The result is one indexed triangle mesh plus a part label per vertex and the index
loops the landmark, region and blendshape code needs. Surfaces hanging off the
skin (socket linings, mouth cavity) share the skin's opening loops, so skin plus
linings plus cavity is one closed surface; eyeballs, teeth and ears are closed
shells of their own.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from synface.generate.builtin_ear import ear
from synface.generate.builtin_parts import (
    dental_arch,
    eyeball,
    mouth_cavity,
    socket_lining,
)
from synface.generate.builtin_skin import MOUTH_LOOP, SkinMesh, build_skin
from synface.generate.builtin_topology import (
    fan_triangles,
    loop_strip,
    orient_against,
    orient_closed,
)


class Part(IntEnum):
    """What each vertex of the head mesh belongs to."""

    SKIN = 0
    SCLERA = 1
    IRIS = 2
    SOCKET = 3
    CAVITY = 4
    UPPER_TEETH = 5
    LOWER_TEETH = 6
    EAR = 7


@dataclass
class HeadMesh:
    """The assembled mean head.

    Attributes:
        vertices: (V, 3) float64 positions (cm).
        triangles: (F, 3) int64, counter-clockwise seen from outside.
        part: (V,) :class:`Part` code per vertex.
        side: (V,) +1 on the subject's left (x > 0) eye or ear, -1 on the right, 0 elsewhere.
        skin: the skin mesh's index loops (indices are valid in ``vertices``).
        pupils: side -> index of the pupil centre vertex (front pole of the globe).
        cavity_rows: (rows, MOUTH_LOOP) indices of the mouth cavity loops behind the contact line.
        lining_rows: side -> (rows, EYE_LOOP) indices of the socket lining loops.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    part: np.ndarray
    side: np.ndarray
    skin: SkinMesh
    pupils: dict[int, int]
    cavity_rows: np.ndarray
    lining_rows: dict[int, np.ndarray]


class _Builder:
    """Accumulates vertices and triangles of several parts."""

    def __init__(self, skin: SkinMesh):
        self.vertices = [skin.vertices]
        self.triangles = [skin.triangles]
        self.part = [np.full(len(skin.vertices), Part.SKIN)]
        self.side = [np.zeros(len(skin.vertices), dtype=np.int64)]
        self.count = len(skin.vertices)

    def add(self, vertices: np.ndarray, part: np.ndarray | int, side: int = 0) -> np.ndarray:
        """Append vertices; returns their global indices."""
        index = self.count + np.arange(len(vertices))
        self.vertices.append(vertices)
        self.part.append(np.broadcast_to(np.asarray(part), (len(vertices),)).astype(np.int64))
        self.side.append(np.full(len(vertices), side, dtype=np.int64))
        self.count += len(vertices)
        return index

    def add_closed(self, vertices: np.ndarray, triangles: np.ndarray, part: np.ndarray | int, side: int = 0) -> np.ndarray:
        """Append a closed shell, wound outwards."""
        index = self.add(vertices, part, side)
        self.triangles.append(index[0] + orient_closed(vertices, triangles))
        return index

    def attach(self, loops: list[np.ndarray], apex: int) -> None:
        """Join consecutive index loops, close the last onto ``apex``, wound consistently with the skin."""
        strips = [loop_strip(a, b) for a, b in itertools.pairwise(loops)]
        strips.append(fan_triangles(0, len(loops[-1]), -1))
        strips[-1] = np.where(strips[-1] == -1, apex, loops[-1][strips[-1] % len(loops[-1])])
        edge = (int(loops[0][0]), int(loops[0][1]))
        self.triangles.append(orient_against(np.concatenate(strips), self.triangles[0], edge))


def build_head_mesh() -> HeadMesh:
    """Build the whole mean head (see the module docstring)."""
    skin = build_skin()
    builder = _Builder(skin)
    pupils, lining_rows = {}, {}
    for side in (1, -1):
        globe, globe_triangles, iris = eyeball(side)
        index = builder.add_closed(globe, globe_triangles, np.where(iris, Part.IRIS, Part.SCLERA), side)
        pupils[side] = int(index[0])
        margin = skin.eye_rows[side][0]
        lining = builder.add(socket_lining(skin.vertices[margin], side), Part.SOCKET, side)
        rows = lining[:-1].reshape(-1, len(margin))
        lining_rows[side] = rows
        builder.attach([margin, *rows], int(lining[-1]))
    cavity = builder.add(mouth_cavity(MOUTH_LOOP), Part.CAVITY)
    cavity_rows = cavity[:-1].reshape(-1, MOUTH_LOOP)
    builder.attach([skin.mouth_rows[0], *cavity_rows], int(cavity[-1]))
    for upper in (True, False):
        teeth, teeth_triangles = dental_arch(upper)
        builder.add_closed(teeth, teeth_triangles, Part.UPPER_TEETH if upper else Part.LOWER_TEETH)
    for side in (1, -1):
        shell, shell_triangles = ear(side)
        builder.add_closed(shell, shell_triangles, Part.EAR, side)
    return HeadMesh(
        vertices=np.concatenate(builder.vertices),
        triangles=np.concatenate(builder.triangles).astype(np.int64),
        part=np.concatenate(builder.part),
        side=np.concatenate(builder.side),
        skin=skin,
        pupils=pupils,
        cavity_rows=cavity_rows,
        lining_rows=lining_rows,
    )
