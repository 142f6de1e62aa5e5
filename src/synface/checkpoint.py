"""Checkpoints without pickle: tensors in safetensors files, everything else in JSON.

Two kinds of checkpoint live in a folder:

* a **model**: ``model.safetensors`` (the state dict) and ``model.json`` (registry
  name, constructor kwargs, synface version, free-form ``extra`` such as the config,
  epoch and metrics). :func:`load_model` rebuilds the network from those two files.
* a **training state** for resuming: ``<name>.safetensors`` holding every tensor of
  the optimizer, scheduler, RNG and other states, and ``<name>.json`` holding their
  structure, with each tensor replaced by a reference into the safetensors file.

The safetensors file is written first and the JSON last, each atomically; the JSON
records the SHA-256 of the tensor file, so a torn or mismatched pair is detected.
Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

import synface
from synface.errors import DataError, SynfaceError
from synface.io import atomic_write_bytes, read_json_document

logger = logging.getLogger(__name__)

MODEL_FORMAT = "synface-model/1"
STATE_FORMAT = "synface-state/1"
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
RESUME_NAME = "resume"


# -- nested state <-> (flat tensors, JSON structure) -----------------------------------
def flatten_state(state: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state into named CPU tensors and a JSON-safe structure.

    Containers are tagged so they come back with their exact types: dicts (keys
    may be str, int, float, bool or None) as ``{"$dict": [[key, value], ...]}``,
    tuples as ``{"$tuple": [...]}``, tensors as ``{"$tensor": name}`` and numpy
    arrays as ``{"$ndarray": name}``; lists and scalars stay as they are.

    Args:
        state: nested dicts, lists and tuples of tensors, numpy arrays and scalars
            (e.g. ``optimizer.state_dict()``).

    Returns:
        ``(tensors, structure)`` for :func:`unflatten_state`.

    Raises:
        SynfaceError: a value of a type that cannot be stored, with its path.
    """
    tensors: dict[str, torch.Tensor] = {}

    def encode(value: Any, path: str) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = value.detach().to("cpu").contiguous().clone()  # clone: no shared storage
            return {"$tensor": name}
        if isinstance(value, np.ndarray):
            name = f"t{len(tensors)}"
            tensors[name] = torch.from_numpy(np.ascontiguousarray(value).copy())
            return {"$ndarray": name}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, Mapping):
            for key in value:
                if not (key is None or isinstance(key, (bool, int, float, str))):
                    raise SynfaceError(
                        f"state {path or '/'}: cannot store a dict key of type {type(key).__name__}"
                    )
            return {"$dict": [[key, encode(item, f"{path}/{key}")] for key, item in value.items()]}
        if isinstance(value, tuple):
            return {"$tuple": [encode(item, f"{path}/{i}") for i, item in enumerate(value)]}
        if isinstance(value, list):
            return [encode(item, f"{path}/{i}") for i, item in enumerate(value)]
        raise SynfaceError(f"state {path or '/'}: cannot store a value of type {type(value).__name__}")

    return tensors, encode(state, "")


def unflatten_state(tensors: Mapping[str, torch.Tensor], structure: Any) -> Any:
    """Inverse of :func:`flatten_state`.

    Raises:
        SynfaceError: the structure refers to a missing tensor or is malformed.
    """

    def decode(node: Any) -> Any:
        if isinstance(node, list):
            return [decode(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            raise SynfaceError(f"state structure: malformed node with keys {sorted(node)}")
        tag, payload = next(iter(node.items()))
        if tag in ("$tensor", "$ndarray"):
            if payload not in tensors:
                raise SynfaceError(f"state structure: tensor {payload!r} is missing from the tensor file")
            return tensors[payload] if tag == "$tensor" else tensors[payload].numpy().copy()
        if tag == "$tuple":
            return tuple(decode(item) for item in payload)
        if tag == "$dict":
            return {_hashable(key): decode(value) for key, value in payload}
        raise SynfaceError(f"state structure: unknown tag {tag!r}")

    return decode(structure)


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, dict)):
        raise SynfaceError(f"state structure: a dict key cannot be {key!r}")
    return key


