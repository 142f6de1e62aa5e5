"""Training data from a config: dataset dispatch by kind, sharded epoch batches, device-side augmentation and mixup.

``build_train_source(cfg, device, rank, world_size)`` returns an iterable of device
batches ``(images float (B, 3, H, W) in [-1, 1], targets (B, K), weights (B, K))``
with ``K = 2``, or ``K = 3`` under domain mixup. Workers read whole batches (one
fancy index per shard for generated data) and ship uint8; conversion, augmentation
and mixing happen on the device. Every epoch's order is a pure function of
``(seed, epoch)``; each data-parallel rank reads a disjoint part of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from synface.config import ConfigBase, require
from synface.data.augment import AUGMENTATIONS, create_augmentation
from synface.data.base import FITS, Batch, seeded_generator, to_network_input
from synface.data.imagefolder import ImageFolderDataset
from synface.data.mixing import domain_mixup, draw_ratio, oversampled_batches
from synface.data.online import OnlineBatches, build_online_batches
from synface.data.real import ATTDataset, CFPDataset, cfp_split, real_subset
from synface.data.recordio import RecordIODataset
from synface.data.synthetic import SyntheticDataset
from synface.errors import ConfigError

logger = logging.getLogger(__name__)

SOURCE_KINDS = ("synthetic", "imagefolder", "recordio", "cfp", "att", "random", "online")
_NO_DATASET = ("random", "online")
REAL_KINDS = ("none", "imagefolder", "recordio", "cfp", "att")
# A constant last key per random stream: SeedSequence ignores trailing zeros, and
# two streams with equal leading keys must still differ.
EPOCH_STREAM = 7001


@dataclass(frozen=True)
class RealMixConfig(ConfigBase):
    """The real set blended in by domain mixup (``kind: none`` switches it off).

    Attributes:
        kind: ``none``, ``imagefolder``, ``recordio``, ``cfp`` or ``att``.
        path: the real set's folder (or RecordIO prefix).
        num_identities, samples_per_identity: the Real_N_S choice (0, 0: everything).
        subset_seed: None takes the first N identities / S images, a number a seeded choice.
        workers: loader processes for the real set (it decodes images).
    """

    kind: str = "none"
    path: str = ""
    num_identities: int = 0
    samples_per_identity: int = 0
    subset_seed: int | None = None
    workers: int = 2

    def validate(self) -> None:
        require(self.kind in REAL_KINDS, "kind", f"unknown {self.kind!r}; valid kinds: {', '.join(REAL_KINDS)}")
        require(self.kind == "none" or bool(self.path), "path", "a real set for domain mixup needs its path")
        _check_subset(self.num_identities, self.samples_per_identity, both=True)
        require(self.workers >= 0, "workers", f"{self.workers} must be >= 0")


@dataclass(frozen=True)
class DataConfig(ConfigBase):
    """Where training images come from and how they are batched and augmented.

    Attributes:
        kind: ``synthetic`` (a generated dataset), ``imagefolder``, ``recordio``,
            ``cfp``, ``att``, ``random`` (random tensors made on the device, for
            throughput checks) or ``online`` (faces rendered on the device per batch).
        path: the dataset folder (RecordIO: folder or prefix); for ``online`` a
            generation config YAML ("" for the defaults); unused by ``random``.
        image_size: (height, width) the network takes.
        fit: how decoded real images of another size are handled (``aligned``,
            ``crop``, ``resize``, ``error``; see ``synface.data.base.prepare_image``).
        num_identities, samples_per_identity: subset N_S (0: all). Generated data
            takes the first identities and samples; real sets use ``subset_seed``;
            ``online`` renders N identities x S samples per epoch.
        subset_seed: real sets: None for the first N / S, else a seeded choice.
        partners: generated subsets: ``drop`` or ``relabel`` samples whose
            identity-mixup partner falls outside the subset.
        cfp_crop: ``aligned`` (an aligned copy of CFP) or ``center`` (fixed centre
            crop of the raw photos; for tests and smoke runs only).
        cfp_test_folds: CFP folds held out for evaluation; their identities are
            never trained on (as a source or as the domain-mixup set).
        domain_mixup: the real set to blend in.
        augmentation: ``none``, ``paper`` or ``digiface``.
        batch_size: images per step per rank.
        workers: loader processes.
        seed: fixes epoch orders, augmentation and mixup ratios.
        drop_last: drop each rank's last short batch.
        channels_last: hand out channels-last tensors.
        random_num_classes, random_num_samples: size of the ``random`` source.
        online_fresh_samples: ``online`` renders new sample indices every epoch
            (unlimited depth) instead of re-rendering samples ``0..S-1``.
    """

    kind: str = "synthetic"
    path: str = ""
    image_size: tuple[int, int] = (112, 96)
    fit: str = "aligned"
    num_identities: int = 0
    samples_per_identity: int = 0
    subset_seed: int | None = None
    partners: str = "drop"
    cfp_crop: str = "aligned"
    cfp_test_folds: tuple[int, ...] = (6, 7, 8, 9, 10)
    domain_mixup: RealMixConfig = field(default_factory=RealMixConfig)
    augmentation: str = "paper"
    batch_size: int = 512
    workers: int = 4
    seed: int = 0
    drop_last: bool = True
    channels_last: bool = False
    random_num_classes: int = 1000
    random_num_samples: int = 51_200
    online_fresh_samples: bool = True

    def validate(self) -> None:
        require(self.kind in SOURCE_KINDS, "kind", f"unknown {self.kind!r}; valid kinds: {', '.join(SOURCE_KINDS)}")
        require(self.kind in _NO_DATASET or bool(self.path), "path", f"kind {self.kind!r} needs a dataset path")
        require(all(v > 0 for v in self.image_size), "image_size", f"{self.image_size} must be positive")
        require(self.fit in FITS, "fit", f"{self.fit!r} is not one of {', '.join(FITS)}")
        _check_subset(self.num_identities, self.samples_per_identity,
                      both=self.kind not in ("synthetic", *_NO_DATASET))
        require(self.partners in ("drop", "relabel"), "partners", f"{self.partners!r} is not one of drop, relabel")
        require(self.cfp_crop in ("aligned", "center"), "cfp_crop", f"{self.cfp_crop!r} is not one of aligned, center")
        require(all(1 <= f <= 10 for f in self.cfp_test_folds), "cfp_test_folds",
                f"{self.cfp_test_folds} must be fold numbers 1..10")
        require(self.augmentation in AUGMENTATIONS, "augmentation",
                f"unknown {self.augmentation!r}; valid: {', '.join(AUGMENTATIONS)}")
        require(self.batch_size > 0, "batch_size", f"{self.batch_size} must be positive")
        require(self.workers >= 0, "workers", f"{self.workers} must be >= 0")
        require(self.random_num_classes > 0, "random_num_classes", f"{self.random_num_classes} must be positive")
        require(self.random_num_samples > 0, "random_num_samples", f"{self.random_num_samples} must be positive")


def _check_subset(num_identities: int, samples_per_identity: int, both: bool) -> None:
    require(num_identities >= 0, "num_identities", f"{num_identities} must be >= 0 (0: all)")
    require(samples_per_identity >= 0, "samples_per_identity", f"{samples_per_identity} must be >= 0 (0: all)")
    if both:
        require((num_identities > 0) == (samples_per_identity > 0), "samples_per_identity",
                "a real subset needs both num_identities and samples_per_identity (or neither)")


# -- datasets -------------------------------------------------------------------------------------
def build_dataset(cfg: DataConfig) -> torch.utils.data.Dataset:
    """The training dataset ``cfg`` names (with its subset applied).

    Raises:
        ConfigError: ``random`` has no dataset; a generated dataset's image size
            differs from ``cfg.image_size``.
        DataError: unreadable data.
    """
    return _open(cfg.kind, cfg.path, cfg, cfg.num_identities, cfg.samples_per_identity, cfg.subset_seed)


def _open(kind: str, path: str, cfg: DataConfig, num_identities: int, samples: int, seed: int | None) -> Any:
    size = tuple(cfg.image_size)
    if kind == "synthetic":
        dataset = SyntheticDataset(path)
        if dataset.image_size != size:
            raise ConfigError(f"image_size: {list(size)} but {path} holds {dataset.image_size[0]}x"
                              f"{dataset.image_size[1]} images")
        if num_identities or samples:
            dataset = dataset.subset(num_identities or None, samples or None, cfg.partners)  # type: ignore[arg-type]
        return dataset
    if kind == "imagefolder":
        dataset = ImageFolderDataset(path, size, cfg.fit)
    elif kind == "recordio":
        dataset = RecordIODataset(path, size, cfg.fit)
    elif kind == "cfp":
        _, held_out = cfp_split(path, cfg.cfp_test_folds)
        dataset = CFPDataset(path, size, exclude_identities=held_out, crop=cfg.cfp_crop)  # type: ignore[arg-type]
    elif kind == "att":
        dataset = ATTDataset(path, size)
    else:
        valid = [k for k in SOURCE_KINDS if k not in _NO_DATASET]
        raise ConfigError(f"kind: {kind!r} has no dataset; valid kinds: {', '.join(valid)}")
    return real_subset(dataset, num_identities, samples, seed=seed) if num_identities else dataset


# -- batching -------------------------------------------------------------------------------------
class EpochBatchSampler(torch.utils.data.Sampler[np.ndarray]):
    """Index batches of one rank: the epoch permutation ``default_rng([seed, epoch, EPOCH_STREAM])``, cut into ranks.

    Every rank gets ``num_samples // world_size`` samples (rank ``r`` the ``r``-th
    block of the permutation), so ranks are disjoint and equally long.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = True) -> None:
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside 0..{world_size - 1}")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.seed, self.rank, self.world_size, self.drop_last = seed, rank, world_size, drop_last
        self.epoch = 0
        self.per_rank = num_samples // world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation the next iteration uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.per_rank, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[np.ndarray]:
        order = np.random.default_rng([self.seed, self.epoch, EPOCH_STREAM]).permutation(self.num_samples)
        mine = order[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]
        for batch in range(len(self)):
            yield mine[batch * self.batch_size:(batch + 1) * self.batch_size]


