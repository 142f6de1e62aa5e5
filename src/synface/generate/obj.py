"""Read Wavefront OBJ meshes into numpy arrays: positions, texture coordinates, triangles, material groups.

Only what a face model needs is read: ``v``, ``vt``, ``f`` (triangles, quads and
larger polygons, fan-triangulated so their winding is kept) and ``usemtl``; other
statements (normals, ``g``, ``o``, ``s``, ``mtllib``) are skipped. Indices may be
1-based or negative (relative to the vertices read so far), as the format allows.
Errors are :class:`~synface.errors.AssetError` naming the file and line.

:func:`parse_obj_vertices` reads only the positions, fast, for the many morph
targets of a model that share one topology.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synface.errors import AssetError


@dataclass(frozen=True)
class ObjMesh:
    """A triangulated OBJ mesh.

    Attributes:
        vertices: (V, 3) float64 positions.
        texcoords: (T, 2) float64 texture coordinates (empty when the file has none).
        triangles: (F, 3) int64 0-based vertex indices, winding as in the file.
        triangle_texcoords: (F, 3) int64 0-based texture coordinate indices, -1 where absent.
        triangle_groups: (F,) int64 index into ``groups`` (the ``usemtl`` in force).
        triangle_polygons: (F,) int64 index of the source polygon of each triangle.
        groups: material names in order of first use; ``""`` for faces before any ``usemtl``.
    """

    vertices: np.ndarray
    texcoords: np.ndarray
    triangles: np.ndarray
    triangle_texcoords: np.ndarray
    triangle_groups: np.ndarray
    triangle_polygons: np.ndarray
    groups: tuple[str, ...]

    @property
    def num_polygons(self) -> int:
        """Number of polygons in the file (before triangulation)."""
        return int(self.triangle_polygons.max()) + 1 if len(self.triangle_polygons) else 0

    def group_mask(self, *names: str) -> np.ndarray:
        """(F,) bool mask of the triangles in any of the named material groups."""
        ids = [i for i, group in enumerate(self.groups) if group in names]
        return np.isin(self.triangle_groups, ids)


def read_obj(path: str | Path) -> ObjMesh:
    """Read and triangulate an OBJ file.

    Args:
        path: the ``.obj`` file.

    Returns:
        The mesh.

    Raises:
        AssetError: the file is missing, unreadable or malformed.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AssetError(f"{path}: cannot read OBJ file ({error.strerror or error})") from None
    return parse_obj(data, str(path))


def _parse_floats(lines: list[bytes], width: int, kind: str, name: str, line_numbers: list[int]) -> np.ndarray:
    """(N, width) float64 from statement bodies; extra columns (w, colours) are ignored."""
    if not lines:
        return np.zeros((0, width), dtype=np.float64)
    tokens = b" ".join(lines).split()
    out = None
    if len(tokens) == width * len(lines):
        try:
            out = np.array(tokens).astype(np.float64).reshape(-1, width)
        except ValueError:
            pass  # the line-by-line pass below names the bad line
    if out is None:
        out = _parse_rows(lines, width, kind, name, line_numbers)
    if not np.isfinite(out).all():
        raise AssetError(f"{name}: non-finite {kind} coordinates")
    return out


def _parse_rows(lines: list[bytes], width: int, kind: str, name: str, line_numbers: list[int]) -> np.ndarray:
    """Slow line-by-line float parse that names the first malformed line."""
    out = np.empty((len(lines), width), dtype=np.float64)
    for row, (body, number) in enumerate(zip(lines, line_numbers)):
        parts = body.split()
        try:
            if len(parts) < width:
                raise ValueError
            out[row] = [float(p) for p in parts[:width]]
        except ValueError:
            text = body.decode("utf-8", "replace").strip()
            raise AssetError(f"{name}: line {number}: malformed {kind} {text!r}") from None
    return out


def parse_obj_vertices(data: bytes, name: str = "<obj>") -> np.ndarray:
    """Only the (V, 3) float64 vertex positions of OBJ text; much faster than :func:`parse_obj`.

    Raises:
        AssetError: a malformed ``v`` statement (named by file and line).
    """
    fast = _contiguous_vertices(data)
    if fast is not None:
        return fast
    lines = data.splitlines()
    numbers = [i + 1 for i, line in enumerate(lines) if line.startswith((b"v ", b"v\t"))]
    return _parse_floats([lines[i - 1][2:] for i in numbers], 3, "vertex", name, numbers)


