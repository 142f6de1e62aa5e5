"""Executors of the data steps: generate a dataset, align real photos, measure real statistics, build Syn-LFW-like sets.

Each executor gets a :class:`~synface.experiments.runner.StepContext` (its folder,
its resolved config, the run's device) and returns a small JSON-safe summary that
the runner stores in ``done.json``. Every one of them resumes a killed run: the
dataset writer skips finished shards, alignment skips logged images.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from synface.errors import DataError
from synface.experiments.runner import StepContext, register_executor
from synface.generate.generator import FaceGenerator, PendingFactors
from synface.generate.layout import LayoutConfig
from synface.generate.sampling import GenerateConfig
from synface.io import atomic_open
from synface.progress import progress

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` becomes CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an image file."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:
        raise DataError(f"{path}: unreadable image ({error})") from None


@register_executor("generate")
def run_generate(context: StepContext) -> dict[str, Any]:
    """Render the dataset of ``config.generate`` (resumable)."""
    from synface.generate.writer import generate_dataset

    config = GenerateConfig.from_dict(context.config["generate"])
    summary = generate_dataset(config, context.output, resolve_device(context.device))
    return {"num_identities": summary["num_identities"], "num_samples": summary["num_samples"],
            "face_model": summary["face_model"]["name"], "mixup": summary["mixup"]}


# -- alignment of real photos ----------------------------------------------------------------------
@register_executor("align")
def run_align(context: StepContext) -> dict[str, Any]:
    """Align the listed photos of ``config.source`` into ``aligned/`` (MTCNN, or the labelled centre crop)."""
    config = context.config
    source, files = Path(config["source"]), list(config["files"])
    aligned = context.output
    aligned.mkdir(parents=True, exist_ok=True)
    for relative in config.get("side_files", []):
        target = aligned / relative
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, target)
    if config["method"] == "mtcnn":
        summary = _align_mtcnn(source, files, context.folder / "view", aligned, context.device)
    else:
        summary = _align_center(source, files, aligned)
    return {"method": config["method"], "images": len(files), **summary}


def _align_mtcnn(source: Path, files: list[str], view: Path, aligned: Path, device: str) -> dict[str, Any]:
    """MTCNN alignment of just ``files``: a tree of links to them is aligned with ``align_tree``."""
    from synface.eval.align import align_tree
    from synface.eval.detect import FaceDetector

    for relative in files:
        link = view / relative
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source / relative)
    detector = FaceDetector(device=resolve_device(device))
    summary = align_tree(view, aligned, template="synface", on_missing="center", detector=detector)
    return {"aligned": summary.aligned, "no_face_centred": len(summary.fallback)}


def _align_center(source: Path, files: list[str], aligned: Path) -> dict[str, Any]:
    """The stand-in without a detector: the largest centred 112x96 box of each photo, resized."""
    from synface.data.base import prepare_image

    for relative in progress(files, desc="centre-crop", unit="img"):
        target = aligned / relative
        if target.is_file():
            continue
        with Image.open(source / relative) as image:
            crop = prepare_image(image, (112, 96), "crop", source / relative)  # (3, 112, 96) uint8
        picture = Image.fromarray(crop.permute(1, 2, 0).numpy())
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target) as handle:
            picture.save(handle, format="JPEG", quality=95, subsampling=0)
    return {"aligned": 0, "centre_cropped": len(files)}


# -- Syn-LFW-like statistics and sets --------------------------------------------------------------
@register_executor("statistics")
def run_statistics(context: StepContext) -> dict[str, Any]:
    """Measure pose, mouth and light proxies of a real aligned set and match them to generator draws."""
    from synface.experiments.stats_match import measure_and_match

    return measure_and_match(context.config, context.output, resolve_device(context.device))


class OverrideGenerator(FaceGenerator):
    """A generator whose samples take given pose, expression and light (one row per global sample).

    Args:
        config: the generation config (its layout fixes the sample order).
        device: where to render.
        overrides: ``pose`` (M, 3), ``expression`` (M, Ke), ``light`` (M, 27) float32.
    """

    def __init__(self, config: GenerateConfig, device: torch.device, overrides: dict[str, np.ndarray]) -> None:
        super().__init__(config, device)
        self.offsets = config.layout.resolve().offsets
        self.overrides = overrides
        total = int(self.offsets[-1])
        for name, values in overrides.items():
            if len(values) != total:
                raise DataError(f"{name}: {len(values)} override rows for {total} samples")

    def sample_async(self, identity_ids, sample_ids, partners=None, phis=None) -> PendingFactors:  # type: ignore[override]
        """The base draws, with each sample's pose, expression and light replaced by its override row."""
        pending = super().sample_async(identity_ids, sample_ids, partners, phis)
        positions = self.offsets[np.asarray(identity_ids, dtype=np.int64)] + np.asarray(sample_ids, dtype=np.int64)
        return _Overridden(pending, positions, self.overrides)


class _Overridden(PendingFactors):
    def __init__(self, pending: PendingFactors, positions: np.ndarray, overrides: dict[str, np.ndarray]) -> None:
        self._pending, self._positions, self._overrides = pending, positions, overrides

    def result(self):  # type: ignore[override]
        """The factors with the overrides applied."""
        factors = self._pending.result()
        for name, values in self._overrides.items():
            setattr(factors, name, np.ascontiguousarray(values[self._positions], dtype=np.float32))
        return factors


@register_executor("synlfw")
def run_synlfw(context: StepContext) -> dict[str, Any]:
    """Generate a Syn-LFW-like set: measured statistics when given, else the generator's LFW-like defaults."""
    from synface.experiments.stats_match import load_overrides
    from synface.generate.writer import generate_dataset

    data = dict(context.config["generate"])
    statistics = context.config.get("statistics")
    device = resolve_device(context.device)
    if statistics:
        counts, overrides = load_overrides(Path(statistics))
        data["layout"] = layout_from_counts(counts).to_dict()
        config = GenerateConfig.from_dict(data)
        generator: FaceGenerator = OverrideGenerator(config, device, overrides)
    else:
        config = GenerateConfig.from_dict(data)
        generator = FaceGenerator(config, device)
    with generator:
        summary = generate_dataset(config, context.output, device, generator=generator)
    from synface.experiments.stats_match import rendered_pose_check

    return {"num_identities": summary["num_identities"], "num_samples": summary["num_samples"],
            "statistics": "measured" if statistics else "generator defaults",
            "mixup": summary["mixup"], "phi": config.mixup.phi,
            "pose_check": rendered_pose_check(context.output, generator.model)}


def layout_from_counts(counts: np.ndarray) -> LayoutConfig:
    """Explicit groups for per-identity counts (runs of equal counts become groups, order kept)."""
    counts = np.asarray(counts, dtype=np.int64)
    if not len(counts) or counts.min() < 1:
        raise DataError(f"layout: per-identity counts must be positive, got {counts[:10]}...")
    identities, samples = [], []
    for count in counts.tolist():
        if samples and samples[-1] == count:
            identities[-1] += 1
        else:
            identities.append(1)
            samples.append(count)
    return LayoutConfig(group_identities=tuple(identities), group_samples=tuple(samples))
