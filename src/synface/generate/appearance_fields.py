"""Fixed random patterns on a face model's surface: smooth noise fields, scattered spots, strand textures.

These are the raw material of identity-specific details. They are drawn once per face
model from a fixed seed (identical on every run) and positioned in the face frame of
:mod:`synface.generate.appearance_geometry`; an identity's coefficients then mix the
fields or pick the spots, so its details are a smooth function of its parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree


@dataclass
class SpotLayout:
    """Fixed candidate spots on the skin; an identity's coefficients decide which ones show.

    Attributes:
        index: (S,) int64 nearest spot of each skin vertex.
        weight: (S,) Gaussian falloff from that spot's centre (0 far from every spot).
        basis: (K, C) random projection: spot k's score is ``coefficients @ basis[k] / sqrt(C)``.
        gain: (K,) strength of each spot (its region's density times a random intensity).
    """

    index: torch.Tensor
    weight: torch.Tensor
    basis: torch.Tensor
    gain: torch.Tensor

    def to(self, device: torch.device | str) -> SpotLayout:
        """A copy with every tensor on ``device``."""
        return SpotLayout(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def smooth_fields(points: np.ndarray, count: int, scale: float, rng: np.random.Generator,
                  features: int = 48) -> np.ndarray:
    """(count, N) zero-mean, unit-variance random smooth fields (random Fourier features) of length ``scale``."""
    frequencies = rng.normal(0.0, 1.0 / scale, size=(count, features, 3))
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(count, features, 1))
    waves = np.cos(np.einsum("kfd,nd->kfn", frequencies, points) + phases)  # (count, features, N)
    fields = waves.sum(1) * np.sqrt(2.0 / features)
    return (fields - fields.mean(1, keepdims=True)) / np.maximum(fields.std(1, keepdims=True), 1e-6)


def uniform_by_rank(values: np.ndarray) -> np.ndarray:
    """Map values to [0, 1] by rank: a uniform distribution that keeps the values' spatial pattern."""
    order = np.argsort(np.argsort(values))
    return (order + 0.5) / max(len(values), 1)


def scatter_spots(points: np.ndarray, density: np.ndarray, spacing: float, radius: float, coefficients: int,
                  rng: np.random.Generator) -> SpotLayout:
    """Scatter spot centres over ``points`` (N, 3) with ``density`` (N,), at least ``spacing`` apart.

    Args:
        points: (N, 3) vertex positions in the face frame.
        density: (N,) relative spot density (0 where no spot may sit).
        spacing: smallest distance between two spot centres.
        radius: Gaussian radius of a spot.
        coefficients: how many identity coefficients choose the visible spots.
        rng: the model's fixed generator.

    Returns:
        The :class:`SpotLayout` over the N vertices.
    """
    candidates = np.flatnonzero(density > 0.05)
    weights = density[candidates] / density[candidates].sum()
    order = rng.choice(candidates, size=len(candidates), replace=False, p=weights)
    tree = cKDTree(points)
    blocked = np.zeros(len(points), dtype=bool)
    centres: list[int] = []
    for vertex in order:  # greedy Poisson-disc sampling: each centre blocks its neighbourhood
        if not blocked[vertex]:
            centres.append(int(vertex))
            blocked[tree.query_ball_point(points[vertex], spacing)] = True
    distance, nearest = cKDTree(points[centres]).query(points)
    weight = np.where(distance < 2.5 * radius, np.exp(-0.5 * (distance / radius) ** 2), 0.0)
    gain = density[centres] * rng.uniform(0.5, 1.0, len(centres))
    return SpotLayout(index=torch.as_tensor(nearest, dtype=torch.int64),
                      weight=torch.as_tensor(weight, dtype=torch.float32),
                      basis=torch.as_tensor(rng.normal(size=(len(centres), coefficients)), dtype=torch.float32),
                      gain=torch.as_tensor(gain, dtype=torch.float32))


def strand_texture(points: np.ndarray, scale: float, rng: np.random.Generator, smooth: float) -> np.ndarray:
    """(N,) values uniform in [0, 1]: ``smooth`` parts a field of length ``scale``, the rest per-vertex noise."""
    field = smooth_fields(points, 1, scale, rng, 96)[0]
    return uniform_by_rank(smooth * field + (1.0 - smooth) * rng.normal(size=len(points)))
