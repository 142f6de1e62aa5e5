"""ICT-FaceKit import: reading archives and folders, bad input, atomic writes, and the real model's geometry."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from synface.errors import AssetError, ConfigError
from synface.generate import ict
from synface.generate.facemodel import REGIONS, FaceModel, load_face_model
from synface.generate.ict import import_ict_facekit, read_ict_facekit, template_residual

from .conftest import ICT_ARCHIVE, make_tiny_model

GRID = 9  # 81 vertices, enough for 68 landmark indices
EXPRESSIONS = ["jawOpen", "mouthSmile_L"]


def grid_obj(shift: float = 0.0) -> bytes:
    """A flat GRID x GRID quad mesh with two materials and a licence header."""
    lines = ["#" * 20, "# ICT FaceKit", "#", "# Copyright (c) 2020 Test Licensor", "#" * 20, ""]
    lines += [f"v {j} {i} {shift + 0.01 * i * j:.4f}" for i in range(GRID) for j in range(GRID)]
    for i in range(GRID - 1):
        lines.append(f"usemtl {'M_Face' if i < 4 else 'M_BackHead'}")
        for j in range(GRID - 1):
            a = i * GRID + j + 1
            lines.append(f"f {a} {a + 1} {a + GRID + 1} {a + GRID}")
    return ("\n".join(lines) + "\n").encode()


def write_model_folder(folder: Path, identities: int = 2, skip: tuple[str, ...] = (), **replace: bytes) -> Path:
    """A tiny FaceXModel folder; ``replace`` maps file names to other content."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"generic_neutral_mesh.obj": grid_obj()}
    files.update({f"identity{k:03d}.obj": grid_obj(0.1 * (k + 1)) for k in range(identities)})
    files.update({f"{name}.obj": grid_obj(-0.2 * (k + 1)) for k, name in enumerate(EXPRESSIONS)})
    indices = {"expressions": EXPRESSIONS, "idx_to_landmark_verts": list(range(68))}
    files["vertex_indices.json"] = json.dumps(indices).encode()
    files.update(replace)
    for name, data in files.items():
        if name not in skip:
            (folder / name).write_bytes(data)
    return folder


def write_archive(path: Path, folder: Path) -> Path:
    with tarfile.open(path, "w:xz") as archive:
        archive.add(folder, arcname="FaceXModel")
    return path


def test_reads_folder_and_archive_alike(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path / "FaceXModel")
    archive = write_archive(tmp_path / "FaceXModel.tar.xz", folder)
    from_folder, from_archive = read_ict_facekit(folder), read_ict_facekit(archive)
    for files in (from_folder, from_archive):
        assert files.identities.shape == (2, GRID * GRID, 3)
        assert files.expressions.shape == (2, GRID * GRID, 3)
        assert files.expression_names == tuple(EXPRESSIONS)
        assert files.landmarks.tolist() == list(range(68))
        assert files.neutral.triangles.shape == (2 * (GRID - 1) ** 2, 3)
        np.testing.assert_allclose(files.identities[1, :, 2] - files.neutral.vertices[:, 2], 0.2, atol=1e-9)
    np.testing.assert_array_equal(from_folder.identities, from_archive.identities)
    assert from_archive.source == str(archive.resolve())
    # a folder holding the archive, or holding FaceXModel/, works as well
    assert read_ict_facekit(tmp_path).source == str(folder.resolve())
    (tmp_path / "only_archive").mkdir()
    write_archive(tmp_path / "only_archive" / "FaceXModel.tar.xz", folder)
    assert read_ict_facekit(tmp_path / "only_archive").source.endswith("FaceXModel.tar.xz")


