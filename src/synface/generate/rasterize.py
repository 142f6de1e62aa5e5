"""Batched z-buffer rasterisation of triangle meshes in pure PyTorch.

The rasteriser turns screen-space triangles into per-pixel fragments: which
triangle is visible at each pixel centre and its perspective-correct barycentric
coordinates. It runs the same tensor code on CPU and CUDA, with no Python loop
over triangles or pixels:

1. Facing test of every triangle of every image. Triangles behind the near plane,
   degenerate or culled are dropped; the rest are listed image by image.
2. Triangles whose box holds no pixel centre are dropped; the rest are grouped by
   bounding-box size (a handful of buckets) and compacted into columns of constants
   (edge functions, 1/depth plane, pixel box). In each bucket every triangle tests
   the pixel centres of a fixed-size box against its three edges and evaluates its
   1/depth plane there.
3. Visibility is one ``scatter_reduce(amin)`` per bucket chunk into an int64
   z-buffer whose keys hold the depth in the high 32 bits (the bit pattern of a
   positive float orders like the float, so nearer wins exactly, with no
   quantisation) and the triangle index in the low 32 bits (lower wins exact ties).
4. The winner's barycentrics are computed per pixel from its corners.

Memory layout: vertex rows, candidates and pixels are image-major (the z-buffer is
(B, H, W)): inside a bucket, neighbouring columns are neighbouring triangles of one
image, so their z-buffer writes land close together. Per-mesh constants are prepared
once in a :class:`TriangleTable`. Coverage is decided with float arithmetic only: on
CPUs, comparisons into bool tensors and ``where`` cost several times more.

Conventions: pixel ``(x, y)`` has its centre at integer coordinates (top-left
pixel centre at ``(0, 0)``), y points down. A pixel belongs to a triangle when its
centre is inside; centres exactly on an edge follow the top-left rule, and both
triangles sharing an edge evaluate the same edge function (from the edge's lower
vertex index, only the sign differs), so a mesh has neither cracks nor doubly
covered pixels. Front faces wind counter-clockwise as the image is viewed (negative
signed area in these y-down coordinates). Triangles with a vertex closer than
``near`` are dropped rather than clipped: faces are rendered from 50 cm or more,
so only degenerate inputs reach the near plane. Screen coordinates are clamped to
``+-1e18`` pixels, so that no edge function overflows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

# Bounding-box side lengths of the buckets; about 1.5x apart so a box wastes < ~2x work.
_BUCKET_SIDES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
                 1536, 2048, 3072, 4096, 6144, 8192)
_FAR = 2**31 - 1  # high word of an empty z-buffer entry
_EXACT = 4  # bucket sides up to this hold boxes of exactly that side: no centre past the box
_PAST = 3.0e38  # subtracted from the margin of centres past their box: never inside
_CPU_SLICE = 1 << 16  # candidates whose constants are computed at once on CPUs
_COORDINATE_LIMIT = 1e18  # |screen coordinates| are clamped here so no edge function overflows
_TIE = -1e-30  # threshold of top-left edges: e > -1e-30 is e >= 0 for every value an edge function takes
# Rows of the per-triangle constant table: sorted corners 0 and 1 (the edge starts), edge
# vectors (inside positive) and top-left thresholds (three each), box, 1/depth plane.
_X0, _Y0, _X1, _Y1, _DX, _DY, _T = 0, 1, 2, 3, 4, 7, 10
_XMIN, _YMIN, _BW, _BH, _PA, _PB, _PC = 13, 14, 15, 16, 17, 18, 19
_ROWS = 20
assert sys.byteorder == "little", "z-buffer keys assume little-endian int32 pairs"


@dataclass
class Fragments:
    """What the rasteriser saw at each pixel centre, stored image-major.

    Attributes:
        covered: (B, H, W) bool, a triangle covers the pixel centre.
        winner: (B, H, W) int64 index of the visible triangle (arbitrary where empty).
        vertex_planes: (3, B, H, W) int64 vertex indices of that triangle (valid
            indices, arbitrary where empty).
        barycentric_planes: (3, B, H, W) perspective-correct weights of those vertices
            (zeros where empty).
    """

    covered: torch.Tensor
    winner: torch.Tensor
    vertex_planes: torch.Tensor
    barycentric_planes: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool: a triangle covers the pixel centre."""
        return self.covered

    @property
    def triangle(self) -> torch.Tensor:
        """(B, H, W) int64 index of the visible triangle, -1 where empty."""
        return (self.winner + 1) * self.covered - 1

    @property
    def vertices(self) -> torch.Tensor:
        """(B, H, W, 3) int64 vertex indices of the visible triangle, 0 where empty."""
        return (self.vertex_planes * self.covered).permute(1, 2, 3, 0)

    @property
    def barycentric(self) -> torch.Tensor:
        """(B, H, W, 3) perspective-correct barycentric weights, 0 where empty."""
        return self.barycentric_planes.permute(1, 2, 3, 0)


