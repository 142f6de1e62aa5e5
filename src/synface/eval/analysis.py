"""Embedding-space diagnostics of datasets: the MDS figure and intra/inter-class variation.

The SynFace paper explains the synthetic-to-real gap by class variation: synthetic
classes are tighter (small intra-class variation) than real ones. Two tools measure
this on embeddings, so they work with any model and are testable without one:

- :func:`plot_mds` -- the paper's Fig. 3: a few classes of several datasets embedded
  in 2-D by metric MDS in one plot (marker per dataset, colour per class);
- :func:`class_variation` -- per class, the mean cosine distance of its samples to the
  class centre (intra-class), and the cosine distances between class centres,
  including each centre's nearest other centre (inter-class); :func:`plot_variation`
  and :func:`variation_table` compare datasets.

Embeddings are L2-normalised first; a class centre is the normalised mean direction.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synface.eval.metrics import l2_normalize
from synface.eval.plots import new_figure, save_figure

_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class ClassVariation:
    """Intra- and inter-class variation of one dataset's embeddings."""

    classes: np.ndarray  # (C,) class labels, sorted
    counts: np.ndarray  # (C,) samples per class
    intra: np.ndarray  # (C,) mean cosine distance of a class's samples to its centre
    centre_distances: np.ndarray  # (C, C) cosine distance between class centres

    @property
    def nearest_centre(self) -> np.ndarray:
        """(C,) cosine distance from each class centre to the nearest other one."""
        distances = self.centre_distances + np.diag(np.full(len(self.classes), np.inf))
        return distances.min(axis=1)

    def summary(self) -> dict[str, float]:
        """Dataset-level numbers: mean intra, mean and nearest inter, and their ratio."""
        count = len(self.classes)
        off_diagonal = self.centre_distances[~np.eye(count, dtype=bool)]
        nearest = float(self.nearest_centre.mean())
        intra = float(self.intra.mean())
        return {
            "classes": count,
            "samples": int(self.counts.sum()),
            "intra_mean": intra,
            "intra_median": float(np.median(self.intra)),
            "inter_mean": float(off_diagonal.mean()),
            "nearest_centre_mean": nearest,
            "intra_over_nearest": intra / nearest if nearest > 0 else float("inf"),
        }


