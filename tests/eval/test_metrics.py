"""Verification metrics against slow, obvious loop implementations and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synface.eval import metrics

SYNFACE_GRID = [-1.0 + 0.005 * k for k in range(400)]


# -- slow references: one python loop per threshold and per pair ---------------------------
def slow_synface(scores, issame, folds):
    """SynFace's lfw_eval: keep a threshold when its accuracy is >= the best so far."""
    thresholds = np.arange(-1.0, 1.0, 0.005)
    accuracies, chosen = [], []
    for fold in sorted(set(folds.tolist())):
        train = [i for i in range(len(scores)) if folds[i] != fold]
        test = [i for i in range(len(scores)) if folds[i] == fold]
        best_threshold, best_accuracy = 0.0, 0.0
        for threshold in thresholds:
            correct = sum(1 for i in train if (scores[i] > threshold) == issame[i])
            if correct / len(train) >= best_accuracy:
                best_accuracy, best_threshold = correct / len(train), threshold
        chosen.append(best_threshold)
        accuracies.append(sum(1 for i in test if (scores[i] > best_threshold) == issame[i]) / len(test))
    return accuracies, chosen


def slow_arcface(distances, issame, folds):
    """arcface_torch's calculate_roc: np.argmax keeps the first best threshold."""
    thresholds = np.arange(0.0, 4.0, 0.01)
    accuracies, chosen = [], []
    for fold in sorted(set(folds.tolist())):
        train = [i for i in range(len(distances)) if folds[i] != fold]
        test = [i for i in range(len(distances)) if folds[i] == fold]
        best_threshold, best_accuracy = None, -1.0
        for threshold in thresholds:
            correct = sum(1 for i in train if (distances[i] < threshold) == issame[i])
            if correct / len(train) > best_accuracy:
                best_accuracy, best_threshold = correct / len(train), threshold
        chosen.append(best_threshold)
        accuracies.append(sum(1 for i in test if (distances[i] < best_threshold) == issame[i]) / len(test))
    return accuracies, chosen


def slow_tpr_fpr(scores, issame, folds):
    """FaceX-Zoo's getThreshold + test accuracy (an empty class has rate 0)."""
    accuracies, chosen = [], []
    for fold in sorted(set(folds.tolist())):
        train = [i for i in range(len(scores)) if folds[i] != fold]
        test = [i for i in range(len(scores)) if folds[i] == fold]
        low = min(scores[i] for i in train)
        high = max(scores[i] for i in train)
        step = (high - low) / 1000
        best_threshold, best_gap = None, -math.inf
        positives = [i for i in train if issame[i]]
        negatives = [i for i in train if not issame[i]]
        for k in range(1, 1001):
            threshold = low + step * np.int64(k)
            tpr = sum(1 for i in positives if scores[i] > threshold) / len(positives) if positives else 0.0
            fpr = sum(1 for i in negatives if scores[i] > threshold) / len(negatives) if negatives else 0.0
            if tpr - fpr > best_gap:
                best_gap, best_threshold = tpr - fpr, threshold
        chosen.append(best_threshold)
        correct = sum(1 for i in test if issame[i] and scores[i] > best_threshold)
        correct += sum(1 for i in test if not issame[i] and scores[i] < best_threshold)
        accuracies.append(correct / len(test))
    return accuracies, chosen


def slow_roc_points(similarity, issame):
    """(fpr, tpr) for +inf and for every distinct similarity, accepting s >= t."""
    positives = sum(issame)
    negatives = len(issame) - positives
    points = [(0.0, 0.0, math.inf, 0)]
    for threshold in sorted(set(similarity.tolist()), reverse=True):
        tp = sum(1 for s, y in zip(similarity, issame) if s >= threshold and y)
        fp = sum(1 for s, y in zip(similarity, issame) if s >= threshold and not y)
        points.append((fp / negatives, tp / positives, threshold, fp))
    return points


def slow_auc(similarity, issame):
    """Probability a positive outscores a negative, ties counting one half."""
    total = 0.0
    pos = [s for s, y in zip(similarity, issame) if y]
    neg = [s for s, y in zip(similarity, issame) if not y]
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def slow_eer(similarity, issame):
    """Walk the ROC polyline until FPR + TPR - 1 changes sign; interpolate in that segment."""
    points = slow_roc_points(similarity, issame)
    for (f0, t0, _, _), (f1, t1, _, _) in zip(points, points[1:]):
        g0, g1 = f0 + t0 - 1, f1 + t1 - 1
        if g0 == 0:
            return f0
        if g0 < 0 <= g1:
            return f0 + (f1 - f0) * (-g0) / (g1 - g0)
    raise AssertionError("no crossing")


def slow_tar(similarity, issame, far):
    negatives = len(issame) - sum(issame)
    best = (0.0, math.inf)
    for _, tpr, threshold, fp in slow_roc_points(similarity, issame):
        if fp <= far * negatives + 1e-9 and tpr > best[0]:
            best = (tpr, threshold)
    return best


