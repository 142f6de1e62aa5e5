"""Scoring pair sets under each rule, the results table and JSON, and the ROC figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from synface.eval import metrics
from synface.eval.embed import PairEmbeddings
from synface.eval.plots import plot_roc
from synface.eval.protocols import PairSet
from synface.eval.report import (
    evaluate_pair_set,
    format_table,
    resolve_flips,
    results_document,
    verify,
    write_results,
)


def clustered(num_people=20, per_person=3, dim=16, noise=0.6, seed=0):
    """Embeddings of a few people and a 10-fold pair set over them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_people, dim))
    people = np.repeat(np.arange(num_people), per_person)
    embeddings = centres[people] + noise * rng.normal(size=(len(people), dim))
    pairs, issame = [], []
    for _ in range(200):
        first, second = rng.choice(len(people), 2, replace=False)
        pairs.append((first, second))
        issame.append(people[first] == people[second])
    for person in range(num_people):  # make sure positives exist
        pairs.append((person * per_person, person * per_person + 1))
        issame.append(True)
    pair_set = PairSet("toy", [np.zeros((2, 2, 3), np.uint8)] * len(people), pairs, issame,
                       metrics.contiguous_folds(len(pairs), 10))
    return embeddings.astype(np.float32), pair_set


def test_verify_equals_the_metrics_on_the_rule_scores():
    embeddings, pair_set = clustered()
    first, second = embeddings[pair_set.pairs[:, 0]], embeddings[pair_set.pairs[:, 1]]
    for name in metrics.RULES:
        result = verify(embeddings, pair_set, name, flip=False)
        rule = metrics.get_rule(name)
        scores = rule.score(first, second)
        expected = metrics.kfold_accuracy(scores, pair_set.issame, pair_set.folds, rule)
        np.testing.assert_array_equal(result.folds.accuracies, expected.accuracies)
        similarity = scores if name != "arcface" else -scores
        assert result.auc == metrics.roc_auc(similarity, pair_set.issame)
        assert result.eer == metrics.equal_error_rate(similarity, pair_set.issame)
        assert result.tar[1e-3] == metrics.tar_at_far(similarity, pair_set.issame, 1e-3)
    # cosine and squared L2 of unit vectors order pairs identically: same threshold-free metrics
    synface = verify(embeddings, pair_set, "synface", False)
    arcface = verify(embeddings, pair_set, "arcface", False)
    assert synface.auc == pytest.approx(arcface.auc) and 0.8 < synface.auc <= 1.0


def test_flip_settings_and_table():
    assert resolve_flips(["synface", "arcface", "tpr-fpr"], None) == [
        ("synface", False), ("arcface", True), ("tpr-fpr", False)]
    assert resolve_flips(["synface", "arcface"], True) == [("synface", True), ("arcface", True)]
    embeddings, pair_set = clustered()
    both = PairEmbeddings(embeddings, embeddings * 2.0)  # flipped: a different array
    results = evaluate_pair_set(both, pair_set, ["synface", "arcface"])
    assert [(r.rule.name, r.flip) for r in results] == [("synface", False), ("arcface", True)]
    table = format_table(results).splitlines()
    assert table[0].split()[:4] == ["protocol", "rule", "flip", "accuracy"]
    assert table[2].split()[:3] == ["toy", "synface", "no"]
    assert table[3].split()[:3] == ["toy", "arcface", "yes"]
    assert f"{100 * results[0].folds.mean:.2f} ± {100 * results[0].folds.std:.2f}" in table[2]


def test_json_document_says_rule_and_flip(tmp_path):
    embeddings, pair_set = clustered()
    results = [verify(embeddings, pair_set, "arcface", True), verify(embeddings, pair_set, "synface", False)]
    write_results(tmp_path / "results.json", results, model="m.safetensors")
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["model"] == "m.safetensors"
    first = document["results"][0]
    assert first["rule"] == "arcface" and first["flip"] is True
    assert "arcface_torch" in first["rule_description"]
    assert first["folds"] == 10 and len(first["fold_accuracies"]) == 10
    assert first["accuracy_mean"] == pytest.approx(np.mean(first["fold_accuracies"]))
    tar = first["tar_at_far"]["1e-03"]
    assert tar["accept_if"] == "distance <= threshold" and (tar["threshold"] is None or tar["threshold"] >= 0)
    assert document["results"][1]["tar_at_far"]["1e-04"]["accept_if"] == "score >= threshold"
    with_roc = results_document(results, include_roc=True)
    json.dumps(with_roc, allow_nan=False)  # no NaN or inf leaks into the JSON
    roc = with_roc["results"][1]["roc"]
    assert roc["threshold"][0] is None and roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
    assert roc["fpr"] == results[1].roc.fpr.tolist()


def test_roc_png(tmp_path):
    embeddings, pair_set = clustered()
    results = [verify(embeddings, pair_set, "synface", False), verify(embeddings, pair_set, "arcface", True)]
    plot_roc([(r.label, r.roc) for r in results], tmp_path / "roc.png")
    plot_roc([(r.label, r.roc) for r in results], tmp_path / "linear.png", log_fpr=False)
    for name in ("roc.png", "linear.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size[0] > 300
