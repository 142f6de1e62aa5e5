"""Reading LFW's official pair lists (view 2 ``pairs.txt``, view 1 ``pairsDev*.txt``).

View 2 ``pairs.txt`` starts with ``"<folds>\\t<n>"`` (officially ``10\\t300``), then for
each fold ``n`` same-person lines ``name\\tn1\\tn2`` followed by ``n`` different-person
lines ``name1\\tn1\\tname2\\tn2``. Each block of 2n lines is one official fold.

View 1 ``pairsDevTrain.txt`` (1100) / ``pairsDevTest.txt`` (500) starts with a single
count ``n``, then ``n`` same and ``n`` different lines. View 1 has no folds; for
accuracy +- std the same lines and the different lines are each cut into 10
consecutive blocks and block ``k`` of both forms fold ``k`` (balanced folds, in file
order, the way view 2's folds are laid out).

Image ``k`` of ``name`` is ``<data>/name/name_%04d.jpg``. ``data`` should hold aligned
crops (``synface align`` output, same layout; a ``.png`` of the same name is accepted);
original 250x250 LFW images only work with a model that takes that size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synface.errors import DataError
from synface.eval.protocols import (
    ImageTable,
    PairSet,
    find_pairs_file,
    register_protocol,
    require_folder,
    resolve_image,
)


@dataclass(frozen=True)
class LfwPair:
    """One line of an LFW pair list."""

    name1: str
    number1: int
    name2: str
    number2: int
    line: int

    @property
    def issame(self) -> bool:
        """Whether the line is a same-person line."""
        return self.name1 == self.name2


def _parse_int(text: str, where: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DataError(f"{where}: {what} {text!r} is not an integer") from None
    if value < 0:
        raise DataError(f"{where}: {what} {value} is negative")
    return value


def _parse_pair_line(fields: list[str], same: bool, where: str, line: int) -> LfwPair:
    if same:
        if len(fields) != 3:
            raise DataError(f"{where}: expected a same-person line 'name n1 n2', got {fields}")
        name, first, second = fields
        return LfwPair(name, _parse_int(first, where, "image number"), name,
                       _parse_int(second, where, "image number"), line)
    if len(fields) != 4:
        raise DataError(
            f"{where}: expected a different-person line 'name1 n1 name2 n2', got {fields}"
        )
    name1, first, name2, second = fields
    return LfwPair(name1, _parse_int(first, where, "image number"), name2,
                   _parse_int(second, where, "image number"), line)


def _numbered_lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines of ``path`` split on whitespace, with 1-based line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read LFW pairs file {path}: {error}") from None
    return [(number, line.split()) for number, line in enumerate(text.splitlines(), 1)
            if line.strip()]


def read_lfw_pairs(path: str | os.PathLike[str]) -> tuple[list[LfwPair], np.ndarray, int]:
    """Parse a view 1 or view 2 pair list (told apart by the header's field count).

    Args:
        path: ``pairs.txt``, ``pairsDevTrain.txt`` or ``pairsDevTest.txt``.

    Returns:
        ``(pairs, folds, view)``: the lines in file order, their (P,) int64 folds, and
        the view (1 or 2) the header announced.

    Raises:
        DataError: unreadable file, bad header, a malformed or misplaced line, or a
            line count that does not match the header (the message gives the line).
    """
    path = Path(path)
    lines = _numbered_lines(path)
    if not lines:
        raise DataError(f"{path}: empty LFW pairs file")
    header_line, header = lines[0]
    where = f"{path}:{header_line}"
    if len(header) == 2:  # view 2: "<folds> <n>"
        num_folds = _parse_int(header[0], where, "fold count")
        per_block = _parse_int(header[1], where, "pairs per fold")
    elif len(header) == 1:  # view 1: "<n>"
        num_folds, per_block = 1, _parse_int(header[0], where, "pair count")
    else:
        raise DataError(f"{where}: header must be '<folds> <pairs per fold>' or '<count>'")
    body = lines[1:]
    expected = 2 * num_folds * per_block
    if len(body) != expected:
        at = body[expected][0] if len(body) > expected else (body[-1][0] if body else header_line)
        raise DataError(
            f"{path}:{at}: header {' '.join(header)!r} announces {expected} pair lines, "
            f"the file has {len(body)}"
        )
    pairs = []
    for position, (number, fields) in enumerate(body):
        same = (position // per_block) % 2 == 0
        pairs.append(_parse_pair_line(fields, same, f"{path}:{number}", number))
    if num_folds == 1:  # view 1: 10 balanced blocks of the same lines and of the different lines
        within = np.arange(per_block) * min(10, per_block) // max(per_block, 1)
        folds = np.concatenate([within, within])
    else:
        folds = np.repeat(np.arange(num_folds), 2 * per_block)
    return pairs, np.asarray(folds, dtype=np.int64), 1 if num_folds == 1 else 2


def lfw_image_path(data: Path, name: str, number: int) -> Path:
    """``<data>/name/name_%04d.jpg``, LFW's file naming."""
    return data / name / f"{name}_{number:04d}.jpg"


def pairs_to_pair_set(
    pairs: list[LfwPair], folds: np.ndarray, data: Path, pairs_file: Path, name: str
) -> PairSet:
    """Resolve the images of parsed LFW pairs (every one must exist) into a PairSet."""
    table = ImageTable()
    indices = np.zeros((len(pairs), 2), dtype=np.int64)
    for row, pair in enumerate(pairs):
        for column, (person, number) in enumerate(
            ((pair.name1, pair.number1), (pair.name2, pair.number2))
        ):
            listed = lfw_image_path(data, person, number)
            where = f"{pairs_file}:{pair.line}"
            indices[row, column] = table.index(listed, resolve_image, listed, where)
    issame = np.array([pair.issame for pair in pairs], dtype=bool)
    return PairSet(name, table.images, indices, issame, folds, source=str(pairs_file))


@register_protocol("lfw", "LFW view 2: --data aligned LFW folder, --pairs pairs.txt (10 folds)")
def load_lfw(
    data: str | os.PathLike[str] | None, pairs: str | os.PathLike[str] | None = None
) -> PairSet:
    """LFW view 2 (the 6000-pair test protocol) from ``pairs.txt`` and an image folder.

    Args:
        data: folder with ``name/name_%04d.jpg`` (aligned crops expected).
        pairs: ``pairs.txt``; by default looked up in ``data`` and its parent.

    Returns:
        The pair set with the 10 official folds.

    Raises:
        DataError: missing/malformed pairs file or a listed image that does not exist.
    """
    folder = require_folder(data, "lfw")
    pairs_file = find_pairs_file(pairs, folder, "pairs.txt", "lfw")
    parsed, folds, view = read_lfw_pairs(pairs_file)
    if view != 2:
        raise DataError(f"{pairs_file}: a view 1 list (single-count header); use protocol lfw-view1")
    return pairs_to_pair_set(parsed, folds, folder, pairs_file, "lfw")


@register_protocol(
    "lfw-view1", "LFW view 1: --data aligned LFW folder, --pairs pairsDevTest.txt (default)"
)
def load_lfw_view1(
    data: str | os.PathLike[str] | None, pairs: str | os.PathLike[str] | None = None
) -> PairSet:
    """LFW view 1 (development lists) from ``pairsDevTest.txt`` or ``pairsDevTrain.txt``.

    Args:
        data: folder with ``name/name_%04d.jpg`` (aligned crops expected).
        pairs: the list; by default ``pairsDevTest.txt`` in ``data`` or its parent.

    Returns:
        The pair set, with 10 balanced folds in file order (see the module docstring).

    Raises:
        DataError: missing/malformed pairs file or a listed image that does not exist.
    """
    folder = require_folder(data, "lfw-view1")
    pairs_file = find_pairs_file(pairs, folder, "pairsDevTest.txt", "lfw-view1")
    parsed, folds, view = read_lfw_pairs(pairs_file)
    if view != 1:
        raise DataError(f"{pairs_file}: a view 2 list ('<folds> <n>' header); use protocol lfw")
    return pairs_to_pair_set(parsed, folds, folder, pairs_file, "lfw-view1")
