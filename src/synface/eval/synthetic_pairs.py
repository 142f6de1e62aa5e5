"""Building a balanced, deterministic verification pair list from a generated dataset.

The ``synthetic`` protocol turns a ``synface-dataset/1`` folder into an LFW-like test:
identities are shuffled with a fixed seed and dealt round-robin into K folds, so folds
are identity-disjoint (as LFW's and CFP's are). In each fold, half the pairs are
positives (two different samples of one identity) and half negatives (samples of two
different identities of that fold), drawn uniformly over all such candidate pairs
without repeats. Only plain samples (soft-label weight 1 on the first label) are used:
an identity-mixup sample does not show one identity.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np

from synface.errors import ConfigError, DataError
from synface.eval.protocols import ImageTable, PairSet, register_protocol, require_folder

logger = logging.getLogger(__name__)

# Below this ratio of candidates to requested pairs, enumerate the candidates instead of
# rejection sampling (which would spend many draws on repeats).
_ENUMERATE_RATIO = 4


def _draw_unique(
    rng: np.random.Generator,
    count: int,
    draw: Callable[[int], np.ndarray],
    enumerate_all: Callable[[], np.ndarray],
    num_candidates: int,
) -> np.ndarray:
    """``count`` distinct unordered pairs, uniformly from the candidates; (count, 2) int64."""
    if num_candidates < _ENUMERATE_RATIO * count:
        candidates = enumerate_all()  # (C, 2), sorted within rows
        return candidates[np.sort(rng.choice(len(candidates), size=count, replace=False))]
    chosen: dict[tuple[int, int], None] = {}
    while len(chosen) < count:
        for first, second in np.sort(draw(2 * (count - len(chosen))), axis=1).tolist():
            if len(chosen) < count:
                chosen.setdefault((first, second), None)
    return np.array(list(chosen), dtype=np.int64)


def _fold_pairs(
    rng: np.random.Generator, members: list[np.ndarray], count: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative sample pairs among one fold's identities (``members``: samples of each)."""
    sizes = np.array([len(samples) for samples in members], dtype=np.int64)
    within = sizes * (sizes - 1) // 2
    samples = np.concatenate(members)
    owner = np.repeat(np.arange(len(members)), sizes)
    cross = (int(sizes.sum()) ** 2 - int((sizes**2).sum())) // 2
    if within.sum() < count or cross < count:
        raise DataError(f"{where}: a fold has {within.sum()} possible positive and {cross} negative "
                        f"pairs, fewer than the {count} of each asked; ask for fewer pairs")

    def draw_positive(size: int) -> np.ndarray:
        who = rng.choice(len(members), size=size, p=within / within.sum())
        first = rng.integers(0, sizes[who])
        second = (first + rng.integers(1, sizes[who])) % sizes[who]  # another sample, uniform
        return np.stack([[members[w][i] for w, i in zip(who, first)],
                         [members[w][i] for w, i in zip(who, second)]], axis=1)

    def all_positive() -> np.ndarray:
        rows = [(a, b) for group in members for k, a in enumerate(group) for b in group[k + 1:]]
        return np.sort(np.array(rows, dtype=np.int64).reshape(-1, 2), axis=1)

    def draw_negative(size: int) -> np.ndarray:
        picks = rng.integers(0, len(samples), size=(size, 2))
        picks = picks[owner[picks[:, 0]] != owner[picks[:, 1]]]
        return samples[picks]

    def all_negative() -> np.ndarray:
        first, second = np.triu_indices(len(samples), k=1)
        keep = owner[first] != owner[second]
        return np.sort(np.stack([samples[first[keep]], samples[second[keep]]], axis=1), axis=1)

    positives = _draw_unique(rng, count, draw_positive, all_positive, int(within.sum()))
    negatives = _draw_unique(rng, count, draw_negative, all_negative, cross)
    return positives, negatives


