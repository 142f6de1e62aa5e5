"""Atomic file writes: a reader (or a resumed job) never sees a half-written file.

Every writer goes to a temporary file in the destination folder, flushes it to
disk, then renames it over the final name; ``os.replace`` is atomic on POSIX.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from synface.errors import DataError, SynfaceError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary file for writing that appears at ``path`` only when closed cleanly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the usual mode
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json_document(
    path: str | os.PathLike[str],
    what: str,
    expected_format: str | None = None,
    error: type[SynfaceError] = DataError,
) -> Any:
    """Read a JSON file synface wrote, with errors that name the file and what it should be.

    Args:
        path: the file.
        what: what the file holds, for messages ("dataset manifest", "checkpoint metadata").
        expected_format: when given, the document must be a mapping whose ``format`` is this.
        error: the exception type to raise (a :class:`SynfaceError` subclass).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise error(f"{path}: unreadable or corrupt {what} ({problem})") from None
    if expected_format is not None:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        if found != expected_format:
            raise error(f"{path}: {what} has format {found!r}, expected format {expected_format!r}")
    return document


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> int:
    """Delete temporaries left by a killed writer in ``folder``; returns how many."""
    count = 0
    for tmp in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            count += 1
    return count
