"""Batched z-buffer rasterisation of triangle meshes in pure PyTorch.

The rasteriser turns screen-space triangles into per-pixel fragments: which
triangle is visible at each pixel centre and its perspective-correct barycentric
coordinates. It runs the same tensor code on CPU and CUDA, with no Python loop
over triangles or pixels:

1. Triangle setup, vectorised over all triangles of the batch. Triangles behind
   the near plane, degenerate, culled or covering no pixel centre are dropped; the
   rest are compacted into columns of constants (edge functions, 1/depth plane,
   pixel bounding box).
2. Triangles are grouped by bounding-box size (a handful of buckets). In each
   bucket every triangle tests the pixel centres of a fixed-size box against its
   three edges and evaluates its 1/depth plane there.
3. Visibility is one ``scatter_reduce(amin)`` per bucket chunk into an int64
   z-buffer whose keys hold the depth in the high 32 bits (the bit pattern of a
   positive float orders like the float, so nearer wins exactly, with no
   quantisation) and the triangle index in the low 32 bits (lower wins exact ties).
4. The winning triangle's barycentrics are recomputed per pixel.

Memory layout: the batch is the innermost axis (vertex planes are (V, B), images
(H, W, B)), so gathering a vertex or pixel fetches one contiguous row for the whole
batch, and neighbouring triangles of different images write neighbouring z-buffer
entries.

Conventions: pixel ``(x, y)`` has its centre at integer coordinates (top-left
pixel centre at ``(0, 0)``), y points down. A pixel belongs to a triangle when its
centre is inside; centres exactly on an edge follow the top-left rule, and both
triangles sharing an edge evaluate the same edge function (endpoints ordered by
vertex index, only the sign differs), so a mesh has neither cracks nor doubly
covered pixels. Front faces wind counter-clockwise as the image is viewed (negative
signed area in these y-down coordinates). Triangles with a vertex closer than
``near`` are dropped rather than clipped: faces are rendered from 50 cm or more,
so only degenerate inputs reach the near plane.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

# Bounding-box side lengths of the buckets; about 1.5x apart so a box wastes < ~2x work.
_BUCKET_SIDES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
                 1536, 2048, 3072, 4096, 6144, 8192)
_FAR = 2**31 - 1  # high word of an empty z-buffer entry
_TIE = -1e-30  # threshold of top-left edges: e > -1e-30 is e >= 0 for every value an edge function takes
# Rows of the per-triangle constant table (three per edge where marked).
_SX, _SY, _DX, _DY, _T = 0, 3, 6, 9, 12  # edge start, edge vector (inside positive), threshold
_XMIN, _YMIN, _BW, _BH, _PA, _PB, _PC = 15, 16, 17, 18, 19, 20, 21  # box; 1/depth plane
assert sys.byteorder == "little", "z-buffer keys assume little-endian int32 pairs"


@dataclass
class Fragments:
    """What the rasteriser saw at each pixel centre, stored batch-innermost.

    Attributes:
        covered: (H, W, B) bool, a triangle covers the pixel centre.
        winner: (H, W, B) int64 index of the visible triangle (arbitrary where empty).
        vertex_planes: (3, H, W, B) int64 vertex indices of that triangle (valid
            indices, arbitrary where empty).
        barycentric_planes: (3, H, W, B) perspective-correct weights of those vertices
            (zeros where empty).
    """

    covered: torch.Tensor
    winner: torch.Tensor
    vertex_planes: torch.Tensor
    barycentric_planes: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool: a triangle covers the pixel centre."""
        return self.covered.permute(2, 0, 1)

    @property
    def triangle(self) -> torch.Tensor:
        """(B, H, W) int64 index of the visible triangle, -1 where empty."""
        return ((self.winner + 1) * self.covered - 1).permute(2, 0, 1)

    @property
    def vertices(self) -> torch.Tensor:
        """(B, H, W, 3) int64 vertex indices of the visible triangle, 0 where empty."""
        return (self.vertex_planes * self.covered).permute(3, 1, 2, 0)

    @property
    def barycentric(self) -> torch.Tensor:
        """(B, H, W, 3) perspective-correct barycentric weights, 0 where empty."""
        return self.barycentric_planes.permute(3, 1, 2, 0)


