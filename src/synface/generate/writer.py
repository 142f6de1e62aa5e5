"""Write a generated dataset to disk in the ``synface-dataset/1`` format, resumably.

Layout (see ``docs/architecture.md``)::

    DATASET/plan.json                      first: resolved config, its hash, the face model
    DATASET/identities.safetensors         identity_shape (N, Ks), appearance (N, Ka), sample_counts (N,)
    DATASET/shards/images-NNNNN.npy        uint8 (n, H, W, 3)
    DATASET/shards/meta-NNNNN.safetensors  per-sample labels and factors
    DATASET/dataset.json                   last: counts, shards, face model, config

Every file is written atomically; a shard exists once its meta file exists (its
images are written first). Shard ``k`` holds the fixed global sample range
``[k * shard_size, (k + 1) * shard_size)``, rendered in batches of ``batch_size``
from the shard's start, so a re-run skips complete shards, re-renders only the
missing ones, and any shard regenerates alone byte for byte.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save as save_numpy

from synface import __version__
from synface.errors import ConfigError, DataError
from synface.generate.generator import SAMPLE_FIELDS, FaceGenerator
from synface.generate.layout import Layout
from synface.generate.sampling import GenerateConfig
from synface.io import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    read_json_document,
    remove_stale_temporaries,
)
from synface.progress import progress

logger = logging.getLogger(__name__)

FORMAT = "synface-dataset/1"
PLAN, DATASET, IDENTITIES, SHARDS = "plan.json", "dataset.json", "identities.safetensors", "shards"


@dataclass(frozen=True)
class ShardSpec:
    """One shard: its number and global sample range ``[start, stop)``."""

    index: int
    start: int
    stop: int

    @property
    def images_name(self) -> str:
        return f"{SHARDS}/images-{self.index:05d}.npy"

    @property
    def meta_name(self) -> str:
        return f"{SHARDS}/meta-{self.index:05d}.safetensors"


def plan_shards(num_samples: int, shard_size: int) -> list[ShardSpec]:
    """The fixed shard ranges of a dataset of ``num_samples`` images."""
    return [ShardSpec(k, start, min(start + shard_size, num_samples))
            for k, start in enumerate(range(0, num_samples, shard_size))]


def render_shard(generator: FaceGenerator, layout: Layout, shard: ShardSpec,
                 on_batch: Callable[[int], object] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render one shard in its fixed batches.

    Args:
        generator: the dataset's generator.
        layout: the dataset's layout.
        shard: which shard.
        on_batch: called with the number of images after each batch (progress).

    Returns:
        (images (n, H, W, 3) uint8, per-sample fields of :data:`SAMPLE_FIELDS`) on the CPU.
    """
    identity, sample_index = layout.locate(shard.start, shard.stop)
    batch = generator.config.batch_size
    # Start every batch's factor draws first: with sampling workers they run while earlier batches render.
    pending = [generator.sample_async(identity[offset:offset + batch], sample_index[offset:offset + batch])
               for offset in range(0, len(identity), batch)]
    images, parts = [], []
    for factors in pending:
        pixels, fields = generator.render_factors(factors.result())
        images.append(pixels.cpu().numpy())
        parts.append({k: fields[k].cpu().numpy() for k in SAMPLE_FIELDS})
        if on_batch is not None:
            on_batch(len(pixels))
    meta = {k: np.ascontiguousarray(np.concatenate([p[k] for p in parts])) for k in SAMPLE_FIELDS}
    return np.concatenate(images), meta


def write_shard(folder: Path, shard: ShardSpec, images: np.ndarray, meta: dict[str, np.ndarray]) -> None:
    """Write a shard's images, then its meta file (whose presence marks the shard complete)."""
    with atomic_open(folder / shard.images_name) as handle:
        np.lib.format.write_array(handle, np.ascontiguousarray(images), allow_pickle=False)
    atomic_write_bytes(folder / shard.meta_name, save_numpy(meta))


def _plan(config: GenerateConfig, generator: FaceGenerator, layout: Layout) -> dict:
    return {
        "format": FORMAT,
        "config_hash": config.content_hash(),
        "face_model": {"spec": config.face_model, "name": generator.model.name,
                       "content_hash": generator.model.content_hash()},
        "num_identities": layout.num_identities,
        "num_samples": layout.num_samples,
        "config": config.to_dict(),
    }


