"""The sample contract every training dataset follows, plus label-remapping views and device conversion.

A training sample is ``(image, targets, weights)``: ``image`` uint8 ``(3, H, W)``,
``targets`` int64 ``(2,)`` and ``weights`` float32 ``(2,)`` summing to 1. A plain
sample is ``targets=(y, y), weights=(1, 0)``; an identity-mixup sample is
``(a, b), (phi, 1 - phi)``. Loaders move uint8 (a quarter of the float traffic) and
:func:`to_network_input` turns it into the float ``[-1, 1]`` networks take, on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from synface.errors import DataError

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
PartnerPolicy = Literal["drop", "relabel"]


def to_network_input(
    images: torch.Tensor, device: torch.device | str, channels_last: bool = False
) -> torch.Tensor:
    """Convert uint8 images to the network's float input on ``device``.

    The copy to the device happens first, so only uint8 bytes travel.

    Args:
        images: (B, 3, H, W) uint8 images (any memory layout).
        device: where the network runs.
        channels_last: return a channels-last tensor (faster convolutions on GPUs).

    Returns:
        (B, 3, H, W) float32 in [-1, 1] (``x / 127.5 - 1``).
    """
    x = images.to(device, non_blocking=True)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    # One pass converts type and layout together; the scaling then runs in place.
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device, memory_format=memory_format)
    return out.copy_(x).div_(127.5).sub_(1.0)


def plain_targets(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Soft-label arrays for hard labels: targets ``(y, y)`` and weights ``(1, 0)``.

    Args:
        labels: (N,) integer class labels.

    Returns:
        (targets (N, 2) int64, weights (N, 2) float32).
    """
    labels = np.asarray(labels, dtype=np.int64)
    targets = np.stack([labels, labels], axis=1)
    weights = np.zeros((len(labels), 2), dtype=np.float32)
    weights[:, 0] = 1.0
    return targets, weights


def collate_items(items: Sequence[Batch]) -> Batch:
    """Stack ``(image, targets, weights)`` items into one batch."""
    images, targets, weights = zip(*items)
    return torch.stack(images), torch.stack(targets), torch.stack(weights)


FITS = ("resize", "crop", "aligned", "error")


