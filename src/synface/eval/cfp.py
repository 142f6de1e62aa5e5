"""Reading the CFP (Celebrities in Frontal-Profile) verification protocol, FF and FP.

The official layout::

    CFP/Protocol/Pair_list_F.txt      "<k> ../Data/Images/001/frontal/01.jpg", k = 1..5000
    CFP/Protocol/Pair_list_P.txt      "<k> ../Data/Images/001/profile/01.jpg", k = 1..2000
    CFP/Protocol/Split/FF/01..10/same.txt, diff.txt     lines "i,j" (350 + 350 per fold)
    CFP/Protocol/Split/FP/01..10/same.txt, diff.txt
    CFP/Data/Images/NNN/{frontal,profile}/NN.jpg

In FF both indices refer to the frontal list; in FP the first is frontal and the
second profile. List paths are relative to ``Protocol/``. Images are read from
``data`` (the CFP root, or an aligned copy with the same ``Data/Images`` layout, where a
``.png`` of the same name is accepted); the protocol files come from ``protocol``
(a ``Protocol`` folder or a CFP root holding one), else from ``data/Protocol``.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import numpy as np

from synface.errors import DataError
from synface.eval.protocols import ImageTable, PairSet, register_protocol, require_folder, resolve_image

VARIANTS = {"FF": ("F", "F"), "FP": ("F", "P")}


def find_protocol_folder(data: Path, protocol: str | os.PathLike[str] | None) -> Path:
    """The ``Protocol`` folder: ``protocol`` (itself or its ``Protocol/``), else ``data/Protocol``."""
    candidates = [data / "Protocol"] if protocol is None else [Path(protocol) / "Protocol",
                                                               Path(protocol)]
    for folder in candidates:
        if (folder / "Split").is_dir():
            return folder
    shown = " or ".join(str(folder) for folder in candidates)
    raise DataError(f"cfp: no CFP protocol folder (with Split/) at {shown}; pass it with --pairs")


def read_pair_list(path: Path) -> dict[int, str]:
    """Parse ``Pair_list_{F,P}.txt`` into index -> path relative to ``Protocol/``.

    Raises:
        DataError: unreadable file, or a line that is not ``<index> <path>`` (with its number).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read CFP image list {path}: {error}") from None
    entries: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise DataError(f"{path}:{number}: expected '<index> <image path>', got {line!r}")
        index = int(fields[0])
        if index in entries:
            raise DataError(f"{path}:{number}: image index {index} appears twice")
        entries[index] = fields[1]
    if not entries:
        raise DataError(f"{path}: empty CFP image list")
    return entries


def read_split_file(path: Path) -> list[tuple[int, int, int]]:
    """Parse a ``same.txt`` / ``diff.txt`` into ``(i, j, line number)`` triples.

    Raises:
        DataError: unreadable file, or a line that is not ``i,j`` (with its number).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read CFP split file {path}: {error}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 2 or not all(field.isdigit() for field in fields):
            raise DataError(f"{path}:{number}: expected 'i,j' with two image indices, got {line!r}")
        rows.append((int(fields[0]), int(fields[1]), number))
    return rows


def image_path(data: Path, relative: str, listed_in: str) -> Path:
    """A list path (relative to ``Protocol/``) as a path under the CFP root ``data``."""
    inside = posixpath.normpath(posixpath.join("Protocol", relative.replace("\\", "/")))
    if inside.startswith("../") or inside == ".." or posixpath.isabs(inside):
        raise DataError(f"{listed_in}: image path {relative!r} points outside the CFP folder")
    return data / inside


def fold_folders(split: Path) -> list[Path]:
    """The numbered fold folders of ``Split/FF`` or ``Split/FP``, in numeric order."""
    if not split.is_dir():
        raise DataError(f"cfp: split folder {split} does not exist")
    folders = [folder for folder in split.iterdir() if folder.is_dir() and folder.name.isdigit()]
    if len(folders) < 2:
        raise DataError(f"cfp: {split} needs at least 2 numbered fold folders, found {len(folders)}")
    return sorted(folders, key=lambda folder: int(folder.name))


def load_cfp(
    data: str | os.PathLike[str] | None,
    variant: str,
    protocol: str | os.PathLike[str] | None = None,
) -> PairSet:
    """Read CFP-FF or CFP-FP with its official folds (same pairs, then different, per fold).

    Args:
        data: CFP root holding ``Data/Images`` (original or aligned copy).
        variant: ``"FF"`` or ``"FP"``.
        protocol: a ``Protocol`` folder or a CFP root with one; default ``data/Protocol``.

    Returns:
        The pair set named ``cfp-ff`` or ``cfp-fp``.

    Raises:
        DataError: missing or malformed protocol files, an index not in the image
            list, or a listed image that does not exist.
    """
    name = f"cfp-{variant.lower()}"
    root = require_folder(data, name)
    protocol_folder = find_protocol_folder(root, protocol)
    lists = {kind: read_pair_list(protocol_folder / f"Pair_list_{kind}.txt")
             for kind in set(VARIANTS[variant])}
    table = ImageTable()
    pairs, issame, folds = [], [], []
    for fold, folder in enumerate(fold_folders(protocol_folder / "Split" / variant)):
        for kind, same in (("same", True), ("diff", False)):
            split_file = folder / f"{kind}.txt"
            for first, second, number in read_split_file(split_file):
                where = f"{split_file}:{number}"
                row = []
                for index, list_kind in zip((first, second), VARIANTS[variant]):
                    if index not in lists[list_kind]:
                        raise DataError(f"{where}: index {index} is not in Pair_list_{list_kind}.txt")
                    listed = image_path(root, lists[list_kind][index], where)
                    row.append(table.index(listed, resolve_image, listed, where))
                pairs.append(row)
                issame.append(same)
                folds.append(fold)
    return PairSet(name, table.images, np.array(pairs, dtype=np.int64).reshape(-1, 2),
                   np.array(issame, dtype=bool), np.array(folds, dtype=np.int64),
                   source=str(protocol_folder))


@register_protocol("cfp-ff", "CFP frontal-frontal: --data CFP root (or aligned copy), --pairs Protocol")
def load_cfp_ff(
    data: str | os.PathLike[str] | None, pairs: str | os.PathLike[str] | None = None
) -> PairSet:
    """CFP-FF; see :func:`load_cfp` (``pairs`` is the protocol folder)."""
    return load_cfp(data, "FF", pairs)


@register_protocol("cfp-fp", "CFP frontal-profile: --data CFP root (or aligned copy), --pairs Protocol")
def load_cfp_fp(
    data: str | os.PathLike[str] | None, pairs: str | os.PathLike[str] | None = None
) -> PairSet:
    """CFP-FP; see :func:`load_cfp` (``pairs`` is the protocol folder)."""
    return load_cfp(data, "FP", pairs)