# -- data -----------------------------------------------------------------------------------
def make_case(seed: int, num_pairs: int = 70, kind: str = "random"):
    rng = np.random.default_rng(seed)
    issame = rng.random(num_pairs) < 0.5
    scores = rng.normal(0.0, 0.35, num_pairs) + 0.3 * issame
    if kind == "ties":  # many equal scores, some exactly on grid thresholds
        scores = np.round(scores, 1)
        on_grid = rng.choice(num_pairs, num_pairs // 4, replace=False)
        scores[on_grid] = np.arange(-1.0, 1.0, 0.005)[rng.integers(100, 300, len(on_grid))]
    elif kind == "separable":
        # few distinct values, so every training split holds the extremes of the test folds
        scores = np.where(issame, rng.choice([0.7, 0.8], num_pairs), rng.choice([-0.2, 0.0123456], num_pairs))
    scores = np.clip(scores, -0.999, 0.999)
    folds = metrics.contiguous_folds(num_pairs, 10)
    if kind == "one-class-fold":
        issame[folds == 3] = True
        issame[folds == 7] = False
    return scores, issame, folds


CASES = [(0, "random"), (1, "random"), (2, "ties"), (3, "separable"), (4, "one-class-fold")]


@pytest.mark.parametrize("seed,kind", CASES)
def test_synface_rule_matches_slow_reference(seed, kind):
    scores, issame, folds = make_case(seed, kind=kind)
    expected, thresholds = slow_synface(scores, issame, folds)
    result = metrics.kfold_accuracy(scores, issame, folds, "synface")
    np.testing.assert_array_equal(result.accuracies, expected)
    np.testing.assert_array_equal(result.thresholds, thresholds)
    if kind == "separable":
        assert result.mean == 1.0


@pytest.mark.parametrize("seed,kind", CASES)
def test_arcface_rule_matches_slow_reference(seed, kind):
    scores, issame, folds = make_case(seed, kind=kind)
    distances = 2.0 - 2.0 * scores  # squared L2 of unit vectors with that cosine
    if kind == "ties":
        distances = np.round(distances, 2)  # lands on the 0.01 grid
    expected, thresholds = slow_arcface(distances, issame, folds)
    result = metrics.kfold_accuracy(distances, issame, folds, "arcface")
    np.testing.assert_array_equal(result.accuracies, expected)
    np.testing.assert_array_equal(result.thresholds, thresholds)
    if kind == "separable":
        assert result.mean == 1.0


@pytest.mark.parametrize("seed,kind", CASES)
def test_tpr_fpr_rule_matches_slow_reference(seed, kind):
    scores, issame, folds = make_case(seed, kind=kind)
    expected, thresholds = slow_tpr_fpr(scores, issame, folds)
    result = metrics.kfold_accuracy(scores, issame, folds, "tpr-fpr")
    np.testing.assert_array_equal(result.accuracies, expected)
    np.testing.assert_array_equal(result.thresholds, thresholds)
    if kind == "separable":
        assert result.mean == 1.0


def test_tie_breaking_hand_case():
    # fold 0: (+0.52, -0.48); fold 1: (+0.30, -0.40) -- fold 1 cannot be separated above 0.3
    scores = np.array([0.52, -0.48, 0.30, 0.40])
    issame = np.array([True, False, True, False])
    folds = np.array([0, 0, 1, 1])
    synface = metrics.kfold_accuracy(scores, issame, folds, "synface")
    # train on fold 1: accuracy 1/2 for t < 0.3 and for t >= 0.4; SynFace keeps the last: 0.995
    # train on fold 0: accuracy 1 on [-0.48, 0.52); the last grid value there is 0.515
    np.testing.assert_allclose(synface.thresholds, [0.995, 0.515], atol=1e-9)
    np.testing.assert_array_equal(synface.accuracies, [0.5, 0.5])
    distances = 2 - 2 * scores  # (0.96, 2.96, 1.40, 1.20)
    arcface = metrics.kfold_accuracy(distances, issame, folds, "arcface")
    # train on fold 1 (1.40 same, 1.20 diff): accuracy 1/2 for t <= 1.20; arcface keeps the first: 0.0
    # train on fold 0 (0.96 same, 2.96 diff): accuracy 1 on (0.96, 2.96]; the first is 0.97
    np.testing.assert_allclose(arcface.thresholds, [0.0, 0.97], atol=1e-9)
    np.testing.assert_array_equal(arcface.accuracies, [0.5, 0.5])
    assert arcface.mean == 0.5 and arcface.std == 0.0


def test_tpr_fpr_counts_a_negative_on_the_threshold_as_wrong():
    # FaceX-Zoo tests negatives with score < t: a negative exactly at the threshold is an error
    scores = np.array([0.8, 0.0, 0.8, 0.0])
    issame = np.array([True, False, True, False])
    result = metrics.kfold_accuracy(scores, issame, np.array([0, 0, 1, 1]), "tpr-fpr")
    # training range [0, 0.8]: the first threshold with TPR - FPR = 1 is 0 + 0.8 / 1000
    np.testing.assert_allclose(result.thresholds, [0.0008, 0.0008])
    np.testing.assert_array_equal(result.accuracies, [1.0, 1.0])
    on_threshold = metrics.tpr_fpr_accuracy(np.array([0.5, 0.2]), np.array([True, False]), 0.2)
    assert on_threshold == 0.5


def test_fold_summaries():
    folds = metrics.FoldAccuracy(np.array([0.9, 1.0, 0.95, 0.85]), np.zeros(4))
    assert folds.mean == pytest.approx(0.925)
    assert folds.std == pytest.approx(np.sqrt(np.mean((folds.accuracies - 0.925) ** 2)))
    assert folds.sem == pytest.approx(np.std(folds.accuracies, ddof=1) / 2)


@pytest.mark.parametrize("num_pairs", [10, 23, 600, 6000, 7001])
def test_contiguous_folds_match_kfold(num_pairs):
    from sklearn.model_selection import KFold

    folds = metrics.contiguous_folds(num_pairs, 10)
    for fold, (_, test) in enumerate(KFold(n_splits=10, shuffle=False).split(np.arange(num_pairs))):
        np.testing.assert_array_equal(np.flatnonzero(folds == fold), test)


def test_scores():
    a = np.array([[3.0, 4.0], [1.0, 0.0]])
    b = np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(metrics.synface_cosine(a, b), [25 / (25 + 1e-5), 0.0])
    np.testing.assert_allclose(metrics.normalized_cosine(a, b), [1.0, 0.0])
    np.testing.assert_allclose(metrics.squared_l2_distance(a, b), [0.0, 2.0])
    assert np.all(metrics.l2_normalize(np.zeros((1, 3))) == 0)


@pytest.mark.parametrize("seed,kind", CASES)
def test_threshold_free_metrics_match_slow_reference(seed, kind):
    similarity, issame, _ = make_case(seed, num_pairs=80, kind=kind)
    curve = metrics.roc_curve(similarity, issame)
    points = slow_roc_points(similarity, issame)
    np.testing.assert_allclose(curve.fpr, [p[0] for p in points])
    np.testing.assert_allclose(curve.tpr, [p[1] for p in points])
    np.testing.assert_array_equal(curve.thresholds, [p[2] for p in points])
    assert metrics.roc_auc(similarity, issame) == pytest.approx(slow_auc(similarity, issame), abs=1e-12)
    assert metrics.equal_error_rate(similarity, issame) == pytest.approx(slow_eer(similarity, issame),
                                                                         abs=1e-12)
    for far in (0.0, 1e-3, 0.05, 0.1, 0.5):
        assert metrics.tar_at_far(similarity, issame, far) == pytest.approx(slow_tar(similarity, issame, far))


def test_auc_agrees_with_scikit_learn():
    from sklearn.metrics import roc_auc_score

    similarity, issame, _ = make_case(5, num_pairs=500, kind="ties")
    assert metrics.roc_auc(similarity, issame) == pytest.approx(roc_auc_score(issame, similarity))


def test_threshold_free_hand_cases():
    similarity = np.array([0.9, 0.8, 0.7, 0.6])
    issame = np.array([True, False, True, False])
    assert metrics.roc_auc(similarity, issame) == 0.75
    assert metrics.equal_error_rate(similarity, issame) == 0.5
    # positives 3, 2, 0 and one negative 1: the crossing is a third of the way along (0, 2/3)-(1, 2/3)
    assert metrics.equal_error_rate(np.array([3.0, 2.0, 1.0, 0.0]),
                                    np.array([True, True, False, True])) == pytest.approx(1 / 3)
    similarity = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    issame = np.array([True, False, True, True, False])
    assert metrics.tar_at_far(similarity, issame, 1e-3) == (pytest.approx(1 / 3), 0.9)
    assert metrics.tar_at_far(similarity, issame, 0.5) == (1.0, 0.6)
    separable = np.array([0.9, 0.8, 0.1, 0.0])
    labels = np.array([True, True, False, False])
    assert metrics.roc_auc(separable, labels) == 1.0
    assert metrics.equal_error_rate(separable, labels) == 0.0
    assert metrics.tar_at_far(separable, labels, 1e-4) == (1.0, 0.8)


def test_one_class_gives_nan():
    similarity = np.array([0.1, 0.2, 0.3])
    issame = np.ones(3, dtype=bool)
    assert math.isnan(metrics.roc_auc(similarity, issame))
    assert math.isnan(metrics.equal_error_rate(similarity, issame))
    assert all(math.isnan(value) for value in metrics.tar_at_far(similarity, issame, 1e-3))


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 folds"):
        metrics.kfold_accuracy(np.zeros(4), np.ones(4, bool), np.zeros(4, int), "synface")
    from synface.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown verification rule 'sphere'"):
        metrics.get_rule("sphere")