def build_pairs(
    identity: np.ndarray, num_pairs: int = 6000, num_folds: int = 10, seed: int = 0,
    where: str = "dataset",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A balanced K-fold pair list over samples labelled with ``identity``.

    Args:
        identity: (N,) identity of each usable sample (positions are sample numbers).
        num_pairs: total pairs, a multiple of ``2 * num_folds``.
        num_folds: folds K (identity-disjoint).
        seed: the fixed seed; the same inputs always give the same pairs.
        where: name of the data for messages.

    Returns:
        ``(pairs (P, 2), issame (P,), folds (P,))``: per fold its positives, then negatives.

    Raises:
        ConfigError: ``num_pairs`` not a positive multiple of ``2 * num_folds``.
        DataError: too few identities or samples for the pairs asked.
    """
    if num_folds < 2 or num_pairs <= 0 or num_pairs % (2 * num_folds):
        raise ConfigError(f"num_pairs: {num_pairs} must be a positive multiple of 2 x {num_folds} folds")
    identity = np.asarray(identity, dtype=np.int64)
    ids = np.unique(identity)
    if len(ids) < 2 * num_folds:
        raise DataError(f"{where}: {len(ids)} identities; {num_folds} folds need at least {2 * num_folds}")
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(ids)
    per_fold = num_pairs // (2 * num_folds)
    pairs, issame, folds = [], [], []
    for fold in range(num_folds):
        members = [np.flatnonzero(identity == who) for who in np.sort(shuffled[fold::num_folds])]
        positives, negatives = _fold_pairs(rng, members, per_fold, where)
        pairs += [positives, negatives]
        issame += [np.ones(per_fold, dtype=bool), np.zeros(per_fold, dtype=bool)]
        folds.append(np.full(2 * per_fold, fold, dtype=np.int64))
    return np.concatenate(pairs), np.concatenate(issame), np.concatenate(folds)


@register_protocol("synthetic", "pairs drawn from a generated dataset: --data DATASET folder")
def load_synthetic(
    data: str | os.PathLike[str] | None,
    pairs: str | os.PathLike[str] | None = None,
    num_pairs: int = 6000,
    num_folds: int = 10,
    seed: int = 0,
) -> PairSet:
    """A generated dataset as a balanced 10-fold verification set (see the module docstring).

    Args:
        data: the dataset folder (``dataset.json`` + ``shards/``).
        pairs: unused (the pairs are drawn).
        num_pairs: total pairs, half positive.
        num_folds: identity-disjoint folds.
        seed: seed of the draw.

    Returns:
        The pair set; its images are memory-mapped views of the shards.

    Raises:
        DataError: not a readable dataset, or too small for the pairs asked.
    """
    from synface.data.synthetic import SyntheticDataset

    root = require_folder(data, "synthetic")
    dataset = SyntheticDataset(root)
    plain = np.flatnonzero(dataset.weights[:, 0] == 1.0)  # samples that show one identity
    if len(plain) < len(dataset):
        logger.info("%s: using %d of %d samples (identity-mixup samples left out)",
                    root, len(plain), len(dataset))
    sample_pairs, issame, folds = build_pairs(dataset.identity[plain], num_pairs, num_folds,
                                              seed, str(root))
    shards = [np.load(shard.images, mmap_mode="r") for shard in dataset.shards]
    starts = np.array([shard.start for shard in dataset.shards], dtype=np.int64)
    table = ImageTable()
    names: list[str] = []

    def view(position: int) -> np.ndarray:
        shard = int(np.searchsorted(starts, position, side="right") - 1)
        names.append(f"sample {position} of {root}")
        return shards[shard][position - starts[shard]]  # (H, W, 3) memory-mapped

    rows = plain[sample_pairs]  # dataset positions, (P, 2)
    indices = np.array([[table.index(position, view, position) for position in row.tolist()]
                        for row in rows], dtype=np.int64).reshape(-1, 2)
    return PairSet("synthetic", table.images, indices, issame, folds, source=str(root),
                   image_names=names)
