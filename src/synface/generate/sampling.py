"""Generation config and deterministic sampling of every factor of variation of a synthetic face.

A sample is a pure function of ``(seed, identity, sample index)``. Identity ``i``
draws its shape and appearance coefficients from ``default_rng([seed, 0, i, k])``;
sample ``j`` of identity ``i`` draws each factor ``k`` (:data:`SAMPLE_STREAMS`) from its
own stream ``default_rng([seed, 1, i, j, k])``. Because every factor has its own
stream, freezing one factor (a fixed canonical value, as in the paper's "Non /
Expression / Pose / Illumination" datasets, Sec. 4.5) or changing its ranges leaves
all other factors of every sample unchanged.

Sampling runs on the CPU with numpy; everything after it (mixing, shapes, albedo,
rendering) runs batched on the device in :mod:`synface.generate.generator`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri

from synface.config import ConfigBase, require
from synface.errors import ConfigError, DataError
from synface.generate.appearance_sampling import PARAM_NAMES as APPEARANCE_PARAMS
from synface.generate.appearance_sampling import AppearanceConfig, sample_appearance
from synface.generate.background import PARAM_NAMES as BACKGROUND_PARAMS
from synface.generate.background import BackgroundConfig, sample_background
from synface.generate.expression import ExpressionConfig, ExpressionPrior
from synface.generate.hair import HairConfig
from synface.generate.layout import LayoutConfig
from synface.generate.lighting import LightConfig, sample_light
from synface.generate.mixup import MixupConfig, draw_mixup
from synface.generate.quality import PARAM_NAMES as QUALITY_PARAMS
from synface.generate.quality import QualityConfig, sample_quality
from synface.generate.render import RenderConfig

IDENTITY_STREAMS: tuple[str, ...] = ("shape", "appearance")
SAMPLE_STREAMS: tuple[str, ...] = ("expression", "pose", "light", "camera", "background", "quality", "mixup")


@dataclass(frozen=True)
class AngleConfig(ConfigBase):
    """One head rotation angle: a truncated normal core plus occasional wide draws.

    Attributes:
        mean: centre of the distribution, degrees (also the frozen, canonical value).
        std: standard deviation of the core, degrees.
        limit: the core is truncated to ``mean +- limit``.
        wide_probability: chance of a wide draw instead, uniform in ``mean +- wide_limit``.
        wide_limit: half-width of the wide draws, degrees.
    """

    mean: float = 0.0
    std: float = 10.0
    limit: float = 30.0
    wide_probability: float = 0.0
    wide_limit: float = 0.0

    def validate(self) -> None:
        require(-90.0 <= self.mean <= 90.0, "mean", f"{self.mean} is outside [-90, 90] degrees")
        require(self.std >= 0.0, "std", f"{self.std} must not be negative")
        require(self.limit > 0.0 or self.std == 0.0, "limit", f"{self.limit} must be positive when std > 0")
        require(0.0 <= self.wide_probability <= 1.0, "wide_probability", f"{self.wide_probability} is outside [0, 1]")
        require(0.0 <= self.wide_limit <= 90.0, "wide_limit", f"{self.wide_limit} is outside [0, 90] degrees")


@dataclass(frozen=True)
class PoseConfig(ConfigBase):
    """Head pose (yaw, pitch, roll, degrees). The defaults roughly follow LFW's spread:
    mostly near-frontal, yaw within about +-30 degrees, rarer turns up to 60."""

    frozen: bool = False
    yaw: AngleConfig = field(default_factory=lambda: AngleConfig(std=15.0, limit=30.0, wide_probability=0.1,
                                                                 wide_limit=60.0))
    pitch: AngleConfig = field(default_factory=lambda: AngleConfig(std=8.0, limit=20.0, wide_probability=0.05,
                                                                   wide_limit=30.0))
    roll: AngleConfig = field(default_factory=lambda: AngleConfig(std=5.0, limit=15.0))


@dataclass(frozen=True)
class IdentityConfig(ConfigBase):
    """Who a synthetic person is: face shape coefficients and appearance.

    Attributes:
        shape_std: standard deviation of the identity shape coefficients (1 = the model's prior).
        truncation: coefficients are truncated to ``+- truncation`` standard deviations
            (0 disables truncation); trims implausible extreme faces.
        appearance: skin, eye, brow and lip appearance model settings.
    """

    shape_std: float = 1.0
    truncation: float = 2.5
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)

    def validate(self) -> None:
        require(self.shape_std >= 0.0, "shape_std", f"{self.shape_std} must not be negative")
        require(self.truncation >= 0.0, "truncation", f"{self.truncation} must not be negative (0 disables it)")


@dataclass(frozen=True)
class NoiseConfig(ConfigBase):
    """Nuisance factors: camera distance, detector noise, background and photo quality.

    Attributes:
        frozen: canonical camera (middle of the distance range), exact landmarks,
            a flat background and pristine images.
        camera_distance: (min, max) camera-to-head distance in cm, uniform.
        landmark_jitter: std of the simulated five-point detector error, crop pixels.
        background: procedural backgrounds.
        quality: camera degradations (blur, noise, JPEG, colour).
    """

    frozen: bool = False
    camera_distance: tuple[float, float] = (60.0, 250.0)
    landmark_jitter: float = 1.0
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)

    def validate(self) -> None:
        low, high = self.camera_distance
        require(20.0 <= low <= high, "camera_distance", f"{[low, high]} must satisfy 20 <= min <= max (cm)")
        require(self.landmark_jitter >= 0.0, "landmark_jitter", f"{self.landmark_jitter} must not be negative")


@dataclass(frozen=True)
class GenerateConfig(ConfigBase):
    """Everything that defines a generated dataset (saved with it; resume compares it).

    Attributes:
        seed: dataset seed (a non-negative integer); with the rest of the config it fixes every image.
        face_model: face model spec for :func:`synface.generate.registry.resolve_face_model`.
        layout: identities and samples per identity (``"10K_50"``, ``"2K_UB1"``, explicit groups).
        identity, expression, pose, light, noise: the factors of variation.
        hair: hair and beard volume (geometry; their colours belong to ``identity.appearance``).
        mixup: identity mixup (or the Syn-LFW-R attack sets).
        render: crop template and renderer settings.
        shard_size: images per shard file.
        batch_size: images rendered per call; part of the dataset's definition because
            results are byte-identical only for identical batches.
    """

    seed: int = 0
    face_model: str = "default"
    layout: LayoutConfig = field(default_factory=lambda: LayoutConfig(name="10K_50"))
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    expression: ExpressionConfig = field(default_factory=ExpressionConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    light: LightConfig = field(default_factory=LightConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    hair: HairConfig = field(default_factory=HairConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    shard_size: int = 1000
    batch_size: int = 50

    def validate(self) -> None:
        require(0 <= self.seed < 2**63, "seed", f"{self.seed} must be a non-negative integer below 2**63")
        require(bool(self.face_model.strip()), "face_model", "must not be empty (use 'default')")
        require(self.shard_size >= 1, "shard_size", f"{self.shard_size} must be at least 1")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} must be at least 1")
        if self.mixup.enabled:
            identities = self.layout.resolve().num_identities
            require(identities >= 2, "mixup.mode",
                    f"{self.mixup.mode!r} needs at least 2 identities to draw partners from, the layout has {identities}")

    def content_hash(self) -> str:
        """SHA-256 (16 hex digits) of the resolved config: two runs agree on it iff they make the same dataset."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def bundled_configs() -> list[str]:
    """Names of the example generation configs shipped with synface (``tiny``, ``syn_10k_50``, ...)."""
    folder = resources.files("synface") / "configs" / "generate"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")) if folder.is_dir() else []


def load_generate_config(source: str | Path, overrides: Sequence[str] = ()) -> GenerateConfig:
    """Load a generation config from a YAML file or a bundled config name, then apply overrides.

    Raises:
        ConfigError: no such file or bundled name, invalid YAML, or a bad field.
    """
    path = Path(source)
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1:
        bundled = resources.files("synface") / "configs" / "generate" / f"{source}.yaml"
        if not bundled.is_file():
            raise ConfigError(f"{source}: no such config file or bundled config; bundled: {', '.join(bundled_configs())}")
        with resources.as_file(bundled) as bundled_path:
            return GenerateConfig.from_yaml(bundled_path, overrides)
    return GenerateConfig.from_yaml(path, overrides)


def identity_rng(seed: int, identity: int, stream: str) -> np.random.Generator:
    """The generator of one identity's ``stream`` (:data:`IDENTITY_STREAMS`)."""
    return np.random.default_rng([seed, 0, identity, IDENTITY_STREAMS.index(stream)])


def sample_rng(seed: int, identity: int, sample: int, stream: str) -> np.random.Generator:
    """The generator of factor ``stream`` (:data:`SAMPLE_STREAMS`) of sample ``sample`` of ``identity``."""
    return np.random.default_rng([seed, 1, identity, sample, SAMPLE_STREAMS.index(stream)])


def truncated_normal(rng: np.random.Generator, size: int, truncation: float) -> np.ndarray:
    """Standard normal draws limited to ``+- truncation`` (0: no limit), by inverse CDF.

    Always consumes exactly ``size`` uniforms, so the stream position never depends
    on the values drawn.
    """
    uniform = rng.random(size)
    if truncation <= 0:
        return ndtri(np.clip(uniform, 1e-12, 1 - 1e-12))
    low = ndtr(-truncation)
    return ndtri(low + uniform * (1.0 - 2.0 * low))


def sample_angle(rng: np.random.Generator, config: AngleConfig) -> float:
    """One angle in degrees; three uniforms are drawn whatever the branch."""
    choose, core, wide = rng.random(3)
    if choose < config.wide_probability:
        return config.mean + (2.0 * wide - 1.0) * config.wide_limit
    if config.std == 0.0:
        return config.mean
    bound = ndtr(config.limit / config.std)
    return config.mean + config.std * float(ndtri((1.0 - bound) + core * (2.0 * bound - 1.0)))


def sample_pose(rng: np.random.Generator, config: PoseConfig) -> np.ndarray:
    """(3,) float32 yaw, pitch, roll in degrees; the means when frozen."""
    angles = (config.yaw, config.pitch, config.roll)
    if config.frozen:
        return np.asarray([angle.mean for angle in angles], dtype=np.float32)
    return np.asarray([sample_angle(rng, angle) for angle in angles], dtype=np.float32)


def sample_camera(rng: np.random.Generator, config: NoiseConfig) -> tuple[float, np.ndarray]:
    """Camera distance (cm) and (5, 2) float32 landmark jitter (crop pixels)."""
    low, high = config.camera_distance
    if config.frozen:
        return 0.5 * (low + high), np.zeros((5, 2), dtype=np.float32)
    distance = float(rng.uniform(low, high))
    jitter = rng.normal(0.0, 1.0, size=(5, 2)) * config.landmark_jitter
    return distance, jitter.astype(np.float32)


@dataclass
class SampleFactors:
    """Per-sample factors of a batch, on the CPU (everything but the identity coefficients).

    Attributes:
        identity, sample_index: (n,) int64 which sample each row is.
        mix_partner: (n,) int64 partner identity (the identity itself without mixup).
        mix_phi: (n,) float32 weight of the primary identity's coefficients.
        expression: (n, Ke) float32 blendshape weights.
        pose: (n, 3) float32 yaw, pitch, roll, degrees.
        light: (n, 27) float32 SH light.
        camera: (n,) float32 camera distance, cm.
        landmark_jitter: (n, 5, 2) float32 detector noise, crop pixels.
        background: (n, Kb) float32 background scene parameters.
        quality: (n, Kq) float32 degradation parameters.
    """

    identity: np.ndarray
    sample_index: np.ndarray
    mix_partner: np.ndarray
    mix_phi: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    light: np.ndarray
    camera: np.ndarray
    landmark_jitter: np.ndarray
    background: np.ndarray
    quality: np.ndarray

    @classmethod
    def concatenate(cls, parts: Sequence[SampleFactors]) -> SampleFactors:
        """Join batches row-wise, in order."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})


class FactorSampler:
    """Draws identity coefficients and per-sample factors for one :class:`GenerateConfig`.

    Args:
        config: the generation config.
        expression_names: blendshape names of the face model (the expression prior is per name).
        num_shape: identity shape coefficients of the face model.
        num_identities: identities mixup partners are drawn from (default: the layout's).
    """

    def __init__(self, config: GenerateConfig, expression_names: Sequence[str], num_shape: int,
                 num_identities: int | None = None):
        self.config = config
        self.num_shape = num_shape
        self.expression_prior = ExpressionPrior(tuple(expression_names), config.expression)
        self.num_identities = config.layout.resolve().num_identities if num_identities is None else num_identities
        noise = config.noise
        self.background_config = noise.background.replace(frozen=True) if noise.frozen else noise.background
        self.quality_config = noise.quality.replace(frozen=True) if noise.frozen else noise.quality
        # Row shapes of the per-sample fields, so that empty batches stack too.
        self._shapes = {
            "mix_partner": (), "mix_phi": (), "expression": (len(self.expression_prior.names),), "pose": (3,),
            "light": (27,), "camera": (), "landmark_jitter": (5, 2),
            "background": (len(BACKGROUND_PARAMS),), "quality": (len(QUALITY_PARAMS),),
        }

    def identities(self, identity_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients of whole identities.

        Args:
            identity_ids: (n,) identity numbers.

        Returns:
            (shape (n, Ks) float32, appearance (n, Ka) float32).
        """
        seed, identity = self.config.seed, self.config.identity
        shapes, appearances = [], []
        for i in np.asarray(identity_ids, dtype=np.int64).reshape(-1).tolist():
            normal = truncated_normal(identity_rng(seed, i, "shape"), self.num_shape, identity.truncation)
            shapes.append(identity.shape_std * normal)
            appearances.append(sample_appearance(identity_rng(seed, i, "appearance"), identity.appearance))
        if not shapes:
            return np.zeros((0, self.num_shape), np.float32), np.zeros((0, len(APPEARANCE_PARAMS)), np.float32)
        return np.asarray(shapes, dtype=np.float32), np.asarray(appearances, dtype=np.float32)

    def sample_one(self, identity: int, sample: int) -> dict[str, object]:
        """Every per-sample factor of one sample, each from its own stream."""
        config, seed = self.config, self.config.seed
        distance, jitter = sample_camera(sample_rng(seed, identity, sample, "camera"), config.noise)
        partner, phi = draw_mixup(config.mixup, sample_rng(seed, identity, sample, "mixup"),
                                  identity, self.num_identities)
        return {
            "mix_partner": partner, "mix_phi": phi,
            "expression": self.expression_prior.sample(sample_rng(seed, identity, sample, "expression")),
            "pose": sample_pose(sample_rng(seed, identity, sample, "pose"), config.pose),
            "light": sample_light(sample_rng(seed, identity, sample, "light"), config.light),
            "camera": distance, "landmark_jitter": jitter,
            "background": sample_background(sample_rng(seed, identity, sample, "background"), self.background_config),
            "quality": sample_quality(sample_rng(seed, identity, sample, "quality"), self.quality_config),
        }

    def samples(self, identity_ids: np.ndarray, sample_ids: np.ndarray) -> SampleFactors:
        """Every per-sample factor of a batch (identity coefficients excluded).

        Args:
            identity_ids: (n,) primary identity of each sample.
            sample_ids: (n,) sample index of each within its identity.
        """
        identity_ids = np.asarray(identity_ids, dtype=np.int64).reshape(-1)
        sample_ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
        if identity_ids.shape != sample_ids.shape:
            raise DataError(f"samples: {len(identity_ids)} identities but {len(sample_ids)} sample indices")
        rows = [self.sample_one(i, j) for i, j in zip(identity_ids.tolist(), sample_ids.tolist())]
        columns = {}
        for key, shape in self._shapes.items():
            dtype = np.int64 if key == "mix_partner" else np.float32
            columns[key] = np.asarray([row[key] for row in rows], dtype=dtype).reshape(len(rows), *shape)
        return SampleFactors(identity=identity_ids, sample_index=sample_ids, **columns)
