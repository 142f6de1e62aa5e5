"""Procedural appearance of synthetic identities: per-vertex albedo and specular strength from a parameter vector.

The face models carry shape only; this module gives each identity skin (tone,
redness, mottling, freckles, pores, shine), lips, eyes (iris colour, pupil, sclera,
lash line), eyebrows, scalp hair (colour, greying, hairline, recession, baldness,
fringe), facial hair (stubble, moustache, beard) and ageing cues (wrinkles, age spots,
dark circles), painted as per-vertex colours.

An identity's appearance is a float vector (:data:`PARAM_NAMES`, drawn by
:meth:`AppearanceModel.sample`). Every entry is continuous and every pattern (freckle
layout, hairline irregularity) is a fixed function of the vector, so the same person
looks the same under any pose, expression or light, and the linear blend used by
identity mixup decodes to a plausible in-between person. Patterns are placed by
coordinates derived from the model's landmarks and regions
(:mod:`synface.generate.appearance_geometry`), so the same vector paints the same
person on any face model.

Usage::

    model = AppearanceModel(face_model, AppearanceConfig())
    params = np.stack([model.sample(np.random.default_rng([seed, 0, i])) for i in ids])
    albedo = model.albedo(torch.from_numpy(params).to(device))  # Albedo(diffuse, specular)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from synface.errors import DataError
from synface.generate.appearance_geometry import face_geometry
from synface.generate.appearance_maps import PaintTables, build_tables
from synface.generate.appearance_paint import paint
from synface.generate.appearance_sampling import (
    PARAM_NAMES,
    AppearanceConfig,
    mean_appearance,
    sample_appearance,
)
from synface.generate.facemodel import FaceModel

logger = logging.getLogger(__name__)

__all__ = ["PARAM_NAMES", "Albedo", "AppearanceConfig", "AppearanceModel", "mean_appearance"]


@dataclass
class Albedo:
    """Per-vertex reflectance of a batch of faces.

    Attributes:
        diffuse: (B, V, 3) linear RGB albedo in [0, 1].
        specular: (B, V) specular strength in [0, 1] (oily T-zone, wet lips and eyes, matte hair).
        scalp_cover: (B, Nh) how fully scalp hair covers each vertex that may carry it
            (:attr:`AppearanceModel.scalp_vertices`), in [0, 1].
        beard_cover: (B, Nd) the same for beard and moustache (:attr:`AppearanceModel.beard_vertices`).
        scalp_colour: (B, Nh, 3) linear RGB of the scalp hair itself (the diffuse colour
            blends it with the skin where hair is sparse).
        beard_colour: (B, Nd, 3) linear RGB of the beard and moustache hair.
    """

    diffuse: torch.Tensor
    specular: torch.Tensor
    scalp_cover: torch.Tensor | None = None
    beard_cover: torch.Tensor | None = None
    scalp_colour: torch.Tensor | None = None
    beard_colour: torch.Tensor | None = None


class AppearanceModel:
    """Samples and paints identities' appearance for one face model.

    Args:
        model: the face model whose vertices are painted (any device; only its mean
            shape, regions and landmarks are read).
        config: the population appearance parameters are drawn from.
    """

    def __init__(self, model: FaceModel, config: AppearanceConfig = AppearanceConfig()):
        self.config = config
        self.num_vertices = model.num_vertices
        self.param_names: tuple[str, ...] = PARAM_NAMES
        self.num_params = len(PARAM_NAMES)
        self.geometry = face_geometry(model)
        self._tables: dict[str, PaintTables] = {"cpu": build_tables(self.geometry)}
        logger.debug("appearance model for %s: %d parameters", model.name, self.num_params)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw one identity's appearance parameters: (Ka,) float32."""
        return sample_appearance(rng, self.config)

    def mean(self) -> np.ndarray:
        """(Ka,) float32: an average adult without facial hair, makeup or ageing cues."""
        return mean_appearance()

    @property
    def scalp_vertices(self) -> torch.Tensor:
        """(Nh,) int64 vertices where scalp hair may grow, in the order of :attr:`Albedo.scalp_cover`."""
        tables = self._tables["cpu"]
        return tables.skin[tables.hair]

    @property
    def beard_vertices(self) -> torch.Tensor:
        """(Nd,) int64 vertices where a beard or moustache may grow, in the order of :attr:`Albedo.beard_cover`."""
        tables = self._tables["cpu"]
        return tables.skin[tables.beard]

    def tables(self, device: torch.device | str) -> PaintTables:
        """The per-model paint constants on ``device`` (copied there once, then cached)."""
        key = str(torch.device(device))
        if key not in self._tables:
            self._tables[key] = self._tables["cpu"].to(device)
        return self._tables[key]

    def albedo(self, params: torch.Tensor) -> Albedo:
        """Paint a batch of identities.

        Args:
            params: (B, Ka) appearance parameters on any device; the result lives there too.

        Returns:
            :class:`Albedo` with diffuse (B, V, 3) and specular (B, V), float32.

        Raises:
            DataError: ``params`` is not (B, Ka) or holds non-finite values.
        """
        if params.ndim != 2 or params.shape[1] != self.num_params:
            raise DataError(f"appearance params must be (B, {self.num_params}), got {tuple(params.shape)}")
        params = params.to(torch.float32)
        if not bool(torch.isfinite(params).all()):
            raise DataError("appearance params contain NaN or infinite values")
        return Albedo(**paint(self.tables(params.device), params, self.num_vertices))