class BatchReader(torch.utils.data.Dataset):
    """Lets a DataLoader fetch a whole batch per call through the dataset's ``get_batch``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: np.ndarray) -> Batch:
        return self.dataset.get_batch(indices)


def batch_loader(dataset: Any, batches: Any, workers: int, device: torch.device,
                 persistent: bool = True) -> torch.utils.data.DataLoader:
    """A DataLoader yielding uint8 batches for the index batches ``batches`` (a sampler or a list)."""
    return torch.utils.data.DataLoader(
        BatchReader(dataset), sampler=batches, batch_size=None, num_workers=workers,
        pin_memory=device.type == "cuda", persistent_workers=persistent and workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


# -- the training source ------------------------------------------------------------------------------
class TrainSource:
    """Device batches for training; see :func:`build_train_source`."""

    def __init__(self, cfg: DataConfig, device: torch.device, rank: int, world_size: int) -> None:
        self.cfg, self.device, self.rank, self.world_size = cfg, device, rank, world_size
        self.epoch = 0
        self.augment = create_augmentation(cfg.augmentation)
        self.dataset: Any = None
        self.online: OnlineBatches | None = None
        self.loader: torch.utils.data.DataLoader | None = None
        if cfg.kind == "random":
            num_samples, self.num_synthetic_classes = cfg.random_num_samples, cfg.random_num_classes
        elif cfg.kind == "online":
            self.online = build_online_batches(cfg.path, cfg.num_identities, cfg.samples_per_identity,
                                               cfg.image_size, cfg.seed, device, cfg.online_fresh_samples)
            num_samples, self.num_synthetic_classes = len(self.online), self.online.num_classes
        else:
            self.dataset = build_dataset(cfg)
            num_samples, self.num_synthetic_classes = len(self.dataset), self.dataset.num_classes
        self.sampler = EpochBatchSampler(num_samples, cfg.batch_size, cfg.seed, rank, world_size, cfg.drop_last)
        if self.dataset is not None:
            self.loader = batch_loader(self.dataset, self.sampler, cfg.workers, device)
        mix = cfg.domain_mixup
        self.real = None
        if mix.kind != "none":
            self.real = _open(mix.kind, mix.path, cfg, mix.num_identities, mix.samples_per_identity, mix.subset_seed)
        self.num_classes = self.num_synthetic_classes + (self.real.num_classes if self.real is not None else 0)
        if len(self.sampler) == 0:
            raise ConfigError(f"batch_size: {cfg.batch_size} leaves no batch for {num_samples} "
                              f"samples over {world_size} ranks (drop_last={cfg.drop_last})")

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (its order, augmentation and mixup ratios follow from it)."""
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Batch]:
        generator = seeded_generator(self.cfg.seed, self.epoch, self.rank, 1)
        if self.online is not None:
            batches: Iterator[Batch] = self.online.batches(self.sampler, self.epoch)
        else:
            batches = self._random_batches() if self.loader is None else iter(self.loader)
        real_batches = self._real_batches()
        for images, targets, weights in batches:
            x = self.augment(to_network_input(images, self.device, self.cfg.channels_last), generator)
            targets = targets.to(self.device, non_blocking=True)
            weights = weights.to(self.device, non_blocking=True)
            if real_batches is not None:
                real_images, real_targets, real_weights = next(real_batches)
                real_x = self.augment(to_network_input(real_images[:len(x)], self.device, self.cfg.channels_last),
                                      generator)
                real = (real_x, real_targets[:len(x)], real_weights[:len(x)])
                x, targets, weights = domain_mixup((x, targets, weights), real, draw_ratio(generator),
                                                   self.num_synthetic_classes)
            memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
            yield x.contiguous(memory_format=memory_format), targets, weights

    def _real_batches(self) -> Iterator[Batch] | None:
        if self.real is None:
            return None
        index_batches = oversampled_batches(len(self.real), self.cfg.batch_size, len(self), self.cfg.seed,
                                            self.epoch, self.rank, self.world_size)
        workers = self.cfg.domain_mixup.workers
        return iter(batch_loader(self.real, index_batches, workers, self.device, persistent=False))

    def _random_batches(self) -> Iterator[Batch]:
        """Random uint8 images and plain labels made on the device (no disk, no host copies)."""
        height, width = self.cfg.image_size
        device_generator = torch.Generator(device=self.device)
        device_generator.manual_seed(int(torch.randint(2**62, (1,), generator=seeded_generator(
            self.cfg.seed, self.epoch, self.rank, 2))))
        for indices in self.sampler:
            size = len(indices)
            images = torch.randint(0, 256, (size, 3, height, width), dtype=torch.uint8,
                                   device=self.device, generator=device_generator)
            labels = torch.randint(0, self.cfg.random_num_classes, (size,), device=self.device,
                                   generator=device_generator)
            weights = torch.zeros(size, 2, device=self.device)
            weights[:, 0] = 1.0
            yield images, torch.stack([labels, labels], dim=1), weights


def build_train_source(cfg: DataConfig, device: torch.device | str, rank: int = 0, world_size: int = 1) -> TrainSource:
    """Training batches on ``device`` for one data-parallel rank.

    Args:
        cfg: the data config.
        device: where batches are delivered (and augmented and mixed).
        rank, world_size: this process's data-parallel position.

    Returns:
        A :class:`TrainSource`: ``num_classes``, ``len()`` (batches per epoch on this
        rank), ``set_epoch(e)``, and iteration over ``(images, targets, weights)``.

    Raises:
        ConfigError: an impossible combination (e.g. a batch larger than the rank's data).
        DataError: unreadable data.
    """
    return TrainSource(cfg, torch.device(device), rank, world_size)
