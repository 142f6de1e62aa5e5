"""The batched face generator: identity and sample numbers in, aligned uint8 face crops and labels out.

:class:`FaceGenerator` holds the face model, appearance model and renderer of one
:class:`~synface.generate.sampling.GenerateConfig`. Factors are drawn on the CPU
(:class:`~synface.generate.sampling.FactorSampler`); identity mixing, shapes, albedo,
background, rendering, degradation and quantisation run batched on the device. The
dataset writer calls it shard by shard; online training calls :meth:`FaceGenerator.render`
with the identity and sample numbers of each batch and keeps the images on the GPU.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Self

import numpy as np
import torch

from synface.errors import DataError
from synface.generate.appearance import AppearanceModel
from synface.generate.background import render_background
from synface.generate.facemodel import FaceModel
from synface.generate.hair import HairShell
from synface.generate.mixup import mix_coefficients, soft_labels
from synface.generate.quality import degrade
from synface.generate.registry import resolve_face_model
from synface.generate.render import FaceRenderer
from synface.generate.sampling import FactorSampler, GenerateConfig, SampleFactors

logger = logging.getLogger(__name__)

MIN_CHUNK = 16  # fewest samples worth sending to a worker process
# Images drawn per step on CPUs: near cache-sized, and fixed, so that results never
# depend on the number of render threads.
CPU_DRAW_CHUNK = 16

# Per-sample fields of FaceGenerator.render's dictionary, as stored in a shard's meta file.
SAMPLE_FIELDS: tuple[str, ...] = (
    "labels", "label_weights", "identity", "sample_index", "mix_partner", "mix_phi",
    "identity_shape", "appearance", "expression", "light", "pose", "camera", "landmark_jitter",
    "background", "quality", "landmarks5",
)


_worker_sampler: FactorSampler | None = None  # the sampler of a sampling worker process


def _start_worker(config: GenerateConfig, expression_names: tuple[str, ...], num_shape: int,
                  num_identities: int) -> None:
    global _worker_sampler
    _worker_sampler = FactorSampler(config, expression_names, num_shape, num_identities)


def _sample_in_worker(identity_ids: np.ndarray, sample_ids: np.ndarray) -> SampleFactors:
    assert _worker_sampler is not None
    return _worker_sampler.samples(identity_ids, sample_ids)


def _single_threaded() -> None:
    """Render threads run their tensor operations on one core each (the setting is per thread)."""
    torch.set_num_threads(1)


class PendingFactors:
    """Per-sample factors being drawn (in worker processes, or already drawn); :meth:`result` waits."""

    def __init__(self, parts: list[Future | SampleFactors], partners: np.ndarray | None, phis: np.ndarray | None):
        self._parts, self._partners, self._phis = parts, partners, phis

    def result(self) -> SampleFactors:
        """The factors, with forced partners and ratios applied."""
        parts = [p.result() if isinstance(p, Future) else p for p in self._parts]
        factors = parts[0] if len(parts) == 1 else SampleFactors.concatenate(parts)
        if self._partners is not None:
            factors.mix_partner = self._partners
        if self._phis is not None:
            factors.mix_phi = self._phis
        return factors


class FaceGenerator:
    """Renders the samples of one generation config, in batches, on one device.

    Args:
        config: the generation config.
        device: where rendering happens (``"cpu"``, ``"cuda"``, a :class:`torch.device`).
        model: a face model to use instead of resolving ``config.face_model``.
        num_identities: identities mixup partners come from (default: the layout's);
            online training over a subset of identities passes the subset's size.
        sampling_workers: processes drawing per-sample factors (0: in this process).
            Factor draws are Python-heavy; on a fast GPU they need several cores, and
            :meth:`sample_async` lets the next batch be drawn while this one renders.
            Results do not depend on the number of workers.
        render_threads: CPU threads drawing chunks of a batch in parallel, each with
            single-threaded tensor operations (one per core beats intra-op parallelism
            on these small operations, and never oversubscribes a busy machine); None:
            one per core. Ignored on GPUs. Results do not depend on the number of threads.

    Raises:
        AssetError: the face model cannot be found or is broken.
    """

    def __init__(self, config: GenerateConfig, device: torch.device | str = "cpu",
                 model: FaceModel | None = None, num_identities: int | None = None,
                 sampling_workers: int = 0, render_threads: int | None = None):
        self.config = config
        self.device = torch.device(device)
        model = resolve_face_model(config.face_model) if model is None else model
        self.model = model.to(self.device)
        self.appearance = AppearanceModel(self.model, config.identity.appearance)
        # The renderer draws the face model plus the hair shell (when enabled).
        self.hair = HairShell(self.model, self.appearance, config.hair) if config.hair.enabled else None
        self.renderer = FaceRenderer(self.model if self.hair is None else self.hair.model, config.render, self.device)
        self.sampler = FactorSampler(config, self.model.expression_names, self.model.num_identity, num_identities)
        self.height, self.width = self.renderer.height, self.renderer.width
        self._identity_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.sampling_workers = sampling_workers
        self._pool: ProcessPoolExecutor | None = None
        if sampling_workers > 0:
            self._pool = ProcessPoolExecutor(
                sampling_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                initargs=(config, self.model.expression_names, self.model.num_identity, self.num_identities))
        threads = (os.cpu_count() or 1) if render_threads is None else render_threads
        self.render_threads = max(1, threads) if self.device.type == "cpu" else 0
        self._threads: ThreadPoolExecutor | None = None
        if self.render_threads:
            self._threads = ThreadPoolExecutor(self.render_threads, initializer=_single_threaded)

    def close(self) -> None:
        """Stop the sampling worker processes and render threads (if any)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._threads is not None:
            self._threads.shutdown(cancel_futures=True)
            self._threads = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def num_identities(self) -> int:
        """Identities mixup partners are drawn from."""
        return self.sampler.num_identities

    def identity_coefficients(self, identity_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unmixed shape (n, Ks) and appearance (n, Ka) coefficients of identities (cached)."""
        ids = np.asarray(identity_ids, dtype=np.int64).reshape(-1)
        missing = sorted({i for i in ids.tolist() if i not in self._identity_cache})
        if missing:
            shapes, appearances = self.sampler.identities(np.asarray(missing))
            self._identity_cache.update(zip(missing, zip(shapes, appearances)))
        if not len(ids):
            return np.zeros((0, self.model.num_identity), np.float32), np.zeros((0, self.appearance.num_params), np.float32)
        rows = [self._identity_cache[i] for i in ids.tolist()]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def sample_async(self, identity_ids: Sequence[int] | np.ndarray, sample_ids: Sequence[int] | np.ndarray,
                     partners: Sequence[int] | np.ndarray | None = None,
                     phis: Sequence[float] | np.ndarray | None = None) -> PendingFactors:
        """Start drawing per-sample factors (see :meth:`sample`); returns at once with worker processes."""
        identity_ids = np.asarray(identity_ids, dtype=np.int64).reshape(-1)
        sample_ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
        partners = None if partners is None else np.asarray(partners, dtype=np.int64).reshape(-1)
        phis = None if phis is None else np.asarray(phis, dtype=np.float32).reshape(-1)
        for name, values in (("sample_ids", sample_ids), ("partners", partners), ("phis", phis)):
            if values is not None and len(values) != len(identity_ids):
                raise DataError(f"{name}: {len(values)} values for {len(identity_ids)} identities")
        if self._pool is None or len(identity_ids) < 2 * MIN_CHUNK:
            return PendingFactors([self.sampler.samples(identity_ids, sample_ids)], partners, phis)
        chunks = min(self.sampling_workers, len(identity_ids) // MIN_CHUNK)
        parts = [self._pool.submit(_sample_in_worker, ids, samples)
                 for ids, samples in zip(np.array_split(identity_ids, chunks), np.array_split(sample_ids, chunks))]
        return PendingFactors(parts, partners, phis)

    def sample(self, identity_ids: Sequence[int] | np.ndarray, sample_ids: Sequence[int] | np.ndarray,
               partners: Sequence[int] | np.ndarray | None = None,
               phis: Sequence[float] | np.ndarray | None = None) -> SampleFactors:
        """Draw the per-sample factors on the CPU, optionally forcing the mixup partners and ratios.

        Args:
            identity_ids: (B,) primary identities.
            sample_ids: (B,) sample index of each within its identity.
            partners: (B,) mixup partners, or None for the config's own draws.
            phis: (B,) primary weights, or None for the config's own draws.
        """
        return self.sample_async(identity_ids, sample_ids, partners, phis).result()

    def render(self, identity_ids: Sequence[int] | np.ndarray, sample_ids: Sequence[int] | np.ndarray,
               partners: Sequence[int] | np.ndarray | None = None,
               phis: Sequence[float] | np.ndarray | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Render samples ``(identity_ids[b], sample_ids[b])``.

        Args:
            identity_ids: (B,) primary identities.
            sample_ids: (B,) sample index of each within its identity.
            partners: (B,) mixup partners, or None for the config's own draws.
            phis: (B,) primary weights, or None for the config's own draws.

        Returns:
            ``(images, fields)``: images (B, H, W, 3) uint8 on the device, and the
            per-sample tensors of :data:`SAMPLE_FIELDS` on the device (``labels`` (B, 2)
            int64 and ``label_weights`` (B, 2) float32 are the soft training labels).
        """
        return self.render_factors(self.sample(identity_ids, sample_ids, partners, phis))

    def render_factors(self, factors: SampleFactors) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Render a batch from already drawn factors (see :meth:`render`)."""
        labels, weights = soft_labels(factors.identity, factors.mix_partner, factors.mix_phi,
                                      keep_primary=self.config.mixup.mode == "attack")
        shape_a, appearance_a = self.identity_coefficients(factors.identity)
        shape_b, appearance_b = self.identity_coefficients(factors.mix_partner)
        device = self.device
        tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array)).to(device)
        phi = tensor(factors.mix_phi)  # (B,)
        fields = {
            "labels": tensor(labels), "label_weights": tensor(weights),
            "identity": tensor(factors.identity), "sample_index": tensor(factors.sample_index),
            "mix_partner": tensor(factors.mix_partner), "mix_phi": phi,
            "identity_shape": mix_coefficients(tensor(shape_a), tensor(shape_b), phi),  # (B, Ks)
            "appearance": mix_coefficients(tensor(appearance_a), tensor(appearance_b), phi),  # (B, Ka)
            "expression": tensor(factors.expression), "light": tensor(factors.light),
            "pose": tensor(factors.pose), "camera": tensor(factors.camera),
            "landmark_jitter": tensor(factors.landmark_jitter),
            "background": tensor(factors.background), "quality": tensor(factors.quality),
        }
        images, landmarks = self._draw(fields)
        fields["landmarks5"] = landmarks
        return images, fields

    def _draw(self, fields: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_draw_chunk` of the batch; on CPUs in chunks of :data:`CPU_DRAW_CHUNK` images over the threads."""
        if self._threads is None:
            return self._draw_chunk(fields)
        batch = fields["identity"].shape[0]
        parts = [{name: value[start:start + CPU_DRAW_CHUNK] for name, value in fields.items()}
                 for start in range(0, batch, CPU_DRAW_CHUNK)] or [fields]
        drawn = list(self._threads.map(self._draw_chunk, parts))
        if len(drawn) == 1:
            return drawn[0]
        return torch.cat([images for images, _ in drawn]), torch.cat([landmarks for _, landmarks in drawn])

    def _draw_chunk(self, fields: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes, albedo, background, render, degrade, quantise: (B, H, W, 3) uint8 and (B, 5, 2) landmarks."""
        vertices = self.model.shape(fields["identity_shape"], fields["expression"])  # (B, V, 3)
        albedo = self.appearance.albedo(fields["appearance"])
        diffuse, specular = albedo.diffuse, albedo.specular
        if self.hair is not None:  # (B, V + U, 3), (B, V + U, 3), (B, V + U)
            vertices, diffuse, specular = self.hair.apply(vertices, albedo, fields["appearance"])
        background = render_background(fields["background"], self.height, self.width, self.device)
        noise = self.config.noise
        jitter = fields["landmark_jitter"] if noise.landmark_jitter > 0 and not noise.frozen else None
        output = self.renderer.render(vertices, diffuse, specular, fields["light"], fields["pose"],
                                      fields["camera"], landmark_jitter=jitter, background=background)
        images = degrade(output.image, fields["quality"])  # (B, 3, H, W) in [0, 1]
        quantised = (images * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
        return quantised.permute(0, 2, 3, 1).contiguous(), output.landmarks5
