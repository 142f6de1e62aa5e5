"""Intra/inter-class variation against slow loops, and the MDS and variation figures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synface.eval.analysis import (
    class_variation,
    mds_coordinates,
    plot_mds,
    plot_variation,
    select_classes,
    variation_table,
)


def clusters(num_classes=6, per_class=8, dim=12, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim))
    labels = np.repeat(np.arange(num_classes) * 10, per_class)  # labels need not be 0..C-1
    embeddings = centres[labels // 10] + spread * rng.normal(size=(len(labels), dim))
    return embeddings, labels


def unit(vector):
    return vector / np.linalg.norm(vector)


def test_class_variation_matches_slow_loops():
    embeddings, labels = clusters()
    variation = class_variation(embeddings, labels)
    classes = sorted(set(labels.tolist()))
    assert variation.classes.tolist() == classes
    centres = {}
    for position, label in enumerate(classes):
        members = [unit(e) for e, y in zip(embeddings, labels) if y == label]
        centre = unit(sum(members))
        centres[label] = centre
        expected = sum(1.0 - float(m @ centre) for m in members) / len(members)
        assert variation.intra[position] == pytest.approx(expected, abs=1e-12)
        assert variation.counts[position] == len(members)
    for i, a in enumerate(classes):
        others = []
        for j, b in enumerate(classes):
            distance = 0.0 if a == b else 1.0 - float(centres[a] @ centres[b])
            assert variation.centre_distances[i, j] == pytest.approx(distance, abs=1e-12)
            if a != b:
                others.append(distance)
        assert variation.nearest_centre[i] == pytest.approx(min(others), abs=1e-12)
    summary = variation.summary()
    assert summary["intra_mean"] == pytest.approx(np.mean(variation.intra))
    distances = variation.centre_distances
    off_diagonal = [d for i, row in enumerate(distances) for j, d in enumerate(row) if i != j]
    assert summary["inter_mean"] == pytest.approx(np.mean(off_diagonal))


def test_tighter_classes_have_smaller_intra_variation():
    tight = class_variation(*clusters(spread=0.1))
    loose = class_variation(*clusters(spread=1.0))
    assert tight.summary()["intra_mean"] < loose.summary()["intra_mean"]
    assert tight.summary()["intra_over_nearest"] < loose.summary()["intra_over_nearest"]
    table = variation_table({"synthetic": tight, "real": loose}).splitlines()
    assert table[0].split()[0] == "dataset" and table[1].split()[0] == "synthetic"


def test_class_variation_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_variation(np.ones((3, 4)), np.zeros(3))


def test_mds_keeps_clusters_apart_and_figures(tmp_path):
    syn, syn_labels = clusters(num_classes=3, per_class=6, spread=0.05, seed=1)
    real, real_labels = clusters(num_classes=3, per_class=6, spread=0.4, seed=2)
    embeddings = np.concatenate([syn, real])
    labels = np.concatenate([syn_labels, real_labels])
    datasets = np.array(["synthetic"] * len(syn) + ["real"] * len(real))
    rows = select_classes(labels, datasets, classes_per_dataset=3, samples_per_class=5, seed=0)
    assert len(rows) == 30 and np.array_equal(rows, select_classes(labels, datasets, 3, 5, seed=0))
    coordinates = plot_mds(embeddings[rows], labels[rows], datasets[rows], tmp_path / "mds.png")
    assert coordinates.shape == (30, 2)
    # a tight synthetic class stays tighter in the map than the spacing between its classes
    first = rows[:5]  # one synthetic class (select_classes goes dataset by dataset, class by class)
    assert np.all(labels[first] == labels[first[0]]) and np.all(datasets[first] == datasets[first[0]])
    spread = np.linalg.norm(coordinates[:5] - coordinates[:5].mean(0), axis=1).max()
    distance = np.linalg.norm(coordinates[:5].mean(0) - coordinates[5:10].mean(0))
    assert spread < distance / 2
    assert np.allclose(mds_coordinates(embeddings[rows]), coordinates)  # seeded: reproducible
    variations = {"synthetic": class_variation(syn, syn_labels),
                  "real": class_variation(real, real_labels)}
    plot_variation(variations, tmp_path / "variation.png")
    for name in ("mds.png", "variation.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"
