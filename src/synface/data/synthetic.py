"""Read a generated ``synface-dataset/1`` folder at full speed, with its soft labels and identity subsets.

Images stay on disk: each ``shards/images-NNNNN.npy`` is memory-mapped (opened
lazily in every worker process, never pickled) and a batch is read with one
fancy index per shard, so a 500K-image dataset costs only its label arrays in RAM.
Labels, label weights, identities and sample indices are read once from the
``meta`` files.

Subsets keep soft labels consistent: taking the first ``N`` identities of a
generation whose identity-mixup partners were drawn from all identities leaves
labels outside the classifier. :meth:`SyntheticDataset.subset` either drops those
samples (``partners="drop"``) or gives their weight to the in-subset label
(``partners="relabel"``), and renumbers the kept classes ``0..N-1``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from synface.data.base import Batch, PartnerPolicy, remap_soft_labels
from synface.errors import ConfigError, DataError
from synface.io import read_json_document

logger = logging.getLogger(__name__)

FORMAT = "synface-dataset/1"
_META_KEYS = ("labels", "label_weights", "identity", "sample_index")


@dataclass(frozen=True)
class Shard:
    """One shard: its image file and the global range of samples it holds."""

    images: Path
    meta: Path
    start: int
    count: int


class SyntheticDataset(torch.utils.data.Dataset):
    """A generated dataset (or an identity subset of one) as soft-labelled training samples.

    Args:
        root: the dataset folder (holding ``dataset.json`` and ``shards/``).

    Raises:
        DataError: ``dataset.json`` missing or malformed, a shard file missing,
            truncated or of the wrong shape, or labels outside the classes.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest = read_manifest(self.root)
        self.image_size = _manifest_image_size(manifest, self.root / "dataset.json")
        self.shards = _discover_shards(self.root, manifest)
        meta = _read_all_meta(self.shards, self.image_size)
        declared_samples = manifest.get("num_samples")
        if declared_samples is not None and declared_samples != len(meta["labels"]):
            raise DataError(f"{self.root / 'dataset.json'}: declares {declared_samples} samples "
                            f"but the shards hold {len(meta['labels'])}")
        # Whole-dataset arrays in global sample order, shared by every subset view.
        self._all = meta
        self.identity: np.ndarray = meta["identity"]  # (N,) of this view
        self.sample_index: np.ndarray = meta["sample_index"]
        self._targets: np.ndarray = meta["labels"]  # (N, 2) int64
        self._weights: np.ndarray = meta["label_weights"]  # (N, 2) float32
        self._positions = np.arange(len(self._targets), dtype=np.int64)  # view row -> global sample
        self._starts = np.asarray([s.start for s in self.shards], dtype=np.int64)
        declared = manifest.get("num_classes", manifest.get("num_identities"))
        self.num_classes = int(declared) if declared is not None else int(self._targets.max(initial=-1)) + 1
        _check_labels(self._targets, self.num_classes, self.root / "dataset.json")
        self.dropped = 0
        self.relabelled = 0
        self._memmaps: dict[int, np.ndarray] = {}

    # -- the Dataset protocol ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index: int) -> Batch:
        position = int(self._positions[index])
        shard = int(np.searchsorted(self._starts, position, side="right") - 1)
        image = np.array(self._images(shard)[position - self._starts[shard]])  # (H, W, 3)
        return (
            torch.from_numpy(image).permute(2, 0, 1),
            torch.from_numpy(self._targets[index].copy()),
            torch.from_numpy(self._weights[index].copy()),
        )

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Read many samples at once, with one fancy index per shard touched.

        Args:
            indices: (B,) positions in this dataset.

        Returns:
            images (B, 3, H, W) uint8 (a channels-last view of the HWC read, no copy),
            targets (B, 2) int64, weights (B, 2) float32.
        """
        index = np.asarray(indices, dtype=np.int64)
        positions = self._positions[index]
        height, width = self.image_size
        out = np.empty((len(index), height, width, 3), dtype=np.uint8)
        # Sorted reads let the page cache read ahead; results go back to request order.
        order = np.argsort(positions, kind="stable")
        sorted_positions = positions[order]
        bounds = np.searchsorted(sorted_positions, self._starts, side="left").tolist() + [len(order)]
        for shard, (low, high) in enumerate(zip(bounds[:-1], bounds[1:])):
            if high > low:
                local = sorted_positions[low:high] - self._starts[shard]
                out[order[low:high]] = self._images(shard)[local]
        images = torch.from_numpy(out).permute(0, 3, 1, 2)
        return images, torch.from_numpy(self._targets[index]), torch.from_numpy(self._weights[index])

    @property
    def targets(self) -> np.ndarray:
        """(N, 2) int64 soft-label classes of every sample of this view."""
        return self._targets

    @property
    def weights(self) -> np.ndarray:
        """(N, 2) float32 soft-label weights of every sample of this view."""
        return self._weights

    # -- subsets ------------------------------------------------------------------------
    def subset(
        self,
        num_identities: int | None = None,
        samples_per_identity: int | None = None,
        partners: PartnerPolicy = "drop",
    ) -> SyntheticDataset:
        """The first ``num_identities`` identities with their first ``samples_per_identity`` samples.

        "First" is by identity number and sample index, never by file order. Kept
        classes are renumbered ``0..N-1`` in identity order.

        Args:
            num_identities: identities to keep (None: all).
            samples_per_identity: samples per kept identity (None: all of each).
            partners: what to do with samples whose soft label names an identity
                outside the subset: ``drop`` them, or ``relabel`` them as plain
                samples of their in-subset label.

        Returns:
            A new dataset sharing this one's files.

        Raises:
            ConfigError: a count is not positive, or ``partners`` is unknown.
            DataError: the dataset has fewer identities or samples than asked.
        """
        if partners not in ("drop", "relabel"):
            raise ConfigError(f"partners: {partners!r} is not one of 'drop', 'relabel'")
        kept_ids, rows = _select_identity_rows(self.identity, self.sample_index, num_identities,
                                               samples_per_identity, self.root)
        # Stored labels name identity numbers; remap from them, so subsets of subsets stay exact.
        positions = self._positions[rows]
        all_targets, all_identity = self._all["labels"], self._all["identity"]
        size = max(int(all_targets.max(initial=-1)), int(all_identity.max(initial=-1))) + 1
        lookup = np.full(size, -1, dtype=np.int64)
        lookup[kept_ids] = np.arange(len(kept_ids))
        targets, weights, keep, relabelled = remap_soft_labels(
            all_targets[positions], self._all["label_weights"][positions], lookup, partners
        )
        view = object.__new__(SyntheticDataset)
        view.__dict__.update(self.__dict__)
        view._memmaps = {}
        view._positions = positions[keep]
        view.identity = all_identity[view._positions]
        view.sample_index = self._all["sample_index"][view._positions]
        view._targets, view._weights = targets[keep], weights[keep]
        view.num_classes = len(kept_ids)
        view.dropped = int((~keep).sum())
        view.relabelled = relabelled
        logger.info("subset of %s: %d identities, %d samples (%d dropped, %d relabelled: partner outside)",
                    self.root, len(kept_ids), len(view), view.dropped, view.relabelled)
        return view

    # -- memory maps, opened lazily so that worker processes each map the files ---------
    def _images(self, shard: int) -> np.ndarray:
        images = self._memmaps.get(shard)
        if images is None:
            images = np.load(self.shards[shard].images, mmap_mode="r")
            self._memmaps[shard] = images
        return images

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_memmaps"] = {}
        return state


def read_manifest(root: Path) -> dict[str, Any]:
    """Load and check ``dataset.json`` of a generated dataset.

    Raises:
        DataError: missing, unreadable, not JSON, or not a ``synface-dataset/1`` manifest.
    """
    path = root / "dataset.json"
    if not path.is_file():
        hint = " (generation unfinished: plan.json exists)" if (root / "plan.json").is_file() else ""
        raise DataError(f"{path}: not found; is {root} a generated synface dataset?{hint}")
    return read_json_document(path, "dataset manifest", FORMAT)


def _manifest_image_size(manifest: dict[str, Any], path: Path) -> tuple[int, int]:
    image = manifest.get("image")
    size = (image.get("height"), image.get("width")) if isinstance(image, dict) else None
    if size is None or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise DataError(f"{path}: image is {image!r}, expected {{'height': H, 'width': W, ...}}")
    return int(size[0]), int(size[1])


def _discover_shards(root: Path, manifest: dict[str, Any]) -> list[Shard]:
    """The shards ``dataset.json`` lists, checked to tile ``[0, num_samples)`` with complete files."""
    where = root / "dataset.json"
    entries = manifest.get("shards")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{where}: 'shards' is {entries!r}, expected a non-empty list")
    shards, expected_start = [], 0
    for number, entry in enumerate(entries):
        try:
            images, meta = root / str(entry["images"]), root / str(entry["meta"])
            start, stop = int(entry["start"]), int(entry["stop"])
        except (TypeError, KeyError, ValueError):
            raise DataError(f"{where}: shards[{number}] is {entry!r}, expected images, meta, start, stop") from None
        if start != expected_start or stop < start:
            raise DataError(f"{where}: shards[{number}] covers [{start}, {stop}), "
                            f"expected to start at {expected_start}")
        if not meta.is_file():
            raise DataError(f"{meta}: shard meta file missing")
        count = _npy_rows(images)
        if count != stop - start:
            raise DataError(f"{images}: holds {count} images, dataset.json says {stop - start} ([{start}, {stop}))")
        shards.append(Shard(images, meta, start, count))
        expected_start = stop
    return shards


def _npy_rows(path: Path) -> int:
    """Rows of a uint8 (n, H, W, 3) ``.npy`` file, after checking it is complete."""
    try:
        shape, fortran, dtype, offset = _npy_header(path)
    except FileNotFoundError:
        raise DataError(f"{path}: shard image file missing (its meta file exists)") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error})") from None
    if dtype != np.uint8 or fortran or len(shape) != 4 or shape[3] != 3:
        raise DataError(f"{path}: holds {dtype} {shape}{' (Fortran order)' if fortran else ''}, "
                        f"expected C-ordered uint8 (n, H, W, 3)")
    expected = offset + int(np.prod(shape))
    actual = path.stat().st_size
    if actual != expected:
        raise DataError(f"{path}: truncated or padded: {actual} bytes, expected {expected} for shape {shape}")
    return int(shape[0])


def _read_all_meta(shards: list[Shard], image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {key: [] for key in _META_KEYS}
    for shard in shards:
        shape = _npy_shape(shard.images)
        if shape[1:3] != image_size:
            raise DataError(f"{shard.images}: images are {shape[1]}x{shape[2]}, "
                            f"dataset.json says {image_size[0]}x{image_size[1]}")
        try:
            with safe_open(shard.meta, framework="numpy") as meta:
                available = set(meta.keys())
                missing = [key for key in _META_KEYS if key not in available]
                if missing:
                    raise DataError(f"{shard.meta}: missing tensors {missing}")
                values = {key: meta.get_tensor(key) for key in _META_KEYS}
        except (SafetensorError, OSError) as error:
            raise DataError(f"{shard.meta}: cannot read shard metadata ({error})") from None
        expected = {"labels": (shard.count, 2), "label_weights": (shard.count, 2),
                    "identity": (shard.count,), "sample_index": (shard.count,)}
        for key, value in values.items():
            if value.shape != expected[key]:
                raise DataError(f"{shard.meta}: {key} has shape {value.shape}, expected {expected[key]} "
                                f"({shard.count} images in {shard.images.name})")
            parts[key].append(value)
    out = {key: np.concatenate(values) for key, values in parts.items()}
    out["labels"] = out["labels"].astype(np.int64)
    out["label_weights"] = out["label_weights"].astype(np.float32)
    out["identity"] = out["identity"].astype(np.int64)
    out["sample_index"] = out["sample_index"].astype(np.int64)
    return out


def _npy_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, data offset) from a ``.npy`` header."""
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        return tuple(shape), bool(fortran), dtype, handle.tell()