def test_licence_comes_from_beside_the_input_else_from_the_obj_header(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path / "FaceXModel")
    header = read_ict_facekit(folder).license
    assert "Copyright (c) 2020 Test Licensor" in header and "#" not in header
    (tmp_path / "LICENSE").write_text("MIT License\nbeside\n")
    assert read_ict_facekit(folder).license == "MIT License\nbeside\n"
    archive = write_archive(tmp_path / "FaceXModel.tar.xz", folder)
    assert read_ict_facekit(archive).license == "MIT License\nbeside\n"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"skip": ("identity000.obj",)}, "identity000.obj: not found"),
        ({"skip": ("mouthSmile_L.obj",)}, "mouthSmile_L.obj: not found"),
        ({"skip": ("vertex_indices.json",)}, "vertex_indices.json: not found"),
        ({"identities": 0}, "no identity shape modes"),
        ({"identity001.obj": grid_obj(0.2).replace(b"v 8 8 0.8400\n", b"")},
         "identity001.obj: 80 vertices, expected 81"),
        ({"identity000.obj": grid_obj()[: grid_obj().index(b"v 6 1 ") + 5]}, "identity000.obj: line 22: malformed"),
        ({"jawOpen.obj": grid_obj().replace(b"v 3 2", b"v 3 x")}, "jawOpen.obj: line"),
        ({"vertex_indices.json": b"{not json"}, "vertex_indices.json: unreadable JSON"),
        ({"vertex_indices.json": b'{"expressions": ["jawOpen"], "idx_to_landmark_verts": [1, 2]}'},
         "'idx_to_landmark_verts' must list 68"),
        ({"vertex_indices.json": b'{"expressions": "jawOpen"}'}, "'expressions' must be a list"),
    ],
)
def test_broken_model_folders_name_the_file(tmp_path: Path, change: dict, message: str) -> None:
    options = {k: v for k, v in change.items() if k in ("skip", "identities")}
    replace = {k: v for k, v in change.items() if k not in options}
    folder = write_model_folder(tmp_path / "FaceXModel", **options, **replace)
    with pytest.raises(AssetError) as error:
        read_ict_facekit(folder)
    assert message in str(error.value)
    archive = write_archive(tmp_path / "FaceXModel.tar.xz", folder)
    with pytest.raises(AssetError) as error:
        read_ict_facekit(archive)
    assert message in str(error.value) and "FaceXModel.tar.xz" in str(error.value)


def test_a_gap_in_the_identity_files_is_reported(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path / "FaceXModel", identities=3, skip=("identity001.obj",))
    with pytest.raises(AssetError, match="identity001.obj: not found"):
        read_ict_facekit(folder)


