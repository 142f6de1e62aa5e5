"""Face verification metrics from pair scores, computed exactly as the field's tools compute them.

Three threshold rules for the 10-fold accuracy (best threshold on 9 folds, accuracy
on the held-out one) are supported, each replicating its reference implementation:

``synface`` (the official SynFace / SphereFace evaluation)
    score = cosine similarity ``dot / (|a| |b| + 1e-5)`` of the raw embeddings; a pair
    is "same" when ``score > t``; thresholds ``np.arange(-1, 1, 0.005)``; among
    thresholds with equal training accuracy the **last** (largest) wins, because the
    reference loop keeps a threshold when ``accuracy >= best``. No flip by default.
``arcface`` (insightface arcface_torch ``eval/verification.py``)
    embeddings L2-normalised, score = squared L2 distance; "same" when ``dist < t``;
    thresholds ``np.arange(0, 4, 0.01)``; ties go to the **first** (smallest)
    threshold (``np.argmax``). Flip on by default (embedding of image + mirrored image).
``tpr-fpr`` (FaceX-Zoo ``lfw_evaluator.py``)
    score = dot product of L2-normalised embeddings; 1000 thresholds
    ``min + k * (max - min) / 1000`` (k = 1..1000) over the training scores; the first
    argmax of ``TPR - FPR`` with ``TPR = mean(pos > t)``, ``FPR = mean(neg > t)``; on the
    test fold a positive counts when ``score > t`` and a negative when ``score < t``.
    A rate whose class is empty is 0 (the reference would divide by zero).

Accuracies are reported as mean and population standard deviation (``np.std``, as
SynFace and arcface_torch print) plus the standard error ``std(ddof=1) / sqrt(K)``
(what FaceX-Zoo prints as "std").

Scores are computed in float64 (the references use float32 for SynFace and FaceX-Zoo;
this only matters for pairs within ~1e-7 of a threshold).

Threshold-free metrics (:func:`roc_curve`, :func:`roc_auc`, :func:`equal_error_rate`,
:func:`tar_at_far`) take similarities (higher = same) over all pairs; their exact
definitions are in each function's docstring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from synface.errors import ConfigError

SYNFACE_THRESHOLDS = np.arange(-1.0, 1.0, 0.005)  # (400,)
ARCFACE_THRESHOLDS = np.arange(0.0, 4.0, 0.01)  # (400,)
TPR_FPR_NUM_THRESHOLDS = 1000


# -- scores --------------------------------------------------------------------------
def l2_normalize(embeddings: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (an all-zero row stays zero, like scikit-learn)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.where(norms == 0.0, 1.0, norms)


def synface_cosine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """SynFace's cosine similarity ``dot / (|a| |b| + 1e-5)`` of row pairs, shape (P,)."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    dot = np.sum(first * second, axis=1)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return dot / (norms + 1e-5)


def normalized_cosine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Dot product of the L2-normalised rows, shape (P,)."""
    return np.sum(l2_normalize(first) * l2_normalize(second), axis=1)


def squared_l2_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of the L2-normalised rows, shape (P,), in [0, 4]."""
    return np.sum(np.square(l2_normalize(first) - l2_normalize(second)), axis=1)


