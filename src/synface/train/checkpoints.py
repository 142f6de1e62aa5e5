"""Run checkpoints: one folder per saved epoch, switched in atomically, and the rules for resuming from one.

A run folder holds ``checkpoints/epoch-NNNN/`` with

* ``model.safetensors`` + ``model.json``: the backbone (``synface.checkpoint.load_model``
  rebuilds it from these two files alone), with the resolved config in ``extra``;
* ``head.safetensors`` + ``head.json``: the full class-centre matrix ``(C, D)`` and
  its SGD momentum (gathered from all ranks when the head is sharded);
* ``resume.safetensors`` + ``resume.json``: backbone optimizer, grad scaler,
  epoch, step, RNG states and the facts a resume must agree with.

An epoch is written into a hidden ``.epoch-NNNN.partial`` folder, renamed into
place, and only then named in ``checkpoints/latest.json``; a run killed at any
moment resumes from the last complete checkpoint. Nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import distributed as dist
from torch import nn

from synface.checkpoint import (
    META_FILE,
    load_model,
    load_resume,
    load_state,
    save_model,
    save_resume,
    save_state,
    unflatten_state,
)
from synface.errors import DataError, SynfaceError
from synface.io import atomic_write_json
from synface.models.heads import CombinedMarginHead
from synface.models.sharded_head import shard_range
from synface.train.config import RunConfig
from synface.train.distributed import Placement

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest.json"
HEAD_NAME = "head"

# Settings that change how a run is watched or where it runs, not what it computes.
RESUMABLE_CHANGES = (
    "train.output_dir", "train.resume", "train.device", "train.compile", "train.log_interval",
    "train.checkpoint_every", "train.keep_checkpoints", "train.tensorboard",
    "data.workers", "data.domain_mixup.workers", "validation.",
)


def checkpoint_name(epoch: int) -> str:
    """Folder name of the checkpoint taken after ``epoch`` epochs."""
    return f"epoch-{epoch:04d}"


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The last complete checkpoint of a run, or None when it has none.

    Raises:
        DataError: ``latest.json`` is corrupt or names a missing folder.
    """
    pointer = Path(run_dir) / CHECKPOINTS_DIR / LATEST_FILE
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{pointer}: unreadable checkpoint pointer ({error})") from None
    folder = pointer.parent / str(name)
    if not (folder / META_FILE).is_file():
        raise DataError(f"{pointer}: names {folder}, which holds no {META_FILE}")
    return folder


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint folder from a run folder, a checkpoint folder or its ``model.json``.

    Raises:
        DataError: none of these is found at ``path``.
    """
    path = Path(path)
    if path.is_file() and path.name == META_FILE:
        return path.parent
    if (path / META_FILE).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise DataError(f"{path}: not a checkpoint (no {META_FILE}) nor a run folder with checkpoints")
    return latest


# -- the head, whole on disk and possibly sharded in memory ------------------------------------
def gather_class_rows(tensor: torch.Tensor, head: CombinedMarginHead, placement: Placement) -> torch.Tensor:
    """The full ``(C, ...)`` matrix from each rank's rows of a (possibly sharded) head; collective."""
    if (head.class_start, head.class_stop) == (0, head.num_classes) or not placement.distributed:
        return tensor.detach().clone()
    sizes = [stop - start for start, stop in
             (shard_range(head.num_classes, placement.world_size, r) for r in range(placement.world_size))]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor.detach()
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def head_state(head: CombinedMarginHead, optimizer: torch.optim.Optimizer, placement: Placement) -> dict[str, Any]:
    """The head's full class centres and their SGD momentum (collective when sharded)."""
    buffer = optimizer.state.get(head.weight, {}).get("momentum_buffer")
    return {
        "num_classes": head.num_classes,
        "num_features": head.num_features,
        "weight": gather_class_rows(head.weight, head, placement),  # (C, D)
        "momentum": None if buffer is None else gather_class_rows(buffer, head, placement),  # (C, D)
    }


def restore_head(head: CombinedMarginHead, optimizer: torch.optim.Optimizer, state: Mapping[str, Any],
                 where: Path) -> None:
    """Load this rank's rows of a saved :func:`head_state` into ``head`` and its optimizer.

    Raises:
        DataError: the saved matrix has another shape.
    """
    expected = (head.num_classes, head.num_features)
    if tuple(state["weight"].shape) != expected:
        raise DataError(f"{where}: head weight is {tuple(state['weight'].shape)}, expected {expected}")
    rows = slice(head.class_start, head.class_stop)
    with torch.no_grad():
        head.weight.copy_(state["weight"][rows])
    if state.get("momentum") is not None:
        optimizer.state[head.weight]["momentum_buffer"] = state["momentum"][rows].to(head.weight.device).clone()


