"""Find the face model a run asks for: an imported one by name, a folder, or the built-in head.

Imported models live in ``$SYNFACE_HOME/facemodels/<name>/`` (see
:func:`synface.generate.ict.import_ict_facekit`). The spec ``"default"`` means the
imported ICT-FaceKit model when it is there and the built-in head otherwise.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from synface.errors import AssetError
from synface.generate.facemodel import FaceModel, load_face_model
from synface.paths import assets_dir

logger = logging.getLogger(__name__)

DEFAULT = "default"
BUILTIN = "builtin"
BUILTIN_ALIASES = (BUILTIN, "builtin-head")
ICT_NAME = "ict-facekit"
_IMPORT_HINT = "import it with `synface assets import-ict PATH/TO/FaceXModel.tar.xz`"


def face_model_dir(name: str) -> Path:
    """Folder of the imported model ``name``: ``$SYNFACE_HOME/facemodels/<name>``."""
    return assets_dir("facemodels") / name


def _installed(name: str) -> bool:
    return (face_model_dir(name) / "model.json").is_file()


def list_face_models() -> list[str]:
    """Names :func:`resolve_face_model` accepts: ``builtin`` plus every imported model, sorted."""
    root = assets_dir("facemodels")
    if not root.is_dir():
        return [BUILTIN]
    imported = (p.name for p in root.iterdir() if not p.name.startswith(".") and _installed(p.name))
    return [BUILTIN, *sorted(imported)]


def describe_face_model(folder: str | Path) -> dict[str, object]:
    """Name, source and sizes of a saved model, read from its header without loading the tensors.

    Raises:
        AssetError: the folder holds no readable model.
    """
    folder = Path(folder)
    meta_path, tensor_path = folder / "model.json", folder / "model.safetensors"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with safe_open(str(tensor_path), framework="pt") as tensors:
            names = list(tensors.keys())  # a safetensors handle, not a dict
            shapes = {key: tuple(tensors.get_slice(key).get_shape()) for key in names}
    except (OSError, json.JSONDecodeError, SafetensorError) as error:
        raise AssetError(f"{folder}: unreadable face model ({error})") from None
    return {
        "name": meta.get("name", folder.name),
        "folder": str(folder),
        "source": meta.get("source", ""),
        "content_hash": meta.get("content_hash", ""),
        "vertices": shapes.get("vertices", (0,))[0],
        "triangles": shapes.get("triangles", (0,))[0],
        "identity": shapes.get("identity_basis", (0,))[0],
        "expression": shapes.get("expression_basis", (0,))[0],
    }


def _builtin() -> FaceModel:
    try:
        from synface.generate.builtin_head import build_builtin_model
    except ModuleNotFoundError as error:
        if error.name != "synface.generate.builtin_head":
            raise
        raise AssetError(f"this synface has no built-in head; {_IMPORT_HINT}") from None
    return build_builtin_model()


def resolve_face_model(spec: str = DEFAULT, device: torch.device | str = "cpu") -> FaceModel:
    """Load the face model named by ``spec``.

    Args:
        spec: ``"default"`` (imported ICT-FaceKit if present, else the built-in head),
            ``"builtin"``, the name of an imported model (``"ict-facekit"``), or a
            folder written by :func:`synface.generate.facemodel.save_face_model`.
        device: where the model's tensors go.

    Returns:
        The model on ``device``.

    Raises:
        AssetError: an unknown name, a name not imported yet, or a broken model folder.
    """
    spec = spec.strip()
    if spec == DEFAULT:
        name = ICT_NAME if _installed(ICT_NAME) else BUILTIN
        if name == BUILTIN:
            logger.info("face model: built-in head (no imported %s in %s; %s)",
                        ICT_NAME, face_model_dir(ICT_NAME).parent, _IMPORT_HINT)
        return resolve_face_model(name, device)
    if spec in BUILTIN_ALIASES:
        model = _builtin()
        logger.info("face model: built-in head (%d vertices)", model.num_vertices)
        return model.to(device)
    looks_like_path = any(sep in spec for sep in ("/", "\\")) or spec.startswith((".", "~"))
    if not looks_like_path and _installed(spec):
        folder = face_model_dir(spec)
    elif looks_like_path or Path(spec).is_dir():
        folder = Path(spec).expanduser()
    elif spec == ICT_NAME:
        raise AssetError(f"face model {spec!r} is not imported ({face_model_dir(spec)} is missing); {_IMPORT_HINT}")
    else:
        raise AssetError(
            f"unknown face model {spec!r}; valid: {DEFAULT}, {', '.join(list_face_models())}, or a model folder"
        )
    model = load_face_model(folder)
    logger.info("face model: %s from %s (%d vertices, %d identity, %d expression)",
                model.name, folder, model.num_vertices, model.num_identity, model.num_expression)
    return model.to(device)
