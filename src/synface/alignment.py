"""Five-point face alignment: templates, the Umeyama similarity fit and the crop warp.

Shared by the generator (synthetic faces are cropped from their known mesh
landmarks) and by evaluation (real photos are cropped from MTCNN landmarks), so
synthetic and real crops go through exactly the same geometry.

Conventions: points are ``(x, y)`` in pixels with the centre of the top-left pixel
at ``(0, 0)`` (the OpenCV convention the templates were published in). The five
points are, in order: left eye centre, right eye centre (as seen in the image),
nose tip, left mouth corner, right mouth corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from synface.errors import ConfigError


@dataclass(frozen=True)
class CropTemplate:
    """Where the five landmarks go in an aligned crop of ``height`` x ``width`` pixels."""

    name: str
    height: int
    width: int
    points: tuple[tuple[float, float], ...]

    def tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The five template points as a (5, 2) float64 tensor."""
        return torch.tensor(self.points, dtype=torch.float64, device=device)


# SphereFace / SynFace 112x96 template (x, y); the ArcFace one is the same shifted by 8 px in x.
_SYNFACE_POINTS = (
    (30.2946, 51.6963),
    (65.5318, 51.5014),
    (48.0252, 71.7366),
    (33.5493, 92.3655),
    (62.7299, 92.2041),
)
TEMPLATES: dict[str, CropTemplate] = {
    "synface": CropTemplate("synface", 112, 96, _SYNFACE_POINTS),
    "arcface": CropTemplate(
        "arcface", 112, 112, tuple((x + 8.0, y) for x, y in _SYNFACE_POINTS)
    ),
}


def get_template(name: str) -> CropTemplate:
    """Look a template up by name (``synface`` 112x96 or ``arcface`` 112x112)."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ConfigError(
            f"unknown crop template {name!r}; valid templates: {', '.join(TEMPLATES)}"
        ) from None


def umeyama(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity transform (rotation, uniform scale, translation).

    Umeyama (1991): minimises ``sum |s R src_i + t - dst_i|^2`` with ``det(R) = +1``.

    Args:
        src: (..., N, 2) points to move.
        dst: (..., N, 2) points to move them onto.

    Returns:
        (..., 2, 3) matrices ``[s R | t]`` in the dtype of ``src``, mapping src to dst.
    """
    work = torch.float64
    src64, dst64 = src.to(work), dst.to(work)
    n = src64.shape[-2]
    src_mean = src64.mean(-2, keepdim=True)
    dst_mean = dst64.mean(-2, keepdim=True)
    src_c, dst_c = src64 - src_mean, dst64 - dst_mean
    cov = dst_c.transpose(-1, -2) @ src_c / n  # (..., 2, 2)
    u, sigma, vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u @ vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    d = torch.stack([torch.ones_like(sign), sign], dim=-1)  # (..., 2)
    rotation = u @ torch.diag_embed(d) @ vh
    src_var = (src_c**2).sum(dim=(-1, -2)) / n
    scale = (sigma * d).sum(-1) / src_var  # (...)
    linear = scale[..., None, None] * rotation
    translation = dst_mean.transpose(-1, -2) - linear @ src_mean.transpose(-1, -2)
    return torch.cat([linear, translation], dim=-1).to(src.dtype)


def apply_affine(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply (..., 2, 3) affine matrices to (..., N, 2) points."""
    return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., None, :, 2]


def invert_affine(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., 2, 3) affine matrices."""
    linear_inv = torch.linalg.inv(matrix[..., :2])
    return torch.cat([linear_inv, -(linear_inv @ matrix[..., 2:])], dim=-1)


def alignment_matrix(landmarks: torch.Tensor, template: CropTemplate) -> torch.Tensor:
    """(..., 2, 3) similarity from image landmarks (..., 5, 2) onto the template points."""
    dst = template.tensor(landmarks.device).to(torch.float64).expand_as(landmarks)
    return umeyama(landmarks.to(torch.float64), dst)


def warp_affine(
    images: torch.Tensor,
    matrix: torch.Tensor,
    height: int,
    width: int,
    mode: str = "bilinear",
    padding_mode: str = "border",
) -> torch.Tensor:
    """Resample (B, C, H, W) images into (B, C, height, width) through src->dst matrices.

    Output pixel ``(x, y)`` takes the input value at ``inverse(matrix) @ (x, y, 1)``,
    with pixel centres at integer coordinates, as OpenCV's ``warpAffine`` does.
    """
    b, _, h_in, w_in = images.shape
    inverse = invert_affine(matrix.to(torch.float64)).expand(b, 2, 3)
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64, device=images.device),
        torch.arange(width, dtype=torch.float64, device=images.device),
        indexing="ij",
    )
    grid = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2)  # (1, HW, 2)
    src = apply_affine(inverse, grid)  # (B, HW, 2) input pixel coordinates
    # grid_sample with align_corners=False maps -1..1 to the outer pixel edges.
    norm = torch.tensor([w_in, h_in], dtype=torch.float64, device=images.device)
    src = (2.0 * src + 1.0) / norm - 1.0
    src = src.reshape(b, height, width, 2).to(images.dtype if images.is_floating_point() else torch.float32)
    data = images if images.is_floating_point() else images.float()
    out = F.grid_sample(data, src, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out if images.is_floating_point() else out.round().clamp(0, 255).to(images.dtype)


def align_faces(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    template: CropTemplate | str = "synface",
    padding_mode: str = "border",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop faces onto a template from their five landmarks.

    Args:
        images: (B, C, H, W) images (float or uint8).
        landmarks: (B, 5, 2) landmark pixel coordinates in those images.
        template: a :class:`CropTemplate` or its name.
        padding_mode: what lies outside the image: ``border`` (repeat) or ``zeros`` (black).

    Returns:
        (crops (B, C, th, tw), matrices (B, 2, 3) image -> crop).
    """
    template = get_template(template) if isinstance(template, str) else template
    matrix = alignment_matrix(landmarks, template)
    crops = warp_affine(images, matrix, template.height, template.width, padding_mode=padding_mode)
    return crops, matrix
