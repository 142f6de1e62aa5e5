"""Reading a generic verification pair list from CSV: ``path1,path2,label[,fold]``.

The first row is the header, naming the columns ``path1``, ``path2``, ``label`` and
optionally ``fold`` (in that order). ``label`` is 1 (same person) or 0 (different);
``true``/``false`` are accepted too. Relative paths are resolved against the image
root (``--data``) when one is given, else against the CSV's own folder. With a
``fold`` column the folds are its distinct values in sorted order (at least 2);
without one, pairs are split into insightface's contiguous 10 folds.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from synface.errors import DataError, SynfaceError
from synface.eval.metrics import contiguous_folds
from synface.eval.protocols import ImageTable, PairSet, register_protocol, resolve_image

_LABELS = {"1": True, "0": False, "true": True, "false": False}
_HEADER = ["path1", "path2", "label"]


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read pairs CSV {path}: {error}") from None


def _parse_row(row: list[str], width: int, where: str) -> tuple[str, str, bool, int | None]:
    """One data row as ``(path1, path2, issame, fold or None)``."""
    if len(row) != width:
        raise DataError(f"{where}: expected {width} fields, got {len(row)}: {row}")
    first, second = row[0].strip(), row[1].strip()
    if not first or not second:
        raise DataError(f"{where}: empty image path")
    label = _LABELS.get(row[2].strip().lower())
    if label is None:
        raise DataError(f"{where}: label {row[2]!r} must be 1 or 0")
    if width == 3:
        return first, second, label, None
    try:
        return first, second, label, int(row[3])
    except ValueError:
        raise DataError(f"{where}: fold {row[3]!r} is not an integer") from None


def read_pairs_csv(
    path: str | os.PathLike[str], image_root: str | os.PathLike[str] | None = None
) -> PairSet:
    """Read a pairs CSV into a PairSet (every listed image must exist).

    Args:
        path: the CSV file.
        image_root: folder relative paths are resolved against; default the CSV's folder.

    Returns:
        The pair set named after the CSV file.

    Raises:
        DataError: unreadable file, bad header, a malformed row (with its line number),
            too few pairs or folds, or a listed image that does not exist.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    rows = [(number, row) for number, row in _read_rows(path) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path}: empty pairs CSV; expected a header 'path1,path2,label[,fold]'")
    header_line, header = rows[0]
    columns = [cell.strip().lower() for cell in header]
    if columns not in (_HEADER, _HEADER + ["fold"]):
        raise DataError(f"{path}:{header_line}: header must be 'path1,path2,label[,fold]', "
                        f"got {','.join(header)!r}")
    table = ImageTable()
    pairs, issame, fold_values = [], [], []
    for number, row in rows[1:]:
        first, second, label, fold = _parse_row(row, len(columns), f"{path}:{number}")
        pairs.append([table.index(listed.resolve(), resolve_image, listed, f"{path}:{number}")
                      for listed in (root / first, root / second)])
        issame.append(label)
        if fold is not None:
            fold_values.append(fold)
    if len(pairs) < 2:
        raise DataError(f"{path}: {len(pairs)} pairs; cross-validation needs more")
    if fold_values:
        distinct, folds = np.unique(np.array(fold_values), return_inverse=True)
        if len(distinct) < 2:
            raise DataError(f"{path}: the fold column has a single value; need at least 2 folds")
    else:
        folds = contiguous_folds(len(pairs), min(10, len(pairs)))
    return PairSet(path.stem, table.images, np.array(pairs, dtype=np.int64), np.array(issame),
                   np.asarray(folds, dtype=np.int64), source=str(path))


@register_protocol("pairs", "pairs CSV 'path1,path2,label[,fold]': --pairs FILE.csv [--data ROOT]")
def load_pairs_csv(
    data: str | os.PathLike[str] | None, pairs: str | os.PathLike[str] | None = None
) -> PairSet:
    """The ``pairs`` protocol: ``pairs`` is the CSV, ``data`` the optional image root."""
    if pairs is None:
        raise SynfaceError("protocol 'pairs' needs --pairs FILE.csv")
    if not Path(pairs).is_file():
        raise DataError(f"pairs CSV {pairs} does not exist")
    return read_pairs_csv(pairs, data)
