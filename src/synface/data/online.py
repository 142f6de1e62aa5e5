"""Online training data: render each batch with the face generator on the device, straight into training.

No disk and unlimited depth: epoch ``e`` renders sample indices ``e * S .. e * S + S - 1``
of every identity (``fresh_samples``), so no image repeats across epochs. Identity
mixup is drawn anew every epoch, per virtual sample ``v`` (identity ``v // S``),
from ``default_rng([seed, epoch, ONLINE_STREAM])``: a different partner and ``phi``
each epoch, the same on every rank and run for a given ``(seed, epoch)``. Partners
are always among the ``num_identities`` trained classes, so every soft label
names a class of the classifier.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import torch

from synface.data.base import Batch
from synface.errors import ConfigError

logger = logging.getLogger(__name__)

ONLINE_STREAM = 7004  # last seed key of the per-epoch mixup draws (see loader.EPOCH_STREAM)


class BatchRenderer(Protocol):
    """What online training needs from :class:`synface.generate.generator.FaceGenerator`."""

    config: Any  # a GenerateConfig; its ``mixup`` says how identities are mixed
    height: int
    width: int

    def render(self, identity_ids: Any, sample_ids: Any, partners: Any = None,
               phis: Any = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


def draw_epoch_mixup(mixup: Any, num_identities: int, samples_per_identity: int,
                     seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Partner and ``phi`` of every virtual sample of one epoch.

    Args:
        mixup: a ``MixupConfig`` (``enabled``, ``mode``, ``phi_values()``).
        num_identities: N; partners come from ``0..N-1`` and never equal the primary.
        samples_per_identity: S; virtual sample ``v`` belongs to identity ``v // S``.
        seed, epoch: fix the draws.

    Returns:
        (partners (N*S,) int64, phis (N*S,) float32); ``(identity, 1)`` when mixup is off.
    """
    identity = np.repeat(np.arange(num_identities, dtype=np.int64), samples_per_identity)
    if not mixup.enabled:
        return identity, np.ones(len(identity), np.float32)
    if num_identities < 2:
        raise ConfigError(f"num_identities: identity mixup needs at least 2 identities, got {num_identities}")
    rng = np.random.default_rng([seed, epoch, ONLINE_STREAM])
    partner = rng.integers(num_identities - 1, size=len(identity))
    partner += partner >= identity  # uniform over the other identities
    values = np.asarray(mixup.phi_values(), dtype=np.float32)
    phi = values[rng.integers(len(values), size=len(identity))]
    return partner.astype(np.int64), phi.astype(np.float32)


class OnlineBatches:
    """Rendered batches for the virtual samples a sampler hands out.

    Args:
        generator: the face generator (already on the training device).
        num_identities: N trained classes.
        samples_per_identity: S virtual samples per identity and epoch.
        seed: fixes the per-epoch mixup draws.
        fresh_samples: render new sample indices every epoch (unlimited depth);
            otherwise epoch after epoch re-renders samples ``0..S-1`` (new mixup only).
    """

    def __init__(self, generator: BatchRenderer, num_identities: int, samples_per_identity: int,
                 seed: int = 0, fresh_samples: bool = True) -> None:
        if num_identities <= 0 or samples_per_identity <= 0:
            raise ConfigError(f"online data: N={num_identities}, S={samples_per_identity}; both must be positive")
        self.generator = generator
        self.num_identities, self.samples_per_identity = num_identities, samples_per_identity
        self.seed, self.fresh_samples = seed, fresh_samples
        self._epoch_draws: tuple[int, np.ndarray, np.ndarray] | None = None

    @property
    def num_classes(self) -> int:
        """Classes of the classifier (the N identities)."""
        return self.num_identities

    def __len__(self) -> int:
        """Virtual samples per epoch (N * S)."""
        return self.num_identities * self.samples_per_identity

    def batches(self, index_batches: Iterable[np.ndarray], epoch: int) -> Iterator[Batch]:
        """Render one epoch's batches.

        Args:
            index_batches: (B,) virtual sample numbers per batch (e.g. a rank's sampler).
            epoch: the epoch (selects sample indices and mixup draws).

        Yields:
            images (B, 3, H, W) uint8 on the generator's device, targets (B, 2), weights (B, 2).
        """
        partners, phis = self._draws(epoch)
        for batch in index_batches:
            batch = np.asarray(batch, dtype=np.int64)
            identity, within = np.divmod(batch, self.samples_per_identity)
            offset = epoch * self.samples_per_identity if self.fresh_samples else 0
            images, fields = self.generator.render(identity, within + offset, partners[batch], phis[batch])
            yield images.permute(0, 3, 1, 2), fields["labels"], fields["label_weights"]

    def _draws(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._epoch_draws is None or self._epoch_draws[0] != epoch:
            partners, phis = draw_epoch_mixup(self.generator.config.mixup, self.num_identities,
                                              self.samples_per_identity, self.seed, epoch)
            self._epoch_draws = (epoch, partners, phis)
        return self._epoch_draws[1], self._epoch_draws[2]


def build_online_batches(generate_config_path: str, num_identities: int, samples_per_identity: int,
                         image_size: tuple[int, int], seed: int, device: torch.device,
                         fresh_samples: bool = True) -> OnlineBatches:
    """A face generator on ``device`` for a generation config, wrapped for online training.

    Args:
        generate_config_path: a ``GenerateConfig`` YAML file ("" for the defaults).
        num_identities, samples_per_identity: N and S per epoch (0: the config's layout;
            S then needs a layout with one depth for every identity).
        image_size: the (height, width) training expects; must match the renderer.
        seed: fixes epoch mixup draws (the generation config's own seed fixes identities).
        device: where rendering and training happen.
        fresh_samples: see :class:`OnlineBatches`.

    Raises:
        ConfigError: sizes that do not match, or S unspecified for an uneven layout.
    """
    from synface.generate.generator import FaceGenerator
    from synface.generate.sampling import GenerateConfig

    config = GenerateConfig.from_yaml(generate_config_path) if generate_config_path else GenerateConfig()
    counts = config.layout.resolve().counts
    num_identities = num_identities or len(counts)
    if not samples_per_identity:
        if len(set(counts.tolist())) != 1:
            raise ConfigError("samples_per_identity: the generation layout has uneven depths; "
                              "give the online depth explicitly")
        samples_per_identity = int(counts[0])
    generator = FaceGenerator(config, device, num_identities=num_identities)
    if (generator.height, generator.width) != tuple(image_size):
        raise ConfigError(f"image_size: {list(image_size)} but the generator renders "
                          f"{generator.height}x{generator.width} crops")
    logger.info("online data: %d identities x %d samples per epoch, rendered on %s",
                num_identities, samples_per_identity, device)
    return OnlineBatches(generator, num_identities, samples_per_identity, seed, fresh_samples)
