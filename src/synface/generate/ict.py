"""Import the ICT-FaceKit "Light" morphable model (its ``FaceXModel`` folder) as a synface FaceModel.

The input is the archive as published (``FaceXModel.tar.xz``, read without
unpacking to disk) or the unpacked ``FaceXModel/`` folder: a neutral mesh,
``identityNNN.obj`` shape modes, ARKit-named expression blendshapes and
``vertex_indices.json`` (expression order, iBUG 68 landmark vertices). Every mesh
shares one topology in centimetres, in synface's frame.

The import drops the transparent overlay layers (lacrimal fluid, eye blend,
eye occlusion, eyelashes), takes each basis as the target mesh minus the
neutral one, labels regions (:mod:`synface.generate.ict_regions`), places the
5 and 68 landmarks and the pose pivot, and writes the model folder atomically.

Identity scale: ICT-FaceKit's own sampler draws identity weights from a
standard normal and adds ``weight * (identityNNN - neutral)``, so each identity
target sits one standard deviation out; the basis is used as published
(:data:`IDENTITY_SCALE`), which gives adult-like spreads (face width sd ~0.7 cm).
"""

from __future__ import annotations

import contextlib
import json
import logging
import lzma
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from synface.alignment import apply_affine, get_template, umeyama
from synface.errors import AssetError, ConfigError
from synface.generate.facemodel import REGIONS, FaceModel, save_face_model
from synface.generate.ict_regions import (
    FACE_MATERIAL,
    HEAD_MATERIAL,
    find_eyes,
    segment_regions,
)
from synface.generate.obj import ObjMesh, parse_obj, parse_obj_vertices
from synface.paths import assets_dir
from synface.progress import progress

logger = logging.getLogger(__name__)

ICT_NAME = "ict-facekit"
NEUTRAL_FILE = "generic_neutral_mesh.obj"
INDICES_FILE = "vertex_indices.json"
ARCHIVE_FILE = "FaceXModel.tar.xz"
FOLDER_NAME = "FaceXModel"
OVERLAY_MATERIALS = ("M_LacrimalFluid", "M_EyeBlend", "M_EyeOcclusion", "M_EyeLashes")
IDENTITY_SCALE = 1.0
NOSE_TIP, MOUTH_RIGHT, MOUTH_LEFT = 30, 48, 54  # iBUG numbers; 48 is on the image left
PIVOT_BELOW_EARS = 2.0  # cm from the ear centres down to the top of the neck
PIVOT_BEHIND_EARS = 0.5
_IDENTITY = re.compile(r"identity(\d{3})\.obj")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class IctFiles:
    """The parsed content of a FaceXModel folder, before any processing."""

    neutral: ObjMesh
    identities: np.ndarray  # (Ks, V, 3) target positions
    expressions: np.ndarray  # (Ke, V, 3) target positions
    expression_names: tuple[str, ...]
    landmarks: np.ndarray  # (68,) vertex indices
    license: str
    source: str


@dataclass
class ImportedModel:
    """What :func:`import_ict_facekit` wrote."""

    folder: Path
    model: FaceModel
    seconds: float


def _license_from_header(data: bytes) -> str:
    """The comment block at the top of an OBJ file, without its ``#`` frame."""
    lines = []
    for raw in data.splitlines():
        if not raw.startswith(b"#"):
            break
        text = raw.decode("utf-8", "replace").strip().strip("#").strip()
        if text or (lines and lines[-1]):
            lines.append(text)
    return "\n".join(lines).strip() + "\n" if any(lines) else ""


def _parse(name: str, data: bytes, where: str) -> object:
    """Parse one model file by its name: neutral mesh, morph target positions or JSON."""
    if name == NEUTRAL_FILE:
        return parse_obj(data, where), _license_from_header(data)
    if name.endswith(".obj"):
        return parse_obj_vertices(data, where)
    if name == INDICES_FILE:
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AssetError(f"{where}: unreadable JSON ({error})") from None
    return data.decode("utf-8", "replace")  # LICENSE


def _wanted(name: str) -> bool:
    return name.endswith(".obj") or name == INDICES_FILE or name.startswith("LICENSE")


