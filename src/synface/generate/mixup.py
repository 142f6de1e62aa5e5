"""Identity mixup: per-image partner identities, mixing ratios, mixed coefficients and soft labels.

As in the official SynFace code, mixing acts on the identity *coefficients*
(shape and appearance): ``alpha = phi * alpha_1 + (1 - phi) * alpha_2``, while
expression, pose, light and noise stay those of the primary identity's sample.
Each image draws its own partner, always another identity of the same dataset
(so every soft label names a class the classifier has), and its own ``phi``.

Modes:
    ``none``   plain samples, label ``(i, i), (1, 0)``.
    ``fixed``  ``phi`` = ``config.phi`` for every image, label ``(i, p), (phi, 1 - phi)``.
    ``grid``   ``phi`` drawn uniformly from a grid (default ``linspace(0, 1, 21)``).
    ``attack`` the identity-mixup attack sets of the paper's Fig. 5 (Syn-LFW-R): the
               primary is mixed with a random secondary at ratio R = ``config.phi``
               but keeps its own label ``(i, i), (1, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch

from synface.config import ConfigBase, require

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class MixupConfig(ConfigBase):
    """How identities are mixed (see the module docstring for the modes).

    Attributes:
        mode: ``none``, ``fixed``, ``grid`` or ``attack``.
        phi: the primary's weight in ``fixed`` mode, the ratio R in ``attack`` mode.
        grid: explicit phi values for ``grid`` mode; when empty the grid is
            ``linspace(grid_low, grid_high, grid_steps)``.
        grid_low, grid_high, grid_steps: the default grid (the paper's 0..1 in 0.05 steps).
    """

    mode: Literal["none", "fixed", "grid", "attack"] = "none"
    phi: float = 0.8
    grid: tuple[float, ...] = ()
    grid_low: float = 0.0
    grid_high: float = 1.0
    grid_steps: int = 21

    def validate(self) -> None:
        require(0.0 <= self.phi <= 1.0, "phi", f"{self.phi} is outside [0, 1]")
        for index, value in enumerate(self.grid):
            require(0.0 <= value <= 1.0, f"grid[{index}]", f"{value} is outside [0, 1]")
        require(0.0 <= self.grid_low <= 1.0, "grid_low", f"{self.grid_low} is outside [0, 1]")
        require(0.0 <= self.grid_high <= 1.0, "grid_high", f"{self.grid_high} is outside [0, 1]")
        require(self.grid_low <= self.grid_high, "grid_high",
                f"{self.grid_high} is below grid_low {self.grid_low}")
        require(self.grid_steps >= 1, "grid_steps", f"{self.grid_steps} must be at least 1")

    @property
    def enabled(self) -> bool:
        """Whether identity coefficients get mixed at all."""
        return self.mode != "none"

    def phi_values(self) -> np.ndarray:
        """(G,) float64 the ratios ``phi`` is drawn from (one value unless ``grid``)."""
        if self.mode == "grid":
            if self.grid:
                return np.asarray(self.grid, dtype=np.float64)
            return np.linspace(self.grid_low, self.grid_high, self.grid_steps)
        if self.mode == "none":
            return np.ones(1)
        return np.asarray([self.phi])


def draw_mixup(config: MixupConfig, rng: np.random.Generator, identity: int, num_identities: int) -> tuple[int, float]:
    """Partner and ratio of one image, from that image's own mixup random stream.

    The partner is drawn first, so ``fixed``, ``grid`` and ``attack`` datasets with the
    same seed pair the same identities.

    Args:
        config: the mixup settings.
        rng: the image's mixup generator.
        identity: the primary identity.
        num_identities: identities in the dataset; partners come only from
            ``0 .. num_identities - 1`` and are never ``identity`` itself.

    Returns:
        (partner, phi); ``(identity, 1.0)`` when mixup is off.
    """
    if not config.enabled:
        return identity, 1.0
    assert num_identities >= 2 and 0 <= identity < num_identities, (identity, num_identities)
    partner = int(rng.integers(num_identities - 1))
    partner += partner >= identity  # skip the identity itself, uniform over the others
    values = config.phi_values()
    phi = float(values[rng.integers(len(values))]) if len(values) > 1 else float(values[0])
    return partner, phi


def soft_labels(identity: np.ndarray, partner: np.ndarray, phi: np.ndarray,
                keep_primary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Training labels of (possibly) mixed images.

    An unmixed image (``partner == identity``, ``phi == 1``) gets the plain label
    ``(i, i), (1, 0)`` from the same formula.

    Args:
        identity: (n,) primary identities.
        partner: (n,) partner identities.
        phi: (n,) primary weights.
        keep_primary: label every image as its primary identity alone, whatever the
            mixing (the ``attack`` sets).

    Returns:
        (labels (n, 2) int64, weights (n, 2) float32), weights summing to 1 per row.
    """
    identity = np.asarray(identity, dtype=np.int64)
    if keep_primary:
        labels = np.stack([identity, identity], axis=1)
        weights = np.tile(np.asarray([1.0, 0.0], dtype=np.float32), (identity.shape[0], 1))
        return labels, weights
    phi32 = np.asarray(phi, dtype=np.float32)
    labels = np.stack([identity, np.asarray(partner, dtype=np.int64)], axis=1)
    weights = np.stack([phi32, np.float32(1.0) - phi32], axis=1)
    return labels, weights


def mix_coefficients(primary: ArrayOrTensor, partner: ArrayOrTensor, phi: ArrayOrTensor) -> ArrayOrTensor:
    """``phi * primary + (1 - phi) * partner`` row by row.

    Args:
        primary: (n, K) coefficients of the primary identities.
        partner: (n, K) coefficients of their partners.
        phi: (n,) primary weights; ``phi = 1`` returns ``primary`` exactly.

    Returns:
        (n, K) mixed coefficients.
    """
    weight = phi[:, None]
    return weight * primary + (1 - weight) * partner
