"""Hair volume: a shell over the scalp that stands off the head by a per-identity thickness, and raised beards.

Painted hair alone reads as a cap: the silhouette of the head stays that of the
skull. :class:`HairShell` adds a second surface once per face model: a copy of every
vertex where scalp hair can grow (the appearance model's candidate vertices) and of
the triangles between them. Per identity, each copy is pushed out along a fixed
direction (the smoothed rest normal, leaning away from the head's centre) by the
local hair thickness: a softened version of the painted coverage (so the volume grows
over a few centimetres inside the hairline instead of stepping up at it) times a
thickness profile (full on the crown, thinner at the temples and the nape) and the
identity's ``hair_volume``; ``hair_length`` adds hair hanging straight down from the
widest part of the head past the ears and the nape; ``hair_curl`` roughens the
surface with a fixed clump field. Beards and moustaches are thinner: the skin
vertices under them are raised by their thickness instead (no extra triangles).

Where there is no hair the copy sinks ``sink`` centimetres under the skin, where the
depth test hides it. The topology never changes, so a batch renders with one triangle
list and identity mixup (which blends the parameters) blends hair volume smoothly.
The shell shows the hair's painted colour with fixed strand streaks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from synface.config import ConfigBase, require
from synface.generate.appearance import Albedo, AppearanceModel
from synface.generate.appearance_fields import smooth_fields, strand_texture
from synface.generate.appearance_geometry import mesh_normals
from synface.generate.appearance_paint import beard_cover, scalp_cover
from synface.generate.appearance_sampling import INDEX, PARAM_NAMES
from synface.generate.facemodel import FaceModel

logger = logging.getLogger(__name__)

_SEED = 20210917  # fixed: the shell's clump and strand patterns are part of the model
_SOFT_HAIRLINE = 0.18  # inter-ocular distances over which the hair volume ramps up from the hairline
_SOFT_BEARD = 0.04
_FUZZ = 0.06  # cm of per-vertex roughness of the hair's surface
_EMERGE = 0.3  # cm the shell stands off the skin before it shows the hair's own colour in full


@dataclass(frozen=True)
class HairConfig(ConfigBase):
    """Hair and beard volume.

    Attributes:
        enabled: add the hair shell (off: hair and beards are paint only, as on a mannequin).
        volume: crown thickness in cm at ``hair_volume`` 0 (cropped) and 1 (full, bushy).
        length: how far hair at ``hair_length`` 1 stands off the neck and the sides of the
            face below the ears, cm.
        beard: thickness of a full beard or moustache at ``beard`` 0 and 1, cm.
        clumping: relative thickness variation of curly hair (``hair_curl`` 1).
        sink: how deep the shell hides under the skin where nothing grows, cm.
    """

    enabled: bool = True
    volume: tuple[float, float] = (0.25, 2.2)
    length: float = 1.2
    beard: tuple[float, float] = (0.12, 0.7)
    clumping: float = 0.35
    sink: float = 0.25

    def validate(self) -> None:
        for name in ("volume", "beard"):
            low, high = getattr(self, name)
            require(0.0 <= low <= high <= 10.0, name, f"{(low, high)} must satisfy 0 <= min <= max <= 10 cm")
        require(0.0 <= self.length <= 20.0, "length", f"{self.length} is outside [0, 20] cm")
        require(0.0 <= self.clumping <= 1.0, "clumping", f"{self.clumping} is outside [0, 1]")
        require(0.0 < self.sink <= 2.0, "sink", f"{self.sink} is outside (0, 2] cm")


def _smoothstep(x: np.ndarray, low: float, high: float) -> np.ndarray:
    t = np.clip((x - low) / max(high - low, 1e-9), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def neighbour_table(triangles: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mesh neighbours as a padded table.

    Args:
        triangles: (F, 3) vertex indices below ``count``.
        count: number of vertices.

    Returns:
        ``(table, degree)``: (count, K) int64 neighbour indices padded with ``count``
        (an extra zero entry), and (count,) int64 number of neighbours.
    """
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = np.unique(np.concatenate([edges, edges[:, ::-1]]), axis=0)  # sorted by first vertex
    degree = np.bincount(edges[:, 0], minlength=count)
    width = max(1, int(degree.max()) if len(degree) else 1)
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    slot = np.arange(len(edges)) - start[edges[:, 0]]
    table = np.full((count, width), count, dtype=np.int64)
    table[edges[:, 0], slot] = edges[:, 1]
    return table, degree.astype(np.int64)


