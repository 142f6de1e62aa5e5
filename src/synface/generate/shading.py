"""Per-vertex shading: spherical-harmonics irradiance, Blinn-Phong specular, vertex normals, sRGB.

Lighting follows the 27-coefficient convention of Deng et al. 2019 (also used by
DiscoFaceGAN): 9 coefficients per colour channel, laid out ``[R0..R8, G0..G8,
B0..B8]``, and the linear colour of a vertex with albedo ``a`` and unit normal
``n = (x, y, z)`` (camera frame: x right, y up, z towards the camera) is

    colour_c = a_c * sum_k light[c, k] * H_k(n)

with the basis (``c0 = 1/sqrt(4 pi)``, ``c1 = sqrt(3)/sqrt(4 pi)``,
``c2 = 3 sqrt(5)/sqrt(12 pi)``, ``a0 = pi``, ``a1 = 2 pi/sqrt(3)``, ``a2 = 2 pi/sqrt(8)``):

    H_0 = a0 c0                       H_5 = -a2 c2 y z
    H_1 = -a1 c1 y                    H_6 = a2 c2 (3 z^2 - 1) / (2 sqrt(3))
    H_2 = a1 c1 z                     H_7 = -a2 c2 x z
    H_3 = -a1 c1 x                    H_8 = a2 c2 (x^2 - y^2) / 2
    H_4 = a2 c2 x y

Coefficient 0 is the ambient term: ``H_0 = sqrt(pi)/2 ~ 0.886``, so ``light[c, 0] = 1/H_0``
with all other coefficients zero renders exactly the albedo (Deng et al. add 0.8
to coefficient 0 as their neutral default, giving 0.709 x albedo).
:mod:`synface.generate.lighting` converts physical environments (radiance) into
these coefficients so that the result is the Lambertian outgoing radiance.

The specular term is Blinn-Phong with the energy-normalised lobe
``(e + 8) / (8 pi) * max(0, n.h)^e * max(0, n.l) * I_c``, lit by the
directional light equivalent to the band-1 (linear) part of the SH light: its
direction is the luminance-weighted band-1 vector, ``I_c`` the strength of a single
directional light that would produce channel c's band-1 coefficients.

Glossier surfaces are also smoother, so the exponent grows with a vertex's specular
strength ``k`` above GLOSS_START (:func:`gloss_exponent`):
``e = shininess * exp(GLOSS_RATE * max(0, k - GLOSS_START))``. Hair and skin keep the
configured ``shininess``; wet eyes (k about 0.75) get a lobe narrower than the mesh's
vertex spacing: the vertex nearest the mirror direction lights up alone, the small
catch-light of a cornea. The highlight added to a vertex is capped at HIGHLIGHT_CAP so
that such a spike stays a point after interpolation across its triangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_C0 = 1.0 / math.sqrt(4.0 * math.pi)
_C1 = math.sqrt(3.0) / math.sqrt(4.0 * math.pi)
_C2 = 3.0 * math.sqrt(5.0) / math.sqrt(12.0 * math.pi)
_A0, _A1, _A2 = math.pi, 2.0 * math.pi / math.sqrt(3.0), 2.0 * math.pi / math.sqrt(8.0)

# H_k = SH_SCALE[k] * SH_POLYNOMIAL_k(n); the polynomials are
# 1, -y, z, -x, xy, -yz, 3z^2 - 1, -xz, x^2 - y^2 (signs inside the polynomial).
SH_SCALE: tuple[float, ...] = (
    _A0 * _C0,
    _A1 * _C1, _A1 * _C1, _A1 * _C1,
    _A2 * _C2, _A2 * _C2, _A2 * _C2 / (2.0 * math.sqrt(3.0)), _A2 * _C2, _A2 * _C2 / 2.0,
)
# Specular strength -> Blinn-Phong exponent, and the largest highlight (see the module docstring).
GLOSS_START = 0.5
GLOSS_RATE = 12.0
HIGHLIGHT_CAP = 1.0
# Luminance weights of linear sRGB (Rec. 709), used to pick one dominant light direction.
LUMINANCE: tuple[float, float, float] = (0.2126, 0.7152, 0.0722)


def sh_polynomials(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
    """The nine signed SH polynomials of unit vectors given as coordinate planes."""
    return [torch.ones_like(x), -y, z, -x, x * y, -y * z, 3.0 * z * z - 1.0, -x * z, x * x - y * y]


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """The irradiance basis ``H_k(n)`` of the module docstring: (..., 3) -> (..., 9)."""
    polynomials = sh_polynomials(*normals.unbind(-1))
    return torch.stack([p * s for p, s in zip(polynomials, SH_SCALE)], dim=-1)


def diffuse_irradiance(normals: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """Per-vertex SH shading factor (albedo multiplier) per colour channel.

    Args:
        normals: (3, V, B) unit normals in the camera frame (coordinate planes, batch innermost).
        light: (B, 27) coefficients, ``[R0..R8, G0..G8, B0..B8]``.

    Returns:
        (3, V, B) ``sum_k light[c, k] H_k(n)`` per channel; the linear colour is albedo times this.
    """
    scale = torch.tensor(SH_SCALE, dtype=normals.dtype, device=normals.device)
    coefficients = (light.reshape(-1, 3, 9).to(normals.dtype) * scale).permute(1, 2, 0)  # (3, 9, B)
    polynomials = sh_polynomials(normals[0], normals[1], normals[2])  # 9 x (V, B)
    channels = []
    for c in range(3):  # elementwise sums: the same bits whatever the batch size
        total = polynomials[1] * coefficients[c, 1] + coefficients[c, 0]
        for k in range(2, 9):
            total = total.addcmul_(polynomials[k], coefficients[c, k])
        channels.append(total)
    return torch.stack(channels)


def dominant_light(light: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The directional light equivalent to the band-1 part of SH lights.

    A directional light of strength ``s`` (rendering ``albedo * s * cos`` on a
    Lambertian surface, see :mod:`synface.generate.lighting`) has band-1 coefficients
    of length ``s / (2 SH_SCALE[1])``.

    Args:
        light: (B, 27) SH coefficients.

    Returns:
        ``(direction (B, 3), strength (B, 3))``: unit vector towards the light in the
        camera frame, and per-channel strength (>= 0).
    """
    band1 = light.reshape(-1, 3, 9)[..., 1:4]  # (B, 3, 3): coefficients of -y, z, -x
    vectors = torch.stack([-band1[..., 2], -band1[..., 0], band1[..., 1]], dim=-1)  # (B, 3 ch, xyz)
    weights = torch.tensor(LUMINANCE, dtype=light.dtype, device=light.device)
    mean = (vectors * weights[:, None]).sum(1)  # (B, 3)
    length = mean.norm(dim=-1, keepdim=True)
    fallback = torch.tensor([0.0, 0.0, 1.0], dtype=light.dtype, device=light.device)
    direction = torch.where(length > 1e-12, mean / length.clamp_min(1e-12), fallback)
    strength = (vectors * direction[:, None]).sum(-1).clamp_min(0) * (2.0 * SH_SCALE[1])
    return direction, strength


