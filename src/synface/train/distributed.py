"""Process placement for training: one process on CPU or one GPU, or data-parallel ranks under torchrun.

``torch.distributed`` starts only when a launcher has set ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK`` (``torchrun --nproc_per_node N -m synface.cli train CONFIG``):
gloo on CPU, NCCL on CUDA. A plain ``synface train`` never touches it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from torch import distributed as dist

from synface.errors import ConfigError

logger = logging.getLogger(__name__)

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Placement:
    """Where this process runs and which part of the work it does."""

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # this placement started the process group (and ends it)

    @property
    def distributed(self) -> bool:
        """Whether a process group is in use."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that logs and saves (rank 0)."""
        return self.rank == 0


def launched_distributed() -> bool:
    """Whether a launcher such as torchrun started this process (its variables are set)."""
    return all(name in os.environ for name in LAUNCHER_VARIABLES)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """Turn a device setting into a device for this process.

    Args:
        name: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        local_rank: the process's index on its machine; picks the GPU for ``auto``/``cuda``.

    Raises:
        ConfigError: an unknown device, or CUDA asked for where there is none.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device: {name!r} but CUDA is not available here; use cpu or auto")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise ConfigError(f"train.device: {device} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


def setup(device_name: str) -> Placement:
    """Place this process, starting the process group when launched by torchrun.

    Args:
        device_name: the ``train.device`` setting.

    Returns:
        The placement (rank 0 of 1 without a launcher).

    Raises:
        ConfigError: a bad device, or launcher variables that are not integers.
    """
    if not launched_distributed():
        return Placement(resolve_device(device_name))
    try:
        rank, world_size, local_rank = (int(os.environ[name]) for name in LAUNCHER_VARIABLES)
    except ValueError:
        values = {name: os.environ[name] for name in LAUNCHER_VARIABLES}
        raise ConfigError(f"launcher variables must be integers, got {values}") from None
    device = resolve_device(device_name, local_rank)
    if world_size == 1:
        return Placement(device, rank, local_rank, world_size)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=device if device.type == "cuda" else None)
    logger.debug("rank %d/%d on %s", rank, world_size, device)
    return Placement(device, rank, local_rank, world_size, owns_group)


def teardown(placement: Placement) -> None:
    """Leave the process group started by :func:`setup` (one started by the caller stays)."""
    if placement.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor, placement: Placement, op: str = "sum") -> torch.Tensor:
    """Reduce ``tensor`` in place over all ranks (``sum``, ``min`` or ``max``); a no-op alone."""
    if placement.distributed:
        reduce_op = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op]
        dist.all_reduce(tensor, op=reduce_op)
    return tensor


def barrier(placement: Placement) -> None:
    """Wait for every rank (a no-op alone)."""
    if placement.distributed:
        dist.barrier()


def broadcast_flag(flag: bool, placement: Placement) -> bool:
    """Rank 0's ``flag`` on every rank (so all ranks stop together on a rank-0 failure)."""
    if not placement.distributed:
        return flag
    tensor = torch.tensor([int(flag)], device=placement.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