def _prepare_folder(folder: Path, plan: dict, overwrite: bool) -> bool:
    """Make ``folder`` ready for ``plan``; returns True when it already holds the finished dataset.

    Raises:
        DataError: the folder holds something else (another config, another face model,
            files that are not a dataset) and ``overwrite`` is off.
    """
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder")
    if overwrite:
        _remove_dataset_files(folder)
    if not folder.is_dir() or _is_blank(folder):
        return False
    plan_path = folder / PLAN
    if not plan_path.is_file():
        raise DataError(f"{folder}: folder is not empty and holds no {PLAN}; choose an empty folder "
                        "(or pass --overwrite to replace a dataset there)")
    existing = read_json_document(plan_path, "generation plan (pass --overwrite to start again)")
    if existing.get("config_hash") != plan["config_hash"]:
        raise DataError(f"{folder}: holds a dataset generated from a different config (hash "
                        f"{existing.get('config_hash')}, now {plan['config_hash']}); use another folder "
                        "or pass --overwrite")
    if existing.get("face_model") != plan["face_model"]:
        old, new = existing.get("face_model", {}), plan["face_model"]
        raise DataError(f"{folder}: was started with face model {old.get('name')} ({old.get('content_hash')}), "
                        f"now {new['name']} ({new['content_hash']}); use another folder or pass --overwrite")
    return (folder / DATASET).is_file()


def _is_blank(folder: Path) -> bool:
    """True when ``folder`` holds nothing but what a run killed before writing its plan leaves."""
    for entry in folder.iterdir():
        stale = entry.is_file() and entry.name.startswith(".") and entry.name.endswith(".tmp")
        empty_shards = entry.name == SHARDS and entry.is_dir() and not any(entry.iterdir())
        if not (stale or empty_shards):
            return False
    return True


def _remove_dataset_files(folder: Path) -> None:
    """Delete what a dataset writer puts in ``folder`` (and only that)."""
    if not folder.is_dir():
        return
    for name in (DATASET, PLAN, IDENTITIES):
        (folder / name).unlink(missing_ok=True)
    if (folder / SHARDS).is_dir():
        shutil.rmtree(folder / SHARDS)
    remove_stale_temporaries(folder)


def _write_identities(folder: Path, generator: FaceGenerator, layout: Layout) -> None:
    path = folder / IDENTITIES
    if path.is_file():
        return
    shape, appearance = generator.identity_coefficients(np.arange(layout.num_identities))
    atomic_write_bytes(path, save_numpy({
        "identity_shape": np.ascontiguousarray(shape), "appearance": np.ascontiguousarray(appearance),
        "sample_counts": np.ascontiguousarray(layout.counts),
    }))


def _summary(plan: dict, generator: FaceGenerator, shards: list[ShardSpec], device: torch.device) -> dict:
    config = generator.config
    return {
        "format": FORMAT,
        "synface_version": __version__,
        "num_identities": plan["num_identities"],
        "num_samples": plan["num_samples"],
        "num_classes": plan["num_identities"],
        "image": {"height": generator.height, "width": generator.width, "channels": 3,
                  "template": config.render.template, "dtype": "uint8", "layout": "NHWC"},
        "mixup": config.mixup.mode,
        "face_model": plan["face_model"],
        "config_hash": plan["config_hash"],
        "config": plan["config"],
        "render_device": device.type,
        "shards": [{"index": s.index, "images": s.images_name, "meta": s.meta_name, "start": s.start,
                    "stop": s.stop} for s in shards],
    }


def generate_dataset(config: GenerateConfig, folder: str | Path, device: torch.device | str = "cpu",
                     overwrite: bool = False, generator: FaceGenerator | None = None) -> dict:
    """Generate (or finish generating) the dataset of ``config`` in ``folder``.

    Args:
        config: what to generate.
        folder: the dataset folder; created if missing.
        device: where to render.
        overwrite: replace a dataset of another config already in ``folder``.
        generator: a ready generator for ``config`` (made here if None).

    Returns:
        The contents of ``dataset.json``.

    Raises:
        AssetError: the face model cannot be loaded (nothing is written).
        DataError: ``folder`` holds something else and ``overwrite`` is off.
    """
    folder = Path(folder)
    device = torch.device(device)
    if generator is None:
        generator = FaceGenerator(config, device)
    elif generator.config != config:
        raise ConfigError("generate_dataset: the generator was built for another config")
    layout = config.layout.resolve()
    plan = _plan(config, generator, layout)
    if _prepare_folder(folder, plan, overwrite):
        logger.info("%s: dataset already complete", folder)
        return json.loads((folder / DATASET).read_text(encoding="utf-8"))
    (folder / SHARDS).mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temporaries(folder) + remove_stale_temporaries(folder / SHARDS)
    if stale:
        logger.info("removed %d temporary files left by an interrupted run", stale)
    if not (folder / PLAN).is_file():
        atomic_write_json(folder / PLAN, plan)
    _write_identities(folder, generator, layout)
    shards = plan_shards(layout.num_samples, config.shard_size)
    todo = [s for s in shards if not (folder / s.meta_name).is_file()]
    if len(todo) < len(shards):
        logger.info("resuming: %d of %d shards already complete", len(shards) - len(todo), len(shards))
    done = layout.num_samples - sum(s.stop - s.start for s in todo)
    with progress(total=layout.num_samples, initial=done, unit="img", desc="generate") as bar:
        for shard in todo:
            images, meta = render_shard(generator, layout, shard, bar.update)
            write_shard(folder, shard, images, meta)
    summary = _summary(plan, generator, shards, device)
    atomic_write_json(folder / DATASET, summary)
    return summary