# -- folds ---------------------------------------------------------------------------
def contiguous_folds(num_pairs: int, num_folds: int = 10) -> np.ndarray:
    """Fold index of each pair for the contiguous split insightface uses on ``.bin`` files.

    This is scikit-learn's ``KFold(n_splits, shuffle=False)``: consecutive blocks, the
    first ``num_pairs % num_folds`` blocks one pair longer.

    Args:
        num_pairs: number of pairs P.
        num_folds: number of folds K (at most P).

    Returns:
        (P,) int64 fold indices, nondecreasing.
    """
    if not 1 <= num_folds <= max(num_pairs, 1):
        raise ValueError(f"cannot split {num_pairs} pairs into {num_folds} folds")
    sizes = np.full(num_folds, num_pairs // num_folds, dtype=np.int64)
    sizes[: num_pairs % num_folds] += 1
    return np.repeat(np.arange(num_folds, dtype=np.int64), sizes)


# -- the three threshold rules -------------------------------------------------------
def _correct_counts(predicted: np.ndarray, issame: np.ndarray) -> np.ndarray:
    """Correct predictions per threshold: predicted (T, n) bool -> (T,) int64."""
    return np.count_nonzero(predicted == issame[None, :], axis=1)


def synface_best_threshold(scores: np.ndarray, issame: np.ndarray) -> float:
    """The SynFace training threshold: the largest one of maximal accuracy."""
    predicted = scores[None, :] > SYNFACE_THRESHOLDS[:, None]  # (T, n)
    correct = _correct_counts(predicted, issame)
    last_best = len(correct) - 1 - int(np.argmax(correct[::-1]))
    return float(SYNFACE_THRESHOLDS[last_best])


def synface_accuracy(scores: np.ndarray, issame: np.ndarray, threshold: float) -> float:
    """Fraction of pairs with ``(score > threshold) == issame``."""
    return float(np.count_nonzero((scores > threshold) == issame) / len(scores))


def arcface_best_threshold(distances: np.ndarray, issame: np.ndarray) -> float:
    """The arcface_torch training threshold: the smallest one of maximal accuracy."""
    predicted = distances[None, :] < ARCFACE_THRESHOLDS[:, None]  # (T, n)
    return float(ARCFACE_THRESHOLDS[int(np.argmax(_correct_counts(predicted, issame)))])


def arcface_accuracy(distances: np.ndarray, issame: np.ndarray, threshold: float) -> float:
    """Fraction of pairs with ``(distance < threshold) == issame``."""
    return float(np.count_nonzero((distances < threshold) == issame) / len(distances))


def tpr_fpr_thresholds(scores: np.ndarray) -> np.ndarray:
    """FaceX-Zoo's candidate thresholds ``min + step * k``, k = 1..1000, step = span / 1000."""
    low, high = float(np.min(scores)), float(np.max(scores))
    step = (high - low) / TPR_FPR_NUM_THRESHOLDS
    return low + step * np.arange(1, TPR_FPR_NUM_THRESHOLDS + 1)


def tpr_fpr_best_threshold(scores: np.ndarray, issame: np.ndarray) -> float:
    """The FaceX-Zoo training threshold: the first argmax of ``TPR - FPR``."""
    thresholds = tpr_fpr_thresholds(scores)
    above = scores[None, :] > thresholds[:, None]  # (T, n)
    positives, negatives = int(np.count_nonzero(issame)), int(np.count_nonzero(~issame))
    true_accepts = np.count_nonzero(above & issame[None, :], axis=1)
    false_accepts = np.count_nonzero(above & ~issame[None, :], axis=1)
    tpr = true_accepts / positives if positives else np.zeros(len(thresholds))
    fpr = false_accepts / negatives if negatives else np.zeros(len(thresholds))
    return float(thresholds[int(np.argmax(tpr - fpr))])


def tpr_fpr_accuracy(scores: np.ndarray, issame: np.ndarray, threshold: float) -> float:
    """FaceX-Zoo's test accuracy: positives above and negatives strictly below ``threshold``."""
    correct = np.count_nonzero(scores[issame] > threshold)
    correct += np.count_nonzero(scores[~issame] < threshold)
    return float(correct / len(scores))


@dataclass(frozen=True)
class Rule:
    """One threshold rule: how pairs are scored and how the fold threshold is chosen."""

    name: str
    default_flip: bool
    higher_is_same: bool
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]
    best_threshold: Callable[[np.ndarray, np.ndarray], float]
    accuracy: Callable[[np.ndarray, np.ndarray, float], float]
    description: str

    def similarity(self, scores: np.ndarray) -> np.ndarray:
        """Scores turned into similarities (higher = same) for the threshold-free metrics."""
        return scores if self.higher_is_same else -scores


