"""Model-parallel margin head: class centres split across ``torch.distributed`` ranks.

For 100K+ classes each rank holds a contiguous slice of the centres; embeddings and
labels of all ranks are gathered, logits are computed locally, and the softmax
normaliser is reduced across ranks, so loss and gradients equal those of
:class:`~synface.models.heads.CombinedMarginHead` on the whole batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import distributed as dist

from synface.errors import SynfaceError
from synface.models.heads import CombinedMarginHead, HeadOutput


def shard_range(num_classes: int, world_size: int, rank: int) -> tuple[int, int]:
    """Rows ``(start, stop)`` of ``num_classes`` held by ``rank``: contiguous, sizes differ by at most 1."""
    base, extra = divmod(num_classes, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def _gather_rows(tensor: torch.Tensor, sizes: list[int], group: Any) -> torch.Tensor:
    """All-gather ``(n_r, ...)`` tensors of per-rank sizes ``sizes`` into ``(sum n_r, ...)``."""
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous(), group=group)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient and keeps this rank's rows."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, sizes: list[int], group: Any, scale: float) -> torch.Tensor:
        rank = dist.get_rank(group)
        ctx.rows = (sum(sizes[:rank]), sum(sizes[: rank + 1]))
        ctx.group, ctx.scale = group, scale
        return _gather_rows(tensor, sizes, group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        start, stop = ctx.rows
        return grad[start:stop] * ctx.scale, None, None, None


class _ShardedSoftCrossEntropy(torch.autograd.Function):
    """``mean_i (lse_i * sum_k w_ik - sum_j T_ij z_ij)`` over logits ``z`` split by class across ranks."""

    @staticmethod
    def forward(
        ctx: Any, logits: torch.Tensor, target_mass: torch.Tensor, mass: torch.Tensor, group: Any
    ) -> torch.Tensor:
        maximum = logits.max(dim=1).values  # (N,)
        dist.all_reduce(maximum, op=dist.ReduceOp.MAX, group=group)
        exponentials = torch.exp(logits - maximum[:, None])  # (N, C_local)
        sums = torch.stack([exponentials.sum(1), (target_mass * logits).sum(1)])  # (2, N)
        dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=group)
        normaliser, target_logits = sums[0], sums[1]
        log_normaliser = maximum + torch.log(normaliser)  # (N,)
        ctx.save_for_backward(exponentials / normaliser[:, None], target_mass, mass)
        return (log_normaliser * mass - target_logits).mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        softmax, target_mass, mass = ctx.saved_tensors
        grad_logits = (softmax * mass[:, None] - target_mass) * (grad / softmax.shape[0])
        return grad_logits, None, None, None


class ShardedMarginHead(CombinedMarginHead):
    """:class:`CombinedMarginHead` with the class centres split across ranks (model parallel).

    Each rank holds the rows :func:`shard_range` gives it. In ``forward`` the
    embeddings and labels of all ranks are gathered, each rank computes logits for
    its classes, and the softmax normaliser is reduced across ranks, so the loss
    (equal on every rank) and the gradients equal those of the unsharded head on
    the concatenated batch. Without an initialised process group it *is* the
    unsharded head. Returned ``logits``/``cosine`` are ``(sum of batches, C_local)``.

    Args:
        *args: as :class:`CombinedMarginHead`.
        group: process group (default: the world).
        scale_embedding_grad: multiply embedding gradients by the world size, so
            that DDP's averaging of backbone gradients gives the gradient of the
            global-mean loss (as one process on the whole batch would).
        **kwargs: as :class:`CombinedMarginHead` (except ``shard``).
    """

    def __init__(
        self, *args: Any, group: Any = None, scale_embedding_grad: bool = True, **kwargs: Any
    ) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size(group) if distributed else 1
        rank = dist.get_rank(group) if distributed else 0
        num_classes = kwargs["num_classes"] if "num_classes" in kwargs else args[1]
        if world_size > num_classes:
            raise SynfaceError(f"head: cannot split {num_classes} classes over {world_size} ranks")
        super().__init__(*args, shard=shard_range(num_classes, world_size, rank), **kwargs)
        self.group, self.world_size, self.rank = group, world_size, rank
        self.scale_embedding_grad = scale_embedding_grad

    def forward(
        self, embeddings: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
    ) -> HeadOutput:
        """As :meth:`CombinedMarginHead.forward`, over the batches of all ranks."""
        if self.world_size == 1:
            return super().forward(embeddings, targets, weights)
        try:
            targets, weights = self.prepare_labels(embeddings, targets, weights)
            problem = None
        except SynfaceError as error:
            problem = error  # raised on every rank below, so none waits in a collective
        columns_count = targets.shape[1] if targets.dim() == 2 else 1
        size = torch.tensor(
            [embeddings.shape[0], columns_count, problem is not None], device=embeddings.device
        )
        sizes_all = [torch.empty_like(size) for _ in range(self.world_size)]
        dist.all_gather(sizes_all, size, group=self.group)
        failed = [rank for rank, s in enumerate(sizes_all) if int(s[2])]
        if problem is not None:
            raise problem
        if failed:
            raise SynfaceError(f"head: invalid labels on rank(s) {failed}")
        sizes = [int(s[0]) for s in sizes_all]
        if len({int(s[1]) for s in sizes_all}) != 1:
            raise SynfaceError(f"head: label columns differ across ranks: {[int(s[1]) for s in sizes_all]}")
        scale = float(self.world_size) if self.scale_embedding_grad else 1.0
        all_embeddings = _AllGatherWithGrad.apply(embeddings, sizes, self.group, scale)  # (N, D)
        all_targets = _gather_rows(targets, sizes, self.group)  # (N, K)
        all_weights = _gather_rows(weights, sizes, self.group)  # (N, K)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            cosine = self.cosine(all_embeddings)  # (N, C_local)
            local = all_targets - self.class_start
            inside = (local >= 0) & (local < cosine.shape[1])  # columns this rank owns
            columns = local.clamp(0, cosine.shape[1] - 1)
            local_weights = torch.where(inside, all_weights, torch.zeros_like(all_weights))
            logits = self._margin_logits(cosine, columns, local_weights)  # (N, C_local)
            target_mass = torch.zeros_like(cosine).scatter_add_(1, columns, local_weights)
            loss = _ShardedSoftCrossEntropy.apply(logits, target_mass, all_weights.sum(1), self.group)
        return HeadOutput(loss, logits, cosine)

    def gather_weight(self) -> torch.Tensor:
        """The full ``(num_classes, D)`` class-centre matrix, on every rank (e.g. to save it)."""
        if self.world_size == 1:
            return self.weight.detach().clone()
        sizes = [
            b - a
            for a, b in (shard_range(self.num_classes, self.world_size, r) for r in range(self.world_size))
        ]
        return _gather_rows(self.weight.detach(), sizes, self.group)

    @torch.no_grad()
    def load_full_weight(self, weight: torch.Tensor) -> None:
        """Copy this rank's rows of a full ``(num_classes, D)`` matrix into the shard."""
        if tuple(weight.shape) != (self.num_classes, self.num_features):
            raise SynfaceError(
                f"head: expected a ({self.num_classes}, {self.num_features}) weight, "
                f"got {tuple(weight.shape)}"
            )
        self.weight.copy_(weight[self.class_start : self.class_stop])