def _contiguous_vertices(data: bytes) -> np.ndarray | None:
    """Positions when the ``v`` statements form one block of ``v x y z`` lines, else None.

    Exporters write all positions together, so slicing that block out skips
    splitting the (larger) face section into lines.
    """
    first = 0 if data.startswith(b"v ") else data.find(b"\nv ") + 1
    if first == 0 and not data.startswith(b"v "):
        return None
    last = data.rfind(b"\nv ") + 1 or first
    end = data.find(b"\n", last)
    tokens = data[first : len(data) if end < 0 else end].split()
    if len(tokens) % 4 or tokens[::4].count(b"v") != len(tokens) // 4:
        return None  # other statements or extra columns inside: take the general path
    del tokens[::4]
    try:
        vertices = np.array(list(map(float, tokens)), dtype=np.float64).reshape(-1, 3)
    except ValueError:
        return None
    return vertices if np.isfinite(vertices).all() else None


def parse_obj(data: bytes, name: str = "<obj>") -> ObjMesh:
    """Parse OBJ text (bytes) into a triangulated :class:`ObjMesh`.

    Args:
        data: the file's content.
        name: the file name used in error messages.

    Returns:
        The mesh; polygons with n corners become n - 2 fan triangles.

    Raises:
        AssetError: a malformed statement, a face with fewer than 3 corners, or an
            index outside the vertices / texture coordinates read so far.
    """
    vertex_lines: list[bytes] = []
    vertex_numbers: list[int] = []
    texcoord_lines: list[bytes] = []
    texcoord_numbers: list[int] = []
    polygons: list[tuple[int, bytes, int, int, int]] = []  # (line, body, group, #v, #vt) so far
    groups: list[str] = []
    group = -1
    for number, line in enumerate(data.splitlines(), start=1):
        if line.startswith((b"v ", b"v\t")):
            vertex_lines.append(line[2:])
            vertex_numbers.append(number)
        elif line.startswith((b"vt ", b"vt\t")):
            texcoord_lines.append(line[3:])
            texcoord_numbers.append(number)
        elif line.startswith((b"f ", b"f\t")):
            polygons.append((number, line[2:], group, len(vertex_lines), len(texcoord_lines)))
        elif line.startswith((b"usemtl ", b"usemtl\t")):
            material = line[7:].strip().decode("utf-8", "replace")
            if material not in groups:
                groups.append(material)
            group = groups.index(material)
    vertices = _parse_floats(vertex_lines, 3, "vertex", name, vertex_numbers)
    texcoords = _parse_floats(texcoord_lines, 2, "texture coordinate", name, texcoord_numbers)
    if any(p[2] < 0 for p in polygons):
        groups.append("")  # faces before the first usemtl
    triangles, triangle_texcoords, triangle_groups, triangle_polygons = _triangulate(polygons, groups, name)
    return ObjMesh(
        vertices=vertices,
        texcoords=texcoords,
        triangles=triangles,
        triangle_texcoords=triangle_texcoords,
        triangle_groups=triangle_groups,
        triangle_polygons=triangle_polygons,
        groups=tuple(groups),
    )


def _resolve(index: int, count: int) -> int:
    """0-based index from a 1-based or negative OBJ index; -2 when out of range."""
    resolved = index - 1 if index > 0 else count + index
    return resolved if 0 <= resolved < count else -2


def _triangulate(
    polygons: list[tuple[int, bytes, int, int, int]], groups: list[str], name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fan-triangulate ``f`` statements; returns triangles, texcoord triangles, groups, polygon ids."""
    corners: list[int] = []
    corner_texcoords: list[int] = []
    triangle_groups: list[int] = []
    triangle_polygons: list[int] = []
    no_group = len(groups) - 1
    for polygon_id, (number, body, group, vertex_count, texcoord_count) in enumerate(polygons):
        vertex_ids, texcoord_ids = [], []
        try:
            for token in body.split():
                parts = token.split(b"/")
                vertex_ids.append(_resolve(int(parts[0]), vertex_count))
                has_texcoord = len(parts) > 1 and parts[1]
                texcoord_ids.append(_resolve(int(parts[1]), texcoord_count) if has_texcoord else -1)
        except ValueError:
            text = body.decode("utf-8", "replace").strip()
            raise AssetError(f"{name}: line {number}: malformed face 'f {text}'") from None
        if len(vertex_ids) < 3:
            raise AssetError(f"{name}: line {number}: a face needs at least 3 corners, got {len(vertex_ids)}")
        if -2 in vertex_ids or -2 in texcoord_ids:
            raise AssetError(
                f"{name}: line {number}: face index out of range "
                f"({vertex_count} vertices, {texcoord_count} texture coordinates defined so far)"
            )
        for k in range(1, len(vertex_ids) - 1):
            corners += (vertex_ids[0], vertex_ids[k], vertex_ids[k + 1])
            corner_texcoords += (texcoord_ids[0], texcoord_ids[k], texcoord_ids[k + 1])
            triangle_groups.append(group if group >= 0 else no_group)
            triangle_polygons.append(polygon_id)
    return (
        np.array(corners, dtype=np.int64).reshape(-1, 3),
        np.array(corner_texcoords, dtype=np.int64).reshape(-1, 3),
        np.array(triangle_groups, dtype=np.int64),
        np.array(triangle_polygons, dtype=np.int64),
    )
