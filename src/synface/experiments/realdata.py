"""Real photo sets in experiments: recognising CFP/LFW folders, choosing what to align, and test pair sets.

A user passes CFP (``--real-data``) and LFW (``--lfw``) folders in one of three states:

- ``raw``: the published photos; the images an experiment needs are aligned into the
  cache by an ``align`` step (MTCNN, or a labelled centre-crop stand-in);
- ``aligned``: a ``synface align`` copy (it holds ``align_log.jsonl`` with landmarks);
- ``prealigned``: 112x96 or 112x112 crops from elsewhere (no landmarks).

Only the images a suite uses are aligned: the chosen CFP training identities, and
the images of the test pairs. CFP test pairs come from the held-out folds only
(default 6..10), whose identities are never trained on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from synface.errors import DataError
from synface.eval.protocols import PairSet, resolve_image

logger = logging.getLogger(__name__)

State = Literal["raw", "aligned", "prealigned"]
ALIGN_LOG = "align_log.jsonl"
ALIGNED_SIZES = ((112, 96), (112, 112))  # (height, width) of crops we accept as aligned
CFP_PROTOCOLS = ("cfp-ff", "cfp-fp")


@dataclass(frozen=True)
class RealSet:
    """A real photo folder as an experiment sees it.

    Attributes:
        kind: ``cfp`` or ``lfw``.
        root: the folder (absolute).
        state: ``raw``, ``aligned`` or ``prealigned`` (see the module docstring).
        pairs: LFW's ``pairs.txt`` (None for CFP, whose protocol is inside ``root``).
    """

    kind: str
    root: Path
    state: State
    pairs: Path | None = None

    @property
    def has_landmarks(self) -> bool:
        """Whether per-image MTCNN landmarks exist without aligning again."""
        return self.state == "aligned"

    def describe(self) -> str:
        """One line for reports."""
        words = {"raw": "unaligned photos", "aligned": "a synface-aligned copy",
                 "prealigned": "pre-aligned crops (no landmark log)"}
        return f"{self.kind.upper()} at {self.root} ({words[self.state]})"


def _first_image(folder: Path) -> Path | None:
    for directory, _, files in os.walk(folder):
        for name in sorted(files):
            if name.lower().endswith((".jpg", ".jpeg", ".png")):
                return Path(directory) / name
    return None


def _state(root: Path, sample_folder: Path) -> State:
    if (root / ALIGN_LOG).is_file():
        return "aligned"
    first = _first_image(sample_folder)
    if first is None:
        raise DataError(f"{sample_folder}: no .jpg/.png images found")
    try:
        with Image.open(first) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"{first}: unreadable image ({error})") from None
    return "prealigned" if (height, width) in ALIGNED_SIZES else "raw"


def inspect_cfp(path: str | os.PathLike[str]) -> RealSet:
    """Check a CFP folder (``Data/Images`` and ``Protocol/Split``) and tell its state.

    Raises:
        DataError: the folder or its CFP layout is missing.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"--real-data {path}: folder not found (expected a CFP folder with Data/Images and Protocol)")
    for needed in ("Data/Images", "Protocol/Split"):
        if not (root / needed).is_dir():
            raise DataError(f"--real-data {root}: no {needed}; expected the CFP layout "
                            "ROOT/Data/Images/NNN/frontal/NN.jpg with ROOT/Protocol")
    return RealSet("cfp", root, _state(root, root / "Data" / "Images"))


