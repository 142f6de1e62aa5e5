"""Install MTCNN's published weights as safetensors, from the facenet-pytorch wheel.

The weights (MIT licence) ship inside the ``facenet-pytorch`` wheel on PyPI as
``facenet_pytorch/data/{pnet,rnet,onet}.pt`` (plain state dicts). We never import
that package (it pins old torch/torchvision): we fetch the wheel with ``pip
download --no-deps`` (or take a wheel or folder the user already has), read each
state dict with ``torch.load(weights_only=True)`` — a loader that refuses arbitrary
objects — check every tensor's name and shape against our networks, and store
them as safetensors.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save

from synface.errors import AssetError
from synface.eval.mtcnn import NETWORK_NAMES, build_networks, mtcnn_weights_dir
from synface.io import atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "facenet-pytorch==2.6.0"
LICENSE_NOTE = (
    "MTCNN weights (Zhang et al. 2016) as distributed in the facenet-pytorch package "
    "(MIT License, Copyright (c) 2019 Timothy Esler)."
)


def _read_state(data: bytes, origin: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad or unsafe file
        raise AssetError(f"{origin}: not a plain tensor state dict ({type(error).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AssetError(f"{origin}: expected a mapping of tensor names to tensors")
    return dict(state)


def _states_from_wheel(wheel: Path) -> dict[str, dict[str, torch.Tensor]]:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            states = {}
            for net in NETWORK_NAMES:
                member = next((n for n in names if n.endswith(f"data/{net}.pt")), None)
                if member is None:
                    raise AssetError(f"{wheel}: no data/{net}.pt inside; is this a facenet-pytorch wheel?")
                states[net] = _read_state(archive.read(member), f"{wheel}!{member}")
            return states
    except zipfile.BadZipFile:
        raise AssetError(f"{wheel}: not a readable wheel (zip) file") from None


def _states_from_folder(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    states = {}
    for net in NETWORK_NAMES:
        candidates = [folder / f"{net}.pt", folder / "data" / f"{net}.pt"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise AssetError(f"{folder}: no {net}.pt found (looked in the folder and its data/ subfolder)")
        states[net] = _read_state(path.read_bytes(), str(path))
    return states


def _download_wheel(into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "-d", str(into), WHEEL_REQUIREMENT]
    logger.info("downloading %s with pip", WHEEL_REQUIREMENT)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("facenet_pytorch-*.whl"))
    if result.returncode != 0 or not wheels:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AssetError(
            f"could not download {WHEEL_REQUIREMENT} with pip ({tail[0]}); "
            "pass a local wheel or folder with --source"
        )
    return wheels[0]


def _check_shapes(states: dict[str, dict[str, torch.Tensor]], origin: str) -> None:
    for name, net in build_networks().items():
        expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in states[name].items()}
        if expected != got:
            missing = sorted(set(expected) - set(got))
            wrong = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
            raise AssetError(
                f"{origin}: {name} weights do not match the MTCNN architecture "
                f"(missing {missing[:3]}, wrong shapes {wrong[:3]})"
            )


def install_mtcnn_weights(source: str | Path | None = None, target: str | Path | None = None) -> Path:
    """Obtain MTCNN weights and store them as safetensors.

    Args:
        source: a facenet-pytorch ``.whl`` file, a folder holding ``pnet.pt`` etc.
            (or the package folder with ``data/``), or None to download the wheel with pip.
        target: destination folder; default :func:`synface.eval.mtcnn.mtcnn_weights_dir`.

    Returns:
        The folder holding pnet/rnet/onet.safetensors and weights.json.

    Raises:
        AssetError: the source is missing, unreadable, unsafe, or holds other weights.
    """
    target = Path(target) if target is not None else mtcnn_weights_dir()
    with tempfile.TemporaryDirectory() as scratch:
        if source is None:
            origin = _download_wheel(Path(scratch))
            states = _states_from_wheel(origin)
        else:
            origin = Path(source)
            if origin.is_dir():
                states = _states_from_folder(origin)
            elif origin.is_file():
                states = _states_from_wheel(origin)
            else:
                raise AssetError(f"{origin}: no such wheel or folder")
    _check_shapes(states, str(origin))
    staging = Path(tempfile.mkdtemp(prefix=".mtcnn-", dir=_ensure_parent(target)))
    try:
        for name, state in states.items():
            tensors = {k: v.contiguous() for k, v in state.items()}
            atomic_write_bytes(staging / f"{name}.safetensors", save(tensors))
        atomic_write_json(staging / "weights.json", {"source": str(origin), "license": LICENSE_NOTE})
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("MTCNN weights installed in %s", target)
    return target


def _ensure_parent(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent
