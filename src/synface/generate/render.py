"""Render posed, lit face meshes straight into aligned crops.

:class:`FaceRenderer` poses a batch of face meshes, projects them with a pinhole
camera, fits the similarity that puts the five model landmarks onto the crop
template (:func:`synface.alignment.umeyama`, optionally after adding simulated
detector noise), and rasterises the transformed mesh directly at crop resolution
times ``supersample``: no image warp, so crops are as sharp as the renderer allows.
Shading is per vertex (SH diffuse + Blinn-Phong specular, linear RGB), interpolated
perspective-correctly, box-filtered down, composited over the background in linear
light and encoded as sRGB. The same tensor code runs on CPU and CUDA.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from synface.alignment import alignment_matrix, get_template, umeyama
from synface.config import ConfigBase, require
from synface.errors import DataError
from synface.generate.camera import (
    project_components,
    rotate_components,
    rotation_matrix,
)
from synface.generate.facemodel import FaceModel
from synface.generate.lighting import LightConfig, sample_light
from synface.generate.rasterize import (
    Fragments,
    TriangleTable,
    interpolate_planes,
    rasterize_planes,
)
from synface.generate.shading import (
    shade_vertices,
    srgb_decode,
    srgb_encode,
    vertex_incidence,
    vertex_normals,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderConfig(ConfigBase):
    """How faces are rendered.

    Attributes:
        template: crop geometry from :mod:`synface.alignment` (``synface`` 112x96, ``arcface`` 112x112).
        supersample: anti-aliasing factor: render ``s*H x s*W`` and box-filter down.
        specular: add the Blinn-Phong highlight.
        shininess: Blinn-Phong exponent (higher is a tighter highlight).
        cull_backfaces: skip triangles facing away from the camera (faster; the
            face models are closed where it matters).
        focal_length_px: focal length of the virtual photograph before alignment. It
            only sets the units of ``RenderOutput.matrix``: the crop is fitted to the
            template afterwards, so perspective strength comes from the camera distance.
        near_cm: triangles closer than this to the camera are dropped.
        mouth_occlusion: light reaching the mouth interior (gums, tongue), as a fraction:
            it is a cavity, lit only through the opening.
        teeth_occlusion: light reaching the teeth, as a fraction.
    """

    template: Literal["synface", "arcface"] = "synface"
    supersample: int = 2
    specular: bool = True
    shininess: float = 24.0
    cull_backfaces: bool = True
    focal_length_px: float = 1000.0
    near_cm: float = 1.0
    mouth_occlusion: float = 0.35
    teeth_occlusion: float = 0.7

    def validate(self) -> None:
        require(1 <= self.supersample <= 8, "supersample", f"{self.supersample} is outside [1, 8]")
        require(self.shininess > 0, "shininess", f"{self.shininess} must be positive")
        require(self.focal_length_px > 0, "focal_length_px", f"{self.focal_length_px} must be positive")
        require(self.near_cm > 0, "near_cm", f"{self.near_cm} must be positive")
        for name in ("mouth_occlusion", "teeth_occlusion"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, name, f"{value} is outside [0, 1]")


@dataclass
class RenderOutput:
    """One rendered batch.

    Attributes:
        image: (B, 3, H, W) sRGB in [0, 1], face composited over the background.
        mask: (B, 1, H, W) face coverage in [0, 1] (anti-aliased).
        landmarks5: (B, 5, 2) where the five model landmarks land in the crop, pixels.
        matrix: (B, 2, 3) image-plane -> crop similarity actually used.
    """

    image: torch.Tensor
    mask: torch.Tensor
    landmarks5: torch.Tensor
    matrix: torch.Tensor


def _affine_points(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) affine maps of (B, N, 2) points, elementwise (batch-size independent)."""
    m = matrix[:, None]  # (B, 1, 2, 3)
    x, y = points[..., 0], points[..., 1]
    return torch.stack([m[..., i, 0] * x + m[..., i, 1] * y + m[..., i, 2] for i in range(2)], dim=-1)


class FaceRenderer:
    """Renders a :class:`FaceModel`'s meshes into aligned crops (see the module docstring).

    Per-model constants (triangles, vertex-triangle incidence, landmark weights,
    per-vertex occlusion) are prepared once here; :meth:`render` is fully batched.

    Args:
        model: the face model whose triangles, landmarks, regions and pivot are used.
        config: rendering options.
        device: where tensors live and work happens (default: the model's device).
    """

    def __init__(
        self, model: FaceModel, config: RenderConfig = RenderConfig(), device: torch.device | str | None = None
    ):
        self.config = config
        self.device = torch.device(device) if device is not None else model.vertices.device
        self.model = model.to(self.device)
        self.template = get_template(config.template)
        self.height, self.width = self.template.height, self.template.width
        self.triangles = self.model.triangles.to(torch.int64)
        self.table = TriangleTable.from_triangles(self.triangles, self.model.num_vertices)
        self.incidence = vertex_incidence(self.triangles, self.model.num_vertices)
        self.pivot = self.model.pivot.float()
        occlusion = torch.ones(self.model.num_vertices, device=self.device)
        occlusion[self.model.region_mask("mouth_interior")] = config.mouth_occlusion
        occlusion[self.model.region_mask("teeth")] = config.teeth_occlusion
        self.occlusion = occlusion[:, None]  # (V, 1)
        # Pixel tests per rasteriser step, images rendered at once and the fewest triangles
        # per box-size bucket (smaller ones merge: fewer kernel launches, more padding).
        # Large on GPUs; on CPUs small enough that the working set stays near the caches.
        # Results depend on none of them.
        cuda = self.device.type == "cuda"
        self.max_candidates = 1 << (24 if cuda else 18)
        self.chunk_images = 512 if cuda else 16
        self.min_group = 1 << 14 if cuda else 1 << 10

    def align(
        self, posed: torch.Tensor, camera_distance: torch.Tensor, landmark_jitter: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Project posed vertices and fit the crop similarity.

        Args:
            posed: (3, V, B) camera-frame vertices (coordinate planes, batch innermost).
            camera_distance: (B,) cm.
            landmark_jitter: (B, 5, 2) crop-pixel noise or None.

        Returns:
            ``(u, v, depth, matrix, landmarks)``: image-plane coordinates and depth (V, B),
            the image -> crop similarity (B, 2, 3) float64 and the true landmarks in the
            crop (B, 5, 2) float64.
        """
        f = self.config.focal_length_px
        u, v, depth = project_components(posed[0], posed[1], posed[2], camera_distance, f)
        index, weight = self.model.landmarks5_index, self.model.landmarks5_weight.double()  # (5, K)
        gathered = posed.index_select(1, index.reshape(-1)).double().reshape(3, *index.shape, -1)
        points = (gathered * weight[..., None]).sum(2)  # (3, 5, B)
        lu, lv, _ = project_components(points[0], points[1], points[2], camera_distance.double(), f)
        landmarks = torch.stack([lu, lv], dim=-1).transpose(0, 1)  # (B, 5, 2) image plane
        matrix = alignment_matrix(landmarks, self.template)  # (B, 2, 3) float64
        if landmark_jitter is not None:
            # Noise is in crop pixels: refit from the jittered crop-space landmarks, then compose.
            noisy = _affine_points(matrix, landmarks) + landmark_jitter.to(self.device, torch.float64)
            correction = umeyama(noisy, self.template.tensor(self.device).expand_as(noisy))
            composed = correction[:, :, 0:1] * matrix[:, 0:1] + correction[:, :, 1:2] * matrix[:, 1:2]
            composed[:, :, 2] += correction[:, :, 2]
            matrix = composed
        return u, v, depth, matrix, _affine_points(matrix, landmarks)

    def _check(self, inputs: dict[str, torch.Tensor | None]) -> None:
        """Raise :class:`DataError` naming the first input whose shape is wrong."""
        batch, count = inputs["vertices"].shape[0], self.model.num_vertices  # type: ignore[union-attr]
        expected = {
            "vertices": (batch, count, 3), "albedo": (batch, count, 3), "specular": (batch, count),
            "light": (batch, 27), "pose": (batch, 3), "camera_distance": (batch,),
            "landmark_jitter": (batch, 5, 2), "background": (batch, 3, self.height, self.width),
        }
        for name, shape in expected.items():
            tensor = inputs[name]
            if tensor is not None and tuple(tensor.shape) != shape:
                raise DataError(f"render: {name} has shape {tuple(tensor.shape)}, expected {shape}")

    def _shade_visible(
        self, posed: torch.Tensor, fragments: Fragments, albedo: torch.Tensor, specular: torch.Tensor | None,
        light: torch.Tensor, distance: torch.Tensor,
    ) -> torch.Tensor:
        """Linear RGB (3, V, B) of the vertices of visible triangles (zero elsewhere).

        Only vertices of triangles that won a pixel are shaded: about a third of a
        head, since the back, the mouth interior and the teeth are mostly hidden.
        """
        count, batch = posed.shape[1], posed.shape[2]
        used = torch.zeros(count, dtype=torch.bool, device=self.device)
        visible = used.index_fill_(0, fragments.vertex_planes.reshape(-1), True).nonzero().squeeze(1)  # (S,)
        normals = vertex_normals(posed, self.triangles, self.incidence, visible)  # (3, S, B)
        albedo_visible = albedo.to(self.device, torch.float32).index_select(1, visible).permute(2, 1, 0)
        specular_visible = None
        if specular is not None and self.config.specular:
            specular_visible = specular.to(self.device, torch.float32).index_select(1, visible).t()  # (S, B)
        shaded = shade_vertices(posed.index_select(1, visible), normals, albedo_visible, specular_visible,
                                light, distance, self.config.shininess)
        shaded = shaded * self.occlusion.index_select(0, visible)
        # Back to all vertices by a gather (hidden ones read an appended zero column).
        slot = torch.full((count,), len(visible), dtype=torch.int64, device=self.device)
        slot[visible] = torch.arange(len(visible), device=self.device)
        return torch.cat([shaded, shaded.new_zeros(3, 1, batch)], dim=1).index_select(1, slot)

    def render(
        self,
        vertices: torch.Tensor,
        albedo: torch.Tensor,
        specular: torch.Tensor | None,
        light: torch.Tensor,
        pose: torch.Tensor,
        camera_distance: torch.Tensor,
        landmark_jitter: torch.Tensor | None = None,
        background: torch.Tensor | None = None,
        cull_backfaces: bool | None = None,
    ) -> RenderOutput:
        """Render a batch of faces into aligned crops.

        Args:
            vertices: (B, V, 3) model-frame vertices (identity and expression applied), cm.
            albedo: (B, V, 3) linear RGB reflectance in [0, 1].
            specular: (B, V) specular strength in [0, 1], or None for matte.
            light: (B, 27) SH coefficients (:mod:`synface.generate.shading`).
            pose: (B, 3) yaw, pitch, roll in degrees about the model pivot
                (:mod:`synface.generate.camera`; positive yaw turns the face to image right).
            camera_distance: (B,) camera-to-pivot distance in cm.
            landmark_jitter: (B, 5, 2) crop-pixel noise added to the landmarks before the
                alignment fit (simulated detector error), or None.
            background: (B, 3, H, W) sRGB in [0, 1], or None for black.
            cull_backfaces: override ``config.cull_backfaces`` for this call.

        Returns:
            :class:`RenderOutput` at the template's crop size.

        Raises:
            DataError: an input has the wrong shape.
        """
        self._check({"vertices": vertices, "albedo": albedo, "specular": specular, "light": light, "pose": pose,
                     "camera_distance": camera_distance, "landmark_jitter": landmark_jitter,
                     "background": background})
        cull = self.config.cull_backfaces if cull_backfaces is None else cull_backfaces
        batch = vertices.shape[0]
        parts = []
        # Images are independent: chunks bound the memory and give the same bits as one call.
        for start in range(0, batch, self.chunk_images) or [0]:
            part = slice(start, start + self.chunk_images)
            specular_part, jitter_part, background_part = (
                None if tensor is None else tensor[part] for tensor in (specular, landmark_jitter, background))
            parts.append(self._render_chunk(vertices[part], albedo[part], specular_part, light[part], pose[part],
                                            camera_distance[part], jitter_part, background_part, cull))
        if len(parts) == 1:
            return parts[0]
        return RenderOutput(*(torch.cat([getattr(p, name) for p in parts])
                              for name in ("image", "mask", "landmarks5", "matrix")))

    def _render_chunk(
        self, vertices: torch.Tensor, albedo: torch.Tensor, specular: torch.Tensor | None, light: torch.Tensor,
        pose: torch.Tensor, camera_distance: torch.Tensor, landmark_jitter: torch.Tensor | None,
        background: torch.Tensor | None, cull: bool,
    ) -> RenderOutput:
        """:meth:`render` on one chunk of images (inputs already checked)."""
        to = {"device": self.device, "dtype": torch.float32}
        light, distance = light.to(**to), camera_distance.to(**to)
        # Batch-innermost planes (3, V, B): a vertex gather fetches one row for the whole batch.
        planes = vertices.to(**to).permute(2, 1, 0).contiguous() - self.pivot[:, None, None]
        entries = rotation_matrix(pose.to(**to)).permute(1, 2, 0)  # (3, 3, B)
        posed = torch.stack(rotate_components(entries, planes[0], planes[1], planes[2]))
        u, v, depth, matrix, landmarks = self.align(posed, distance, landmark_jitter)

        s = self.config.supersample
        # Crop pixel c spans [c - 1/2, c + 1/2]: fine pixels s*c .. s*c + s - 1, whose centres
        # average to s * c + (s - 1) / 2.
        fine = (matrix * s).float()
        fine[:, :, 2] += (s - 1) / 2.0
        fine = fine.permute(1, 2, 0)  # (2, 3, B)
        screen_x = fine[0, 0] * u + fine[0, 1] * v + fine[0, 2]  # (V, B)
        screen_y = fine[1, 0] * u + fine[1, 1] * v + fine[1, 2]
        # The rasteriser works image by image: vertex rows (B, V).
        fragments = rasterize_planes(screen_x.t(), screen_y.t(), depth.t(), self.table, s * self.height,
                                     s * self.width, cull_backfaces=cull, near=self.config.near_cm,
                                     max_candidates=self.max_candidates, min_group=self.min_group)
        colour = self._shade_visible(posed, fragments, albedo, specular, light, distance)  # (3, V, B)
        pixels = interpolate_planes(colour, fragments)  # (3, B, sH, sW), zero where empty
        # Averaging premultiplied linear colour and coverage over sub-pixels is the box filter.
        linear = _box_filter(pixels, s).clamp_min_(0.0)  # (3, B, H, W)
        mask = _box_filter(fragments.covered[None].float(), s)  # (1, B, H, W)
        if background is not None:
            linear = linear + (1.0 - mask) * srgb_decode(background.to(**to).transpose(0, 1))
        return RenderOutput(
            image=srgb_encode(linear).transpose(0, 1).contiguous(),
            mask=mask.transpose(0, 1).contiguous(),
            landmarks5=landmarks.float(),
            matrix=matrix.float(),
        )


def _box_filter(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over ``factor x factor`` pixel blocks of (..., H, W) images."""
    if factor == 1:
        return images
    parts = [images[..., dy::factor, dx::factor] for dy in range(factor) for dx in range(factor)]
    total = parts[0] + parts[1]
    for part in parts[2:]:
        total.add_(part)
    return total.mul_(1.0 / (factor * factor))


def benchmark_renderer(
    model: FaceModel, batch_size: int = 64, iterations: int = 5, device: torch.device | str = "cpu",
    config: RenderConfig = RenderConfig(),
) -> dict[str, float | int | str]:
    """Time :meth:`FaceRenderer.render` on the model's mean face under random pose and light.

    Args:
        model: face model to render.
        batch_size: images per call.
        iterations: timed calls (after one warm-up call).
        device: where to render.
        config: rendering options.

    Returns:
        ``images_per_second``, ``seconds_per_batch`` and the sizes involved.
    """
    device = torch.device(device)
    renderer = FaceRenderer(model, config, device)
    rng = np.random.default_rng(0)
    vertices = model.vertices.to(device).float().expand(batch_size, -1, -1).contiguous()
    albedo = torch.full((batch_size, model.num_vertices, 3), 0.5, device=device)
    specular = torch.full((batch_size, model.num_vertices), 0.3, device=device)
    light = torch.from_numpy(np.stack([sample_light(rng, LightConfig()) for _ in range(batch_size)])).to(device)
    pose = torch.from_numpy(rng.uniform(-30, 30, (batch_size, 3)).astype(np.float32)).to(device)
    distance = torch.from_numpy(rng.uniform(50, 300, batch_size).astype(np.float32)).to(device)

    def call() -> None:
        renderer.render(vertices, albedo, specular, light, pose, distance)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    call()
    start = time.perf_counter()
    for _ in range(iterations):
        call()
    elapsed = (time.perf_counter() - start) / max(iterations, 1)
    return {
        "images_per_second": batch_size / elapsed, "seconds_per_batch": elapsed, "batch_size": batch_size,
        "device": str(device), "vertices": model.num_vertices, "triangles": int(model.triangles.shape[0]),
        "height": renderer.height, "width": renderer.width, "supersample": config.supersample,
    }