def _npy_shape(path: Path) -> tuple[int, ...]:
    return _npy_header(path)[0]


def _check_labels(targets: np.ndarray, num_classes: int, path: Path) -> None:
    if len(targets) and (targets.min() < 0 or targets.max() >= num_classes):
        raise DataError(f"{path}: labels span {targets.min()}..{targets.max()}, "
                        f"outside the {num_classes} identities it declares")


def _select_identity_rows(
    identity: np.ndarray,
    sample_index: np.ndarray,
    num_identities: int | None,
    samples_per_identity: int | None,
    root: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Kept identity numbers (sorted) and the rows of their first samples, in (identity, sample) order."""
    for field, value in (("num_identities", num_identities), ("samples_per_identity", samples_per_identity)):
        if value is not None and value <= 0:
            raise ConfigError(f"{field}: {value} must be a positive count (or None for all)")
    order = np.lexsort((sample_index, identity))  # by identity, then sample index
    ids, first, counts = np.unique(identity[order], return_index=True, return_counts=True)
    if num_identities is not None:
        if num_identities > len(ids):
            raise DataError(f"{root}: holds {len(ids)} identities, fewer than the {num_identities} asked for")
        ids, first, counts = ids[:num_identities], first[:num_identities], counts[:num_identities]
    take = counts if samples_per_identity is None else np.full_like(counts, samples_per_identity)
    short = np.flatnonzero(counts < take)
    if len(short):
        raise DataError(f"{root}: identity {ids[short[0]]} has {counts[short[0]]} samples, "
                        f"fewer than the {samples_per_identity} asked for")
    rows = np.concatenate([order[f:f + t] for f, t in zip(first, take)]) if len(ids) else np.zeros(0, np.int64)
    return ids, rows