@dataclass
class TriangleTable:
    """Per-mesh constants of the rasteriser (see :meth:`from_triangles`).

    Setup and scatter see each triangle with its corners sorted by vertex index, so
    that the start of every edge (its lower vertex, shared by both faces of the edge)
    is a fixed corner: corner 1 for edge 0 (corner 1 to 2), corner 0 for edges 1 and 2.

    Attributes:
        triangles: (F, 3) int64 vertex indices.
        corners: (3 * F,) int64 vertex index of sorted corner c of face f at ``c * F + f``.
        parity: (F,) float32 +1 where sorting kept the winding, -1 where it reversed it.
        by_corner: (3, F + 1) int64 vertex indices in mesh order, one row per corner, plus
            a last face whose corners are an extra vertex ``V`` (empty pixels point there).
        num_vertices: V.
    """

    triangles: torch.Tensor
    corners: torch.Tensor
    parity: torch.Tensor
    by_corner: torch.Tensor
    num_vertices: int

    @classmethod
    def from_triangles(cls, triangles: torch.Tensor, num_vertices: int) -> TriangleTable:
        """Prepare the constants of a triangle list (F, 3) over ``num_vertices`` vertices."""
        triangles = triangles.to(torch.int64)
        ordered, permutation = triangles.sort(dim=1)
        # A permutation of three keeps the winding iff it is a rotation (even).
        rotation = ((permutation - permutation[:, :1]) % 3 == torch.arange(3, device=triangles.device)).all(1)
        parity = rotation.float() * 2.0 - 1.0
        extra = torch.full((3, 1), num_vertices, dtype=torch.int64, device=triangles.device)
        return cls(triangles=triangles, corners=ordered.t().reshape(-1), parity=parity,
                   by_corner=torch.cat([triangles.t(), extra], dim=1), num_vertices=num_vertices)

    @property
    def num_faces(self) -> int:
        """F, the number of triangles."""
        return self.triangles.shape[0]


@dataclass
class _Triangles:
    """The triangles that can cover a pixel centre, sorted by bucket (columns of tables)."""

    constants: torch.Tensor  # (_ROWS, n) scatter constants
    base: torch.Tensor  # (n,) int64 z-buffer index of the box's first pixel
    face: torch.Tensor  # (n,) int32 triangle index in the mesh
    groups: list[tuple[int, int, int, int, bool]]  # (side_x, side_y, start, end, padded) column ranges