def gloss_exponent(specular: torch.Tensor, shininess: float) -> torch.Tensor:
    """Per-vertex Blinn-Phong exponent: ``shininess`` up to strength GLOSS_START, sharper for glossier vertices."""
    return shininess * torch.exp(GLOSS_RATE * (specular - GLOSS_START).clamp_min(0.0))


def specular_shading(normals: torch.Tensor, view: torch.Tensor, light: torch.Tensor,
                     shininess: float | torch.Tensor) -> torch.Tensor:
    """Blinn-Phong highlight of the dominant SH light (see the module docstring).

    Args:
        normals: (3, V, B) unit normals, camera frame.
        view: (3, V, B) unit vectors from each vertex towards the camera.
        light: (B, 27) SH coefficients.
        shininess: Blinn-Phong exponent, one for all or (V, B) per vertex.

    Returns:
        (3, V, B) linear specular radiance per unit specular strength.
    """
    direction, strength = dominant_light(light.to(normals.dtype))
    direction = direction.t()[:, None]  # (3, 1, B)
    half = view + direction
    half_length = half[0] * half[0] + half[1] * half[1] + half[2] * half[2]
    n_dot_h = (normals[0] * half[0] + normals[1] * half[1] + normals[2] * half[2]).clamp_min(0)
    n_dot_h = n_dot_h * half_length.clamp_min(1e-24).rsqrt()
    n_dot_l = (normals[0] * direction[0] + normals[1] * direction[1] + normals[2] * direction[2]).clamp_min(0)
    lobe = n_dot_h.pow(shininess) * n_dot_l * ((shininess + 8.0) * (1.0 / (8.0 * math.pi)))  # (V, B)
    return lobe * strength.t()[:, None]


def shade_vertices(
    positions: torch.Tensor, normals: torch.Tensor, albedo: torch.Tensor, specular: torch.Tensor | None,
    light: torch.Tensor, camera_distance: torch.Tensor, shininess: float,
) -> torch.Tensor:
    """Linear RGB of vertices: SH diffuse times albedo plus the specular highlight.

    Args:
        positions: (3, V, B) camera-frame positions (camera at ``(0, 0, camera_distance)``).
        normals: (3, V, B) unit normals.
        albedo: (3, V, B) linear reflectance.
        specular: (V, B) specular strength, or None for matte.
        light: (B, 27) SH coefficients.
        camera_distance: (B,) cm.
        shininess: Blinn-Phong exponent of matte vertices (:func:`gloss_exponent`).

    Returns:
        (3, V, B) linear RGB.
    """
    colour = albedo * diffuse_irradiance(normals, light)
    if specular is not None:
        view = -positions
        view[2] += camera_distance
        view = view * (view[0] * view[0] + view[1] * view[1] + view[2] * view[2]).clamp_min(1e-24).rsqrt()
        exponent = gloss_exponent(specular, shininess)  # (V, B)
        highlight = specular_shading(normals, view, light, exponent) * specular  # (3, V, B)
        colour = colour.add_(highlight.clamp_(max=HIGHLIGHT_CAP))
    return colour


@dataclass
class Incidence:
    """Triangles around each vertex as padded gather tables (padding points at an extra zero triangle).

    Summing gathered face normals is deterministic on every device, unlike
    ``index_add_`` with floating-point atomics. The few high-valence vertices (poles)
    get a separate table so the common one stays narrow.

    Attributes:
        table: (V, K) triangle indices, padded with ``F``.
        overflow_vertices: (N,) vertices with more than K triangles.
        overflow: (N, M) their remaining triangles, padded with ``F``.
    """

    table: torch.Tensor
    overflow_vertices: torch.Tensor
    overflow: torch.Tensor


def _padded_rows(
    rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, count: int, fill: int
) -> torch.Tensor:
    """A (count, width) table filled with ``fill`` and ``values`` at ``(rows, columns)``."""
    width = int(columns.max()) + 1 if columns.numel() else 1
    table = torch.full((count, width), fill, dtype=torch.int64, device=values.device)
    table[rows, columns] = values
    return table


def vertex_incidence(triangles: torch.Tensor, num_vertices: int, coverage: float = 0.98) -> Incidence:
    """Build the :class:`Incidence` of a triangle list (F, 3) over ``num_vertices`` vertices.

    The main table is just wide enough for a ``coverage`` fraction of the vertices.
    """
    faces = triangles.shape[0]
    vertex = triangles.reshape(-1)
    face = torch.arange(faces, device=triangles.device).repeat_interleave(3)
    order = torch.argsort(vertex, stable=True)
    vertex, face = vertex[order], face[order]
    counts = torch.bincount(vertex, minlength=num_vertices)
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(vertex.numel(), device=triangles.device) - start[vertex]
    width = int(torch.quantile(counts.double(), coverage).ceil()) if counts.numel() else 1
    width = max(1, width)
    regular = slot < width
    table = _padded_rows(vertex[regular], slot[regular], face[regular], num_vertices, faces)
    table = torch.cat([table, torch.full((num_vertices, width - table.shape[1]), faces, dtype=torch.int64,
                                         device=triangles.device)], dim=1)
    extra_vertices = torch.unique(vertex[~regular])  # sorted
    row = torch.searchsorted(extra_vertices, vertex[~regular])
    overflow = _padded_rows(row, slot[~regular] - width, face[~regular], len(extra_vertices), faces)
    return Incidence(table=table, overflow_vertices=extra_vertices, overflow=overflow)