def prepare_image(image: Image.Image, image_size: tuple[int, int], fit: str, source: str | Path) -> torch.Tensor:
    """Turn a decoded PIL image into a uint8 (3, H, W) tensor of the expected size.

    Args:
        image: any PIL image (greyscale is replicated to RGB).
        image_size: expected (height, width).
        fit: what to do when the size differs: ``resize`` (bilinear, aspect not
            kept), ``crop`` (centre crop to the target aspect ratio, then resize;
            a 112x112 ArcFace crop gives exactly its columns 8..103, the 112x96
            SynFace crop), ``aligned`` (only that exact ArcFace-to-SynFace crop
            is accepted; any other size is an error) or ``error``.
        source: file or record the image came from, for messages.

    Raises:
        DataError: the size differs and ``fit`` does not allow it.
    """
    height, width = image_size
    rgb = image.convert("RGB")
    if rgb.size != (width, height):
        arcface_to_synface = rgb.size == (112, 112) and (height, width) == (112, 96)
        if fit == "error" or (fit == "aligned" and not arcface_to_synface):
            hint = "; not an aligned crop: align the photos first (synface align)" if fit == "aligned" else ""
            raise DataError(
                f"{source}: image is {rgb.size[1]}x{rgb.size[0]} (HxW), expected {height}x{width}{hint}"
            )
        if fit in ("crop", "aligned"):
            rgb = rgb.crop(_centre_box(rgb.size, width / height))
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(rgb, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _centre_box(size: tuple[int, int], aspect: float) -> tuple[int, int, int, int]:
    """Largest centred (left, top, right, bottom) box of width/height ``aspect`` in a (W, H) image."""
    width, height = size
    crop_width = min(width, round(height * aspect))
    crop_height = min(height, round(crop_width / aspect))
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    return left, top, left + crop_width, top + crop_height


class LabelledImageDataset(torch.utils.data.Dataset):
    """Labelled images decoded one at a time.

    Subclasses fill ``labels`` (N,) int64 (the primary class), ``identity_names``
    (one per class, the class index being the position) and implement
    :meth:`load_image`. Soft labels, when a set has them, go in ``targets`` /
    ``weights`` (N, 2); otherwise every sample is plain ``(y, y), (1, 0)``.
    """

    labels: np.ndarray
    identity_names: list[str]
    image_size: tuple[int, int]
    fit: str
    targets: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        """Number of identity classes (labels lie in ``[0, num_classes)``)."""
        return len(self.identity_names)

    def __len__(self) -> int:
        return len(self.labels)

    def soft_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(targets (N, 2) int64, weights (N, 2) float32) of every sample."""
        if self.targets is None or self.weights is None:
            return plain_targets(self.labels)
        return self.targets, self.weights

    def load_image(self, index: int) -> Image.Image:
        """Decode sample ``index`` (raises DataError naming the file on failure)."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """Where sample ``index`` comes from (a path or record), for messages."""
        return f"sample {index}"

    def __getitem__(self, index: int) -> Batch:
        image = prepare_image(self.load_image(index), self.image_size, self.fit, self.describe(index))
        if self.targets is None or self.weights is None:
            label = int(self.labels[index])
            return image, torch.tensor([label, label]), torch.tensor([1.0, 0.0])
        return image, torch.from_numpy(self.targets[index].copy()), torch.from_numpy(self.weights[index].copy())

    def get_batch(self, indices: Sequence[int]) -> Batch:
        """Decode and stack several samples: (images (B, 3, H, W) uint8, targets, weights)."""
        return collate_items([self[int(i)] for i in indices])


class LabelSubset(torch.utils.data.Dataset):
    """A selection of a :class:`LabelledImageDataset` with its classes renumbered ``0..N-1``.

    Soft labels naming a class outside the selection are resolved by ``partners``
    (see :func:`remap_soft_labels`); dropped samples leave the selection.

    Args:
        dataset: the full dataset.
        indices: (M,) sample positions in ``dataset``.
        classes: the original classes kept, in their new order.
        partners: ``relabel`` or ``drop`` samples whose soft label leaves the selection.
    """

    def __init__(self, dataset: LabelledImageDataset, indices: np.ndarray, classes: Sequence[int],
                 partners: PartnerPolicy = "relabel") -> None:
        self.dataset = dataset
        self.classes = [int(c) for c in classes]
        lookup = np.full(dataset.num_classes, -1, dtype=np.int64)
        lookup[self.classes] = np.arange(len(self.classes))
        indices = np.asarray(indices, dtype=np.int64)
        if (lookup[dataset.labels[indices]] < 0).any():
            raise DataError("subset holds samples whose class is not among the kept classes")
        all_targets, all_weights = dataset.soft_labels()
        targets, weights, keep, self.relabelled = remap_soft_labels(
            all_targets[indices], all_weights[indices], lookup, partners)
        self.indices, self.targets, self.weights = indices[keep], targets[keep], weights[keep]
        self.labels = lookup[dataset.labels[self.indices]]
        self.identity_names = [dataset.identity_names[c] for c in self.classes]
        self.image_size = dataset.image_size

    @property
    def num_classes(self) -> int:
        """Number of kept classes."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Batch:
        image = self.dataset[int(self.indices[index])][0]
        return image, torch.from_numpy(self.targets[index].copy()), torch.from_numpy(self.weights[index].copy())

    def get_batch(self, indices: Sequence[int]) -> Batch:
        """Decode and stack several samples: (images (B, 3, H, W) uint8, targets, weights)."""
        return collate_items([self[int(i)] for i in indices])


def remap_soft_labels(
    targets: np.ndarray, weights: np.ndarray, lookup: np.ndarray, partners: PartnerPolicy
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Renumber soft labels through ``lookup`` and resolve labels outside the subset.

    A label with weight > 0 that ``lookup`` maps to -1 is "outside". ``drop`` marks
    such samples for removal; ``relabel`` turns them into plain samples of their
    first in-subset label (samples with no in-subset label are dropped either way).
    Zero-weight entries outside the subset are pointed at the row's primary label
    so every target indexes a real class.

    Args:
        targets: (M, K) int64 original classes.
        weights: (M, K) float32.
        lookup: (C,) new class of each original class, -1 when not kept.
        partners: ``drop`` or ``relabel``.

    Returns:
        (targets (M, K), weights (M, K), keep (M,) bool, number relabelled).
    """
    in_range = (targets >= 0) & (targets < len(lookup))
    mapped = np.where(in_range, lookup[np.clip(targets, 0, len(lookup) - 1)], -1)  # (M, K)
    inside = mapped >= 0
    active = weights > 0
    outside_active = (active & ~inside).any(axis=1)
    inside_active = active & inside
    has_inside = inside_active.any(axis=1)
    keep = has_inside & (~outside_active if partners == "drop" else True)
    primary = mapped[np.arange(len(mapped)), np.argmax(inside_active, axis=1)]  # (M,)
    new_targets = np.where(inside, mapped, primary[:, None])
    new_weights = weights.copy()
    relabel = keep & outside_active
    new_targets[relabel] = primary[relabel, None]
    new_weights[relabel] = 0.0
    new_weights[relabel, 0] = 1.0
    return new_targets.astype(np.int64), new_weights.astype(np.float32), keep, int(relabel.sum())


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from integer keys (e.g. ``seed, epoch, rank``), never global state.

    The key count is appended because ``SeedSequence`` ignores trailing zero words
    (``[s, 0]`` and ``[s, 0, 0]`` would otherwise give the same stream).
    """
    entropy = [int(k) for k in keys] + [len(keys)]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))