def test_missing_path_empty_folder_and_corrupt_archives(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="nowhere: no such file or folder"):
        read_ict_facekit(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssetError, match="empty: no ICT-FaceKit model found"):
        read_ict_facekit(tmp_path / "empty")
    archive = write_archive(tmp_path / "FaceXModel.tar.xz", write_model_folder(tmp_path / "FaceXModel"))
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.tar.xz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(AssetError, match=r"truncated\.tar\.xz"):  # mostly "unreadable or truncated archive"
        read_ict_facekit(truncated)
    for cut in range(len(data) // 4, len(data) - 100, 97):  # never a half-read model
        truncated.write_bytes(data[:cut])
        with pytest.raises(AssetError, match=r"truncated\.tar\.xz"):
            read_ict_facekit(truncated)
    garbage = tmp_path / "garbage.tar.xz"
    garbage.write_bytes(b"\xfd7zXZ\x00" + bytes(range(256)) * 4)
    with pytest.raises(AssetError, match="garbage.tar.xz"):
        read_ict_facekit(garbage)
    empty_archive = tmp_path / "nothing.tar.xz"
    with tarfile.open(empty_archive, "w:xz") as handle:
        handle.addfile(tarfile.TarInfo("README"), io.BytesIO(b""))
    with pytest.raises(AssetError, match="generic_neutral_mesh.obj not found"):
        read_ict_facekit(empty_archive)


@pytest.fixture
def tiny_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the geometry step (which needs a real head) by a tiny model."""
    monkeypatch.setattr(ict, "build_ict_model", lambda files, name: make_tiny_model(name))


def test_import_writes_the_model_folder(tmp_path: Path, tiny_build: None) -> None:
    folder = write_model_folder(tmp_path / "FaceXModel")
    imported = import_ict_facekit(folder, name="mine", home=tmp_path / "models")
    assert imported.folder == tmp_path / "models" / "mine"
    assert load_face_model(imported.folder).name == "mine"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["mine"]
    with pytest.raises(ConfigError, match="name: '../escape' is not a valid model name"):
        import_ict_facekit(folder, name="../escape", home=tmp_path / "models")


def test_default_destination_is_synface_home(tmp_path: Path, tiny_build: None, monkeypatch) -> None:
    monkeypatch.setenv("SYNFACE_HOME", str(tmp_path / "home"))
    imported = import_ict_facekit(write_model_folder(tmp_path / "FaceXModel"))
    assert imported.folder == tmp_path / "home" / "facemodels" / "ict-facekit"


def test_an_interrupted_import_leaves_nothing_half_written(tmp_path: Path, tiny_build: None, monkeypatch) -> None:
    folder = write_model_folder(tmp_path / "FaceXModel")
    models = tmp_path / "models"

    def crash(model: FaceModel, destination: Path) -> Path:
        (Path(destination) / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ict, "save_face_model", crash)
    with pytest.raises(KeyboardInterrupt):
        import_ict_facekit(folder, name="m", home=models)
    assert list(models.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setattr(ict, "build_ict_model", lambda files, name: make_tiny_model(name))
    first = import_ict_facekit(folder, name="m", home=models)
    before = (first.folder / "model.safetensors").read_bytes()
    monkeypatch.setattr(ict, "save_face_model", crash)
    with pytest.raises(KeyboardInterrupt):
        import_ict_facekit(folder, name="m", home=models)
    assert (first.folder / "model.safetensors").read_bytes() == before  # the old model survives
    assert sorted(p.name for p in models.iterdir()) == ["m"]


# --- the real ICT-FaceKit model (../shared) -----------------------------------------


def region(model: FaceModel, name: str) -> torch.Tensor:
    return model.regions == REGIONS.index(name)


@pytest.mark.shared
@pytest.mark.slow
def test_real_model_sizes_and_provenance(ict_model: FaceModel) -> None:
    assert ict_model.name == "ict-facekit"
    assert ict_model.num_vertices == 24591  # 26,719 less the 2,128 overlay vertices
    assert ict_model.num_identity == 100
    assert ict_model.num_expression == 53
    assert ict_model.expression_names[:3] == ("browDown_L", "browDown_R", "browInnerUp_L")
    assert "jawOpen" in ict_model.expression_names and "PupilDilate_L" not in ict_model.expression_names
    used = torch.zeros(ict_model.num_vertices, dtype=torch.bool)
    used[ict_model.triangles.reshape(-1)] = True
    assert bool(used.all())  # compacted: no vertex left without a triangle
    assert "MIT License" in ict_model.license and "USC Institute for Creative Technologies" in ict_model.license
    assert ict_model.source == str(ICT_ARCHIVE)


@pytest.mark.shared
@pytest.mark.slow
def test_real_model_triangles_face_outward(ict_model: FaceModel) -> None:
    vertices, triangles = ict_model.vertices, ict_model.triangles

    def normals(selected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        corners = vertices[triangles[selected]]  # (F, 3, 3)
        return corners.mean(1), torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])

    centres, scalp_normals = normals(region(ict_model, "scalp")[triangles].all(1))
    head_centre = vertices[region(ict_model, "ears")].mean(0)
    assert ((centres - head_centre) * scalp_normals).sum(1).gt(0).float().mean() > 0.99
    _, front = normals((vertices[triangles][:, :, 2] > 10.0).all(1) & region(ict_model, "skin")[triangles].all(1))
    assert float(front[:, 2].sum() / front.norm(dim=1).sum()) > 0.5  # area-weighted; nostrils face inward
    for side in (-1, 1):
        sclera = region(ict_model, "eyes")[triangles].all(1) & (vertices[triangles][:, 0, 0] * side > 0)
        centres, sclera_normals = normals(sclera)
        outward = ((centres - centres.mean(0)) * sclera_normals).sum(1)
        assert outward.gt(0).float().mean() > 0.99


@pytest.mark.shared
@pytest.mark.slow
def test_real_identity_scale_gives_adult_spreads(ict_model: FaceModel) -> None:
    generator = torch.Generator().manual_seed(0)
    coefficients = torch.randn(1000, ict_model.num_identity, generator=generator)
    marks = ict_model.landmarks(ict_model.shape(coefficients), points=68)  # (1000, 68, 3)

    def distance(a: int, b: int) -> torch.Tensor:
        return torch.linalg.norm(marks[:, a] - marks[:, b], dim=1)

    width, outer_eyes, mouth = distance(0, 16), distance(36, 45), distance(48, 54)
    assert 13.5 < float(width.mean()) < 16.0 and 0.4 < float(width.std()) < 1.2
    assert 8.0 < float(outer_eyes.mean()) < 10.0 and 0.25 < float(outer_eyes.std()) < 0.8
    assert 4.3 < float(mouth.mean()) < 6.0 and 0.2 < float(mouth.std()) < 0.6
    assert float(width.min()) > 11.0 and float(width.max()) < 19.0


@pytest.mark.shared
@pytest.mark.slow
def test_real_expressions_move_the_right_parts(ict_model: FaceModel) -> None:
    def landmark_shift(name: str) -> torch.Tensor:
        weights = torch.zeros(1, ict_model.num_expression)
        weights[0, ict_model.expression_names.index(name)] = 1.0
        identity = torch.zeros(1, ict_model.num_identity)
        moved = ict_model.landmarks(ict_model.shape(identity, weights), points=68)[0]
        return moved - ict_model.landmarks(ict_model.vertices[None], points=68)[0]

    assert float(landmark_shift("jawOpen")[8, 1]) < -1.0  # the chin drops
    assert float(landmark_shift("mouthSmile_L")[54, 0]) > 0.2  # the subject's left corner (image right) moves out
    assert float(landmark_shift("browInnerUp_L")[22, 1]) > 0.2


@pytest.mark.shared
@pytest.mark.slow
def test_real_regions_are_where_they_belong(ict_model: FaceModel) -> None:
    vertices, marks = ict_model.vertices, ict_model.landmarks68_index[:, 0]
    counts = {name: int(region(ict_model, name).sum()) for name in REGIONS}
    assert all(count > 100 for count in counts.values()), counts
    assert bool(region(ict_model, "lips")[marks[48:60]].all())
    assert int(region(ict_model, "brows")[marks[17:27]].sum()) >= 8
    assert float(vertices[region(ict_model, "lips"), 1].max()) < float(vertices[marks[33], 1])  # below the nose
    assert float(vertices[region(ict_model, "ears"), 0].abs().min()) > 5.0
    assert int(vertices[:, 1].argmax()) in set(torch.nonzero(region(ict_model, "scalp"))[:, 0].tolist())
    assert bool(region(ict_model, "neck")[vertices[:, 1] < float(vertices[marks[8], 1]) - 3.0].all())
    assert not bool(region(ict_model, "scalp")[marks].any())  # no landmark under the hair
    iris_front = region(ict_model, "iris") & (vertices[:, 2] > 9.0)
    assert int(iris_front.sum()) > 100  # the cornea over the iris is iris-coloured


@pytest.mark.shared
@pytest.mark.slow
def test_real_regions_are_left_right_symmetric(ict_model: FaceModel) -> None:
    vertices = ict_model.vertices.numpy()
    _, nearest = cKDTree(vertices).query(vertices * np.array([-1.0, 1.0, 1.0]))
    regions = ict_model.regions.numpy()
    assert (regions[nearest] == regions).mean() > 0.98


@pytest.mark.shared
@pytest.mark.slow
def test_real_landmarks5_and_pivot(ict_model: FaceModel) -> None:
    five = ict_model.landmarks(ict_model.vertices[None], points=5)[0]  # (5, 3)
    marks = ict_model.landmarks(ict_model.vertices[None], points=68)[0]
    assert float(five[0, 0]) < 0 < float(five[1, 0]) and float(five[3, 0]) < 0 < float(five[4, 0])
    assert float(marks[36, 0]) < float(five[0, 0]) < float(marks[39, 0])  # pupil between the eye corners
    assert float(marks[42, 0]) < float(five[1, 0]) < float(marks[45, 0])
    assert abs(float(five[0, 1]) - float(marks[36:42, 1].mean())) < 0.4
    assert float(five[2, 2]) >= float(marks[30, 2]) and abs(float(five[2, 0])) < 0.05
    torch.testing.assert_close(five[3], marks[48])
    torch.testing.assert_close(ict_model.landmarks5_weight.sum(1), torch.ones(5))
    pivot = ict_model.pivot
    ears = ict_model.vertices[region(ict_model, "ears")]
    assert abs(float(pivot[0])) < 1e-6
    assert float(marks[8, 1]) < float(pivot[1]) < float(ears[:, 1].mean())
    assert float(ears[:, 2].min()) - 2.0 < float(pivot[2]) < float(ears[:, 2].max())


@pytest.mark.shared
@pytest.mark.slow
def test_real_mean_face_fits_the_synface_template(ict_model: FaceModel) -> None:
    residual = template_residual(ict_model, "synface")  # (5,) template pixels
    assert float(residual.max()) < 1.5, residual
    assert float(template_residual(ict_model, "arcface").max()) < 1.5
