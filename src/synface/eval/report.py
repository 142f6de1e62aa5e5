"""Verification results of pair sets under the threshold rules, as tables and JSON.

:func:`verify` scores a pair set's embeddings under one rule and gathers every metric
(10-fold accuracy, AUC, EER, TAR at FAR 1e-3 / 1e-4, the ROC curve);
:func:`format_table` prints them and :func:`results_document` makes the JSON that says
which rule and flip setting produced each number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from synface.eval.embed import PairEmbeddings, embed_pair_set
from synface.eval.metrics import (
    FoldAccuracy,
    RocCurve,
    Rule,
    equal_error_rate,
    get_rule,
    kfold_accuracy,
    roc_auc,
    roc_curve,
    tar_at_far,
)
from synface.eval.protocols import PairSet
from synface.io import atomic_write_json

FARS = (1e-3, 1e-4)


@dataclass(frozen=True)
class VerificationResult:
    """Every metric of one pair set under one rule and flip setting."""

    protocol: str
    rule: Rule
    flip: bool
    num_pairs: int
    folds: FoldAccuracy
    auc: float
    eer: float
    tar: dict[float, tuple[float, float]]  # far -> (tar, threshold on the rule's similarity)
    roc: RocCurve

    @property
    def label(self) -> str:
        """Short name for legends: ``protocol rule[+flip]``."""
        return f"{self.protocol} {self.rule.name}{'+flip' if self.flip else ''}"

    def to_dict(self, include_roc: bool = False) -> dict[str, Any]:
        """JSON-ready summary; with ``include_roc`` also every ROC point (fpr, tpr, threshold)."""
        tar = {}
        for far, (rate, threshold) in self.tar.items():
            native = threshold if self.rule.higher_is_same else -threshold
            tar[f"{far:.0e}"] = {
                "tar": _number(rate),
                "threshold": _number(native),
                "accept_if": "score >= threshold" if self.rule.higher_is_same
                else "distance <= threshold",
            }
        document = {
            "protocol": self.protocol,
            "rule": self.rule.name,
            "rule_description": self.rule.description,
            "flip": self.flip,
            "pairs": self.num_pairs,
            "folds": len(self.folds.accuracies),
            "accuracy_mean": self.folds.mean,
            "accuracy_std": self.folds.std,
            "accuracy_sem": self.folds.sem,
            "fold_accuracies": self.folds.accuracies.tolist(),
            "fold_thresholds": self.folds.thresholds.tolist(),
            "auc": _number(self.auc),
            "eer": _number(self.eer),
            "tar_at_far": tar,
        }
        if include_roc:
            document["roc"] = {"fpr": self.roc.fpr.tolist(), "tpr": self.roc.tpr.tolist(),
                               "threshold": [_number(t) for t in self.roc.thresholds.tolist()]}
        return document


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return float(value) if math.isfinite(value) else None


def verify(embeddings: np.ndarray, pair_set: PairSet, rule: Rule | str, flip: bool) -> VerificationResult:
    """All metrics of ``pair_set`` from the embeddings of its images.

    Args:
        embeddings: (N, D) one row per image of ``pair_set.images`` (already flip-summed
            when ``flip``; the flag is only recorded).
        pair_set: the pairs, labels and folds.
        rule: the threshold rule or its name.
        flip: whether ``embeddings`` include the mirrored images.

    Returns:
        The result.
    """
    rule = get_rule(rule) if isinstance(rule, str) else rule
    first = embeddings[pair_set.pairs[:, 0]]  # (P, D)
    second = embeddings[pair_set.pairs[:, 1]]  # (P, D)
    scores = rule.score(first, second)  # (P,)
    similarity = rule.similarity(scores)
    return VerificationResult(
        protocol=pair_set.name,
        rule=rule,
        flip=flip,
        num_pairs=pair_set.num_pairs,
        folds=kfold_accuracy(scores, pair_set.issame, pair_set.folds, rule),
        auc=roc_auc(similarity, pair_set.issame),
        eer=equal_error_rate(similarity, pair_set.issame),
        tar={far: tar_at_far(similarity, pair_set.issame, far) for far in FARS},
        roc=roc_curve(similarity, pair_set.issame),
    )


def resolve_flips(rules: Sequence[str], flip: bool | None) -> list[tuple[str, bool]]:
    """Each rule with its flip setting: ``flip`` when given, else the rule's own default."""
    return [(name, get_rule(name).default_flip if flip is None else flip) for name in rules]


def evaluate_pair_set(
    embeddings: PairEmbeddings, pair_set: PairSet, rules: Sequence[str], flip: bool | None = None
) -> list[VerificationResult]:
    """Results of one pair set under several rules (see :func:`resolve_flips`)."""
    return [verify(embeddings.get(use_flip), pair_set, name, use_flip)
            for name, use_flip in resolve_flips(rules, flip)]


def format_table(results: Sequence[VerificationResult]) -> str:
    """A plain-text table: protocol, rule, flip, accuracy mean +- std, AUC, EER, TARs (in %)."""
    header = ["protocol", "rule", "flip", "accuracy (%)", "AUC (%)", "EER (%)"]
    header += [f"TAR@FAR={far:.0e} (%)" for far in FARS]
    rows = [header]
    for result in results:
        rows.append([
            result.protocol,
            result.rule.name,
            "yes" if result.flip else "no",
            f"{100 * result.folds.mean:.2f} ± {100 * result.folds.std:.2f}",
            _percent(result.auc),
            _percent(result.eer),
            *(_percent(result.tar[far][0]) for far in FARS),
        ])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _percent(value: float) -> str:
    return f"{100 * value:.2f}" if math.isfinite(value) else "n/a"


def results_document(
    results: Sequence[VerificationResult], include_roc: bool = False, **meta: Any
) -> dict[str, Any]:
    """The JSON document: ``meta`` (model, settings) plus one entry per result.

    ROC thresholds are on the rule's similarity (the negated distance for ``arcface``);
    ``null`` stands for the +inf of the first point.
    """
    return {**meta, "far_definition": "TAR at the best threshold with at most floor(FAR x "
            "negatives) false accepts, no interpolation",
            "results": [result.to_dict(include_roc) for result in results]}


def write_results(path: str | os.PathLike[str], results: Sequence[VerificationResult],
                  include_roc: bool = False, **meta: Any) -> None:
    """Write :func:`results_document` to ``path`` atomically."""
    atomic_write_json(path, results_document(results, include_roc, **meta))


def evaluate_model(
    model: nn.Module,
    pair_set: PairSet,
    rules: Sequence[str] = ("synface",),
    flip: bool | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    amp: bool = False,
    crop: str | None = None,
) -> list[VerificationResult]:
    """Embed ``pair_set``'s images once and score them under each rule.

    Args:
        model: the backbone (returns embeddings of float [-1, 1] crops).
        pair_set: the protocol's pairs.
        rules: rule names (``synface``, ``arcface``, ``tpr-fpr``).
        flip: force the flip setting for every rule; None uses each rule's default.
        batch_size: images per forward pass.
        device: where the model runs.
        amp: autocast the forward pass.
        crop: ``"synface"`` to cut 112x96 crops from 112x112 ArcFace crops.

    Returns:
        One result per rule, in order.

    Raises:
        DataError: unreadable images or a crop size that does not fit the model.
    """
    with_flip = any(use_flip for _, use_flip in resolve_flips(rules, flip))
    embeddings = embed_pair_set(model, pair_set, batch_size, device, with_flip, amp, crop)
    return evaluate_pair_set(embeddings, pair_set, rules, flip)
