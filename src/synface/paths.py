"""Where synface keeps user-level files (imported face models, network weights)."""

from __future__ import annotations

import os
from pathlib import Path


def synface_home() -> Path:
    """The user cache folder: ``$SYNFACE_HOME``, else ``~/.cache/synface``."""
    env = os.environ.get("SYNFACE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "synface"


def assets_dir(kind: str) -> Path:
    """Folder for one kind of asset, e.g. ``assets_dir("facemodels")``."""
    return synface_home() / kind