def inspect_lfw(path: str | os.PathLike[str]) -> RealSet:
    """Check an LFW folder (``name/name_0001.jpg`` and a view-2 ``pairs.txt`` in it or its parent).

    Raises:
        DataError: the folder or its ``pairs.txt`` is missing.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"--lfw {path}: folder not found (expected LFW's name/name_0001.jpg folders)")
    pairs = next((folder / "pairs.txt" for folder in (root, root.parent) if (folder / "pairs.txt").is_file()), None)
    if pairs is None:
        raise DataError(f"--lfw {root}: no pairs.txt in it or its parent (LFW view 2 pair list)")
    return RealSet("lfw", root, _state(root, root), pairs)


def cfp_identity(relative: str) -> str:
    """The identity of an image path inside a dataset tree (CFP ``Data/Images/NNN/...``; else the parent folder)."""
    parts = Path(relative).parts
    if "Images" in parts and parts.index("Images") + 1 < len(parts) - 1:
        return parts[parts.index("Images") + 1]
    return parts[-2] if len(parts) >= 2 else ""


def cfp_train_files(real: RealSet, test_folds: Sequence[int], identities: int, samples: int) -> list[str]:
    """Relative paths of the CFP training images: training-fold identities, the first N x S (0: all).

    The choice is the one ``synface.data.real_subset`` makes with ``seed=None``, so
    training on the aligned copy with the same (or smaller) N and S picks these images.
    """
    from synface.data.real import CFPDataset, cfp_split, real_subset

    _, held_out = cfp_split(real.root, test_folds)
    dataset = CFPDataset(real.root, exclude_identities=held_out, crop="center")
    if identities:
        chosen = real_subset(dataset, identities, samples, seed=None)
        paths = [dataset.paths[i] for i in chosen.indices]
    else:
        paths = list(dataset.paths)
    return [path.relative_to(real.root).as_posix() for path in paths]


def cfp_side_files(root: Path) -> list[str]:
    """The protocol text files an aligned CFP copy needs (pair lists and splits), relative to ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in (root / "Protocol").rglob("*.txt"))


def load_test_pairs(real: RealSet, protocol: str, folds: Sequence[int] | None, per_fold: int) -> PairSet:
    """The test pairs of ``protocol`` read from ``real.root``: the given folds (1-based), capped.

    Args:
        real: the real set (its own folder holds every listed image).
        protocol: ``cfp-ff``, ``cfp-fp`` or ``lfw``.
        folds: 1-based folds to keep (None: all).
        per_fold: keep the first ``per_fold`` same and different pairs of each fold (0: all).

    Returns:
        A pair set with folds renumbered 0..K-1.
    """
    from synface.eval.protocols import load_protocol, select_folds

    pair_set = load_protocol(protocol, data=real.root, pairs=real.pairs)
    return select_folds(pair_set, folds, per_fold)


def relative_images(pair_set: PairSet, root: Path) -> list[str]:
    """The pair set's image paths relative to ``root`` (all of them must lie below it)."""
    relative = []
    for image in pair_set.images:
        path = Path(image)
        try:
            relative.append(path.resolve().relative_to(root).as_posix())
        except ValueError:
            raise DataError(f"{path}: test image outside {root}") from None
    return relative


def rebase_pairs(pair_set: PairSet, root: Path, images_root: Path) -> PairSet:
    """The same pairs with images read from ``images_root`` (an aligned copy of ``root``)."""
    if Path(images_root).resolve() == Path(root).resolve():
        return pair_set
    images = [resolve_image(Path(images_root) / rel, f"the aligned copy of {root}")
              for rel in relative_images(pair_set, root)]
    return PairSet(pair_set.name, images, pair_set.pairs, pair_set.issame, pair_set.folds,
                   source=f"{pair_set.source} (images from {images_root})")


def read_align_log(root: Path) -> dict[str, dict[str, Any]]:
    """Entries of ``root/align_log.jsonl`` by relative path (a line cut short by a kill is ignored)."""
    entries: dict[str, dict[str, Any]] = {}
    path = root / ALIGN_LOG
    if not path.is_file():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "path" in entry:
            entries[entry["path"]] = entry
    return entries


def mtcnn_installed() -> bool:
    """Whether ``synface assets install mtcnn`` has put the detector's weights in place."""
    from synface.eval.mtcnn import NETWORK_NAMES, mtcnn_weights_dir

    return all((mtcnn_weights_dir() / f"{name}.safetensors").is_file() for name in NETWORK_NAMES)


def resolve_align_method(requested: str) -> str:
    """``mtcnn`` or ``center`` for a preset's ``real.align`` setting.

    Raises:
        DataError: ``mtcnn`` asked for but its weights are not installed.
    """
    if requested == "auto":
        return "mtcnn" if mtcnn_installed() else "center"
    if requested == "mtcnn" and not mtcnn_installed():
        raise DataError("real photos must be aligned with MTCNN but its weights are not installed: run "
                        "`synface assets install mtcnn`, pass an aligned copy (synface align), "
                        "or set real.align=center for a smoke run")
    return requested
