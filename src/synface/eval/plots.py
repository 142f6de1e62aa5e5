"""ROC curve figures of verification results, saved as PNG with matplotlib's Agg renderer."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from synface.eval.metrics import RocCurve
from synface.io import atomic_write_bytes


def new_figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg renderer, outside pyplot's global state."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Render ``figure`` to PNG bytes and write them to ``path`` atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_roc(
    curves: Sequence[tuple[str, RocCurve]],
    path: str | os.PathLike[str],
    title: str = "Verification ROC",
    log_fpr: bool = True,
) -> None:
    """Draw ROC curves (TPR against FPR) in one figure.

    Args:
        curves: ``(label, curve)`` pairs, one line each.
        path: the PNG to write.
        title: figure title.
        log_fpr: logarithmic FPR axis (the usual view of the low-FAR region); points
            with FPR 0 cannot be shown there and are left out.
    """
    figure = new_figure(6, 5)
    axis = figure.add_subplot()
    lowest = 1.0
    for label, curve in curves:
        keep = curve.fpr > 0 if log_fpr else np.ones(len(curve.fpr), dtype=bool)
        axis.plot(curve.fpr[keep], curve.tpr[keep], label=label, linewidth=1.5)
        if log_fpr and keep.any():
            lowest = min(lowest, float(curve.fpr[keep].min()))
    if log_fpr:
        axis.set_xscale("log")
        axis.set_xlim(lowest, 1.0)
    else:
        axis.set_xlim(0.0, 1.0)
        axis.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    axis.set_ylim(0.0, 1.01)
    axis.set_xlabel("false positive rate (FAR)")
    axis.set_ylabel("true positive rate (TAR)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    if curves:
        axis.legend(loc="lower right", fontsize="small")
    save_figure(figure, path)