def _corners(
    x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, triangles: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Corner planes (3 corners, F, B) of x, y, depth and signed areas (F, B) of every triangle."""
    index = triangles.t().reshape(-1)  # corner-major, so each corner is one contiguous (F, B) block
    faces = triangles.shape[0]
    cx, cy, cz = (p.index_select(0, index).reshape(3, faces, -1) for p in (x, y, z))
    area = (cx[1] - cx[0]) * (cy[2] - cy[0]) - (cy[1] - cy[0]) * (cx[2] - cx[0])  # < 0 for front faces
    return cx, cy, cz, area


@dataclass
class _Triangles:
    """The triangles that can cover a pixel centre, sorted by bucket (columns of tables)."""

    constants: torch.Tensor  # (22, n) scatter constants
    planes: torch.Tensor  # (9, n) barycentric planes
    rows: torch.Tensor  # (n,) flat index f * B + b
    face: torch.Tensor  # (n,) int32 triangle index in the mesh
    image: torch.Tensor  # (n,) batch index
    groups: list[tuple[int, int, int, int]]  # (side_x, side_y, start, end) column ranges


def _boxes(cx: torch.Tensor, cy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(4, m) boxes of covered pixel centres: first column, first row, width, height (<= 0: none)."""
    # Clamping first keeps far-off (or inf) vertices harmless.
    x_min = torch.minimum(torch.minimum(cx[0], cx[1]), cx[2]).clamp(-1.0, width).ceil().clamp_min(0.0)
    x_max = torch.maximum(torch.maximum(cx[0], cx[1]), cx[2]).clamp(-1.0, width).floor().clamp_max(width - 1.0)
    y_min = torch.minimum(torch.minimum(cy[0], cy[1]), cy[2]).clamp(-1.0, height).ceil().clamp_min(0.0)
    y_max = torch.maximum(torch.maximum(cy[0], cy[1]), cy[2]).clamp(-1.0, height).floor().clamp_max(height - 1.0)
    return torch.stack([x_min, y_min, x_max - x_min + 1, y_max - y_min + 1])


def _bucket_order(
    box: torch.Tensor, height: int, width: int, min_group: int
) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
    """Column order that groups boxes by bucket, and the groups ``(side_x, side_y, start, end)``.

    Buckets with fewer than ``min_group`` triangles join the square bucket of their
    longer side: a little more waste on rare triangles for fewer Python-level steps.
    """
    longest = max(height, width)
    if longest > _BUCKET_SIDES[-1]:
        raise ValueError(f"images larger than {_BUCKET_SIDES[-1]} pixels are not supported, got {height}x{width}")
    classes = sum(side < longest for side in _BUCKET_SIDES) + 1
    device = box.device
    sides = torch.tensor(_BUCKET_SIDES[:classes], device=device)
    lookup = torch.searchsorted(sides, torch.arange(longest + 1, device=device))  # side -> class
    class_x = lookup.index_select(0, box[2].clamp(1.0, longest).long())
    class_y = lookup.index_select(0, box[3].clamp(1.0, longest).long())
    empty = (box[2] < 1) | (box[3] < 1)
    bucket = (class_x * classes + class_y) * ~empty + empty * (classes * classes)  # empty boxes last
    counts = torch.bincount(bucket, minlength=classes * classes + 1).tolist()
    remap = list(range(classes * classes + 1))
    for value in range(classes * classes):
        if 0 < counts[value] < min_group:
            longer = max(divmod(value, classes))
            remap[value] = longer * classes + longer
    bucket = torch.tensor(remap, dtype=torch.int16, device=device).index_select(0, bucket)
    order = torch.argsort(bucket, stable=True)  # stable: mesh order inside a bucket, for cache locality
    values, counts = torch.unique_consecutive(bucket.index_select(0, order), return_counts=True)
    groups, start = [], 0
    for value, count in zip(values.tolist(), counts.tolist()):
        if value < classes * classes:
            groups.append((_BUCKET_SIDES[value // classes], _BUCKET_SIDES[value % classes], start, start + count))
            start += count
    return order[:start], groups


def _setup(
    x: torch.Tensor, y: torch.Tensor, depth: torch.Tensor, triangles: torch.Tensor,
    height: int, width: int, cull_backfaces: bool, near: float, min_group: int,
) -> _Triangles:
    """Drop triangles that cannot cover a pixel centre, sort the rest by box size, compute constants."""
    batch = x.shape[1]
    cx, cy, cz, area = _corners(x, y, depth, triangles)
    facing = area < 0 if cull_backfaces else (area < 0) | (area > 0)  # NaN areas fail both
    keep = facing & (torch.minimum(torch.minimum(cz[0], cz[1]), cz[2]) > near)
    rows = keep.reshape(-1).nonzero().squeeze(1)  # flat f * B + b
    cx, cy = cx.reshape(3, -1).index_select(1, rows), cy.reshape(3, -1).index_select(1, rows)
    box = _boxes(cx, cy, height, width)  # (4, m)
    order, groups = _bucket_order(box, height, width, min_group)
    rows = rows.index_select(0, order)
    face = rows // batch
    # Edge i runs from corner i+1 to i+2; it starts at corner i+2 when that has the lower index.
    flipped = (triangles[:, [1, 2, 0]] > triangles[:, [2, 0, 1]]).t().contiguous().index_select(1, face)
    constants, planes = _constants(
        cx.index_select(1, order), cy.index_select(1, order), cz.reshape(3, -1).index_select(1, rows),
        area.reshape(-1).index_select(0, rows), box.index_select(1, order), flipped,
    )
    return _Triangles(constants=constants, planes=planes, rows=rows, face=face.to(torch.int32), image=rows % batch,
                      groups=groups)


def _constants(
    x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, signed: torch.Tensor, box: torch.Tensor,
    flipped: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant tables of the compacted triangles: scatter (22, n) and barycentric planes (9, n).

    ``flipped`` (3, n) marks edges whose canonical start (lower vertex index) is corner
    i+2 rather than i+1. The barycentric planes give ``lambda_i / depth_i`` at pixel
    ``(x, y)`` as ``a_i x + b_i y + c_i`` (rows a0..2, b0..2, c0..2).
    """
    n = x.shape[1]
    constants = torch.empty(22, n, dtype=x.dtype, device=x.device)
    planes = torch.empty(9, n, dtype=x.dtype, device=x.device)
    inverse_area = 1.0 / signed.abs()
    orientation = signed.sign()
    constants[_XMIN : _BH + 1] = box
    constants[_PA :] = 0.0
    for i in range(3):
        first, second = (i + 1) % 3, (i + 2) % 3  # edge i joins corner i+1 to corner i+2
        swap = flipped[i].to(x.dtype)
        keep = 1.0 - swap  # exact 0/1 selection by multiplication, cheaper than torch.where
        sx = torch.add(x[first] * keep, x[second] * swap, out=constants[_SX + i])
        sy = torch.add(y[first] * keep, y[second] * swap, out=constants[_SY + i])
        # Orient so inside is positive. A neighbour runs this edge the other way, so its
        # difference is the exact negation of ours and its start point the same vertex:
        # both evaluate bit-identical edge functions up to sign.
        dx = torch.mul(x[second] - x[first], orientation, out=constants[_DX + i])
        dy = torch.mul(y[second] - y[first], orientation, out=constants[_DY + i])
        torch.mul((dy < 0) | ((dy == 0) & (dx > 0)), _TIE, out=constants[_T + i])  # top-left rule
        k = inverse_area / z[i]  # lambda_i / depth_i = k_i e_i, linear in screen space
        plane_a = torch.mul(dy, -k, out=planes[i])
        plane_b = torch.mul(dx, k, out=planes[3 + i])
        torch.mul(dy * sx - dx * sy, k, out=planes[6 + i])
        constants[_PA] += plane_a
        constants[_PB] += plane_b
        # The scatter evaluates 1/depth relative to the box corner, where no large
        # absolute coordinates cancel.
        constants[_PC] += k * (dx * (box[1] - sy) - dy * (box[0] - sx))
    return constants, planes


def _scatter(
    triangles: _Triangles, side_x: int, side_y: int, start: int, end: int,
    shape: tuple[int, int, int], zbuffer: torch.Tensor,
) -> None:
    """Test columns ``start:end``'s ``side_y x side_x`` boxes of pixel centres; keep the nearest per pixel.

    Candidates are laid out (side_y, side_x, n) so every full-size operation runs
    along the long, contiguous triangle axis.
    """
    height, width, batch = shape
    c = triangles.constants[:, start:end]  # (22, n)
    device = c.device
    jx = torch.arange(side_x, device=device, dtype=c.dtype)[:, None]  # (sx, 1)
    jy = torch.arange(side_y, device=device, dtype=c.dtype)[:, None]  # (sy, 1)
    px, py = c[_XMIN] + jx, c[_YMIN] + jy  # (sx, n), (sy, n) pixel centres
    edge = [(c[_DX + i] * (py - c[_SY + i]))[:, None] - (c[_DY + i] * (px - c[_SX + i]))[None] for i in range(3)]
    # Centres past the box (beyond the image border) get an impossible threshold.
    inf = torch.full((), float("inf"), device=device)
    threshold_x = torch.where(jx < c[_BW], c[_T], inf)  # (sx, n)
    threshold_y = torch.where(jy < c[_BH], c[_T + 1], inf)  # (sy, n)
    inside = (edge[0] > threshold_x[None]) & (edge[1] > threshold_y[:, None]) & (edge[2] > c[_T + 2])
    inverse_depth = (c[_PA] * jx + c[_PC])[None] + (c[_PB] * jy)[:, None]  # (sy, sx, n)
    # Positive floats order like their bit patterns; outside candidates get 0, i.e. "far".
    bits = (inverse_depth.clamp_min(1e-30) * inside).view(torch.int32)
    # Exact depth ties go to the lower mesh index, whatever else is in the batch.
    low = triangles.face[start:end].expand_as(bits)
    key = torch.stack([low, _FAR - bits], dim=-1).view(torch.int64).squeeze(-1)  # little-endian: low word first
    column = (px.long().clamp_max(width - 1) * batch)[None]  # (1, sx, n)
    row = (py.long().clamp_max(height - 1) * (width * batch) + triangles.image[start:end])[:, None]
    zbuffer.scatter_reduce_(0, (row + column).reshape(-1), key.reshape(-1), reduce="amin", include_self=True)


def rasterize_planes(
    x: torch.Tensor,
    y: torch.Tensor,
    depth: torch.Tensor,
    triangles: torch.Tensor,
    height: int,
    width: int,
    cull_backfaces: bool = False,
    near: float = 1e-3,
    max_candidates: int = 1 << 20,
    min_group: int = 1024,
) -> Fragments:
    """:func:`rasterize` on batch-innermost vertex planes ``x, y, depth`` (V, B)."""
    batch, device = x.shape[1], x.device
    triangles = triangles.to(device=device, dtype=torch.int64)
    visible = _setup(x.float(), y.float(), depth.float(), triangles, height, width, cull_backfaces, near, min_group)
    zbuffer = torch.full((height * width * batch,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=device)
    for side_x, side_y, start, end in visible.groups:
        step = max(1, max_candidates // (side_x * side_y))
        for first in range(start, end, step):
            _scatter(visible, side_x, side_y, first, min(first + step, end), (height, width, batch), zbuffer)
    return _resolve(zbuffer, visible, triangles, (height, width, batch))


def _resolve(
    zbuffer: torch.Tensor, visible: _Triangles, triangles: torch.Tensor, shape: tuple[int, int, int]
) -> Fragments:
    """Fragments from the z-buffer (H * W * B,): winning triangles and their barycentrics."""
    height, width, batch = shape
    device = zbuffer.device
    faces = triangles.shape[0]
    words = zbuffer.view(torch.int32).reshape(-1, 2)
    covered = words[:, 1] < _FAR  # (HWB,)
    winner = (words[:, 0] * covered).long()  # triangle index; 0 where empty
    # Column of each visible (triangle, image) pair in the constant tables.
    column = torch.zeros(faces * batch, dtype=torch.int32, device=device)
    column[visible.rows] = torch.arange(len(visible.rows), dtype=torch.int32, device=device)
    planes = visible.planes if len(visible.rows) else torch.zeros(9, 1, device=device)
    pair = (winner.reshape(-1, batch) * batch + torch.arange(batch, device=device)).reshape(-1)  # f * B + b
    plane = planes.index_select(1, column.index_select(0, pair))  # (9, HWB)
    plane = plane.reshape(3, 3, height, width, batch)  # (a/b/c, corner, H, W, B)
    px = torch.arange(width, device=device, dtype=plane.dtype)[:, None]  # (W, 1)
    py = torch.arange(height, device=device, dtype=plane.dtype)[:, None, None]  # (H, 1, 1)
    weight = (plane[0] * px + plane[1] * py + plane[2]).clamp_min(0.0)  # (3, H, W, B) lambda_i / depth_i
    covered = covered.reshape(height, width, batch)
    barycentric = weight * (covered / (weight[0] + weight[1] + weight[2]).clamp_min(1e-30))  # 0 where empty
    vertices = triangles.t().contiguous().index_select(1, winner).reshape(3, height, width, batch)
    return Fragments(covered=covered, winner=winner.reshape(height, width, batch),
                     vertex_planes=vertices, barycentric_planes=barycentric)


def rasterize(
    screen: torch.Tensor,
    depth: torch.Tensor,
    triangles: torch.Tensor,
    height: int,
    width: int,
    cull_backfaces: bool = False,
    near: float = 1e-3,
    max_candidates: int = 1 << 20,
    min_group: int = 1024,
) -> Fragments:
    """Rasterise a batch of meshes that share one triangle list.

    Args:
        screen: (B, V, 2) vertex positions in pixels (x right, y down, centres at integers).
        depth: (B, V) distance in front of the camera along the view axis (any unit);
            visibility and perspective correction use 1/depth.
        triangles: (F, 3) int64 vertex indices.
        height, width: image size in pixels.
        cull_backfaces: drop triangles winding clockwise as the image is viewed.
        near: triangles with a vertex at ``depth <= near`` are dropped.
        max_candidates: pixel tests per chunk; bounds the memory of one step.
        min_group: triangles below which a box-size bucket merges into a larger one
            (fewer, larger steps; results do not depend on it).

    Returns:
        :class:`Fragments` for every pixel of the (B, H, W) batch.
    """
    x, y = (screen[..., i].t().contiguous() for i in range(2))
    return rasterize_planes(x, y, depth.t().contiguous(), triangles, height, width, cull_backfaces, near,
                            max_candidates, min_group)


def interpolate_planes(values: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate per-vertex planes (C, V, B) into (C, H, W, B) images, zero where empty."""
    channels, count, batch = values.shape
    flat = values.reshape(channels, count * batch)
    vertices, weights = fragments.vertex_planes, fragments.barycentric_planes.to(values.dtype)
    image = torch.arange(batch, device=values.device)
    out = None
    for i in range(3):
        term = flat.index_select(1, (vertices[i] * batch + image).reshape(-1)).reshape(channels, *weights.shape[1:])
        term = term * weights[i]
        out = term if out is None else out + term
    return out


def interpolate(attributes: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate per-vertex attributes at every pixel with the fragments' barycentrics.

    Args:
        attributes: (B, V, C) per-vertex values.
        fragments: output of :func:`rasterize` for the same batch.

    Returns:
        (B, H, W, C) interpolated values, zero where no triangle is visible.
    """
    planes = attributes.permute(2, 1, 0).contiguous()  # (C, V, B)
    return interpolate_planes(planes, fragments).permute(3, 1, 2, 0)