# -- saving -----------------------------------------------------------------------------------
def save_checkpoint(
    run_dir: Path,
    cfg: RunConfig,
    model: nn.Module,
    head: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    progress: Mapping[str, Any],
) -> Path:
    """Write the checkpoint of a finished epoch and make it the latest (main process only).

    Args:
        run_dir: the run folder.
        cfg: the run's config (stored in both JSON files).
        model: the backbone (wrappers are unwrapped).
        head: :func:`head_state` of the margin head.
        optimizer: the backbone's optimizer.
        scaler: the fp16 grad scaler (stored when enabled).
        progress: ``epoch``, ``step``, ``num_classes``, ``world_size``, ``global_batch``,
            ``steps_per_epoch`` and ``metrics`` of the run so far.

    Returns:
        The checkpoint folder.
    """
    root = run_dir / CHECKPOINTS_DIR
    epoch, step = int(progress["epoch"]), int(progress["step"])
    final, partial = root / checkpoint_name(epoch), root / f".{checkpoint_name(epoch)}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving
    extra = {**progress, "config": cfg.to_dict()}
    save_model(partial, model, name=cfg.model.name, kwargs=cfg.model_kwargs(), extra=extra)
    save_state(partial, {"name": cfg.head.name, **head}, name=HEAD_NAME)
    others = {"scaler": scaler} if scaler.is_enabled() else {}
    save_resume(partial, epoch=epoch, step=step, optimizer=optimizer, others=others, extra=extra)
    if final.exists():  # written by an interrupted run after its last pointer update
        shutil.rmtree(final)
    os.replace(partial, final)
    atomic_write_json(root / LATEST_FILE, {"checkpoint": final.name, "epoch": epoch, "step": step})
    _prune(root, cfg.train.keep_checkpoints, keep=final.name)
    logger.info("saved checkpoint %s", final)
    return final


def _prune(root: Path, keep_count: int, keep: str) -> None:
    """Delete all but the newest ``keep_count`` epoch folders (0 keeps all)."""
    if keep_count == 0:
        return
    folders = sorted(p for p in root.glob("epoch-*") if p.is_dir() and p.name != keep)
    for folder in folders[: max(len(folders) - (keep_count - 1), 0)]:
        shutil.rmtree(folder, ignore_errors=True)


# -- resuming ---------------------------------------------------------------------------------
def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for every setting that differs and matters for resuming."""
    old, new = _flatten(saved), _flatten(current)
    changes = []
    for key in sorted(set(old) | set(new)):
        if any(key == skip or (skip.endswith(".") and key.startswith(skip)) for skip in RESUMABLE_CHANGES):
            continue
        if old.get(key, "<unset>") != new.get(key, "<unset>"):
            changes.append(f"{key} ({old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r})")
    return changes


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def read_progress(checkpoint: Path) -> dict[str, Any]:
    """The ``extra`` record of a checkpoint's ``resume.json`` (config, epoch, step, ...), tensors unread."""
    path = checkpoint / "resume.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        entries = dict(meta["structure"]["$dict"])
        progress = unflatten_state({}, entries["extra"])  # holds no tensors
    except (OSError, ValueError, KeyError, TypeError, SynfaceError) as error:
        raise DataError(f"{path}: unreadable resume state ({error})") from None
    if not isinstance(progress, dict):
        raise DataError(f"{path}: resume state has no progress record")
    return progress


def check_resumable(checkpoint: Path, cfg: RunConfig, facts: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse to resume from a checkpoint of a different run; return its progress record.

    Args:
        checkpoint: the checkpoint folder.
        cfg: the config of the resuming run.
        facts: ``num_classes``, ``world_size``, ``global_batch`` and ``steps_per_epoch`` of it.

    Raises:
        SynfaceError: naming every differing setting.
    """
    progress = read_progress(checkpoint)
    changes = config_differences(progress.get("config", {}), cfg.to_dict())
    for key, value in facts.items():
        if progress.get(key) != value:
            changes.append(f"{key} ({progress.get(key)!r} -> {value!r})")
    if changes:
        raise SynfaceError(f"cannot resume from {checkpoint}: the run differs in {'; '.join(changes)}; "
                           "restore those settings or train into a new train.output_dir")
    return progress


def load_checkpoint(checkpoint: Path, model: nn.Module, head: CombinedMarginHead,
                    optimizer: torch.optim.Optimizer, head_optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler) -> dict[str, Any]:
    """Restore weights, optimizer states, grad scaler and RNG states from ``checkpoint``.

    Returns:
        ``{"epoch", "step", "extra"}`` of the checkpoint.

    Raises:
        DataError: missing, corrupt or mismatched files.
    """
    saved, _ = load_model(checkpoint)
    model.load_state_dict(saved.state_dict())
    restore_head(head, head_optimizer, load_state(checkpoint, name=HEAD_NAME), checkpoint / f"{HEAD_NAME}.json")
    others = {"scaler": scaler} if scaler.is_enabled() else {}
    # Kernel choices depend on the device, which may differ from the saving run's (CUDA -> CPU).
    kernels = [{key: group.get(key) for key in ("fused", "foreach")} for group in optimizer.param_groups]
    state = load_resume(checkpoint, optimizer=optimizer, others=others, restore_rng=True)
    for group, options in zip(optimizer.param_groups, kernels):
        group.update(options)
    return state