def _smooth_normals(vertices: np.ndarray, triangles: np.ndarray, steps: int = 4) -> np.ndarray:
    """(V, 3) unit vertex normals averaged over their neighbours: small creases must not fold the shell."""
    normals = mesh_normals(vertices, triangles)
    table, _ = neighbour_table(triangles, len(vertices))
    for _ in range(steps):
        padded = np.concatenate([normals, np.zeros((1, 3))])
        normals = normals + padded[table].sum(1)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return normals


class HairShell:
    """The hair shell of one face model (see the module docstring).

    Args:
        model: the face model (any device; its mean shape sets the shell's directions).
        appearance: the appearance model painting ``model``; its scalp-hair candidate
            vertices become the shell, its beard candidates are raised.
        config: thickness settings.

    Attributes:
        model: ``model`` extended by the shell's vertices and triangles: the identity and
            expression bases of each shell vertex are those of the vertex it copies, its
            rest position lies ``sink`` under the skin, its region is the copied vertex's.
        source: (U,) int64 vertex of ``model`` each shell vertex copies, in the order of
            :attr:`~synface.generate.appearance.Albedo.scalp_cover`.
    """

    def __init__(self, model: FaceModel, appearance: AppearanceModel, config: HairConfig = HairConfig()):
        self.config = config
        self.appearance = appearance
        self.base_vertices = model.num_vertices
        source = appearance.scalp_vertices.numpy()  # (U,)
        beard = appearance.beard_vertices.numpy()  # (Nd,)
        slot = np.full(model.num_vertices, -1, dtype=np.int64)
        slot[source] = np.arange(len(source))
        triangles = model.triangles.cpu().numpy()
        local = slot[triangles[(slot[triangles] >= 0).all(1)]]  # (Fs, 3) shell-local
        mean = model.vertices.detach().cpu().double().numpy()
        normals = _smooth_normals(mean, triangles)
        shape = self._profiles(appearance, source)
        # Hanging hair is pushed out horizontally, the rest along the normal leaning outwards.
        direction = self._directions(mean, normals, source, appearance)
        direction = direction + shape["hanging"][:, None] * (shape["level"] - direction)
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        rng = np.random.default_rng(_SEED)
        clumps = np.clip(smooth_fields(appearance.geometry.points(source), 1, 0.15, rng)[0], -2.0, 2.0)
        fuzz = np.clip(rng.normal(0.0, 1.0, len(source)), -2.0, 2.0)

        as_tensor = lambda array, dtype=torch.float32: torch.as_tensor(np.ascontiguousarray(array), dtype=dtype)
        self.source = as_tensor(source, torch.int64)
        self._constants = {
            "source": self.source, "direction": as_tensor(direction), "profile": as_tensor(shape["profile"]),
            "hanging": as_tensor(shape["hanging"]), "fill": as_tensor(shape["fill"] * shape["hanging"]),
            "clumps": as_tensor(clumps), "fuzz": as_tensor(fuzz), "streaks": as_tensor(_streaks(appearance, source, rng)),
            "beard": as_tensor(beard, torch.int64), "beard_direction": as_tensor(normals[beard]),
        }
        self._on_device: dict[str, dict[str, torch.Tensor]] = {"cpu": self._constants}
        self.model = self._extend(model, source, local, direction)
        logger.debug("hair shell for %s: %d vertices, %d triangles", model.name, len(source), len(local))

    @staticmethod
    def _directions(mean: np.ndarray, normals: np.ndarray, source: np.ndarray,
                    appearance: AppearanceModel) -> np.ndarray:
        """(U, 3) unit push-out directions: smoothed normals leaning away from the head's centre."""
        ears = appearance.geometry.mask("ears")
        centre = mean[ears].mean(0) if ears.any() else mean.mean(0)
        radial = mean[source] - centre
        radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-12)
        direction = normals[source] + 0.5 * radial
        return direction / np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)

    @staticmethod
    def _profiles(appearance: AppearanceModel, source: np.ndarray) -> dict[str, np.ndarray]:
        """Per-model shape of the hair, per shell vertex unless noted.

        ``profile``: relative scalp thickness; ``hanging``: weight of hair falling from the
        sides and back; ``fill``: how far (cm) it must stand off to fall straight down
        from the widest part of the head; ``level``: (U, 3) horizontal outward direction.
        """
        g, k = appearance.geometry, appearance.geometry.anchors
        v, theta = g.v[source].astype(np.float64), g.theta[source].astype(np.float64)
        # Thickest on the crown, thinner towards the ears and the nape.
        height = 0.3 + 0.7 * _smoothstep(v, k["ear_bottom"], k["head_top"] - 0.35)
        # Hair combed back (or a fringe) lies flat on the forehead and rises towards the crown.
        front = 1.0 - 0.75 * (1.0 - _smoothstep(theta, 25.0, 60.0)) * (1.0 - _smoothstep(v, k["brow_top"] + 0.1,
                                                                                              k["brow_top"] + 1.1))
        hanging = (1.0 - _smoothstep(v, k["ear_bottom"] - 0.1, k["ear_top"] + 0.3)) * _smoothstep(theta, 50.0, 70.0)
        # The ends curl in towards the neck at the bottom of the candidate area, as in a bob.
        ends = _smoothstep(v, k["ear_bottom"] - 0.8, k["ear_bottom"] - 0.45)
        # Long hair falls from the widest part of the head (the skull above the ears) straight down.
        rho = g.rho.astype(np.float64)
        skull = ~g.mask("ears") & (g.v > k["ear_top"]) & (g.v < k["ear_top"] + 0.6)
        bins = np.clip((theta / 5.0).astype(np.int64), 0, 36)
        widest = np.zeros(37)
        np.maximum.at(widest, np.clip((g.theta[skull] / 5.0).astype(np.int64), 0, 36), rho[skull])
        fill = np.clip(widest[bins] - rho[source], 0.0, None) * g.iod
        level = np.stack([g.u[source], np.zeros(len(source)), g.w[source] - k["axis_w"]], 1).astype(np.float64)
        level /= np.maximum(np.linalg.norm(level, axis=1, keepdims=True), 1e-12)
        return {"profile": height * front, "hanging": hanging * ends, "fill": fill, "level": level}

    def _extend(self, model: FaceModel, source: np.ndarray, local: np.ndarray, direction: np.ndarray) -> FaceModel:
        """``model`` plus the shell at rest, hidden ``sink`` under the skin."""
        index = torch.as_tensor(source, dtype=torch.int64, device=model.vertices.device)
        push = torch.as_tensor(direction, dtype=model.vertices.dtype, device=model.vertices.device)
        rest = model.vertices.index_select(0, index) - self.config.sink * push
        shell_triangles = torch.as_tensor(local + model.num_vertices, dtype=model.triangles.dtype,
                                          device=model.triangles.device)
        extended = FaceModel(
            name=f"{model.name}+hair",
            vertices=torch.cat([model.vertices, rest]),
            triangles=torch.cat([model.triangles, shell_triangles]),
            identity_basis=torch.cat([model.identity_basis, model.identity_basis.index_select(1, index)], 1),
            expression_basis=torch.cat([model.expression_basis, model.expression_basis.index_select(1, index)], 1),
            expression_names=model.expression_names,
            regions=torch.cat([model.regions, model.regions.index_select(0, index)]),
            landmarks5_index=model.landmarks5_index, landmarks5_weight=model.landmarks5_weight,
            landmarks68_index=model.landmarks68_index, landmarks68_weight=model.landmarks68_weight,
            pivot=model.pivot,
            uvs=None if model.uvs is None else torch.cat([model.uvs, model.uvs.index_select(0, index)]),
            license=model.license, source=model.source,
        )
        extended.check()
        return extended

    @property
    def num_vertices(self) -> int:
        """U, the shell's vertex count."""
        return int(self.source.shape[0])

    def constants(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        """The per-model shell tensors on ``device`` (copied there once, then cached)."""
        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = {name: value.to(device) for name, value in self._constants.items()}
        return self._on_device[key]

    def offsets(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-identity hair thickness.

        Args:
            params: (B, Ka) appearance parameters.

        Returns:
            ``(shell, beard)``: (B, U) push-out of every shell vertex along its direction,
            cm, negative where nothing grows (the shell hides under the skin there); and
            (B, Nd) how far each beard candidate vertex is raised, cm (>= 0).
        """
        c = self.constants(params.device)
        config = self.config
        tables = self.appearance.tables(params.device)
        p = {name: params[:, i] for i, name in enumerate(PARAM_NAMES)}
        col = lambda name: params[:, INDEX[name], None].clamp(0.0, 1.0)  # (B, 1)
        # Softened covers: volume builds up over a few centimetres inside the hairline, and the
        # shell rises out of the skin gradually instead of stepping out at a jagged painted edge.
        scalp = scalp_cover(tables, params, p, soft=_SOFT_HAIRLINE)[0]  # (B, U)
        low, high = config.volume
        crown = (low + (high - low) * col("hair_volume")) * (0.55 + 0.45 * col("hair_density"))
        curl = 1.0 + config.clumping * col("hair_curl") * c["clumps"]
        # Hanging hair grows linearly with the length: mixing two people moves it steadily.
        long_hair = ((col("hair_length") - 0.3) / 0.7).clamp(0.0, 1.0)
        hanging = scalp * long_hair * (config.length * c["hanging"] + c["fill"])
        # Stray hairs and small locks roughen the outline a little, whatever the style.
        fuzz = _FUZZ * c["fuzz"] * scalp * scalp  # not at the hairline, where it would fray the skin's edge
        shell = scalp * scalp * crown * c["profile"] * curl + hanging + fuzz - config.sink * (1.0 - scalp)
        beard = beard_cover(tables, params, p, soft=_SOFT_BEARD)  # (B, Nd)
        low, high = config.beard
        lift = beard * beard * (low + (high - low) * torch.maximum(col("beard"), col("moustache")))
        return shell, lift

    def apply(self, vertices: torch.Tensor, albedo: Albedo,
              params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raise the beards and add the hair shells of a batch of faces.

        Args:
            vertices: (B, V, 3) shaped faces of the base model (identity and expression applied).
            albedo: their painted albedo (:meth:`AppearanceModel.albedo` of ``params``).
            params: (B, Ka) appearance parameters.

        Returns:
            ``(vertices, diffuse, specular)`` of :attr:`model`: (B, V + U, 3), (B, V + U, 3)
            and (B, V + U), ready for a renderer of :attr:`model`.
        """
        c = self.constants(vertices.device)
        offset, lift = self.offsets(params.to(vertices.device, torch.float32))
        if bool((lift > 0).any()):
            raised = vertices.index_select(1, c["beard"]) + lift[..., None] * c["beard_direction"]
            vertices = vertices.index_copy(1, c["beard"], raised)  # distinct indices: deterministic
        shell = vertices.index_select(1, c["source"]) + offset[..., None] * c["direction"]  # (B, U, 3)
        cover = albedo.scalp_cover  # (B, U)
        # The shell shows the hair itself with streaks along its flow. Where it rises out of
        # the skin it takes the painted colour beneath (skin and sparse hair), so that its
        # edge, which follows the mesh's triangles, never shows as a hard jagged line.
        painted = albedo.diffuse.index_select(1, c["source"])
        shade = (0.75 + 0.5 * c["streaks"])[..., None]
        emerged = (offset * (1.0 / _EMERGE)).clamp(0.0, 1.0)  # 0 where the shell leaves the skin
        weight = (emerged * emerged * (3.0 - 2.0 * emerged) * cover.sqrt())[..., None]
        diffuse = torch.lerp(painted, (albedo.scalp_colour * shade).clamp(0.0, 1.0), weight)
        # Highlights break up along the strands instead of a smooth plastic sheen.
        sheen = (0.03 + 0.15 * c["streaks"] * c["streaks"]) * cover
        specular = torch.lerp(albedo.specular.index_select(1, c["source"]), sheen, cover)
        return (torch.cat([vertices, shell], 1), torch.cat([albedo.diffuse, diffuse], 1),
                torch.cat([albedo.specular, specular], 1))


def _streaks(appearance: AppearanceModel, source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(U,) values in [0, 1] that vary quickly across the hair's flow and slowly along it.

    Hair runs from the crown down the head: streaks change with the angle around the
    head's vertical axis and hardly with height.
    """
    g = appearance.geometry
    angle = np.arctan2(g.u[source], g.w[source] - g.anchors["axis_w"]).astype(np.float64)
    flow = np.stack([np.cos(angle), np.sin(angle), 0.15 * g.v[source]], 1)
    return strand_texture(flow, 0.03, rng, 0.7)
