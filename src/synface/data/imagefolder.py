"""Read an identity-per-folder image tree (``ROOT/<identity>/<image>``) as labelled face samples.

Identities are the sub-folders in sorted name order (class ``k`` is the ``k``-th),
images the files with a known image extension in sorted name order, so the same
tree always gives the same labels and sample order, whatever the file system lists.

A tree written by ``synface export`` also holds ``ROOT/labels.csv``
(``path,id_a,w_a,id_b,w_b``, identity numbers as the folder names give them); its
identity-mixup soft labels are used when present.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from synface.data.base import FITS, LabelledImageDataset
from synface.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

LABELS_CSV = "labels.csv"
_CSV_COLUMNS = ["path", "id_a", "w_a", "id_b", "w_b"]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".webp", ".tif", ".tiff")


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_image_file(path: Path) -> Image.Image:
    """Decode one image file fully (so a corrupt file fails here, named).

    Raises:
        DataError: missing, unreadable or undecodable file.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DataError(f"{path}: cannot decode image ({error})") from None


class ImageFolderDataset(LabelledImageDataset):
    """A folder tree with one sub-folder of images per identity.

    Args:
        root: the tree's root folder.
        image_size: expected (height, width) of the aligned crops.
        fit: what to do with other sizes (see :func:`synface.data.base.prepare_image`).
        soft_labels: use ``labels.csv`` when the tree has one.

    Raises:
        DataError: missing root, no identity folders, or an identity folder without images.
        ConfigError: an unknown ``fit``.
    """

    def __init__(self, root: str | Path, image_size: tuple[int, int] = (112, 96), fit: str = "resize",
                 soft_labels: bool = True) -> None:
        if fit not in FITS:
            raise ConfigError(f"fit: {fit!r} is not one of {', '.join(FITS)}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: image folder not found")
        self.image_size = image_size
        self.fit = fit
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        if not folders:
            raise DataError(f"{self.root}: no identity sub-folders (expected ROOT/<identity>/<image>)")
        self.identity_names = [p.name for p in folders]
        self.paths: list[Path] = []
        labels: list[int] = []
        for label, folder in enumerate(folders):
            files = list_image_files(folder)
            if not files:
                raise DataError(f"{folder}: identity folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            self.paths.extend(files)
            labels.extend([label] * len(files))
        self.labels = np.asarray(labels, dtype=np.int64)
        if soft_labels and (self.root / LABELS_CSV).is_file():
            self.targets, self.weights = read_soft_labels(self.root, self.paths, self.labels, self.identity_names)
        logger.info("%s: %d images of %d identities", self.root, len(self.paths), len(folders))

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def load_image(self, index: int) -> Image.Image:
        return load_image_file(self.paths[index])

    def verify(self) -> None:
        """Decode every image once, so a bad file is reported before training starts.

        Raises:
            DataError: naming the first unreadable or wrongly sized image.
        """
        for index in range(len(self)):
            self[index]


def read_soft_labels(
    root: Path, paths: list[Path], labels: np.ndarray, identity_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Soft labels of every image from ``root/labels.csv``, as class indices of the tree.

    Returns:
        (targets (N, 2) int64, weights (N, 2) float32) in the order of ``paths``.

    Raises:
        DataError: a malformed row, an image without a row, or a label naming an
            identity with no folder (messages name the file and line).
    """
    csv_path = root / LABELS_CSV
    class_of = {}
    for index, name in enumerate(identity_names):
        if name.isdigit():
            class_of[int(name)] = index
    rows: dict[str, tuple[int, int, float, float, int]] = {}
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            if next(reader, None) != _CSV_COLUMNS:
                raise DataError(f"{csv_path}: header must be {','.join(_CSV_COLUMNS)}")
            for number, row in enumerate(reader, start=2):
                try:
                    path, id_a, w_a, id_b, w_b = row
                    rows[path] = (int(id_a), int(id_b), float(w_a), float(w_b), number)
                except ValueError:
                    expected = ",".join(_CSV_COLUMNS)
                    raise DataError(f"{csv_path}: line {number} is {row!r}, expected {expected}") from None
    except OSError as error:
        raise DataError(f"{csv_path}: cannot read ({error.strerror or error})") from None
    targets = np.zeros((len(paths), 2), dtype=np.int64)
    weights = np.zeros((len(paths), 2), dtype=np.float32)
    for k, image in enumerate(paths):
        relative = image.relative_to(root).as_posix()
        if relative not in rows:
            raise DataError(f"{csv_path}: no row for {relative}")
        id_a, id_b, w_a, w_b, number = rows[relative]
        for identity in (id_a, id_b):
            if identity not in class_of:
                raise DataError(f"{csv_path}: line {number} names identity {identity}, which has no folder")
        if class_of[id_a] != labels[k]:
            raise DataError(f"{csv_path}: line {number} gives {relative} identity {id_a}, "
                            f"but it lies in folder {identity_names[labels[k]]}")
        targets[k] = (class_of[id_a], class_of[id_b])
        weights[k] = (w_a, w_b)
    return targets, weights
