"""OBJ reading: polygons to triangles, material groups, indices, fast vertex path, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synface.errors import AssetError
from synface.generate.obj import parse_obj, parse_obj_vertices, read_obj

QUAD_OBJ = b"""# two materials, a quad, a triangle and a pentagon
mtllib x.mtl
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0 0
v 2 1 0
v 3 0.5 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl skin
f 1/1 2/2 3/3 4/4
usemtl teeth
f 2//1 5//1 6//1
usemtl skin
f 5 7 6 3 2
"""


def reference_parse(text: str) -> tuple[np.ndarray, list[tuple[int, int, int]], list[str]]:
    """Obvious line-by-line OBJ reading: positions, fan triangles, material per triangle."""
    positions, triangles, materials = [], [], []
    material = ""
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            positions.append([float(p) for p in parts[1:4]])
        elif parts[0] == "usemtl":
            material = parts[1]
        elif parts[0] == "f":
            ids = []
            for corner in parts[1:]:
                k = int(corner.split("/")[0])
                ids.append(k - 1 if k > 0 else len(positions) + k)
            for i in range(1, len(ids) - 1):
                triangles.append((ids[0], ids[i], ids[i + 1]))
                materials.append(material)
    return np.array(positions), triangles, materials


def test_quads_and_polygons_become_fan_triangles_in_their_groups() -> None:
    mesh = parse_obj(QUAD_OBJ, "quad.obj")
    assert mesh.vertices.shape == (7, 3)
    assert mesh.texcoords.shape == (4, 2)
    assert mesh.groups == ("skin", "teeth")
    assert mesh.triangles.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 5], [4, 6, 5], [4, 5, 2], [4, 2, 1]]
    assert mesh.triangle_groups.tolist() == [0, 0, 1, 0, 0, 0]
    assert mesh.triangle_polygons.tolist() == [0, 0, 1, 2, 2, 2]
    assert mesh.num_polygons == 3
    assert mesh.triangle_texcoords[:2].tolist() == [[0, 1, 2], [0, 2, 3]]
    assert mesh.triangle_texcoords[2].tolist() == [-1, -1, -1]  # "v//vn" has no texture coordinate
    assert mesh.group_mask("teeth").tolist() == [False, False, True, False, False, False]


def test_triangulation_keeps_the_winding() -> None:
    def normals_z(text: bytes) -> np.ndarray:
        mesh = parse_obj(text)
        corners = mesh.vertices[mesh.triangles]
        return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])[:, 2]

    # every polygon of QUAD_OBJ is counter-clockwise seen from +z; reversed, all turn clockwise
    assert (normals_z(QUAD_OBJ) > 0).all()
    reversed_faces = b"\n".join(
        b"f " + b" ".join(line.split()[1:][::-1]) if line.startswith(b"f ") else line
        for line in QUAD_OBJ.splitlines()
    )
    assert (normals_z(reversed_faces) < 0).all()


def test_faces_before_any_material_and_negative_indices() -> None:
    mesh = parse_obj(b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\nusemtl m\nv 1 1 0\nf 2 4 3\n")
    assert mesh.triangles.tolist() == [[0, 1, 2], [1, 3, 2]]
    assert mesh.groups == ("m", "")
    assert mesh.triangle_groups.tolist() == [1, 0]


def random_polygon_obj(rng: np.random.Generator, interleave: bool) -> str:
    lines, count = [], 0
    for block in range(5):
        for _ in range(int(rng.integers(3, 12))):
            lines.append("v " + " ".join(f"{x:.6g}" for x in rng.normal(size=3)))
            count += 1
            if interleave:
                lines.append("vn 0 0 1")
        lines.append(f"usemtl material{int(rng.integers(0, 3))}")
        for _ in range(int(rng.integers(1, 8))):
            size = int(rng.integers(3, 7))
            ids = rng.integers(1, count + 1, size=size)
            corners = [str(i) if rng.random() < 0.7 else str(i - count - 1) for i in ids]
            lines.append("f " + " ".join(corners))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(6))
def test_matches_a_slow_reference_parser(seed: int) -> None:
    rng = np.random.default_rng(seed)
    text = random_polygon_obj(rng, interleave=seed % 2 == 1)
    positions, triangles, materials = reference_parse(text)
    mesh = parse_obj(text.encode())
    np.testing.assert_array_equal(mesh.vertices, positions)
    assert mesh.triangles.tolist() == [list(t) for t in triangles]
    assert [mesh.groups[g] for g in mesh.triangle_groups] == materials
    np.testing.assert_array_equal(parse_obj_vertices(text.encode()), positions)


def test_fast_vertex_reader_agrees_with_the_full_parser_on_crlf_and_extra_columns() -> None:
    crlf = QUAD_OBJ.replace(b"\n", b"\r\n")
    np.testing.assert_array_equal(parse_obj_vertices(crlf), parse_obj(QUAD_OBJ).vertices)
    coloured = b"v 0 0 0 1 0 0\nv 1 2 3 0 1 0\nf 1 2 1\n"
    np.testing.assert_array_equal(parse_obj_vertices(coloured), [[0, 0, 0], [1, 2, 3]])
    np.testing.assert_array_equal(parse_obj(coloured).vertices, [[0, 0, 0], [1, 2, 3]])


def test_read_obj_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "mesh.obj"
    path.write_bytes(QUAD_OBJ)
    assert read_obj(path).triangles.shape == (6, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"v 0 0 0\nv 1 0\nf 1 2 1\n", "line 2: malformed vertex '1 0'"),
        (b"v 0 0 0\nv 1 0 zero\n", "line 2: malformed vertex"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "line 4: face index out of range"),
        (b"v 0 0 0\nv 1 0 0\nf 1 2\n", "line 3: a face needs at least 3 corners, got 2"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "line 4: malformed face"),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/2 3/3\n", "line 5: face index out of range"),
        (b"v 0 0 0\nv 1 0 nan\n", "non-finite vertex"),
        (b"v 0 0 0\nvt 0.5\n", "line 2: malformed texture coordinate"),
    ],
)
def test_malformed_files_name_file_and_line(text: bytes, message: str) -> None:
    with pytest.raises(AssetError, match="bad.obj") as error:
        parse_obj(text, "bad.obj")
    assert message in str(error.value)


def test_truncated_vertex_block_is_reported_by_the_fast_reader() -> None:
    truncated = QUAD_OBJ[: QUAD_OBJ.index(b"v 2 1 0") + 5]  # cut inside a vertex line
    with pytest.raises(AssetError, match=r"cut\.obj: line 8: malformed vertex"):
        parse_obj_vertices(truncated, "cut.obj")


def test_missing_file_is_an_asset_error(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="missing.obj"):
        read_obj(tmp_path / "missing.obj")
