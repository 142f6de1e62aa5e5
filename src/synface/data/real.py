"""Real face sets in their published layouts (CFP, AT&T), CFP's evaluation split, and Real_N_S subsets.

CFP (``ROOT/Data/Images/NNN/{frontal,profile}/NN.jpg``, 500 identities) ships
unaligned photos. Training wants aligned crops: an aligned copy in the same layout
(112x96 crops, or 112x112 ArcFace crops cut to their columns 8..103) is read with
``crop="aligned"``. ``crop="center"`` instead takes the largest centred box of the
target aspect ratio from each photo and resizes it: a fixed stand-in that keeps
code paths testable without an aligner, not a substitute for alignment.

CFP's 10 evaluation folds each hold the pairs of 50 identities; identities of the
folds used for testing must never be trained on (:func:`cfp_fold_identities`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from synface.data.base import LabelledImageDataset, LabelSubset
from synface.data.imagefolder import list_image_files, load_image_file
from synface.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

CFP_VIEWS = ("frontal", "profile")
CFP_FOLDS = tuple(range(1, 11))
_PAIR_LISTS = {"F": "Pair_list_F.txt", "P": "Pair_list_P.txt"}
SUBSET_STREAM = 7003  # last seed key of Real_N_S choices (SeedSequence ignores trailing zeros)


def _numeric_key(path: Path) -> tuple[int, str]:
    digits = re.sub(r"\D", "", path.stem)
    return (int(digits) if digits else -1, path.name)


class CFPDataset(LabelledImageDataset):
    """CFP photos (or an aligned copy in the same layout) labelled by identity folder.

    Args:
        root: the CFP folder (holding ``Data/Images``).
        image_size: output (height, width).
        views: which of ``frontal`` / ``profile`` to include.
        exclude_identities: identity folder names (``"001"``) left out, e.g. the
            identities of CFP evaluation folds (see :func:`cfp_split`).
        crop: ``aligned`` for aligned crops, ``center`` for the fixed centre crop
            of unaligned photos (see the module docstring).

    Raises:
        DataError: missing folders or an identity without images.
        ConfigError: an unknown view or crop.
    """

    def __init__(
        self,
        root: str | Path,
        image_size: tuple[int, int] = (112, 96),
        views: Sequence[str] = CFP_VIEWS,
        exclude_identities: Collection[str] = (),
        crop: Literal["aligned", "center"] = "aligned",
    ) -> None:
        unknown = [v for v in views if v not in CFP_VIEWS]
        if unknown or not views:
            raise ConfigError(f"views: {list(views)!r}; valid views: {', '.join(CFP_VIEWS)}")
        if crop not in ("aligned", "center"):
            raise ConfigError(f"crop: {crop!r} is not one of 'aligned', 'center'")
        self.root = Path(root)
        images = self.root / "Data" / "Images"
        if not images.is_dir():
            raise DataError(f"{images}: not found; expected the CFP layout ROOT/Data/Images/NNN/frontal/NN.jpg")
        self.image_size = image_size
        self.fit = "aligned" if crop == "aligned" else "crop"
        excluded = set(exclude_identities)
        folders = sorted(p for p in images.iterdir() if p.is_dir() and p.name not in excluded)
        if not folders:
            raise DataError(f"{images}: no identity folders left (excluded {len(excluded)})")
        self.identity_names = [p.name for p in folders]
        self.paths: list[Path] = []
        labels: list[int] = []
        for label, folder in enumerate(folders):
            files = [f for view in views if (folder / view).is_dir()
                     for f in sorted(list_image_files(folder / view), key=_numeric_key)]
            if not files:
                raise DataError(f"{folder}: no {'/'.join(views)} images")
            self.paths.extend(files)
            labels.extend([label] * len(files))
        self.labels = np.asarray(labels, dtype=np.int64)
        logger.info("%s: %d images of %d identities (%s crop)", self.root, len(self.paths), len(folders), crop)

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def load_image(self, index: int) -> Image.Image:
        return load_image_file(self.paths[index])


class ATTDataset(LabelledImageDataset):
    """AT&T / ORL faces (``ROOT/sN/K.pgm``, greyscale 92x112), replicated to RGB and resized.

    Args:
        root: the ``att_faces`` folder.
        image_size: output (height, width).

    Raises:
        DataError: missing folder, no ``sN`` folders, or an empty one.
    """

    def __init__(self, root: str | Path, image_size: tuple[int, int] = (112, 96)) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: AT&T folder not found")
        folders = sorted((p for p in self.root.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)),
                         key=_numeric_key)
        if not folders:
            raise DataError(f"{self.root}: no sN identity folders (expected ROOT/s1/1.pgm)")
        self.image_size = image_size
        self.fit = "resize"
        self.identity_names = [p.name for p in folders]
        self.paths = []
        labels: list[int] = []
        for label, folder in enumerate(folders):
            files = sorted(folder.glob("*.pgm"), key=_numeric_key)
            if not files:
                raise DataError(f"{folder}: no .pgm images")
            self.paths.extend(files)
            labels.extend([label] * len(files))
        self.labels = np.asarray(labels, dtype=np.int64)

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def load_image(self, index: int) -> Image.Image:
        return load_image_file(self.paths[index])


def real_subset(
    dataset: LabelledImageDataset,
    num_identities: int,
    samples_per_identity: int,
    exclude_identities: Collection[str] = (),
    seed: int | None = None,
) -> LabelSubset:
    """The Real_N_S choice: ``num_identities`` identities with ``samples_per_identity`` images each.

    Only identities with at least ``samples_per_identity`` images and not excluded
    are eligible. With ``seed=None`` the first identities (sorted names) and their
    first images (sorted paths) are taken, as "the first 2K identities"; with a
    seed, both choices are random but fixed by the seed. Classes are renumbered
    ``0..N-1`` in name order.

    Args:
        dataset: a real dataset with ``labels`` and ``identity_names``.
        num_identities: N.
        samples_per_identity: S.
        exclude_identities: identity names never to use (held out for evaluation).
        seed: None for "first", else the seed of the random choice.

    Raises:
        ConfigError: N or S not positive.
        DataError: fewer eligible identities than N.
    """
    if num_identities <= 0 or samples_per_identity <= 0:
        raise ConfigError(f"real subset: N={num_identities}, S={samples_per_identity}; both must be positive")
    excluded = set(exclude_identities)
    order = np.argsort(dataset.labels, kind="stable")  # by class, then dataset order
    starts = np.searchsorted(dataset.labels[order], np.arange(dataset.num_classes + 1))
    eligible = [c for c in range(dataset.num_classes)
                if dataset.identity_names[c] not in excluded and starts[c + 1] - starts[c] >= samples_per_identity]
    if len(eligible) < num_identities:
        raise DataError(f"real subset: only {len(eligible)} identities have {samples_per_identity}+ images "
                        f"and are not excluded, fewer than the {num_identities} asked for")
    if seed is None:
        chosen = eligible[:num_identities]
    else:
        rng = np.random.default_rng([seed, 0, SUBSET_STREAM])
        chosen = sorted(int(c) for c in rng.choice(eligible, size=num_identities, replace=False))
    indices = []
    for c in chosen:
        members = order[starts[c]:starts[c + 1]]
        if seed is None:
            picked = members[:samples_per_identity]
        else:
            rng = np.random.default_rng([seed, 1, c, SUBSET_STREAM])
            picked = np.sort(rng.choice(members, samples_per_identity, replace=False))
        indices.append(picked)
    return LabelSubset(dataset, np.concatenate(indices), chosen)


# -- CFP evaluation folds ------------------------------------------------------------------------
def cfp_fold_identities(root: str | Path) -> dict[int, list[str]]:
    """Identity folder names appearing in each CFP evaluation fold (FF and FP protocols together).

    Args:
        root: the CFP folder (holding ``Protocol/``).

    Returns:
        ``{fold (1..10): sorted identity names}``.

    Raises:
        DataError: a missing or malformed protocol file (named).
    """
    protocol = Path(root) / "Protocol"
    images = {kind: _read_pair_list(protocol / name) for kind, name in _PAIR_LISTS.items()}
    folds: dict[int, set[str]] = {fold: set() for fold in CFP_FOLDS}
    for setting, second in (("FF", "F"), ("FP", "P")):
        for fold in CFP_FOLDS:
            for kind in ("same", "diff"):
                path = protocol / "Split" / setting / f"{fold:02d}" / f"{kind}.txt"
                for first_index, second_index in _read_pairs(path):
                    for table, index in ((images["F"], first_index), (images[second], second_index)):
                        if index not in table:
                            raise DataError(f"{path}: image index {index} is not in the pair list")
                        folds[fold].add(table[index])
    return {fold: sorted(names) for fold, names in folds.items()}


def cfp_split(root: str | Path, test_folds: Collection[int]) -> tuple[list[str], list[str]]:
    """Identity names for training and for testing, given the CFP folds used for testing.

    Args:
        root: the CFP folder.
        test_folds: fold numbers (1..10) whose identities are held out.

    Returns:
        (train identity names, test identity names), both sorted and disjoint.

    Raises:
        ConfigError: a fold number outside 1..10.
    """
    bad = [f for f in test_folds if f not in CFP_FOLDS]
    if bad:
        raise ConfigError(f"cfp test folds: {bad} outside 1..10")
    folds = cfp_fold_identities(root)
    test = sorted({name for fold in test_folds for name in folds[fold]})
    everyone = sorted({name for names in folds.values() for name in names})
    held = set(test)
    return [name for name in everyone if name not in held], test


def _read_pair_list(path: Path) -> dict[int, str]:
    """``{1-based image index: identity folder name}`` from a CFP pair list."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DataError(f"{path}: cannot read CFP pair list ({error.strerror or error})") from None
    table = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        parts = Path(fields[-1]).parts
        try:
            table[int(fields[0])] = parts[parts.index("Images") + 1]
        except (ValueError, IndexError):
            raise DataError(f"{path}: line {number} is {line!r}, expected 'N ../Data/Images/NNN/view/NN.jpg'") from None
    return table


def _read_pairs(path: Path) -> list[tuple[int, int]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DataError(f"{path}: cannot read CFP split file ({error.strerror or error})") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            first, second = (int(v) for v in line.split(","))
        except ValueError:
            raise DataError(f"{path}: line {number} is {line!r}, expected 'i,j'") from None
        pairs.append((first, second))
    return pairs