def _archive_files(archive: Path) -> Iterator[tuple[str, str, object]]:
    """(folder, name, parsed) for each wanted member, streamed from a (compressed) tar file."""
    try:
        with tarfile.open(archive, mode="r|*") as stream:
            for member in stream:
                path = PurePosixPath(member.name)
                if not member.isfile() or not _wanted(path.name):
                    continue
                handle = stream.extractfile(member)
                if handle is None:
                    continue
                yield str(path.parent), path.name, _parse(path.name, handle.read(), f"{archive}:{member.name}")
            while stream.fileobj.read(1 << 20):  # read to the end so a cut-off stream is noticed
                pass
    except (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError) as error:
        raise AssetError(f"{archive}: unreadable or truncated archive ({error})") from None
    except OSError as error:
        raise AssetError(f"{archive}: cannot read archive ({error.strerror or error})") from None


def _folder_files(folder: Path) -> Iterator[tuple[str, str, object]]:
    """(folder, name, parsed) for each wanted file of an unpacked FaceXModel folder."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and _wanted(path.name):
            try:
                data = path.read_bytes()
            except OSError as error:
                raise AssetError(f"{path}: cannot read ({error.strerror or error})") from None
            yield str(folder), path.name, _parse(path.name, data, str(path))


def _locate(source: Path) -> tuple[Path, bool]:
    """The archive or model folder inside ``source``, and whether it is an archive."""
    if source.is_file():
        return source, True
    if not source.exists():
        raise AssetError(f"{source}: no such file or folder; expected {ARCHIVE_FILE} or a {FOLDER_NAME}/ folder")
    for candidate, is_archive in ((source, False), (source / FOLDER_NAME, False), (source / ARCHIVE_FILE, True)):
        if (candidate / NEUTRAL_FILE).is_file() if not is_archive else candidate.is_file():
            return candidate, is_archive
    raise AssetError(
        f"{source}: no ICT-FaceKit model found; expected {NEUTRAL_FILE} in it, "
        f"a {FOLDER_NAME}/ folder or {ARCHIVE_FILE}"
    )


def read_ict_facekit(source: str | Path) -> IctFiles:
    """Read and check an ICT-FaceKit model without processing it.

    Args:
        source: ``FaceXModel.tar.xz``, a ``FaceXModel/`` folder, or a folder holding either.

    Returns:
        The parsed meshes, expression names, landmark vertices and licence text.

    Raises:
        AssetError: a missing path or file, a corrupt archive or OBJ, or meshes whose
            vertex counts disagree; the message names the file.
    """
    location, is_archive = _locate(Path(source).expanduser())
    stream = _archive_files(location) if is_archive else _folder_files(location)
    files: dict[tuple[str, str], object] = {}
    for folder, name, parsed in progress(stream, desc="reading ICT-FaceKit", unit=" files"):
        files.setdefault((folder, name), parsed)
    home = next((folder for folder, name in files if name == NEUTRAL_FILE), None)
    if home is None:
        raise AssetError(f"{location}: {NEUTRAL_FILE} not found")
    found = {name: parsed for (folder, name), parsed in files.items() if folder == home}

    def where(name: str) -> str:
        return f"{location}:{home}/{name}" if is_archive else str(location / name)

    if INDICES_FILE not in found:
        raise AssetError(f"{where(INDICES_FILE)}: not found")
    neutral, header = found[NEUTRAL_FILE]
    expression_names, landmarks = _read_indices(found[INDICES_FILE], where(INDICES_FILE), len(neutral.vertices))
    count = sum(1 for name in found if _IDENTITY.fullmatch(name))
    if not count:
        raise AssetError(f"{where('identity000.obj')}: no identity shape modes found")
    identity_files = [f"identity{i:03d}.obj" for i in range(count)]
    expression_files = [f"{name}.obj" for name in expression_names]
    missing = [name for name in identity_files + expression_files if name not in found]
    if missing:
        raise AssetError(f"{where(missing[0])}: not found ({len(missing)} model files missing)")
    for name in identity_files + expression_files:
        if found[name].shape != neutral.vertices.shape:
            raise AssetError(
                f"{where(name)}: {len(found[name])} vertices, expected {len(neutral.vertices)} as in {NEUTRAL_FILE}"
            )
    shape = (0, *neutral.vertices.shape)
    return IctFiles(
        neutral=neutral,
        identities=np.stack([found[name] for name in identity_files]),
        expressions=np.stack([found[n] for n in expression_files]) if expression_files else np.zeros(shape),
        expression_names=expression_names,
        landmarks=landmarks,
        license=_license(files, home, location, is_archive) or header,
        source=str(location.resolve()),
    )


def _license(files: dict[tuple[str, str], object], home: str, location: Path, is_archive: bool) -> str | None:
    """Licence text: a LICENSE in the archive (the model's folder first), else one beside the input."""
    inside = sorted(((folder != home, folder), text) for (folder, name), text in files.items()
                    if name.startswith("LICENSE"))
    if inside:
        return str(inside[0][1])
    beside = [location.parent / "LICENSE"] if is_archive else [location / "LICENSE", location.parent / "LICENSE"]
    for path in beside:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def _read_indices(content: object, where: str, count: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Expression names and the 68 landmark vertices from ``vertex_indices.json``."""
    if not isinstance(content, dict):
        raise AssetError(f"{where}: expected a JSON object")
    names = content.get("expressions")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise AssetError(f"{where}: 'expressions' must be a list of blendshape names")
    marks = content.get("idx_to_landmark_verts")
    valid = isinstance(marks, list) and len(marks) == 68 and all(isinstance(i, int) for i in marks)
    if not valid or not all(0 <= i < count for i in marks):
        raise AssetError(f"{where}: 'idx_to_landmark_verts' must list 68 vertex indices below {count}")
    return tuple(names), np.asarray(marks, dtype=np.int64)


def build_ict_model(files: IctFiles, name: str = ICT_NAME) -> FaceModel:
    """Turn the parsed ICT-FaceKit files into a :class:`FaceModel`.

    Args:
        files: the output of :func:`read_ict_facekit`.
        name: the model's name.

    Returns:
        The model on the CPU.
    """
    mesh = files.neutral
    kept_triangles = ~mesh.group_mask(*OVERLAY_MATERIALS)
    triangles = mesh.triangles[kept_triangles]
    materials = np.asarray(mesh.groups, dtype=object)[mesh.triangle_groups[kept_triangles]]
    keep = np.zeros(len(mesh.vertices), dtype=bool)
    keep[triangles.ravel()] = True
    new_index = np.cumsum(keep) - 1  # old vertex -> compact vertex
    vertices = mesh.vertices[keep]  # (V, 3)
    triangles = new_index[triangles]
    if not keep[files.landmarks].all():
        raise AssetError(f"{files.source}: a landmark vertex lies on a dropped overlay layer")
    landmarks = new_index[files.landmarks]
    triangles = _outward(vertices, triangles, materials)
    regions = segment_regions(vertices, triangles, materials, landmarks)
    index5, weight5 = _landmarks5(vertices, triangles, materials, landmarks)
    model = FaceModel(
        name=name,
        vertices=torch.from_numpy(vertices).float(),
        triangles=torch.from_numpy(triangles).long(),
        identity_basis=torch.from_numpy((files.identities[:, keep] - vertices) * IDENTITY_SCALE).float(),
        expression_basis=torch.from_numpy(files.expressions[:, keep] - vertices).float(),
        expression_names=files.expression_names,
        regions=torch.from_numpy(regions).long(),
        landmarks5_index=torch.from_numpy(index5).long(),
        landmarks5_weight=torch.from_numpy(weight5).float(),
        landmarks68_index=torch.from_numpy(landmarks[:, None]).long(),
        landmarks68_weight=torch.ones(68, 1),
        pivot=torch.from_numpy(_pivot(vertices, regions)).float(),
        license=files.license,
        source=files.source,
    )
    model.check(where=files.source)
    return model


def _outward(vertices: np.ndarray, triangles: np.ndarray, materials: np.ndarray) -> np.ndarray:
    """Triangles wound counter-clockwise seen from outside (flipped if the file winds inward).

    The signed volume the head skin encloses is positive for outward windings;
    the openings (neck, eyes, mouth) barely change it.
    """
    skin = triangles[np.isin(materials, [FACE_MATERIAL, HEAD_MATERIAL])]
    corners = vertices[skin] - vertices[skin].reshape(-1, 3).mean(0)  # (F, 3, 3)
    volume = np.einsum("fi,fi->", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])) / 6.0
    if volume > 0:
        return triangles
    logger.info("ICT-FaceKit triangles wind inward; flipping them")
    return triangles[:, ::-1].copy()


def _landmarks5(
    vertices: np.ndarray, triangles: np.ndarray, materials: np.ndarray, landmarks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(5, K) vertex indices and weights: pupils, nose tip, mouth corners (image left first)."""
    groups = [eye.pupil_ring for eye in find_eyes(vertices, triangles, materials)]
    # the nose tip is the most forward vertex near landmark 30
    near = np.flatnonzero(np.linalg.norm(vertices - vertices[landmarks[NOSE_TIP]], axis=1) < 1.0)
    groups.append(np.array([near[vertices[near, 2].argmax()]]))
    groups += [np.array([landmarks[MOUTH_RIGHT]]), np.array([landmarks[MOUTH_LEFT]])]
    width = max(len(g) for g in groups)
    index = np.zeros((5, width), dtype=np.int64)
    weight = np.zeros((5, width), dtype=np.float32)
    for row, group in enumerate(groups):
        index[row, : len(group)] = group
        index[row, len(group):] = group[0]  # padding carries zero weight
        weight[row, : len(group)] = 1.0 / len(group)
    return index, weight


def _pivot(vertices: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(3,) rotation centre: midway between the ears, lowered to the top of the neck."""
    ears = vertices[regions == REGIONS.index("ears")]
    left, right = ears[ears[:, 0] < 0].mean(0), ears[ears[:, 0] > 0].mean(0)
    middle = (left + right) / 2.0
    return np.array([0.0, middle[1] - PIVOT_BELOW_EARS, middle[2] - PIVOT_BEHIND_EARS])


def import_ict_facekit(source: str | Path, name: str = ICT_NAME, home: str | Path | None = None) -> ImportedModel:
    """Import ICT-FaceKit into ``$SYNFACE_HOME/facemodels/<name>`` (or ``home/<name>``).

    The model is written to a temporary folder beside the destination and renamed
    into place, so an interrupted import leaves no half-written model.

    Args:
        source: ``FaceXModel.tar.xz``, a ``FaceXModel/`` folder, or a folder holding either.
        name: folder and model name (letters, digits, ``.``, ``_``, ``-``).
        home: parent folder of the model; defaults to ``assets_dir("facemodels")``.

    Returns:
        The destination folder, the model and the import time in seconds.

    Raises:
        AssetError: unreadable or inconsistent input (see :func:`read_ict_facekit`).
        ConfigError: an invalid ``name``.
    """
    if not _NAME.fullmatch(name):
        raise ConfigError(f"name: {name!r} is not a valid model name; use letters, digits, '.', '_' or '-'")
    start = time.perf_counter()
    model = build_ict_model(read_ict_facekit(source), name)
    parent = Path(home) if home is not None else assets_dir("facemodels")
    folder = parent / name
    _write_atomically(model, folder)
    seconds = time.perf_counter() - start
    logger.debug("imported %s from %s into %s in %.1f s", name, model.source, folder, seconds)
    return ImportedModel(folder=folder, model=model, seconds=seconds)


def _write_atomically(model: FaceModel, folder: Path) -> None:
    """Save ``model`` to a temporary sibling folder, then swap it in for ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the model folder is not
    retired = None
    try:
        save_face_model(model, staging)
        if folder.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            os.replace(folder, retired / folder.name)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not folder.exists():
            os.replace(retired / folder.name, folder)  # put the previous model back
        raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def _remove_stale(folder: Path, age_seconds: float = 3600.0) -> None:
    """Delete temporaries of earlier, killed imports of this model (older than an hour)."""
    now = time.time()
    stale_folders = [*folder.parent.glob(f".{folder.name}.tmp-*"), *folder.parent.glob(f".{folder.name}.old-*")]
    for stale in stale_folders:
        with contextlib.suppress(OSError):
            if stale.is_dir() and now - stale.stat().st_mtime > age_seconds:
                shutil.rmtree(stale)


def template_residual(model: FaceModel, template: str = "synface") -> torch.Tensor:
    """Per-landmark distance (template pixels) after fitting the frontal mean face to a crop template.

    The mean face's five landmarks are projected orthographically onto the image
    plane (x right, y down), fitted to the template with a similarity transform
    (Umeyama) and compared to the template points.

    Returns:
        (5,) float64 residuals in the template's pixels.
    """
    points = model.landmarks(model.vertices[None].double(), points=5)[0]  # (5, 3)
    image = torch.stack([points[:, 0], -points[:, 1]], dim=1)  # (5, 2) y down
    target = get_template(template).tensor()
    matrix = umeyama(image, target)
    return torch.linalg.norm(apply_affine(matrix, image) - target, dim=1)
