"""Margin-based classification heads (SphereFace, ArcFace, CosFace) with soft labels.

A head holds the class centres ``W (C, D)`` and turns embeddings into the training
loss. The target logit follows the unified margin of the SynFace paper (Eq. 1):
``s * (cos(m1 * theta + m2) - m3)``; every other logit is ``s * cos(theta)``.

Soft labels (identity mixup, domain mixup, both, or none) share one formula. A
sample carries label columns ``targets (K,)`` with ``weights (K,)`` summing to 1,
and, as in the official SynFace code,

    out  = sum_k w_k * Arc(f, c_k)       # Arc puts the margin on column c only
    loss = mean_i sum_k w_ik * CE(out_i, c_ik)

so the margin on each target column is scaled by its label weight (weights of
coinciding columns add). Plain labels are ``K = 1`` or ``(y, y), (1, 0)``; identity
mixup is ``(a, b), (phi, 1 - phi)``; domain mixup appends the real label ``r``:
``(a, b, r), (lam * w_a, lam * w_b, 1 - lam)``.

:class:`~synface.models.sharded_head.ShardedMarginHead` splits the class centres
across ``torch.distributed`` ranks (model-parallel softmax for 100K+ classes).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from synface.errors import SynfaceError

logger = logging.getLogger(__name__)

Guard = Literal["fallback", "monotonic", "easy", "none"]
GUARDS: tuple[str, ...] = ("fallback", "monotonic", "easy", "none")
WEIGHT_SUM_TOLERANCE = 1e-4

# Per-name defaults; ``m`` given to create_head sets the named parameter.
_HEADS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "arcface": ("m2", {"s": 30.0, "m1": 1.0, "m2": 0.5, "m3": 0.0, "guard": "fallback"}),
    "cosface": ("m3", {"s": 30.0, "m1": 1.0, "m2": 0.0, "m3": 0.35, "guard": "fallback"}),
    "sphereface": ("m1", {"s": 30.0, "m1": 1.35, "m2": 0.0, "m3": 0.0, "guard": "monotonic"}),
    "combined": (None, {"s": 30.0, "m1": 1.0, "m2": 0.3, "m3": 0.2, "guard": "fallback"}),
}


class HeadOutput(NamedTuple):
    """What a head returns: the loss and the logits it was computed from."""

    loss: torch.Tensor  # () fp32 (fp64 for fp64 embeddings)
    logits: torch.Tensor  # (B, C) margins applied, scaled by s
    cosine: torch.Tensor  # (B, C) cos(theta) between embeddings and class centres


class CombinedMarginHead(nn.Module):
    """Class centres plus the unified margin softmax loss for soft labels.

    Args:
        num_features: embedding size ``D``.
        num_classes: number of classes ``C``.
        s: logit scale.
        m1: multiplicative angular margin (SphereFace).
        m2: additive angular margin (ArcFace).
        m3: additive cosine margin (CosFace).
        guard: what the target logit does where ``m1 * theta + m2`` passes pi and
            ``cos`` stops decreasing: ``"fallback"`` (ArcFace's
            ``cos(theta) - m2 * sin(m2) - m3``), ``"monotonic"`` (SphereFace's
            ``(-1)^k cos(m1 * theta + m2) - 2k - m3`` with ``k = floor((m1 * theta + m2) / pi)``),
            ``"easy"`` (margin only where ``cos(theta) > 0``, else ``cos(theta) - m3``)
            or ``"none"``.
        eps: ``cos(theta)`` is clamped to ``[-1 + eps, 1 - eps]`` before ``acos``.
        check_labels: validate targets and weights on every call (one host sync).
        shard: rows ``(start, stop)`` of the full class-centre matrix held here;
            ``None`` holds them all.

    Raises:
        SynfaceError: an impossible size, scale, margin or guard.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        s: float = 30.0,
        m1: float = 1.0,
        m2: float = 0.5,
        m3: float = 0.0,
        guard: Guard = "fallback",
        eps: float = 1e-7,
        check_labels: bool = True,
        shard: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if num_features < 1 or num_classes < 1:
            raise SynfaceError(
                f"head: num_features={num_features} and num_classes={num_classes} must be positive"
            )
        if s <= 0 or m1 < 1.0 or m2 < 0.0 or m3 < 0.0 or not 0.0 < eps < 0.1:
            raise SynfaceError(
                f"head: need s > 0, m1 >= 1, m2 >= 0, m3 >= 0, 0 < eps < 0.1; got s={s}, "
                f"m1={m1}, m2={m2}, m3={m3}, eps={eps}"
            )
        if guard not in GUARDS:
            raise SynfaceError(f"head: guard {guard!r} is not one of {', '.join(GUARDS)}")
        if guard == "easy" and m1 * math.pi / 2 + m2 > math.pi:
            raise SynfaceError(f"head: guard 'easy' needs m1 * pi/2 + m2 <= pi; got m1={m1}, m2={m2}")
        self.num_features, self.num_classes = int(num_features), int(num_classes)
        self.s, self.m1, self.m2, self.m3 = float(s), float(m1), float(m2), float(m3)
        self.guard, self.eps, self.check_labels = guard, float(eps), check_labels
        self.class_start, self.class_stop = shard if shard is not None else (0, self.num_classes)
        self.weight = nn.Parameter(self._initial_weight())  # (C_local, D)

    def _initial_weight(self, std: float = 0.01, chunk: int = 4096) -> torch.Tensor:
        """N(0, std) rows of the full matrix, drawn in fixed chunks and cut to this shard.

        Drawing the whole matrix from one seed makes every shard of a sharded head
        equal to the same rows of an unsharded head built from the same global seed.
        """
        seed = int(torch.randint(0, 2**62, (1,)).item())
        generator = torch.Generator().manual_seed(seed)
        rows = []
        for start in range(0, self.class_stop, chunk):
            block = torch.randn(min(chunk, self.num_classes - start), self.num_features, generator=generator)
            low, high = max(self.class_start - start, 0), min(self.class_stop - start, block.shape[0])
            if high > low:
                rows.append(block[low:high])
        return torch.cat(rows) * std

    def extra_repr(self) -> str:
        return (
            f"num_features={self.num_features}, num_classes={self.num_classes}, s={self.s}, "
            f"m1={self.m1}, m2={self.m2}, m3={self.m3}, guard={self.guard!r}"
        )

    # -- the margin ------------------------------------------------------------------
    def target_logit(self, cosine: torch.Tensor) -> torch.Tensor:
        """``cos(m1 * theta + m2) - m3`` with the pi guard, element-wise (before scaling by s)."""
        if self.m1 == 1.0 and self.m2 == 0.0:
            return cosine - self.m3  # CosFace and plain softmax need no angle
        clamped = cosine.clamp(-1.0 + self.eps, 1.0 - self.eps)
        angle = self.m1 * torch.acos(clamped) + self.m2
        value = torch.cos(angle) - self.m3
        if self.guard == "fallback":
            return torch.where(angle > math.pi, clamped - self.m2 * math.sin(self.m2) - self.m3, value)
        if self.guard == "monotonic":
            k = torch.floor(angle / math.pi).detach()
            return (1.0 - 2.0 * torch.remainder(k, 2.0)) * torch.cos(angle) - 2.0 * k - self.m3
        if self.guard == "easy":
            return torch.where(clamped > 0, value, clamped - self.m3)
        return value

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``cos(theta)`` between embeddings and this head's class centres: ``(B, C)``.

        Computed in fp32, or fp64 when the embeddings are fp64 (for exact checks).
        """
        dtype = compute_dtype(embeddings)
        return F.linear(F.normalize(embeddings.to(dtype), dim=1), F.normalize(self.weight.to(dtype), dim=1))

    def _margin_logits(
        self, cosine: torch.Tensor, columns: torch.Tensor, delta_weights: torch.Tensor
    ) -> torch.Tensor:
        """``s * (cos + sum_k w_k [j == c_k] (target_logit - cos))``: the weighted sum of Arc(f, c_k)."""
        target_cosine = cosine.gather(1, columns)  # (B, K)
        delta = delta_weights * (self.target_logit(target_cosine) - target_cosine)  # (B, K)
        return self.s * torch.scatter_add(cosine, 1, columns, delta)  # (B, C)

    # -- labels ---------------------------------------------------------------------
    def prepare_labels(
        self, embeddings: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Check shapes and values; return ``targets (B, K) int64`` and float ``weights (B, K)``.

        ``targets (B,)`` with no weights is a plain hard label.

        Raises:
            SynfaceError: wrong shapes, a target outside ``[0, num_classes)``, a
                negative weight or weights not summing to 1.
        """
        if embeddings.dim() != 2 or embeddings.shape[1] != self.num_features:
            raise SynfaceError(
                f"head: embeddings must be (B, {self.num_features}), got {tuple(embeddings.shape)}"
            )
        if targets.dim() == 1:
            targets = targets[:, None]
        if weights is None:
            if targets.shape[1] != 1:
                raise SynfaceError(f"head: weights are required for {targets.shape[1]} label columns")
            weights = torch.ones(targets.shape, device=targets.device)
        if targets.dtype.is_floating_point or targets.dtype == torch.bool:
            raise SynfaceError(f"head: targets must be integers, got {targets.dtype}")
        if weights.dim() == 1:
            weights = weights[:, None]
        if targets.shape != weights.shape or targets.dim() != 2 or targets.shape[0] != embeddings.shape[0]:
            raise SynfaceError(
                f"head: targets {tuple(targets.shape)} and weights {tuple(weights.shape)} "
                f"must both be (B, K) with B = {embeddings.shape[0]} embeddings"
            )
        targets, weights = targets.long(), weights.to(compute_dtype(embeddings))
        if self.check_labels:
            self._check_values(targets, weights)
        return targets, weights

    def _check_values(self, targets: torch.Tensor, weights: torch.Tensor) -> None:
        out_of_range = (targets < 0) | (targets >= self.num_classes)
        sums = weights.sum(1)
        bad_sum = (sums - 1.0).abs() > WEIGHT_SUM_TOLERANCE
        flags = torch.stack(
            [out_of_range.any(), bad_sum.any(), (weights < 0).any() | ~weights.isfinite().all()]
        )
        has_bad_target, has_bad_sum, has_bad_weight = flags.tolist()  # one host sync
        if has_bad_target:
            value = int(targets[out_of_range][0])
            raise SynfaceError(
                f"head: target {value} is outside [0, {self.num_classes}) (num_classes={self.num_classes})"
            )
        if has_bad_weight:
            row = int(torch.nonzero(((weights < 0) | ~weights.isfinite()).any(1))[0])
            raise SynfaceError(
                f"head: label weights must be finite and >= 0; row {row} has {weights[row].tolist()}"
            )
        if has_bad_sum:
            row = int(torch.nonzero(bad_sum)[0])
            raise SynfaceError(
                f"head: label weights of each sample must sum to 1; row {row} has "
                f"{weights[row].tolist()} (sum {float(sums[row]):.6f})"
            )

    # -- forward --------------------------------------------------------------------
    def forward(
        self, embeddings: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> HeadOutput:
        """Soft-label margin loss for a batch.

        Args:
            embeddings: ``(B, D)`` backbone output (any float dtype; computed in fp32,
                or fp64 for fp64 input).
            targets: ``(B, K)`` int64 label columns, or ``(B,)`` for hard labels.
            weights: ``(B, K)`` label weights summing to 1 per row (``None`` for hard labels).

        Returns:
            ``HeadOutput(loss, logits, cosine)``, fp32 even under autocast.

        Raises:
            SynfaceError: malformed labels (see :meth:`prepare_labels`).
        """
        targets, weights = self.prepare_labels(embeddings, targets, weights)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            cosine = self.cosine(embeddings)  # (B, C)
            logits = self._margin_logits(cosine, targets, weights)  # (B, C)
            log_normaliser = torch.logsumexp(logits, dim=1, keepdim=True)  # (B, 1)
            cross_entropy = log_normaliser - logits.gather(1, targets)  # (B, K)
            loss = (weights * cross_entropy).sum(1).mean()
        return HeadOutput(loss, logits, cosine)


def compute_dtype(embeddings: torch.Tensor) -> torch.dtype:
    """fp32, or fp64 for fp64 inputs: logits and loss never run in half precision."""
    return torch.float64 if embeddings.dtype == torch.float64 else torch.float32


def list_heads() -> list[str]:
    """Names accepted by :func:`create_head`."""
    return sorted(_HEADS)


def create_head(
    name: str, num_features: int, num_classes: int, *, sharded: bool = False, **kwargs: Any
) -> CombinedMarginHead:
    """Build a margin head by name with the field's usual defaults.

    ``arcface``: m2 = 0.5 (the paper's setting); ``cosface``: m3 = 0.35;
    ``sphereface``: m1 = 1.35 with the monotonic guard (the combined-margin form of
    SphereFace; an integer m1 gives A-Softmax's psi, without its annealing);
    ``combined``: (m1, m2, m3) = (1, 0.3, 0.2). All use s = 30. ``m`` sets the named
    head's own margin; ``None`` values are ignored.

    Args:
        name: one of :func:`list_heads`.
        num_features: embedding size.
        num_classes: number of classes.
        sharded: split the class centres across ``torch.distributed`` ranks.
        **kwargs: any :class:`CombinedMarginHead` argument, or ``m``.

    Returns:
        The head.

    Raises:
        SynfaceError: an unknown name or arguments.
    """
    if name not in _HEADS:
        raise SynfaceError(f"unknown head {name!r}; valid: {', '.join(list_heads())}")
    margin_name, defaults = _HEADS[name]
    arguments = dict(defaults)
    for key, value in kwargs.items():
        if value is None:
            continue
        if key == "m":
            if margin_name is None:
                raise SynfaceError(f"head {name!r}: give m1, m2 and m3 instead of m")
            key = margin_name
        arguments[key] = value
    if sharded:
        from synface.models.sharded_head import ShardedMarginHead

        cls: type[CombinedMarginHead] = ShardedMarginHead
    else:
        cls = CombinedMarginHead
    try:
        return cls(num_features=num_features, num_classes=num_classes, **arguments)
    except TypeError as error:
        raise SynfaceError(f"head {name!r}: bad arguments {sorted(kwargs)}: {error}") from None
