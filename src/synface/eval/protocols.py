"""Verification pair sets and the registry that loads them by protocol name.

A :class:`PairSet` is what every protocol reader returns: the distinct images the
pairs refer to (file paths, encoded image bytes, or decoded ``(H, W, 3)`` uint8
arrays), the pairs as indices into that list, the same/different labels and the
cross-validation fold of each pair. Readers register themselves with
:func:`register_protocol`; :func:`load_protocol` dispatches by name::

    pair_set = load_protocol("lfw", data="lfw-aligned", pairs="pairs.txt")
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synface.errors import DataError, SynfaceError

ImageSource = Path | bytes | np.ndarray
"""A path to an image file, an encoded image (JPEG/PNG bytes), or an (H, W, 3) uint8 array."""

# Aligned copies may be written as PNG although the protocol lists .jpg names.
IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg", ".bmp", ".webp")

_PROTOCOL_MODULES = ("lfw", "cfp", "binfile", "pairs_csv", "synthetic_pairs")


@dataclass(frozen=True, eq=False)
class PairSet:
    """Pairs of face images with same/different labels and cross-validation folds.

    Attributes:
        name: display name, e.g. ``"lfw"`` or ``"cfp-fp"``.
        images: the N distinct images the pairs use.
        pairs: (P, 2) int64 indices into ``images``.
        issame: (P,) bool, whether a pair shows one person.
        folds: (P,) int64 fold of each pair, values ``0 .. K-1``.
        source: the file or folder the set was read from (for messages and reports).
        image_names: optional (N,) descriptions of in-memory images for error messages.
    """

    name: str
    images: Sequence[ImageSource]
    pairs: np.ndarray
    issame: np.ndarray
    folds: np.ndarray
    source: str = ""
    image_names: Sequence[str] | None = field(default=None)

    def __post_init__(self) -> None:
        pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        issame = np.asarray(self.issame, dtype=bool)
        folds = np.asarray(self.folds, dtype=np.int64)
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "issame", issame)
        object.__setattr__(self, "folds", folds)
        where = self.source or self.name
        if not len(pairs) == len(issame) == len(folds):
            raise DataError(
                f"{where}: {len(pairs)} pairs but {len(issame)} labels and {len(folds)} folds"
            )
        if len(pairs) and (pairs.min() < 0 or pairs.max() >= len(self.images)):
            raise DataError(f"{where}: pair indices outside the {len(self.images)} images")
        if len(folds) and not np.array_equal(np.unique(folds), np.arange(folds.max() + 1)):
            raise DataError(f"{where}: folds must be numbered 0..K-1, got {np.unique(folds)}")

    @property
    def num_pairs(self) -> int:
        """Number of pairs P."""
        return len(self.pairs)

    @property
    def num_folds(self) -> int:
        """Number of cross-validation folds K."""
        return int(self.folds.max()) + 1 if len(self.folds) else 0

    def describe_image(self, index: int) -> str:
        """A human-readable name of image ``index`` for error messages."""
        image = self.images[index]
        if isinstance(image, (str, os.PathLike)):
            return str(image)
        if self.image_names is not None:
            return self.image_names[index]
        return f"image #{index} of {self.source or self.name}"

    def summary(self) -> dict[str, Any]:
        """Counts for reports: pairs, same/different, folds, images."""
        return {
            "name": self.name,
            "source": self.source,
            "pairs": self.num_pairs,
            "same": int(self.issame.sum()),
            "different": int((~self.issame).sum()),
            "folds": self.num_folds,
            "images": len(self.images),
        }


class ImageTable:
    """Collects distinct images in first-seen order and hands out their indices."""

    def __init__(self) -> None:
        self._index: dict[Any, int] = {}
        self.images: list[ImageSource] = []

    def index(self, key: Any, make: Callable[..., ImageSource], *args: Any) -> int:
        """Index of the image known by ``key``; ``make(*args)`` builds it on first sight."""
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.images)
            self.images.append(make(*args))
        return found


def resolve_image(path: Path, listed_in: str) -> Path:
    """``path`` itself, or the same name with another image suffix when only that exists.

    Args:
        path: the image path the protocol lists.
        listed_in: where the path came from (file and line), for the error message.

    Returns:
        An existing file.

    Raises:
        DataError: no file with that name and any of :data:`IMAGE_SUFFIXES` exists.
    """
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise DataError(f"image {path} listed in {listed_in} does not exist")


def require_folder(data: str | os.PathLike[str] | None, protocol: str) -> Path:
    """``data`` as an existing folder, or a DataError naming the protocol."""
    if data is None:
        raise SynfaceError(f"protocol {protocol!r} needs --data (the image folder)")
    folder = Path(data)
    if not folder.is_dir():
        raise DataError(f"{protocol}: image folder {folder} does not exist")
    return folder


def find_pairs_file(
    pairs: str | os.PathLike[str] | None, data: Path, default_name: str, protocol: str
) -> Path:
    """The pairs file: ``pairs`` if given, else ``default_name`` in ``data`` or its parent."""
    if pairs is not None:
        path = Path(pairs)
        if not path.is_file():
            raise DataError(f"{protocol}: pairs file {path} does not exist")
        return path
    for folder in (data, data.parent):
        if (folder / default_name).is_file():
            return folder / default_name
    raise DataError(
        f"{protocol}: no {default_name} in {data} or {data.parent}; pass it with --pairs"
    )


# -- registry ------------------------------------------------------------------------
Loader = Callable[..., PairSet]
_LOADERS: dict[str, Loader] = {}
_HELP: dict[str, str] = {}


def register_protocol(name: str, help: str) -> Callable[[Loader], Loader]:
    """Register a reader ``loader(data, pairs, **options) -> PairSet`` under ``name``."""

    def decorator(loader: Loader) -> Loader:
        if name in _LOADERS and _LOADERS[name] is not loader:
            raise ValueError(f"protocol {name!r} is registered twice")
        _LOADERS[name] = loader
        _HELP[name] = help
        return loader

    return decorator


def _import_readers() -> None:
    for module in _PROTOCOL_MODULES:
        importlib.import_module(f"synface.eval.{module}")


def list_protocols() -> dict[str, str]:
    """Registered protocol names with a one-line description each."""
    _import_readers()
    return dict(sorted(_HELP.items()))


def load_protocol(
    name: str,
    data: str | os.PathLike[str] | None,
    pairs: str | os.PathLike[str] | None = None,
    **options: Any,
) -> PairSet:
    """Read the pair set of protocol ``name``.

    Args:
        name: a registered protocol (see :func:`list_protocols`).
        data: the image folder, dataset folder or ``.bin`` file, as the protocol needs.
        pairs: the pairs/protocol file or folder, where the protocol takes one.
        **options: protocol-specific options (e.g. ``num_pairs`` for ``synthetic``).

    Returns:
        The pair set.

    Raises:
        SynfaceError: unknown protocol name.
        DataError: a missing, malformed or unreadable protocol file or image.
    """
    _import_readers()
    if name not in _LOADERS:
        close = difflib.get_close_matches(name, _LOADERS, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise SynfaceError(f"unknown protocol {name!r}{hint} valid: {', '.join(sorted(_LOADERS))}")
    return _LOADERS[name](data, pairs, **options)


def select_folds(pair_set: PairSet, folds: Sequence[int] | None, per_fold: int = 0) -> PairSet:
    """Keep some folds and the first ``per_fold`` same/different pairs of each (0: all).

    Used to evaluate on held-out folds only, e.g. CFP folds 6-10 when the identities
    of folds 1-5 were used for training.

    Args:
        pair_set: the full protocol.
        folds: 1-based fold numbers to keep (None: all).
        per_fold: cap on same and on different pairs per fold (0: no cap).

    Returns:
        A pair set over the images those pairs use, with folds renumbered 0..K-1.

    Raises:
        DataError: a fold number the protocol does not have.
    """
    keep_folds = list(range(1, pair_set.num_folds + 1)) if folds is None else sorted(set(folds))
    missing = [f for f in keep_folds if not 1 <= f <= pair_set.num_folds]
    if missing:
        raise DataError(f"{pair_set.source}: has {pair_set.num_folds} folds, asked for folds {missing}")
    rows = []
    for fold in keep_folds:
        for same in (True, False):
            members = np.flatnonzero((pair_set.folds == fold - 1) & (pair_set.issame == same))
            rows.append(members[:per_fold] if per_fold else members)
    chosen = np.concatenate(rows)
    renumber = {fold - 1: index for index, fold in enumerate(keep_folds)}
    used = np.unique(pair_set.pairs[chosen])
    position = {int(old): new for new, old in enumerate(used)}
    images = [pair_set.images[i] for i in used]
    pairs = np.vectorize(position.get)(pair_set.pairs[chosen]).reshape(-1, 2)
    new_folds = np.array([renumber[int(f)] for f in pair_set.folds[chosen]], dtype=np.int64)
    return PairSet(pair_set.name, images, pairs, pair_set.issame[chosen], new_folds, source=pair_set.source)
