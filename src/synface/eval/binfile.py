"""Reading and writing insightface verification ``.bin`` files without trusting pickle.

A ``.bin`` (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin`` ...) is a pickle of
``(images, issame)``: a list of 2P encoded JPEG/PNG images (112x112 ArcFace crops) and
P booleans; images ``2k`` and ``2k + 1`` form pair ``k``. The published files were
written by Python 2 (``str`` images, protocol 2) and are read with
``encoding="bytes"``, as insightface does after an ASCII decode fails.

The unpickler here only resolves the few globals such files need: ``_codecs.encode``
(restricted to latin-1; Python 3 pickles bytes that way at protocol 2),
``bytes``/``bytearray``, and numpy's array and scalar reconstruction
(``_reconstruct``, ``scalar``, ``_frombuffer``) for ``issame`` stored as a numpy bool
array. Anything else (``os.system``, ``builtins.eval`` ...) is refused before it can
run. Folds are insightface's contiguous 10-way split.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synface.errors import DataError
from synface.eval.metrics import contiguous_folds
from synface.eval.protocols import PairSet, register_protocol
from synface.io import atomic_write_bytes


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of bytes use it, and nothing more."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytes"): bytes,
        ("__builtin__", "bytes"): bytes,
        ("builtins", "bytearray"): bytearray,
        ("__builtin__", "bytearray"): bytearray,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    # numpy 1 pickles name numpy.core, numpy 2 numpy._core; both resolve to the same objects
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return allowed


class _VerificationUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a verification ``.bin`` needs."""

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _unpickle(data: bytes, encoding: str) -> Any:
    return _VerificationUnpickler(io.BytesIO(data), encoding=encoding).load()


def _as_issame(value: Any, path: Path) -> np.ndarray:
    """The labels as a (P,) bool array; booleans or 0/1 integers only."""
    if isinstance(value, np.ndarray):
        if value.dtype == bool or (value.dtype.kind in "iu" and np.isin(value, (0, 1)).all()):
            return value.astype(bool).reshape(-1)
        raise DataError(f"{path}: issame array has dtype {value.dtype}, expected bool")
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, (bool, np.bool_)) or item in (0, 1) for item in value):
            return np.array([bool(item) for item in value], dtype=bool)
    raise DataError(f"{path}: the second element is not a list of booleans (issame)")


def read_bin(path: str | os.PathLike[str]) -> tuple[list[bytes], np.ndarray]:
    """Read an insightface verification ``.bin`` safely.

    Args:
        path: the ``.bin`` file.

    Returns:
        ``(images, issame)``: 2P encoded images and (P,) bool labels.

    Raises:
        DataError: the file is missing, not a pickle, needs a global outside the
            allow-list, or is not ``(list of 2P bytes, P booleans)``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read verification file {path}: {error}") from None
    try:
        try:
            content = _unpickle(raw, "ASCII")
        except UnicodeDecodeError:  # a Python 2 pickle of byte strings
            content = _unpickle(raw, "bytes")
    except Exception as error:  # any unpickling failure means "not a verification pickle"
        raise DataError(f"{path} is not a verification .bin pickle: {error}") from None
    if not isinstance(content, (tuple, list)) or len(content) != 2:
        raise DataError(f"{path}: expected a pickled (images, issame) pair, got {type(content)}")
    images, labels = content
    if not isinstance(images, (list, tuple)) or not all(
        isinstance(image, (bytes, bytearray)) for image in images
    ):
        raise DataError(f"{path}: the first element is not a list of encoded images (bytes)")
    issame = _as_issame(labels, path)
    if len(images) != 2 * len(issame):
        raise DataError(f"{path}: {len(images)} images for {len(issame)} pairs; expected 2 per pair")
    return [bytes(image) for image in images], issame


def write_bin(
    path: str | os.PathLike[str],
    images: Sequence[bytes | np.ndarray | str | os.PathLike[str]],
    issame: Sequence[bool] | np.ndarray,
) -> None:
    """Write a verification ``.bin`` that insightface's loaders and :func:`read_bin` read.

    Args:
        path: output file (written atomically).
        images: 2P images, pair ``k`` being images ``2k`` and ``2k + 1``: encoded bytes
            (stored as they are), image file paths (their bytes), or (H, W, 3) uint8
            arrays (stored as PNG).
        issame: P booleans.

    Raises:
        DataError: the counts do not match, or an image file cannot be read.
    """
    labels = [bool(value) for value in np.asarray(issame, dtype=bool).reshape(-1)]
    if len(images) != 2 * len(labels):
        raise DataError(f"write_bin {path}: {len(images)} images for {len(labels)} pairs")
    encoded = [_encode(image) for image in images]
    # protocol 2 keeps the file readable by Python 2 tools as well
    atomic_write_bytes(path, pickle.dumps((encoded, labels), protocol=2))


def _encode(image: bytes | np.ndarray | str | os.PathLike[str]) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, np.ndarray):
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()
    try:
        return Path(image).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read image {image}: {error}") from None


@register_protocol("bin", "insightface .bin (lfw.bin, cfp_fp.bin, ...): --data FILE.bin")
def load_bin(
    data: str | os.PathLike[str] | None, pairs: str | os.PathLike[str] | None = None
) -> PairSet:
    """A ``.bin`` file as a PairSet (consecutive images pair up; contiguous 10 folds).

    Args:
        data: the ``.bin`` file (``pairs`` may name it instead).
        pairs: unused unless ``data`` is missing.

    Returns:
        The pair set, named after the file (``lfw``, ``cfp_fp`` ...).

    Raises:
        DataError: see :func:`read_bin`; fewer than 10 pairs.
    """
    if data is None and pairs is None:
        raise DataError("protocol 'bin' needs --data FILE.bin")
    path = Path(data if data is not None else pairs)  # type: ignore[arg-type]
    images, issame = read_bin(path)
    if len(issame) < 10:
        raise DataError(f"{path}: {len(issame)} pairs; 10-fold evaluation needs at least 10")
    pairs_index = np.arange(2 * len(issame), dtype=np.int64).reshape(-1, 2)
    return PairSet(path.stem, images, pairs_index, issame, contiguous_folds(len(issame), 10),
                   source=str(path))