RULES: dict[str, Rule] = {
    "synface": Rule(
        "synface", False, True, synface_cosine, synface_best_threshold, synface_accuracy,
        "SynFace: cosine, same if > t, t in arange(-1, 1, 0.005), last best threshold",
    ),
    "arcface": Rule(
        "arcface", True, False, squared_l2_distance, arcface_best_threshold, arcface_accuracy,
        "arcface_torch: squared L2 of normalised embeddings, same if < t, "
        "t in arange(0, 4, 0.01), first best threshold",
    ),
    "tpr-fpr": Rule(
        "tpr-fpr", False, True, normalized_cosine, tpr_fpr_best_threshold, tpr_fpr_accuracy,
        "FaceX-Zoo: cosine, 1000 thresholds over the training range, argmax(TPR - FPR)",
    ),
}


def get_rule(name: str) -> Rule:
    """Look a threshold rule up by name (``synface``, ``arcface``, ``tpr-fpr``)."""
    if name not in RULES:
        raise ConfigError(f"unknown verification rule {name!r}; valid rules: {', '.join(RULES)}")
    return RULES[name]


def check_rule_names(names: Sequence[str], field: str = "rules") -> None:
    """Config check: at least one rule and every name known (ConfigError naming ``field``)."""
    if not names:
        raise ConfigError(f"{field}: give at least one rule")
    for name in names:
        try:
            get_rule(name)
        except ConfigError as error:
            raise ConfigError(f"{field}: {error}") from None


@dataclass(frozen=True)
class FoldAccuracy:
    """K-fold verification accuracy: per-fold thresholds and accuracies, with summaries."""

    accuracies: np.ndarray  # (K,)
    thresholds: np.ndarray  # (K,)

    @property
    def mean(self) -> float:
        """Mean accuracy over folds."""
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Population standard deviation over folds (``np.std``, ddof=0)."""
        return float(np.std(self.accuracies))

    @property
    def sem(self) -> float:
        """Standard error of the mean, ``std(ddof=1) / sqrt(K)`` (0 for one fold)."""
        count = len(self.accuracies)
        return float(np.std(self.accuracies, ddof=1) / math.sqrt(count)) if count > 1 else 0.0


def kfold_accuracy(
    scores: np.ndarray, issame: np.ndarray, folds: np.ndarray, rule: Rule | str
) -> FoldAccuracy:
    """Cross-validated verification accuracy: threshold from K-1 folds, accuracy on the last.

    Args:
        scores: (P,) the rule's scores (see :attr:`Rule.score`).
        issame: (P,) bool, whether each pair shows one person.
        folds: (P,) int fold index of each pair; folds are visited in sorted order.
        rule: a :class:`Rule` or its name.

    Returns:
        The per-fold accuracies and thresholds.

    Raises:
        ValueError: fewer than two folds, or arrays of different lengths.
    """
    rule = get_rule(rule) if isinstance(rule, str) else rule
    scores = np.asarray(scores, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    folds = np.asarray(folds)
    if not scores.shape == issame.shape == folds.shape or scores.ndim != 1:
        raise ValueError(f"shape mismatch: {scores.shape}, {issame.shape}, {folds.shape}")
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {len(fold_ids)}")
    accuracies, thresholds = [], []
    for fold in fold_ids:
        test = folds == fold
        threshold = rule.best_threshold(scores[~test], issame[~test])
        thresholds.append(threshold)
        accuracies.append(rule.accuracy(scores[test], issame[test], threshold))
    return FoldAccuracy(np.array(accuracies), np.array(thresholds))


# -- threshold-free metrics ----------------------------------------------------------
@dataclass(frozen=True)
class RocCurve:
    """Every operating point of "accept when similarity >= threshold", from strict to lax.

    ``thresholds[0]`` is ``+inf`` (nothing accepted, point (0, 0)); then one point per
    distinct similarity in decreasing order, the last accepting everything (1, 1).
    """

    fpr: np.ndarray  # (M,)
    tpr: np.ndarray  # (M,)
    thresholds: np.ndarray  # (M,)
    false_accepts: np.ndarray  # (M,) int64
    num_positive: int
    num_negative: int


def roc_curve(similarity: np.ndarray, issame: np.ndarray) -> RocCurve:
    """ROC operating points over all distinct similarities (tied scores form one step).

    Args:
        similarity: (P,) higher means more likely the same person.
        issame: (P,) bool.

    Returns:
        The curve; rates of an empty class are 0.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    order = np.argsort(-similarity, kind="stable")
    ranked, labels = similarity[order], issame[order]
    # last index of each run of equal similarities
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    true_accepts = np.r_[0, np.cumsum(labels)[ends]]
    false_accepts = np.r_[0, np.cumsum(~labels)[ends]]
    num_positive, num_negative = int(labels.sum()), int((~labels).sum())
    tpr = true_accepts / num_positive if num_positive else np.zeros(len(true_accepts))
    fpr = false_accepts / num_negative if num_negative else np.zeros(len(false_accepts))
    thresholds = np.r_[np.inf, ranked[ends]]
    return RocCurve(fpr, tpr, thresholds, false_accepts.astype(np.int64), num_positive, num_negative)


