"""Tests of the z-buffer rasteriser against analytic cases and slow point-in-triangle references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.generate.rasterize import interpolate, rasterize


def _grid_mesh(cells: int, low: float, high: float, jitter: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A square [low, high]^2 split into 2 * cells^2 triangles, inner vertices jittered, labels shuffled."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(low, high, cells + 1)
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    points = np.stack([xs, ys], -1).reshape(-1, 2)
    inner = (points > low) & (points < high)
    points = points + inner.all(1, keepdims=True) * rng.uniform(-jitter, jitter, points.shape)
    index = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    triangles = []
    for i in range(cells):
        for j in range(cells):
            a, b, c, d = index[i, j], index[i + 1, j], index[i + 1, j + 1], index[i, j + 1]
            first, second = ((a, b, c), (a, c, d)) if rng.random() < 0.5 else ((a, b, d), (b, c, d))
            triangles += [first, second]
    triangles = np.array(triangles)
    flip = rng.random(len(triangles)) < 0.5  # mixed winding: no culling, orientation must not matter
    triangles[flip] = triangles[flip][:, [0, 2, 1]]
    relabel = rng.permutation(len(points))  # vertex order must not matter either
    ordered = np.empty_like(points)
    ordered[relabel] = points
    return torch.tensor(ordered, dtype=torch.float32), torch.tensor(relabel[triangles])


def _coverage_counts(screen: torch.Tensor, triangles: torch.Tensor, size: int) -> torch.Tensor:
    """How many triangles cover each pixel centre, rasterising each triangle alone.

    Batch item k keeps only triangle k in front of the near plane, so every triangle is
    rasterised by the same code with the same vertex labels as in the full mesh.
    """
    faces = len(triangles)
    depth = torch.zeros(faces, len(screen))
    depth[torch.arange(faces)[:, None], triangles] = 1.0
    fragments = rasterize(screen.expand(faces, -1, -1), depth, triangles, size, size, near=0.5)
    return fragments.mask.sum(0)


@pytest.mark.parametrize("jitter, seed", [(0.0, 0), (1.3, 1), (1.9, 2)])
def test_shared_edges_have_no_cracks_and_no_double_pixels(jitter: float, seed: int) -> None:
    # Unjittered vertices sit on pixel centres, so many edges pass exactly through centres.
    screen, triangles = _grid_mesh(6, 2.0, 26.0, jitter, seed)
    if seed == 2:  # integer vertices: exact ties everywhere
        screen = screen.round()
    counts = _coverage_counts(screen, triangles, 30)
    centres = torch.arange(30)
    inside = ((centres >= 2) & (centres < 26))  # top-left rule on the outer square
    expected = (inside[None, :] & inside[:, None]).long()
    torch.testing.assert_close(counts, expected, rtol=0, atol=0)
    full = rasterize(screen[None], torch.ones(1, len(screen)), triangles, 30, 30)
    torch.testing.assert_close(full.mask[0].long(), expected, rtol=0, atol=0)


def test_edges_through_pixel_centres_are_owned_exactly_once() -> None:
    # Shared edges whose real line passes through a pixel centre: after float32 rounding
    # the centre lies within ~1e-6 of the edge, where only evaluating the edge function
    # identically in both triangles keeps it from being covered twice or not at all.
    rng = np.random.default_rng(11)
    configs = 400
    angle = rng.uniform(0, np.pi, configs)
    direction = np.stack([np.cos(angle), np.sin(angle)], -1)
    normal = np.stack([-direction[:, 1], direction[:, 0]], -1)
    centre = np.array([15.0, 15.0])
    a = centre - rng.uniform(3, 9, (configs, 1)) * direction
    b = centre + rng.uniform(3, 9, (configs, 1)) * direction
    p, q = centre + 7 * normal, centre - 7 * normal
    screen = torch.tensor(np.stack([a, b, p, q], 1), dtype=torch.float32).repeat_interleave(2, 0)
    triangles = torch.tensor([[0, 1, 2], [1, 0, 3]])
    depth = torch.ones(2 * configs, 4)
    depth[0::2, 3] = 0.0  # even items: only the first triangle is in front of the near plane
    depth[1::2, 2] = 0.0
    mask = rasterize(screen, depth, triangles, 30, 30, near=0.5).mask.reshape(configs, 2, 30, 30)
    counts = mask.sum(1)
    assert counts.max() <= 1
    assert torch.equal(counts[:, 15, 15], torch.ones(configs, dtype=torch.int64))


def test_top_left_rule_on_an_axis_aligned_square() -> None:
    screen = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]])
    triangles = torch.tensor([[0, 1, 2], [0, 2, 3]])
    mask = rasterize(screen, torch.ones(1, 4), triangles, 12, 12).mask[0]
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[:10, :10] = True
    assert torch.equal(mask, expected)


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def _inside_reference(corners: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Slow float64 point-in-triangle test of every pixel centre; also flags near-edge centres."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    edges = []
    for i in range(3):
        a, b = corners[(i + 1) % 3], corners[(i + 2) % 3]
        length = np.hypot(*(b - a))
        edges.append(((b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])) / length)
    edges = np.stack(edges)
    sign = np.sign(_cross(corners[1] - corners[0], corners[2] - corners[0]))
    inside = (edges * sign > 0).all(0)
    ambiguous = (np.abs(edges) < 1e-4).any(0)
    return inside, ambiguous


def test_random_triangles_match_point_in_triangle_reference() -> None:
    rng = np.random.default_rng(5)
    size = 48
    corners = rng.uniform(-20, size + 20, (40, 3, 2))  # many cross the image border
    screen = torch.tensor(corners.reshape(40, 3, 2), dtype=torch.float32)
    fragments = rasterize(screen, torch.ones(40, 3), torch.tensor([[0, 1, 2]]), size, size)
    for k in range(40):
        inside, ambiguous = _inside_reference(screen[k].double().numpy(), size)
        got = fragments.mask[k].numpy()
        assert (got[~ambiguous] == inside[~ambiguous]).all()


def test_coverage_count_matches_area() -> None:
    # Nosarzewska: lattice points N of a convex set satisfy A - P/2 < N <= A + P/2 + 1.
    rng = np.random.default_rng(6)
    corners = rng.uniform(4, 124, (30, 3, 2))
    mask = rasterize(torch.tensor(corners, dtype=torch.float32), torch.ones(30, 3), torch.tensor([[0, 1, 2]]),
                     128, 128).mask
    for k in range(30):
        c = corners[k]
        area = abs(_cross(c[1] - c[0], c[2] - c[0])) / 2
        perimeter = sum(np.hypot(*(c[(i + 1) % 3] - c[i])) for i in range(3))
        count = int(mask[k].sum())
        assert area - perimeter / 2 < count <= area + perimeter / 2 + 1


def test_nearer_triangle_wins_where_they_overlap() -> None:
    screen = torch.tensor([[[4.0, 4.0], [30.0, 6.0], [10.0, 28.0], [12.0, 2.0], [34.0, 30.0], [2.0, 20.0]]])
    depth = torch.tensor([[2.0, 2.0, 2.0, 5.0, 5.0, 5.0]])
    near_first = torch.tensor([[0, 1, 2], [3, 4, 5]])
    alone = [rasterize(screen, depth, near_first[[k]], 36, 36).mask[0] for k in range(2)]
    assert (alone[0] & alone[1]).sum() > 50  # a real overlap
    for triangles, near_index in ((near_first, 0), (near_first.flip(0), 1)):
        triangle = rasterize(screen, depth, triangles, 36, 36).triangle[0]
        assert torch.equal(triangle[alone[0]], torch.full_like(triangle[alone[0]], near_index))
        assert torch.equal(triangle >= 0, alone[0] | alone[1])


def test_exact_depth_ties_go_to_the_lower_triangle_index() -> None:
    big = [[1.0, 1.0], [30.0, 2.0], [3.0, 30.0]]
    small = [[5.0, 5.0], [12.0, 5.5], [5.5, 12.0]]
    depth = torch.full((1, 6), 3.0)
    for first, second in ((big, small), (small, big)):
        screen = torch.tensor([first + second])
        triangle = rasterize(screen, depth, torch.tensor([[0, 1, 2], [3, 4, 5]]), 32, 32).triangle[0]
        assert (triangle == 0).sum() > 20 and (triangle == 1).sum() >= 0
        overlap = rasterize(torch.tensor([small]), depth[:, :3], torch.tensor([[0, 1, 2]]), 32, 32).mask[0]
        assert torch.equal(triangle[overlap], torch.zeros_like(triangle[overlap]))


def test_interpenetrating_triangles_switch_where_depths_cross() -> None:
    screen = torch.tensor([[[0.0, 0.0], [40.0, 0.0], [20.0, 40.0], [0.0, 40.0], [40.0, 40.0], [20.0, 0.0]]])
    depth = torch.tensor([[2.0, 8.0, 5.0, 2.5, 7.0, 4.0]])
    triangles = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fragments = rasterize(screen, depth, triangles, 40, 40)
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    inverse = []
    for k in range(2):  # 1/depth is linear in screen space: solve its plane per triangle
        corners = screen[0, triangles[k]].double()
        system = torch.cat([corners, torch.ones(3, 1, dtype=torch.float64)], 1)
        plane = torch.linalg.solve(system, 1.0 / depth[0, triangles[k]].double())
        inverse.append(plane[0] * xs + plane[1] * ys + plane[2])
    both = (rasterize(screen, depth, triangles[[0]], 40, 40).mask[0]
            & rasterize(screen, depth, triangles[[1]], 40, 40).mask[0])
    clear = both & ((inverse[0] - inverse[1]).abs() > 1e-4)
    expected = (inverse[1] > inverse[0]).long()
    assert clear.sum() > 100 and 0 < expected[clear].sum() < clear.sum()
    assert torch.equal(fragments.triangle[0][clear], expected[clear])


def test_perspective_correct_interpolation_on_a_slanted_plane() -> None:
    focal, centre = 40.0, 32.0
    # A quad in camera space (x right, y down, depth forward) receding from depth 2 to 8.
    world = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [1.5, 1.5, 8.0], [-1.5, 1.5, 8.0]], dtype=torch.float64)
    screen = (focal * world[:, :2] / world[:, 2:] + centre)[None].float()
    triangles = torch.tensor([[0, 1, 2], [0, 2, 3]])
    fragments = rasterize(screen, world[None, :, 2].float(), triangles, 64, 64)
    got = interpolate(world[None].float(), fragments)[0]  # (H, W, 3): the 3D point seen at each pixel
    # Analytic: intersect each pixel's ray with the quad's plane.
    normal = torch.linalg.cross(world[1] - world[0], world[3] - world[0])
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    rays = torch.stack([(xs - centre) / focal, (ys - centre) / focal, torch.ones_like(xs)], -1).double()
    expected = rays * ((world[0] @ normal) / (rays @ normal))[..., None]
    mask = fragments.mask[0]
    assert mask.sum() > 600
    torch.testing.assert_close(got[mask].double(), expected[mask], atol=2e-4, rtol=1e-4)
    # Screen-space (affine) interpolation would be far off: the test can tell them apart.
    pixels = torch.stack([xs[mask], ys[mask], torch.ones_like(xs[mask])], -1).double()  # (N, 3)
    corners = screen[0, triangles].double()  # (2, 3, 2)
    systems = torch.cat([corners.transpose(1, 2), torch.ones(2, 1, 3, dtype=torch.float64)], 1)  # (2, 3, 3)
    affine_weights = torch.linalg.solve(systems[fragments.triangle[0][mask]], pixels)  # (N, 3)
    affine = (affine_weights[..., None] * world[triangles][fragments.triangle[0][mask]]).sum(1)
    assert (affine - expected[mask]).abs().max() > 0.05


def test_culling_near_plane_and_offscreen() -> None:
    front = torch.tensor([[[2.0, 2.0], [2.0, 12.0], [12.0, 2.0]]])  # counter-clockwise as viewed
    one = torch.ones(1, 3)
    triangle = torch.tensor([[0, 1, 2]])
    assert rasterize(front, one, triangle, 16, 16, cull_backfaces=True).mask.sum() > 40
    assert rasterize(front, one, triangle[:, [0, 2, 1]], 16, 16, cull_backfaces=True).mask.sum() == 0
    assert rasterize(front, one, triangle[:, [0, 2, 1]], 16, 16).mask.sum() > 40
    behind = torch.tensor([[1.0, 1.0, -1.0]])
    assert rasterize(front, behind, triangle, 16, 16).mask.sum() == 0
    assert rasterize(front, torch.tensor([[1.0, 1.0, 0.5]]), triangle, 16, 16, near=1.0).mask.sum() == 0
    huge = torch.tensor([[[-1e4, -1e4], [3e4, -1e4], [-1e4, 3e4]]])
    assert rasterize(huge, one, triangle, 16, 20).mask.all()
    away = torch.tensor([[[30.0, 2.0], [40.0, 2.0], [30.0, 9.0]]])
    assert rasterize(away, one, triangle, 16, 16).mask.sum() == 0


def test_batch_chunking_and_determinism() -> None:
    rng = np.random.default_rng(7)
    screen, triangles = _grid_mesh(8, 4.0, 30.0, 1.0, 3)
    batch = torch.stack([screen + torch.tensor(rng.uniform(-3, 3, 2), dtype=torch.float32) for _ in range(3)])
    depth = torch.tensor(rng.uniform(1, 3, (3, len(screen))), dtype=torch.float32)
    together = rasterize(batch, depth, triangles, 40, 36)
    again = rasterize(batch, depth, triangles, 40, 36)
    chunked = rasterize(batch, depth, triangles, 40, 36, max_candidates=7)
    for other in (again, chunked):
        assert torch.equal(together.triangle, other.triangle)
        assert torch.equal(together.barycentric, other.barycentric)
    for k in range(3):
        alone = rasterize(batch[[k]], depth[[k]], triangles, 40, 36)
        assert torch.equal(alone.triangle[0], together.triangle[k])
        torch.testing.assert_close(alone.barycentric[0], together.barycentric[k], atol=1e-6, rtol=0)
        assert torch.equal(alone.vertices[0], together.vertices[k])
    sums = together.barycentric.sum(-1)
    torch.testing.assert_close(sums[together.mask], torch.ones(int(together.mask.sum())))
    assert (~together.mask).any() and float(sums[~together.mask].abs().max()) == 0.0


def test_bucket_merging_and_chunking_do_not_change_results() -> None:
    # Merged buckets test padded boxes: the extra centres past each box must never count.
    rng = np.random.default_rng(8)
    screen, triangles = _grid_mesh(10, 1.0, 47.0, 1.5, 4)
    batch = torch.stack([screen + torch.tensor(rng.uniform(-6, 6, 2), dtype=torch.float32) for _ in range(3)])
    depth = torch.tensor(rng.uniform(1, 3, (3, len(screen))), dtype=torch.float32)
    reference = rasterize(batch, depth, triangles, 44, 40, min_group=1)
    for options in ({"min_group": 10**9}, {"min_group": 10**9, "max_candidates": 5}, {"max_candidates": 3}):
        other = rasterize(batch, depth, triangles, 44, 40, **options)
        assert torch.equal(reference.triangle, other.triangle), options
        assert torch.equal(reference.barycentric, other.barycentric), options
    assert reference.mask.any() and (~reference.mask).any()


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)])
def test_winding_decides_culling_whatever_the_vertex_order(order: tuple[int, int, int]) -> None:
    # The rasteriser sorts corners by vertex index internally; culling must follow the mesh's winding.
    corners = torch.tensor([[2.0, 2.0], [2.0, 12.0], [12.0, 2.0]])  # counter-clockwise as viewed
    labels = torch.tensor([5, 1, 3])  # vertex indices in an order unrelated to the winding
    screen = torch.zeros(1, 6, 2)
    screen[0, labels] = corners
    triangle = labels[list(order)][None]
    front = order in ((0, 1, 2), (1, 2, 0), (2, 0, 1))
    culled = rasterize(screen, torch.ones(1, 6), triangle, 16, 16, cull_backfaces=True)
    assert bool(culled.mask.any()) == front
    kept = rasterize(screen, torch.ones(1, 6), triangle, 16, 16)
    assert int(kept.mask.sum()) > 40
    # The barycentrics belong to the triangle's own corner order.
    weights = kept.barycentric[0][kept.mask[0]]  # (N, 3)
    expected = torch.stack([kept.vertices[0][kept.mask[0]][:, k] for k in range(3)], 1)
    assert torch.equal(expected, triangle.expand_as(expected))
    centroid = (weights[:, :, None] * corners[[labels.tolist().index(v) for v in triangle[0].tolist()]]).sum(1)
    ys, xs = kept.mask[0].nonzero(as_tuple=True)
    torch.testing.assert_close(centroid, torch.stack([xs, ys], 1).float(), atol=1e-4, rtol=0)


def test_barycentrics_match_a_float64_reference() -> None:
    rng = np.random.default_rng(9)
    corners = rng.uniform(0, 64, (50, 3, 2))
    depths = rng.uniform(1, 20, (50, 3))
    fragments = rasterize(torch.tensor(corners, dtype=torch.float32), torch.tensor(depths, dtype=torch.float32),
                          torch.tensor([[0, 1, 2]]), 64, 64)
    error = 0.0
    for k in range(50):
        ys, xs = (v.double().numpy() for v in fragments.mask[k].nonzero(as_tuple=True))
        c = corners[k].astype(np.float32).astype(np.float64)
        edges = []
        for i in range(3):
            a, b = c[(i + 1) % 3], c[(i + 2) % 3]
            edges.append(((b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])) / np.float32(depths[k, i]))
        expected = np.stack(edges, 1) / np.sum(edges, 0)[:, None]
        got = fragments.barycentric[k][fragments.mask[k]].double().numpy()
        error = max(error, float(np.abs(got - expected).max(initial=0.0)))
    assert error < 1e-5


def test_empty_inputs() -> None:
    nothing = rasterize(torch.zeros(2, 3, 2), torch.ones(2, 3), torch.zeros(0, 3, dtype=torch.int64), 8, 8)
    assert nothing.mask.shape == (2, 8, 8) and not nothing.mask.any()
    assert float(nothing.barycentric.abs().max()) == 0.0 and int(nothing.triangle.max()) == -1
    no_images = rasterize(torch.zeros(0, 3, 2), torch.ones(0, 3), torch.tensor([[0, 1, 2]]), 8, 8)
    assert no_images.mask.shape == (0, 8, 8)
