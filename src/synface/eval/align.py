"""Align folder trees of real face photos with MTCNN: detect, pick one face, crop on a template.

`synface align SRC DST` mirrors SRC into DST: every image becomes an aligned crop at
the same relative path (LFW ``name/name_0001.jpg``, CFP ``Data/Images/001/frontal/01.jpg``,
ImageFolder ``class/img.png`` all keep working), and small text files such as pair
lists are copied as they are, so protocols read the aligned copy unchanged.

Images where MTCNN finds no face follow an explicit policy (``on_missing``):

- ``skip``: nothing is written for the image; it is listed in the report.
- ``center``: the image is assumed to hold a roughly centred face and is resized onto
  the template as a whole (the template's frame scaled to fit the image, centred).
  Used for evaluation sets, where a pair must not silently disappear; listed too.
- ``error``: stop with an error naming the image.

Resumable: crops are written atomically and every processed image is appended to
``DST/align_log.jsonl`` (status, score, landmarks); a re-run skips what is logged.
``DST/align_report.json`` summarises the run and lists every image without detection.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from synface.alignment import CropTemplate, align_faces, get_template, warp_affine
from synface.errors import DataError
from synface.eval.detect import DetectorConfig, FaceDetector
from synface.io import atomic_open, atomic_write_json
from synface.progress import progress

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
COPIED_SUFFIXES = {".txt", ".csv", ".json", ".md"}
MissingPolicy = Literal["skip", "center", "error"]
LOG_NAME, REPORT_NAME = "align_log.jsonl", "align_report.json"


@dataclass
class AlignSummary:
    """What an alignment run did; also written as ``align_report.json``."""

    source: str
    destination: str
    template: str
    on_missing: str
    aligned: int = 0
    fallback: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    copied: int = 0


def iter_images(root: Path) -> Iterator[Path]:
    """Image files below ``root`` in sorted (deterministic) order."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            yield path


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; DataError naming the file otherwise."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable image ({error})") from None


def centred_template_matrix(height: int, width: int, template: CropTemplate) -> torch.Tensor:
    """(1, 2, 3) image -> crop matrix that fits the whole image, centred, onto the crop frame."""
    scale = min(template.height / height, template.width / width)
    tx = (template.width - 1) / 2 - scale * (width - 1) / 2
    ty = (template.height - 1) / 2 - scale * (height - 1) / 2
    return torch.tensor([[[scale, 0.0, tx], [0.0, scale, ty]]], dtype=torch.float64)


def _save(crop: torch.Tensor, path: Path) -> None:
    """Write a (3, H, W) uint8 crop with the encoder its suffix names (JPEG at quality 95)."""
    image = Image.fromarray(crop.permute(1, 2, 0).cpu().numpy())
    kind = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    options = {"quality": 95, "subsampling": 0} if kind == "JPEG" else {}
    with atomic_open(path) as handle:
        image.save(handle, format=kind or Image.registered_extensions().get(path.suffix.lower(), "PNG"), **options)


def _read_log(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that image is simply redone
            done[entry["path"]] = entry
    return done


def align_tree(
    source: str | Path,
    destination: str | Path,
    template: str = "synface",
    on_missing: MissingPolicy = "center",
    detector: FaceDetector | None = None,
    config: DetectorConfig = DetectorConfig(),
    device: torch.device | str = "cpu",
) -> AlignSummary:
    """Align every image below ``source`` into ``destination`` (see the module docstring).

    Raises:
        DataError: ``source`` is missing or holds no image; an unreadable image; a
            missing face under ``on_missing="error"``.
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise DataError(f"{source}: source folder not found")
    if destination.resolve() == source.resolve() or source.resolve() in destination.resolve().parents:
        raise DataError(f"{destination}: destination must not be inside the source folder")
    crop_template = get_template(template)
    images = list(iter_images(source))
    if not images:
        raise DataError(f"{source}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    detector = detector or FaceDetector(config, device)
    destination.mkdir(parents=True, exist_ok=True)
    summary = AlignSummary(str(source), str(destination), template, on_missing)
    summary.copied = _copy_side_files(source, destination)
    log_path = destination / LOG_NAME
    done = _read_log(log_path)
    with log_path.open("a", encoding="utf-8") as log:
        for path in progress(images, desc="align", unit="img"):
            relative = path.relative_to(source).as_posix()
            entry = done.get(relative)
            if entry is None or (entry["status"] != "skipped" and not (destination / relative).is_file()):
                entry = _align_one(path, destination / relative, relative, crop_template, on_missing, detector)
                log.write(json.dumps(entry) + "\n")
                log.flush()
            if entry["status"] == "aligned":
                summary.aligned += 1
            elif entry["status"] == "fallback":
                summary.fallback.append(relative)
            else:
                summary.skipped.append(relative)
    atomic_write_json(destination / REPORT_NAME, summary.__dict__)
    return summary


def _align_one(path: Path, target: Path, relative: str, template: CropTemplate,
               on_missing: MissingPolicy, detector: FaceDetector) -> dict:
    image = read_rgb(path)
    height, width = image.shape[:2]
    detections = detector.detect(image)
    choice = detector.select(detections, height, width)
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None]
    if choice is not None:
        landmarks = torch.from_numpy(detections.landmarks[choice])[None]
        # Black outside the photo, as the field's alignment tools do.
        crop, _ = align_faces(pixels, landmarks, template, padding_mode="zeros")
        _save(crop[0], target)
        return {"path": relative, "status": "aligned", "score": float(detections.scores[choice]),
                "landmarks": detections.landmarks[choice].round(3).tolist()}
    if on_missing == "error":
        raise DataError(f"{path}: no face detected (on_missing=error)")
    if on_missing == "skip":
        return {"path": relative, "status": "skipped"}
    matrix = centred_template_matrix(height, width, template)
    crop = warp_affine(pixels, matrix, template.height, template.width, padding_mode="zeros")
    _save(crop[0], target)
    return {"path": relative, "status": "fallback"}


def _copy_side_files(source: Path, destination: Path) -> int:
    """Copy small text files (pair lists, protocol splits) so the aligned tree is self-contained."""
    count = 0
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix.lower() in COPIED_SUFFIXES and path.stat().st_size < 50_000_000:
            target = destination / path.relative_to(source)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                count += 1
    return count