def roc_auc(similarity: np.ndarray, issame: np.ndarray) -> float:
    """Area under the ROC curve by the trapezoid rule over :func:`roc_curve`'s points.

    Equals ``P(s_pos > s_neg) + 0.5 * P(s_pos == s_neg)``; NaN when a class is empty.
    """
    curve = roc_curve(similarity, issame)
    if not (curve.num_positive and curve.num_negative):
        return float("nan")
    return float(np.trapezoid(curve.tpr, curve.fpr))


def equal_error_rate(similarity: np.ndarray, issame: np.ndarray) -> float:
    """The rate where FPR equals FNR = 1 - TPR on the piecewise-linear ROC curve.

    ``g = FPR + TPR - 1`` rises strictly from -1 to 1 along the curve's points; the EER
    is the FPR where ``g`` crosses 0, interpolated linearly between the two points that
    bracket it (exact when a point has ``g == 0``). NaN when a class is empty.
    """
    curve = roc_curve(similarity, issame)
    if not (curve.num_positive and curve.num_negative):
        return float("nan")
    gap = curve.fpr + curve.tpr - 1.0
    after = int(np.argmax(gap >= 0.0))  # exists: the last point has gap == 1
    if gap[after] == 0.0:
        return float(curve.fpr[after])
    before = after - 1
    alpha = -gap[before] / (gap[after] - gap[before])
    return float(curve.fpr[before] + alpha * (curve.fpr[after] - curve.fpr[before]))


def tar_at_far(similarity: np.ndarray, issame: np.ndarray, far: float) -> tuple[float, float]:
    """True accept rate at a false accept rate, without interpolation.

    The best TPR among the operating points of :func:`roc_curve` with at most
    ``floor(far * N)`` false accepts (N negatives). With fewer than ``1 / far``
    negatives only zero false accepts qualify: the TAR is then the fraction of
    positives scoring strictly above the highest negative.

    Args:
        similarity: (P,) higher means more likely the same person.
        issame: (P,) bool.
        far: target false accept rate in [0, 1].

    Returns:
        ``(tar, threshold)``: accept when ``similarity >= threshold`` (``inf`` accepts
        nothing); ``(nan, nan)`` when a class is empty.
    """
    curve = roc_curve(similarity, issame)
    if not (curve.num_positive and curve.num_negative):
        return float("nan"), float("nan")
    # integer comparison avoids float noise in fp / N <= far; 1e-9 absorbs far * N rounding
    allowed = math.floor(far * curve.num_negative + 1e-9)
    candidates = np.flatnonzero(curve.false_accepts <= allowed)
    best = candidates[int(np.argmax(curve.tpr[candidates]))]  # the strictest threshold of that TAR
    return float(curve.tpr[best]), float(curve.thresholds[best])