def _face_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Unnormalised face normals (3, F + 1, B) with a zero last row for table padding."""
    faces, batch = triangles.shape[0], vertices.shape[2]
    p0, p1, p2 = vertices.index_select(1, triangles.t().reshape(-1)).reshape(3, 3, faces, batch).unbind(1)
    u, v = p1 - p0, p2 - p0  # (3, F, B)
    face = torch.zeros(3, faces + 1, batch, dtype=vertices.dtype, device=vertices.device)
    for axis in range(3):  # cross product written out on contiguous planes
        i, j = (axis + 1) % 3, (axis + 2) % 3
        torch.sub(u[i] * v[j], u[j] * v[i], out=face[axis, :faces])
    return face


def vertex_normals(
    vertices: torch.Tensor, triangles: torch.Tensor, incidence: Incidence, subset: torch.Tensor | None = None
) -> torch.Tensor:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (3, V, B) positions as coordinate planes, batch innermost.
        triangles: (F, 3) counter-clockwise seen from outside.
        incidence: from :func:`vertex_incidence`.
        subset: (S,) sorted vertex indices to compute normals for (default: all), e.g.
            only the vertices that ended up visible.

    Returns:
        (3, V, B) unit normals, or (3, S, B) for a subset. Summing unnormalised face
        normals (cross products, twice the triangle area long) weights them by area.
    """
    count, batch, faces = vertices.shape[1], vertices.shape[2], triangles.shape[0]
    device = triangles.device
    table, extra_vertices, extra = incidence.table, incidence.overflow_vertices, incidence.overflow
    if subset is None:
        face = _face_normals(vertices, triangles)
    else:  # only the faces around the subset
        table = table.index_select(0, subset)  # (S, K)
        slot = torch.full((count,), -1, dtype=torch.int64, device=device)
        slot[subset] = torch.arange(len(subset), device=device)
        keep = (slot.index_select(0, extra_vertices) >= 0).nonzero().squeeze(1)
        extra_vertices, extra = slot.index_select(0, extra_vertices.index_select(0, keep)), extra.index_select(0, keep)
        needed = torch.zeros(faces + 1, dtype=torch.bool, device=device)
        needed.index_fill_(0, table.reshape(-1), True).index_fill_(0, extra.reshape(-1), True)
        needed[faces] = False
        listed = needed.nonzero().squeeze(1)
        position = torch.full((faces + 1,), len(listed), dtype=torch.int64, device=device)
        position[listed] = torch.arange(len(listed), device=device)
        face = _face_normals(vertices, triangles.index_select(0, listed))
        table = position.index_select(0, table.reshape(-1)).reshape(table.shape)
        extra = position.index_select(0, extra.reshape(-1)).reshape(extra.shape)
    rows, width = table.shape
    total = face.index_select(1, table.t().reshape(-1)).reshape(3, width, rows, batch).sum(1)
    if extra_vertices.numel():
        summed = face.index_select(1, extra.reshape(-1)).reshape(3, *extra.shape, batch).sum(2)  # (3, N, B)
        summed = torch.cat([summed, torch.zeros_like(summed[:, :1])], dim=1)
        # Scatter by gathering (row -> its overflow row, or the zero row): deterministic everywhere.
        slot = torch.full((rows,), len(extra_vertices), dtype=torch.int64, device=device)
        slot[extra_vertices] = torch.arange(len(extra_vertices), device=device)
        total = total + summed.index_select(1, slot)
    length = (total[0] * total[0] + total[1] * total[1] + total[2] * total[2]).clamp_min(1e-24)
    return total * length.rsqrt()


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    """Linear RGB in [0, 1] to sRGB (IEC 61966-2-1 transfer function); input is clamped."""
    linear = linear.clamp(0.0, 1.0)
    power = linear.clamp_min(0.0031308).pow(1.0 / 2.4)
    # 1.055 p - 0.055 written so that linear 1 encodes to exactly 1.
    return torch.where(linear <= 0.0031308, 12.92 * linear, power + 0.055 * (power - 1.0))


def srgb_decode(encoded: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] to linear RGB; input is clamped."""
    encoded = encoded.clamp(0.0, 1.0)
    return torch.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055).pow(2.4))
