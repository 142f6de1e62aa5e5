"""What one training process holds (backbone, margin head, optimizers, grad scaler) and the single train step.

The backbone and the head have one SGD optimizer each, with the same settings and
schedule (the same updates as one optimizer over both); keeping them apart lets a
sharded head's momentum be saved whole, independently of the number of ranks.
:func:`train_step` is shared by the training loop and the benchmark, so the
benchmark times exactly what training runs.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
from torch import distributed as dist
from torch import nn

from synface.models import create_head, create_model
from synface.models.heads import CombinedMarginHead, HeadOutput
from synface.train.config import RunConfig, TrainConfig
from synface.train.distributed import Placement

logger = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class FaceClassifier(nn.Module):
    """Backbone and margin head as one module, so DDP averages the gradients of both."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> HeadOutput:
        """``(B, 3, H, W)`` images and ``(B, K)`` soft labels -> the head's loss and logits."""
        return self.head(self.backbone(images), targets, weights)


@dataclass
class TrainingParts:
    """The modules and optimizer states of one process."""

    model: nn.Module  # the plain backbone: what is saved and evaluated
    head: CombinedMarginHead
    optimizer: torch.optim.Optimizer  # backbone parameters
    head_optimizer: torch.optim.Optimizer  # class centres (this rank's rows when sharded)
    scaler: torch.amp.GradScaler  # enabled for fp16 only
    classifier: nn.Module | None = None  # set by wrap(): compiled and/or DDP-wrapped

    @property
    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        return self.optimizer, self.head_optimizer


def parameter_groups(module: nn.Module, cfg: TrainConfig) -> list[dict]:
    """SGD parameter groups: weight decay on everything, or (``decay_norm_and_bias: false``) on tensors of 2+ dims."""
    params = [p for p in module.parameters() if p.requires_grad]
    if cfg.decay_norm_and_bias:
        return [{"params": params, "weight_decay": cfg.weight_decay}]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_parts(cfg: RunConfig, placement: Placement, num_classes: int) -> TrainingParts:
    """Create the backbone, head, optimizers and grad scaler on this process's device.

    The weights depend only on ``train.seed``, so every rank (and a resumed run)
    builds the same initial model; a sharded head takes its rows of the same matrix.

    Raises:
        SynfaceError: model or head arguments that do not fit.
    """
    torch.manual_seed(cfg.train.seed)
    model = create_model(cfg.model.name, **cfg.model_kwargs())
    head = create_head(cfg.head.name, cfg.model.num_features, num_classes,
                       sharded=cfg.head.sharded, **cfg.head.kwargs())
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(placement.device, memory_format=memory_format)
    head = head.to(placement.device)
    if cfg.train.sync_bn and placement.distributed and placement.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    train = cfg.train
    fused = placement.device.type == "cuda"  # one kernel for all parameters instead of one per tensor
    optimizer = torch.optim.SGD(parameter_groups(model, train), lr=train.lr, momentum=train.momentum, fused=fused)
    head_optimizer = torch.optim.SGD(parameter_groups(head, train), lr=train.lr, momentum=train.momentum,
                                     fused=fused)
    scaler = torch.amp.GradScaler(placement.device.type, enabled=train.precision == "fp16")
    return TrainingParts(model, head, optimizer, head_optimizer, scaler)


def wrap(parts: TrainingParts, cfg: RunConfig, placement: Placement) -> nn.Module:
    """Compile the backbone and wrap for data parallelism; sets and returns ``parts.classifier``.

    With a sharded head only the backbone is data-parallel: each rank's class
    centres get complete gradients from the gathered batch already.
    """
    backbone: nn.Module = torch.compile(parts.model) if cfg.train.compile else parts.model
    options = {"device_ids": [placement.device] if placement.device.type == "cuda" else None,
               "gradient_as_bucket_view": True}  # gradients live in the all-reduce buckets: no copies
    if not placement.distributed:
        parts.classifier = FaceClassifier(backbone, parts.head)
    elif cfg.head.sharded:
        parts.classifier = FaceClassifier(nn.parallel.DistributedDataParallel(backbone, **options), parts.head)
    else:
        parts.classifier = nn.parallel.DistributedDataParallel(FaceClassifier(backbone, parts.head), **options)
    return parts.classifier


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to bf16/fp16 for ``precision``, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


def set_learning_rate(parts: TrainingParts, lr: float) -> None:
    """Set ``lr`` on every parameter group of both optimizers."""
    for optimizer in parts.optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr


def train_step(parts: TrainingParts, images: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
               cfg: TrainConfig) -> HeadOutput:
    """One optimizer step: forward under autocast, fp32 margin loss, backward, optional clipping, SGD.

    Args:
        parts: with ``classifier`` set by :func:`wrap`.
        images: (B, 3, H, W) float in [-1, 1].
        targets, weights: (B, K) soft labels.
        cfg: precision and gradient clipping settings.

    Returns:
        The head's output (loss, logits, cosine) of the step.
    """
    assert parts.classifier is not None, "call wrap() first"
    with autocast(images.device, cfg.precision):
        output = parts.classifier(images, targets, weights)
    for optimizer in parts.optimizers:
        optimizer.zero_grad(set_to_none=True)
    parts.scaler.scale(output.loss).backward()
    if cfg.grad_clip > 0:
        # Backbone only, as arcface_torch does: its norm is the same on every rank.
        parts.scaler.unscale_(parts.optimizer)
        nn.utils.clip_grad_norm_(parts.model.parameters(), cfg.grad_clip)
    for optimizer in parts.optimizers:
        parts.scaler.step(optimizer)
    parts.scaler.update()
    return output


def primary_labels(targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The label of largest weight of each sample: ``(B, K)`` -> ``(B,)``."""
    return targets.gather(1, weights.argmax(1, keepdim=True)).squeeze(1)


def predicted_classes(head: CombinedMarginHead, cosine: torch.Tensor, batch_size: int,
                      placement: Placement) -> torch.Tensor:
    """Nearest class centre of each of this rank's samples: ``(B,)``.

    A sharded head returns ``cosine`` for the gathered batch of all ranks over its
    own classes; the best class is then found across ranks (a collective).
    """
    if (head.class_start, head.class_stop) == (0, head.num_classes) or not placement.distributed:
        return cosine.argmax(1)
    values, index = cosine.detach().max(1)  # (N,) over this rank's classes
    index = index + head.class_start
    all_values = [torch.empty_like(values) for _ in range(placement.world_size)]
    all_index = [torch.empty_like(index) for _ in range(placement.world_size)]
    dist.all_gather(all_values, values)
    dist.all_gather(all_index, index)
    best = torch.stack(all_values).argmax(0, keepdim=True)  # (1, N): which rank holds the best class
    classes = torch.stack(all_index).gather(0, best).squeeze(0)  # (N,)
    start = placement.rank * batch_size  # ranks' batches are gathered in rank order, equal sizes
    return classes[start:start + batch_size]
