"""Progress bars for long user-facing loops (generation, training epochs, evaluation).

Bars go to stderr, switch themselves off when stderr is not a terminal, and can be
silenced for the whole process with :func:`set_quiet` (the CLI's ``--quiet``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every progress bar of this process off (or back on)."""
    global _quiet
    _quiet = quiet


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar that honours :func:`set_quiet`; ``disable=None`` hides it off a TTY."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    kwargs["disable"] = True if _quiet else kwargs.get("disable")
    return tqdm(iterable, **kwargs)
