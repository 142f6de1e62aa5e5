"""Export a generated dataset as an ImageFolder tree of PNGs plus a CSV of soft labels.

``OUT/<label>/<sample>.png`` where ``<label>`` is the primary identity (zero-padded
so names sort numerically) and ``<sample>`` its sample index; ``OUT/labels.csv``
lists ``path,id_a,w_a,id_b,w_b`` for every image (the identity-mixup soft label;
plain images have ``id_b = id_a`` and ``w_b = 0``). Every file is written atomically
and ``labels.csv`` last, so its presence marks a complete export.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors import SafetensorError
from safetensors.numpy import load_file

from synface.errors import DataError
from synface.generate.writer import DATASET, FORMAT
from synface.io import atomic_open, atomic_write_text, read_json_document
from synface.progress import progress

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("path", "id_a", "w_a", "id_b", "w_b")


def read_dataset_summary(folder: str | Path) -> dict:
    """The ``dataset.json`` of a complete generated dataset.

    Raises:
        DataError: the file is missing (an unfinished or foreign folder), unreadable or of another format.
    """
    path = Path(folder) / DATASET
    if not path.is_file():
        raise DataError(f"{path}: not found; {folder} is not a complete synface dataset "
                        "(an interrupted `synface generate` finishes when re-run)")
    return read_json_document(path, "dataset description", FORMAT)


def iter_shards(folder: str | Path) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Yield ``(images (n, H, W, 3) uint8, meta)`` of each shard of a complete dataset, in order."""
    folder = Path(folder)
    summary = read_dataset_summary(folder)
    for shard in summary["shards"]:
        images_path, meta_path = folder / shard["images"], folder / shard["meta"]
        try:
            images = np.load(images_path, mmap_mode="r", allow_pickle=False)
            meta = load_file(str(meta_path))
        except (OSError, ValueError, SafetensorError) as error:
            raise DataError(f"{images_path.parent}: shard {shard['index']} is unreadable ({error})") from None
        expected = shard["stop"] - shard["start"]
        if images.shape[0] != expected or meta["labels"].shape[0] != expected:
            raise DataError(f"{images_path}: holds {images.shape[0]} images, dataset.json says {expected}")
        yield images, meta


def export_image_folder(dataset: str | Path, out: str | Path) -> int:
    """Write every image of ``dataset`` as a PNG under ``out`` plus ``out/labels.csv``.

    Args:
        dataset: a complete generated dataset folder.
        out: the export folder; must be missing or empty.

    Returns:
        The number of images exported.

    Raises:
        DataError: the dataset is incomplete or corrupt, or ``out`` is not empty.
    """
    dataset, out = Path(dataset), Path(out)
    summary = read_dataset_summary(dataset)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: export folder exists and is not empty; choose a new folder")
    width = len(str(max(summary["num_identities"] - 1, 0)))
    rows: list[list[str]] = []
    with progress(total=summary["num_samples"], unit="img", desc="export") as bar:
        for images, meta in iter_shards(dataset):
            labels, weights, samples = meta["labels"], meta["label_weights"], meta["sample_index"]
            for k in range(images.shape[0]):
                relative = f"{labels[k, 0]:0{width}d}/{samples[k]:04d}.png"
                _write_png(out / relative, np.asarray(images[k]))
                rows.append([relative, str(labels[k, 0]), f"{weights[k, 0]:.6g}",
                             str(labels[k, 1]), f"{weights[k, 1]:.6g}"])
            bar.update(images.shape[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    writer.writerows(rows)
    atomic_write_text(out / "labels.csv", buffer.getvalue())
    logger.info("exported %d images to %s", len(rows), out)
    return len(rows)


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_open(path) as handle:
        Image.fromarray(np.ascontiguousarray(image)).save(handle, format="PNG")