def _gather(source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``source.view(-1)[index]`` for flat sources and (k, n) indices, as one 1-D gather."""
    return source.view(-1).index_select(0, index.view(-1)).view(index.shape)


def _front_faces(
    x: torch.Tensor, y: torch.Tensor, depth: torch.Tensor, table: TriangleTable, cull_backfaces: bool, near: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sorted-corner rows (B, 3F) of x, y, depth and the kept pairs ``b * F + f``, image-major."""
    batch, faces = x.shape[0], table.num_faces
    # A vertex at or behind the near plane (or a NaN depth) poisons the area of its triangles.
    x = torch.where(depth > near, x.clamp(-_COORDINATE_LIMIT, _COORDINATE_LIMIT), float("nan"))
    y = y.clamp(-_COORDINATE_LIMIT, _COORDINATE_LIMIT)
    cx, cy, cz = (p.index_select(1, table.corners) for p in (x, y, depth))  # (B, 3F)
    x0, x1, x2 = cx.view(batch, 3, faces).unbind(1)
    y0, y1, y2 = cy.view(batch, 3, faces).unbind(1)
    area = ((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)).mul_(table.parity)  # (B, F) < 0 for front faces
    keep = area < 0 if cull_backfaces else area.abs() > 0  # NaN areas fail both
    return cx, cy, cz, keep.view(-1).nonzero().squeeze(1)


def _boxes(cx: torch.Tensor, cy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(4, m) boxes of covered pixel centres: first column, first row, width, height (<= 0: none)."""
    # Clamping first keeps far-off (or inf) vertices harmless.
    x_min = torch.minimum(torch.minimum(cx[0], cx[1]), cx[2]).clamp_(-1.0, width).ceil_().clamp_min_(0.0)
    x_max = torch.maximum(torch.maximum(cx[0], cx[1]), cx[2]).clamp_(-1.0, width).floor_().clamp_max_(width - 1.0)
    y_min = torch.minimum(torch.minimum(cy[0], cy[1]), cy[2]).clamp_(-1.0, height).ceil_().clamp_min_(0.0)
    y_max = torch.maximum(torch.maximum(cy[0], cy[1]), cy[2]).clamp_(-1.0, height).floor_().clamp_max_(height - 1.0)
    return torch.stack([x_min, y_min, x_max.sub_(x_min).add_(1.0), y_max.sub_(y_min).add_(1.0)])


_LOOKUPS: dict[tuple[int, int, str], tuple[torch.Tensor, int]] = {}


def _bucket_lookup(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """Bucket of every box size: ``(table ((L + 1)^2,) int64, classes)``, ``L`` the longer side.

    Entry ``w * (L + 1) + h`` is ``class(w) * classes + class(h)`` for a box of ``w x h``
    pixel centres, ``classes^2`` (empty, sorted last) when either side is 0.
    """
    key = (height, width, str(device))
    if key not in _LOOKUPS:
        longest = max(height, width)
        if longest > _BUCKET_SIDES[-1]:
            raise ValueError(f"images larger than {_BUCKET_SIDES[-1]} pixels are not supported, got {height}x{width}")
        classes = sum(side < longest for side in _BUCKET_SIDES) + 1
        sides = torch.tensor(_BUCKET_SIDES[:classes])
        size_class = torch.searchsorted(sides, torch.arange(longest + 1))  # side -> class
        table = size_class[:, None] * classes + size_class[None, :]
        table[0, :] = table[:, 0] = classes * classes
        _LOOKUPS[key] = (table.reshape(-1).to(device), classes)
    return _LOOKUPS[key]


def _bucket_order(
    box: torch.Tensor, height: int, width: int, min_group: int
) -> tuple[torch.Tensor, list[tuple[int, int, int, int, bool]]]:
    """Column order that groups boxes by bucket, and the groups ``(side_x, side_y, start, end, padded)``.

    Buckets with fewer than ``min_group`` triangles join the square bucket of their
    longer side: a little more waste on rare triangles for fewer Python-level steps.
    ``padded`` marks groups that may hold boxes smaller than the group's side, whose
    extra centres the scatter excludes.
    """
    lookup, classes = _bucket_lookup(height, width, box.device)
    longest = max(height, width)
    size = box[2:4].clamp(0.0, longest).long()  # (2, m) box sides, 0 when empty
    bucket = lookup.index_select(0, size[0] * (longest + 1) + size[1])
    counts = torch.bincount(bucket, minlength=classes * classes + 1).tolist()
    target, totals = {}, {}
    for value, count in enumerate(counts[:-1]):
        if count:
            longer = max(divmod(value, classes))
            target[value] = value if count >= min_group else longer * (classes + 1)
            totals[target[value]] = totals.get(target[value], 0) + count
    # Dense uint8 ranks in bucket order sort fastest; empty boxes rank last and are cut off.
    used = sorted(totals)
    assert len(used) < 255, "too many buckets for uint8 ranks"
    rank = [used.index(target[value]) if value in target else 255 for value in range(len(counts))]
    dense = torch.tensor(rank, dtype=torch.uint8, device=box.device).index_select(0, bucket)
    order = torch.argsort(dense, stable=True)  # stable: image then mesh order inside a bucket
    groups, start = [], 0
    for value in used:
        side_x, side_y = _BUCKET_SIDES[value // classes], _BUCKET_SIDES[value % classes]
        padded = max(side_x, side_y) > _EXACT or totals[value] > counts[value]  # merged: smaller boxes inside
        groups.append((side_x, side_y, start, start + totals[value], padded))
        start += totals[value]
    return order[:start], groups


def _setup(
    x: torch.Tensor, y: torch.Tensor, depth: torch.Tensor, table: TriangleTable,
    shape: tuple[int, int], cull_backfaces: bool, near: float, min_group: int,
) -> _Triangles:
    """Drop triangles that cannot cover a pixel centre, sort the rest by box size, compute constants."""
    height, width = shape
    faces, device = table.num_faces, x.device
    cx, cy, cz, rows = _front_faces(x, y, depth, table, cull_backfaces, near)
    image = torch.div(rows, faces, rounding_mode="floor")
    steps = torch.arange(3, device=device)[:, None] * faces  # corner c of row b * 3F + f
    corner = (rows + image * (2 * faces))[None] + steps  # (3, n)
    order, groups = _bucket_order(_boxes(_gather(cx, corner), _gather(cy, corner), height, width), height, width,
                                  min_group)
    rows, image = rows.index_select(0, order), image.index_select(0, order)
    count = len(rows)
    constants = torch.empty(_ROWS, count, device=device)
    base = torch.empty(count, dtype=torch.int64, device=device)
    # On CPUs, slices keep the dozens of temporaries of a column in the caches.
    step = _CPU_SLICE if device.type == "cpu" else max(count, 1)
    for start in range(0, count, step):
        part = slice(start, start + step)
        corner = (rows[part] + image[part] * (2 * faces))[None] + steps
        sx, sy = _gather(cx, corner), _gather(cy, corner)
        box = _boxes(sx, sy, height, width)
        torch.add(image[part] * (height * width), box[1].long() * width + box[0].long(), out=base[part])
        _constants(sx, sy, _gather(cz, corner), box, constants[:, part])
    return _Triangles(constants=constants, base=base, face=(rows - image * faces).to(torch.int32), groups=groups)


def _constants(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, box: torch.Tensor, constants: torch.Tensor) -> None:
    """Fill the scatter constants (_ROWS, n) of compacted triangles with sorted corners x, y, z (3, n)."""
    constants[_X0], constants[_Y0], constants[_X1], constants[_Y1] = x[0], y[0], x[1], y[1]
    constants[_XMIN : _BH + 1] = box
    dx1, dx2, dy1, dy2 = x[1] - x[0], x[2] - x[0], y[1] - y[0], y[2] - y[0]
    signed = dx1 * dy2 - dy1 * dx2
    orientation = signed.sign()
    # Edge i runs from corner i+1 to corner i+2; oriented so that inside is positive. A
    # neighbour runs the same edge the other way: its difference is the exact negation of
    # ours and its start the same (lower-index) vertex, so both evaluate bit-identical
    # edge functions up to sign.
    dx, dy = constants[_DX : _DX + 3], constants[_DY : _DY + 3]
    torch.mul(torch.stack([x[2] - x[1], x[0] - x[2], dx1]), orientation, out=dx)
    torch.mul(torch.stack([y[2] - y[1], y[0] - y[2], dy1]), orientation, out=dy)
    torch.mul((dy < 0) | ((dy == 0) & (dx > 0)), _TIE, out=constants[_T : _T + 3])  # top-left rule
    # 1/depth is linear in screen space: its plane through the corners, evaluated at the
    # box corner (where the scatter starts, so no large coordinates cancel there).
    w0, w1, w2 = z.reciprocal()
    dw1, dw2 = w1 - w0, w2 - w0
    inverse = signed.reciprocal_()
    plane_a = torch.mul(dw1 * dy2 - dw2 * dy1, inverse, out=constants[_PA])
    plane_b = torch.mul(dw2 * dx1 - dw1 * dx2, inverse, out=constants[_PB])
    torch.add(w0 + plane_a * (box[0] - x[0]), plane_b * (box[1] - y[0]), out=constants[_PC])


_OFFSETS: dict[tuple[int, int, int, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _offsets(side_x: int, side_y: int, row_stride: int, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Box offsets: columns (sx, 1) and rows (sy, 1) as floats, z-buffer steps (sy, sx, 1) int64."""
    key = (side_x, side_y, row_stride, str(device))
    if key not in _OFFSETS:
        jx = torch.arange(side_x, device=device, dtype=torch.float32)[:, None]
        jy = torch.arange(side_y, device=device, dtype=torch.float32)[:, None]
        steps = torch.arange(side_y, device=device)[:, None] * row_stride + torch.arange(side_x, device=device)
        _OFFSETS[key] = (jx, jy, steps[:, :, None])
    return _OFFSETS[key]


def _scatter(
    triangles: _Triangles, group: tuple[int, int, int, int, bool], width: int, zbuffer: torch.Tensor,
) -> None:
    """Test columns ``start:end``'s ``side_y x side_x`` boxes of pixel centres; keep the nearest per pixel.

    Candidates are laid out (side_y, side_x, n) so every full-size operation runs
    along the long, contiguous triangle axis. Only float arithmetic decides coverage
    (``min_i(e_i - t_i) > 0``, exact since a float difference is zero only for equal
    floats): on CPUs comparisons into bool tensors cost several times more.
    """
    side_x, side_y, start, end, padded = group
    c = triangles.constants[:, start:end]  # (_ROWS, n)
    jx, jy, steps = _offsets(side_x, side_y, width, c.device)
    px, py = c[_XMIN] + jx, c[_YMIN] + jy  # (sx, n), (sy, n) pixel centres
    # Edge 0 starts at corner 1, edges 1 and 2 at corner 0.
    from_x = (px - c[_X1], px - c[_X0])
    from_y = (py - c[_Y1], py - c[_Y0])
    margin = None
    for i in range(3):
        edge = (c[_DX + i] * from_y[min(i, 1)])[:, None] - (c[_DY + i] * from_x[min(i, 1)])[None]
        edge = edge.sub_(c[_T + i])  # (sy, sx, n): > 0 inside
        margin = edge if margin is None else torch.minimum(margin, edge, out=margin)
    if padded:  # centres past the box (maybe past the image border) are never inside
        past = (jx - c[_BW] + 1.0).clamp_(0.0, 1.0)[None] + (jy - c[_BH] + 1.0).clamp_(0.0, 1.0)[:, None]
        margin = margin.sub_(past.mul_(_PAST))
    inside = margin.clamp_min_(0.0).sign_()  # 1 inside, 0 outside
    inverse_depth = (c[_PA] * jx + c[_PC])[None] + (c[_PB] * jy)[:, None]  # (sy, sx, n)
    # Positive floats order like their bit patterns; outside candidates get 0, i.e. "far"
    # (the clamp also maps a -0.0 to 0).
    bits = inverse_depth.clamp_min_(1e-30).mul_(inside).view(torch.int32).clamp_min_(0)
    # Exact depth ties go to the lower mesh index, whatever else is in the batch.
    key = torch.stack([triangles.face[start:end].expand_as(bits), torch.sub(_FAR, bits)], dim=-1)
    index = (triangles.base[start:end] + steps).view(-1)
    zbuffer.scatter_reduce_(0, index, key.view(torch.int64).view(-1), reduce="amin", include_self=True)


def rasterize_planes(
    x: torch.Tensor, y: torch.Tensor, depth: torch.Tensor, triangles: torch.Tensor | TriangleTable, height: int,
    width: int, cull_backfaces: bool = False, near: float = 1e-3, max_candidates: int = 1 << 20, min_group: int = 1024,
) -> Fragments:
    """:func:`rasterize` on image-major vertex rows ``x, y, depth`` (B, V).

    ``triangles`` is an (F, 3) list or its prepared :class:`TriangleTable` (reused
    across calls by renderers).
    """
    (batch, count), device = x.shape, x.device
    table = triangles if isinstance(triangles, TriangleTable) else TriangleTable.from_triangles(triangles.to(device),
                                                                                                count)
    if table.num_vertices != count:
        raise ValueError(f"the triangle table is for {table.num_vertices} vertices, got {count}")
    # An extra vertex at x = y = 0, depth 1 for the empty pixels' stand-in triangle.
    zero, one = torch.zeros(batch, 1, device=device), torch.ones(batch, 1, device=device)
    x, y, depth = (torch.cat([p.float(), extra], dim=1) for p, extra in ((x, zero), (y, zero), (depth, one)))
    visible = _setup(x, y, depth, table, (height, width), cull_backfaces, near, min_group)
    # Image-major z-buffer plus a tail: centres past a box may index past the last image
    # (with a "far" key, which never covers a pixel).
    longest = _BUCKET_SIDES[sum(side < max(height, width) for side in _BUCKET_SIDES)]
    pixels = batch * height * width
    zbuffer = torch.full((pixels + longest * (width + 1),), torch.iinfo(torch.int64).max, dtype=torch.int64,
                         device=device)
    for side_x, side_y, start, end, padded in visible.groups:
        step = max(1, max_candidates // (side_x * side_y))
        for first in range(start, end, step):
            _scatter(visible, (side_x, side_y, first, min(first + step, end), padded), width, zbuffer)
    return _resolve(zbuffer[:pixels].view(batch, height, width), x, y, depth, table)


def _resolve(
    zbuffer: torch.Tensor, x: torch.Tensor, y: torch.Tensor, depth: torch.Tensor, table: TriangleTable
) -> Fragments:
    """Fragments from the z-buffer (B, H, W) and the vertex rows (B, V + 1)."""
    batch, height, width = zbuffer.shape
    faces, device = table.num_faces, zbuffer.device
    words = zbuffer.view(torch.int32).view(batch, height, width, 2)
    hit = torch.sub(_FAR, words[..., 1]).clamp_(0, 1)  # int32 1 where a triangle won
    winner = (words[..., 0] - faces).mul_(hit).add_(faces).view(-1).long()  # face F (the stand-in) where empty
    vertices = torch.stack([table.by_corner[i].index_select(0, winner) for i in range(3)])  # (3, P)
    offset = (torch.arange(batch, device=device) * x.shape[1])[:, None]  # (B, 1) row start of each image
    flat = (vertices.view(3, batch, height * width) + offset).view(3, -1)
    cx, cy, cz = (_gather(p, flat).view(3, batch, height, width) for p in (x, y, depth))
    px = torch.arange(width, device=device, dtype=cx.dtype)  # (W,)
    py = torch.arange(height, device=device, dtype=cx.dtype)[:, None]  # (H, 1)
    weight = torch.empty_like(cx)
    for i in range(3):  # edge function of the opposite edge over depth: proportional to lambda_i
        first, second = (i + 1) % 3, (i + 2) % 3
        edge = (cx[second] - cx[first]) * (py - cy[first]) - (cy[second] - cy[first]) * (px - cx[first])
        torch.div(edge, cz[i], out=weight[i])
    total = weight[0] + weight[1] + weight[2]  # the sign of the triangle's area; 0 for the stand-in
    scale = total.sign().div_(total.abs().clamp_min_(1e-30))
    barycentric = weight.mul_(scale).clamp_min_(0.0)
    return Fragments(covered=hit.bool(), winner=winner.view(batch, height, width),
                     vertex_planes=vertices.clamp_max_(table.num_vertices - 1).view(3, batch, height, width),
                     barycentric_planes=barycentric)


def rasterize(
    screen: torch.Tensor, depth: torch.Tensor, triangles: torch.Tensor, height: int, width: int,
    cull_backfaces: bool = False, near: float = 1e-3, max_candidates: int = 1 << 20, min_group: int = 1024,
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
    x, y = (screen[..., i] for i in range(2))
    return rasterize_planes(x, y, depth, triangles, height, width, cull_backfaces, near,
                            max_candidates, min_group)


def interpolate_planes(values: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate per-vertex planes (C, V, B) into (C, B, H, W) images, zero where empty."""
    channels, count, batch = values.shape
    flat = values.reshape(channels, count * batch)
    vertices, weights = fragments.vertex_planes, fragments.barycentric_planes.to(values.dtype)
    image = torch.arange(batch, device=values.device)[:, None, None]  # (B, 1, 1)
    out = torch.empty(channels, *weights.shape[1:], dtype=values.dtype, device=values.device)
    for i in range(3):
        index = (vertices[i] * batch + image).view(-1)  # one 1-D gather per channel: the fast path
        for c in range(channels):
            term = flat[c].index_select(0, index).view(weights.shape[1:])
            if i == 0:
                torch.mul(term, weights[i], out=out[c])
            else:
                out[c].addcmul_(term, weights[i])
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
    return interpolate_planes(planes, fragments).permute(1, 2, 3, 0)