def class_centres(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted class labels (C,) and their unit-length mean directions (C, D)."""
    unit = l2_normalize(embeddings)
    classes, inverse = np.unique(np.asarray(labels), return_inverse=True)
    sums = np.zeros((len(classes), unit.shape[1]))
    np.add.at(sums, inverse, unit)
    return classes, l2_normalize(sums)


def class_variation(embeddings: np.ndarray, labels: np.ndarray) -> ClassVariation:
    """Intra- and inter-class variation of labelled embeddings.

    Args:
        embeddings: (N, D) embeddings (normalised here).
        labels: (N,) class of each embedding; at least 2 classes.

    Returns:
        The per-class numbers.

    Raises:
        ValueError: fewer than 2 classes or mismatched lengths.
    """
    labels = np.asarray(labels)
    if len(labels) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels")
    unit = l2_normalize(embeddings)
    classes, centres = class_centres(unit, labels)
    if len(classes) < 2:
        raise ValueError("class variation needs at least 2 classes")
    inverse = np.searchsorted(classes, labels)
    to_centre = 1.0 - np.sum(unit * centres[inverse], axis=1)  # (N,)
    counts = np.bincount(inverse, minlength=len(classes))
    intra = np.bincount(inverse, weights=to_centre, minlength=len(classes)) / counts
    centre_distances = 1.0 - centres @ centres.T  # (C, C)
    np.fill_diagonal(centre_distances, 0.0)
    return ClassVariation(classes, counts, intra, centre_distances)


def variation_table(variations: Mapping[str, ClassVariation]) -> str:
    """A plain-text table of :meth:`ClassVariation.summary` per dataset."""
    keys = ("classes", "samples", "intra_mean", "inter_mean", "nearest_centre_mean",
            "intra_over_nearest")
    rows = [["dataset", *keys]]
    for name, variation in variations.items():
        summary = variation.summary()
        rows.append([name, *(f"{summary[key]:.4f}" if isinstance(summary[key], float)
                             else str(summary[key]) for key in keys)])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


def plot_variation(variations: Mapping[str, ClassVariation], path: str | os.PathLike[str]) -> None:
    """Box plots per dataset of intra-class variation and nearest-centre distance, as PNG."""
    names = list(variations)
    figure = new_figure(max(6.0, 1.6 * len(names) + 3), 4)
    left, right = figure.subplots(1, 2)
    left.boxplot([variations[name].intra for name in names])
    left.set_title("intra-class: mean cosine distance to class centre", fontsize="medium")
    right.boxplot([variations[name].nearest_centre for name in names])
    right.set_title("inter-class: cosine distance to nearest centre", fontsize="medium")
    for axis in (left, right):
        axis.set_xticks(range(1, len(names) + 1), names)
        axis.set_ylabel("cosine distance")
        axis.grid(True, axis="y", alpha=0.3)
    save_figure(figure, path)


def select_classes(
    labels: np.ndarray, datasets: np.ndarray, classes_per_dataset: int = 5,
    samples_per_class: int = 30, seed: int = 0,
) -> np.ndarray:
    """Row indices of a few classes of each dataset (random, seeded), for :func:`plot_mds`."""
    rng = np.random.default_rng(seed)
    labels, datasets = np.asarray(labels), np.asarray(datasets)
    rows = []
    for dataset in np.unique(datasets):
        in_dataset = datasets == dataset
        classes = np.unique(labels[in_dataset])
        for label in np.sort(rng.permutation(classes)[:classes_per_dataset]):
            members = np.flatnonzero(in_dataset & (labels == label))
            rows.append(np.sort(rng.permutation(members)[:samples_per_class]))
    return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)


def mds_coordinates(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D metric MDS of L2-normalised embeddings, (N, 2).

    On unit vectors the Euclidean distance is ``sqrt(2 - 2 cos)``, a monotonic function
    of the cosine distance, so the map preserves the verification geometry.
    """
    from sklearn.manifold import MDS

    options: dict[str, Any] = {"n_components": 2, "random_state": seed, "n_init": 4}
    if "init" in inspect.signature(MDS).parameters:  # scikit-learn >= 1.8: start from classical MDS
        options.update(init="classical_mds", n_init=1)
    return MDS(**options).fit_transform(l2_normalize(embeddings))


def plot_mds(
    embeddings: np.ndarray, labels: np.ndarray, datasets: Sequence[str] | np.ndarray,
    path: str | os.PathLike[str], seed: int = 0, title: str = "MDS of face embeddings",
) -> np.ndarray:
    """The paper's Fig. 3: classes of several datasets in one 2-D MDS plot, saved as PNG.

    Args:
        embeddings: (N, D) embeddings (a few classes per dataset; see :func:`select_classes`).
        labels: (N,) class of each row, within its dataset.
        datasets: (N,) dataset name of each row; one marker and legend entry per dataset.
        path: the PNG to write.
        seed: MDS seed.
        title: figure title.

    Returns:
        (N, 2) MDS coordinates.
    """
    labels, datasets = np.asarray(labels), np.asarray(datasets)
    coordinates = mds_coordinates(embeddings, seed)
    figure = new_figure(6, 6)
    axis = figure.add_subplot()
    for number, dataset in enumerate(dict.fromkeys(datasets.tolist())):
        marker = _MARKERS[number % len(_MARKERS)]
        in_dataset = datasets == dataset
        for shade, label in enumerate(np.unique(labels[in_dataset])):
            rows = in_dataset & (labels == label)
            axis.scatter(coordinates[rows, 0], coordinates[rows, 1], marker=marker, s=22,
                         color=f"C{shade % 10}", alpha=0.8, edgecolors="none")
        axis.scatter([], [], marker=marker, color="0.35", label=str(dataset))
    axis.legend(title="dataset", loc="best", fontsize="small")
    axis.set_title(title)
    axis.set_xticks([])
    axis.set_yticks([])
    save_figure(figure, path)
    return coordinates