# -- file pairs -------------------------------------------------------------------------
def _write_pair(folder: Path, stem: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``stem.safetensors`` then ``stem.json`` (with the tensors' hash) into ``folder``."""
    data = safetensors.torch.save(tensors)
    atomic_write_bytes(folder / f"{stem}.safetensors", data)
    meta = {**meta, "tensors_sha256": hashlib.sha256(data).hexdigest()}
    try:
        text = json.dumps(meta, indent=2)
    except (TypeError, ValueError) as error:
        raise SynfaceError(
            f"{folder / (stem + '.json')}: metadata is not JSON-serialisable: {error}"
        ) from None
    atomic_write_bytes(folder / f"{stem}.json", (text + "\n").encode("utf-8"))
    return folder / f"{stem}.json"


def _read_pair(
    folder: Path, stem: str, expected_format: str, device: str | torch.device
) -> tuple[dict, dict]:
    """Read and check ``stem.json`` and ``stem.safetensors``; returns ``(meta, tensors)``."""
    meta_path, tensor_path = folder / f"{stem}.json", folder / f"{stem}.safetensors"
    for path in (meta_path, tensor_path):
        if not path.is_file():
            raise DataError(f"{path}: checkpoint file not found")
    meta = read_json_document(meta_path, "checkpoint metadata", expected_format)
    try:
        data = tensor_path.read_bytes()
    except OSError as error:
        raise DataError(f"{tensor_path}: cannot read checkpoint ({error.strerror})") from None
    if hashlib.sha256(data).hexdigest() != meta.get("tensors_sha256"):
        raise DataError(
            f"{tensor_path}: contents do not match {meta_path.name} (corrupt or from another save)"
        )
    try:
        tensors = safetensors.torch.load(data)
    except (SafetensorError, ValueError, RuntimeError, KeyError, TypeError) as error:
        raise DataError(f"{tensor_path}: corrupt safetensors file ({error})") from None
    return meta, {key: value.to(device) for key, value in tensors.items()}


# -- models -----------------------------------------------------------------------------
def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif type(model).__name__ == "OptimizedModule" and isinstance(
            getattr(model, "_orig_mod", None), nn.Module
        ):
            model = model._orig_mod
        else:
            return model


def save_model(
    folder: str | os.PathLike[str],
    model: nn.Module,
    *,
    name: str,
    kwargs: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save a registry model as ``model.safetensors`` + ``model.json`` in ``folder``.

    Args:
        folder: destination folder (created if needed).
        model: the network (DDP and ``torch.compile`` wrappers are unwrapped).
        name: its registry name, e.g. ``"lresnet50e_ir"``.
        kwargs: the keyword arguments it was created with (JSON-serialisable).
        extra: free-form JSON-serialisable metadata (config, epoch, metrics).

    Returns:
        The path of ``model.json``.

    Raises:
        SynfaceError: an unknown model name or non-JSON metadata.
    """
    from synface.models import is_model  # the package import registers every model

    if not is_model(name):
        raise SynfaceError(
            f"save_model: {name!r} is not a registered model; see synface.models.list_models()"
        )
    state = {
        key: value.detach().to("cpu").contiguous() for key, value in unwrap_model(model).state_dict().items()
    }
    meta = {
        "format": MODEL_FORMAT,
        "name": name,
        "kwargs": _plain_json(dict(kwargs)),
        "synface_version": synface.__version__,
        "extra": _plain_json(dict(extra or {})),
    }
    path = _write_pair(Path(folder), Path(WEIGHTS_FILE).stem, state, meta)
    logger.info("saved %s to %s", name, folder)
    return path


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`, in eval mode.

    Args:
        path: the checkpoint folder, or its ``model.json`` / ``model.safetensors``.
        device: where to put the model.

    Returns:
        ``(model, meta)`` where ``meta`` is the parsed ``model.json``.

    Raises:
        DataError: a missing, corrupt or mismatched file (named in the message).
    """
    from synface.models import create_model  # the package import registers every model

    folder = Path(path)
    if folder.is_file() or folder.suffix in (".json", ".safetensors"):
        folder = folder.parent
    meta, state = _read_pair(folder, Path(WEIGHTS_FILE).stem, MODEL_FORMAT, device)
    kwargs = meta.get("kwargs")
    if not isinstance(meta.get("name"), str) or not isinstance(kwargs, dict):
        raise DataError(f"{folder / META_FILE}: missing model name or kwargs")
    try:
        model = create_model(meta["name"], **kwargs)
    except SynfaceError as error:
        raise DataError(f"{folder / META_FILE}: cannot rebuild the model: {error}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        summary = str(error).splitlines()[0]
        raise DataError(f"{folder / WEIGHTS_FILE}: weights do not fit {meta['name']}: {summary}") from None
    return model.to(device).eval(), meta


def _plain_json(value: Any) -> Any:
    """A JSON round-trip of ``value`` (tuples become lists); refuses non-JSON values."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise SynfaceError(f"checkpoint metadata is not JSON-serialisable: {error}") from None


# -- generic states and resuming ---------------------------------------------------------
def save_state(folder: str | os.PathLike[str], state: Mapping[str, Any], *, name: str = RESUME_NAME) -> Path:
    """Save a nested state as ``<name>.safetensors`` + ``<name>.json`` (see :func:`flatten_state`).

    Returns:
        The path of the JSON file.
    """
    tensors, structure = flatten_state(dict(state))
    meta = {"format": STATE_FORMAT, "synface_version": synface.__version__, "structure": structure}
    return _write_pair(Path(folder), name, tensors, meta)


def load_state(
    folder: str | os.PathLike[str], *, name: str = RESUME_NAME, device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a state saved by :func:`save_state`.

    Raises:
        DataError: a missing, corrupt or mismatched file (named in the message).
    """
    meta, tensors = _read_pair(Path(folder), name, STATE_FORMAT, device)
    try:
        return unflatten_state(tensors, meta.get("structure"))
    except SynfaceError as error:
        raise DataError(f"{Path(folder) / (name + '.json')}: {error}") from None


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states of Python, numpy, torch CPU and (when present) every CUDA device."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore states captured by :func:`capture_rng_state` (CUDA only with the same device count)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        else:
            logger.warning(
                "not restoring CUDA RNG: saved for %d devices, %d present",
                len(cuda),
                torch.cuda.device_count(),
            )


def save_resume(
    folder: str | os.PathLike[str],
    *,
    epoch: int,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    others: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    include_rng: bool = True,
) -> Path:
    """Save what resuming a run needs, next to (not inside) the model checkpoint.

    Args:
        folder: destination folder.
        epoch: epochs completed.
        step: optimizer steps taken.
        optimizer: its ``state_dict()`` is stored.
        scheduler: any object with ``state_dict()`` (LR scheduler), stored.
        others: name -> object with ``state_dict()`` (e.g. a margin head, a grad scaler).
        extra: free-form scalars, lists and dicts.
        include_rng: also store the global RNG states.

    Returns:
        The path of ``resume.json``.
    """
    state: dict[str, Any] = {"epoch": int(epoch), "step": int(step), "extra": dict(extra or {})}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    state["others"] = {key: value.state_dict() for key, value in (others or {}).items()}
    if include_rng:
        state["rng"] = capture_rng_state()
    return save_state(folder, state, name=RESUME_NAME)


def load_resume(
    folder: str | os.PathLike[str],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    others: Mapping[str, Any] | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore a state saved by :func:`save_resume` into the given objects.

    Returns:
        ``{"epoch": int, "step": int, "extra": dict}``.

    Raises:
        DataError: missing/corrupt files, or a requested part that was not saved.
    """
    state = load_state(folder, name=RESUME_NAME)
    where = Path(folder) / f"{RESUME_NAME}.json"
    parts = [
        ("optimizer", optimizer, state.get("optimizer")),
        ("scheduler", scheduler, state.get("scheduler")),
    ]
    parts += [
        (f"others.{key}", value, state.get("others", {}).get(key)) for key, value in (others or {}).items()
    ]
    for label, target, saved in parts:
        if target is None:
            continue
        if saved is None:
            raise DataError(f"{where}: has no saved {label} state")
        try:
            target.load_state_dict(saved)
        except (RuntimeError, ValueError, KeyError) as error:
            raise DataError(f"{where}: saved {label} state does not fit: {error}") from None
    if restore_rng:
        if "rng" not in state:
            raise DataError(f"{where}: has no saved RNG state")
        restore_rng_state(state["rng"])
    return {"epoch": state["epoch"], "step": state["step"], "extra": state["extra"]}
