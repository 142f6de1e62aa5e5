"""Tests of FaceRenderer: exact alignment, anti-aliased coverage, compositing, batching, determinism."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from synface.alignment import get_template
from synface.errors import ConfigError, DataError
from synface.generate.facemodel import REGIONS, FaceModel, load_face_model
from synface.generate.lighting import LightConfig, sample_light
from synface.generate.render import FaceRenderer, RenderConfig, benchmark_renderer
from synface.generate.shading import SH_SCALE, srgb_decode

CM_PER_PIXEL = 0.2  # model scale of the synthetic test meshes: template pixels -> centimetres


def _model(vertices: list, triangles: list, landmarks: list[int], regions: torch.Tensor | None = None) -> FaceModel:
    v = torch.tensor(vertices, dtype=torch.float32)
    count = len(v)
    index = torch.tensor(landmarks)[:, None]
    return FaceModel(
        name="test", vertices=v, triangles=torch.tensor(triangles), identity_basis=torch.zeros(0, count, 3),
        expression_basis=torch.zeros(0, count, 3), expression_names=(),
        regions=torch.zeros(count, dtype=torch.int64) if regions is None else regions,
        landmarks5_index=index, landmarks5_weight=torch.ones(5, 1),
        landmarks68_index=index[[0] * 68], landmarks68_weight=torch.ones(68, 1), pivot=torch.tensor([0.0, 0.0, -10.0]),
    )


def _template_in_model(name: str = "synface") -> np.ndarray:
    """The template's five points laid out in the model frame (cm, y up), centred on the crop."""
    template = get_template(name)
    points = np.array(template.points)
    return np.stack([(points[:, 0] - template.width / 2) * CM_PER_PIXEL,
                     -(points[:, 1] - template.height / 2) * CM_PER_PIXEL], 1)


def _marker_model(name: str = "synface", radius_cm: float = 0.6, sides: int = 24) -> FaceModel:
    """A black plane with five white disks whose centres are the landmarks, in the template's layout."""
    vertices = [[-15.0, -15.0, 0.0], [15.0, -15.0, 0.0], [15.0, 15.0, 0.0], [-15.0, 15.0, 0.0]]
    triangles = [[0, 1, 2], [0, 2, 3]]
    landmarks = []
    for x, y in _template_in_model(name):
        centre = len(vertices)
        landmarks.append(centre)
        vertices.append([x, y, 0.05])
        for k in range(sides):
            angle = 2 * math.pi * k / sides
            vertices.append([x + radius_cm * math.cos(angle), y + radius_cm * math.sin(angle), 0.05])
        triangles += [[centre, centre + 1 + k, centre + 1 + (k + 1) % sides] for k in range(sides)]
    return _model(vertices, triangles, landmarks)


def _white_ambient(batch: int) -> torch.Tensor:
    light = torch.zeros(batch, 27)
    light[:, [0, 9, 18]] = 1.0 / SH_SCALE[0]  # renders exactly the albedo
    return light


def _render_markers(name: str, pose: torch.Tensor, distance: torch.Tensor, jitter: torch.Tensor | None = None,
                    supersample: int = 2):
    model = _marker_model(name)
    renderer = FaceRenderer(model, RenderConfig(template=name, supersample=supersample))
    batch = len(pose)
    albedo = torch.ones(batch, model.num_vertices, 3)
    albedo[:, :4] = 0.0  # black plane, white disks
    vertices = model.vertices.expand(batch, -1, -1)
    return renderer.render(vertices, albedo, None, _white_ambient(batch), pose, distance, landmark_jitter=jitter)


def _marker_centroids(image: torch.Tensor, expected: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Coverage-weighted centroids (5, 2) of the white disks near the expected points."""
    linear = srgb_decode(image).mean(0)  # (H, W): disk coverage fraction
    ys, xs = torch.meshgrid(torch.arange(linear.shape[0]), torch.arange(linear.shape[1]), indexing="ij")
    found = []
    for x, y in expected.tolist():
        near = ((xs - x).abs() <= window) & ((ys - y).abs() <= window)
        weight = linear * near
        assert float(weight.sum()) > 10.0  # a whole disk is there
        found.append(torch.stack([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum())
    return torch.stack(found)


@pytest.mark.parametrize("name", ["synface", "arcface"])
@pytest.mark.parametrize("supersample", [1, 2, 3])
def test_landmarks_land_on_the_template(name: str, supersample: int) -> None:
    pose = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 23.0], [0.0, 0.0, -61.0]])
    distance = torch.tensor([60.0, 150.0, 300.0])
    output = _render_markers(name, pose, distance, supersample=supersample)
    template = get_template(name).tensor().float()
    assert output.image.shape == (3, 3, get_template(name).height, get_template(name).width)
    for k in range(3):
        torch.testing.assert_close(output.landmarks5[k], template, atol=1e-3, rtol=0)
        centroids = _marker_centroids(output.image[k], template)
        # Without supersampling coverage is binary and centroids are quantised.
        assert float((centroids - template).norm(dim=1).max()) < (0.5 if supersample == 1 else 0.2)


def test_landmark_jitter_moves_the_crop() -> None:
    shift = torch.tensor([1.5, -0.75])
    jitter = torch.stack([shift.expand(5, 2), torch.randn(5, 2, generator=torch.Generator().manual_seed(0))])
    output = _render_markers("synface", torch.zeros(2, 3), torch.tensor([100.0, 100.0]), jitter)
    template = get_template("synface").tensor().float()
    # A detector off by +shift everywhere makes the crop place the true points at template - shift.
    torch.testing.assert_close(output.landmarks5[0], template - shift, atol=1e-3, rtol=0)
    assert float((output.landmarks5[1] - template).abs().max()) > 0.1
    for k in range(2):  # the pixels agree with the reported landmarks
        centroids = _marker_centroids(output.image[k], output.landmarks5[k])
        assert float((centroids - output.landmarks5[k]).norm(dim=1).max()) < 0.2


def test_antialiased_coverage_matches_analytic_area() -> None:
    # A square rotated in the model (the alignment would undo a roll), so no edge is axis-aligned.
    side, angle = 5.0, math.radians(17.0)
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    square = [[side / 2 * (math.cos(angle) * a - math.sin(angle) * b),
               side / 2 * (math.sin(angle) * a + math.cos(angle) * b), 0.0] for a, b in corners]
    landmarks_at = _template_in_model() * 0.5
    vertices = square + [[x, y, -1.0] for x, y in landmarks_at]  # landmarks behind, off the drawn mesh
    model = _model(vertices, [[0, 1, 2], [0, 2, 3]], [4, 5, 6, 7, 8])
    for supersample in (2, 4):
        renderer = FaceRenderer(model, RenderConfig(supersample=supersample))
        output = renderer.render(model.vertices[None], torch.ones(1, 9, 3), None, _white_ambient(1),
                                 torch.zeros(1, 3), torch.tensor([120.0]))
        # The square lies 110 cm from the camera (pivot at z = -10): image px per cm = 1000 / 110.
        scale = float(output.matrix[0, :, :2].det().sqrt()) * 1000.0 / 110.0  # crop px per cm
        area, perimeter = (side * scale) ** 2, 4 * side * scale
        error = abs(float(output.mask.sum()) - area)
        assert error < perimeter / (4 * supersample)  # worst case: half a sub-pixel along every edge
        assert error < 0.005 * area
        assert ((output.mask > 0.05) & (output.mask < 0.95)).sum() > perimeter * 0.5  # edges are anti-aliased
        torch.testing.assert_close(srgb_decode(output.image).mean(1, keepdim=True), output.mask, atol=2e-3, rtol=0)


def _sphere_model(rows: int = 16, columns: int = 32, radius: float = 9.0) -> FaceModel:
    vertices = [[0.0, radius, 0.0], [0.0, -radius, 0.0]]
    for i in range(1, rows):
        theta = math.pi * i / rows
        for j in range(columns):
            phi = 2 * math.pi * j / columns
            vertices.append([radius * math.sin(theta) * math.sin(phi), radius * math.cos(theta),
                             radius * math.sin(theta) * math.cos(phi)])

    def ring(i: int, j: int) -> int:
        return 2 + (i - 1) * columns + j % columns

    triangles = [[0, ring(1, j), ring(1, j + 1)] for j in range(columns)]
    triangles += [[1, ring(rows - 1, j + 1), ring(rows - 1, j)] for j in range(columns)]
    for i in range(1, rows - 1):
        for j in range(columns):
            triangles.append([ring(i, j), ring(i + 1, j), ring(i + 1, j + 1)])
            triangles.append([ring(i, j), ring(i + 1, j + 1), ring(i, j + 1)])
    # Front-facing landmarks roughly in a face's layout.
    landmarks = [ring(6, 30), ring(6, 2), ring(8, 0), ring(11, 30), ring(11, 2)]
    regions = torch.zeros(len(vertices), dtype=torch.int64)
    regions[[ring(12, j) for j in range(columns)]] = REGIONS.index("teeth")
    return _model(vertices, triangles, landmarks, regions)


def _random_inputs(model: FaceModel, batch: int, seed: int) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    return {
        "vertices": model.vertices + 0.1 * torch.randn(batch, model.num_vertices, 3, generator=generator),
        "albedo": torch.rand(batch, model.num_vertices, 3, generator=generator),
        "specular": torch.rand(batch, model.num_vertices, generator=generator),
        "light": torch.from_numpy(np.stack([sample_light(rng, LightConfig()) for _ in range(batch)])),
        "pose": torch.from_numpy(rng.uniform(-35, 35, (batch, 3)).astype(np.float32)),
        "camera_distance": torch.from_numpy(rng.uniform(50, 300, batch).astype(np.float32)),
        "landmark_jitter": torch.randn(batch, 5, 2, generator=generator),
        "background": torch.rand(batch, 3, 112, 96, generator=generator),
    }


def test_batch_equals_items_and_repeats_exactly() -> None:
    model = _sphere_model()
    renderer = FaceRenderer(model)
    inputs = _random_inputs(model, 4, seed=1)
    together = renderer.render(**inputs)
    again = renderer.render(**inputs)
    for field in ("image", "mask", "landmarks5", "matrix"):
        assert torch.equal(getattr(together, field), getattr(again, field))  # CPU determinism, bit for bit
    for k in range(4):
        alone = renderer.render(**{key: value[k : k + 1] for key, value in inputs.items()})
        for field in ("image", "mask", "landmarks5", "matrix"):
            torch.testing.assert_close(getattr(alone, field)[0], getattr(together, field)[k], atol=1e-5, rtol=0)


def test_background_composite_and_occlusion() -> None:
    model = _sphere_model()
    inputs = _random_inputs(model, 2, seed=2)
    inputs["specular"] = None
    output = FaceRenderer(model).render(**inputs)
    empty = output.mask.expand_as(output.image) == 0
    assert empty.any() and (output.mask == 1).any()
    torch.testing.assert_close(output.image[empty], inputs["background"][empty], atol=2e-5, rtol=0)
    black = FaceRenderer(model).render(**{**inputs, "background": None})
    full = output.mask.expand_as(output.image) == 1
    torch.testing.assert_close(black.image[full], output.image[full], atol=1e-6, rtol=0)
    assert float(black.image[empty].abs().max()) == 0.0
    # The teeth band reflects less light when occluded; other pixels do not change.
    dim = FaceRenderer(model, RenderConfig(teeth_occlusion=0.25)).render(**{**inputs, "background": None})
    changed = (srgb_decode(dim.image) < srgb_decode(black.image) - 1e-4).any(1)
    assert changed.any() and not (srgb_decode(dim.image) > srgb_decode(black.image) + 1e-6).any()


def test_culling_is_optional_per_call() -> None:
    # A single triangle seen from behind disappears with culling and shows without it.
    model = _model([[-9, -9, 0], [9, -9, 0], [0, 9, 0]] + [[x, y, 0.0] for x, y in _template_in_model()],
                   [[0, 2, 1]], [3, 4, 5, 6, 7])
    renderer = FaceRenderer(model)
    args = (model.vertices[None], torch.ones(1, 8, 3), None, _white_ambient(1), torch.zeros(1, 3), torch.tensor([90.0]))
    assert float(renderer.render(*args).mask.sum()) == 0.0
    assert float(renderer.render(*args, cull_backfaces=False).mask.sum()) > 100.0


def test_bad_inputs_raise_one_line_errors() -> None:
    model = _sphere_model()
    renderer = FaceRenderer(model)
    inputs = _random_inputs(model, 2, seed=3)
    with pytest.raises(DataError, match="albedo has shape"):
        renderer.render(**{**inputs, "albedo": inputs["albedo"][:, :-1]})
    with pytest.raises(DataError, match="background has shape"):
        renderer.render(**{**inputs, "background": torch.zeros(2, 3, 112, 112)})
    with pytest.raises(ConfigError, match="supersample"):
        RenderConfig(supersample=0)
    with pytest.raises(ConfigError, match="template"):
        RenderConfig.from_dict({"template": "vggface"})


def test_benchmark_reports_throughput() -> None:
    result = benchmark_renderer(_sphere_model(), batch_size=2, iterations=1, device="cpu")
    assert result["images_per_second"] > 0 and result["batch_size"] == 2


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    model = _sphere_model()
    inputs = _random_inputs(model, 3, seed=4)
    cpu = FaceRenderer(model).render(**inputs)
    cuda = FaceRenderer(model, device="cuda").render(**{k: v.cuda() for k, v in inputs.items()})
    # sin/cos/pow differ by an ulp between devices, which can flip a sub-pixel exactly on an edge.
    for field in ("image", "mask"):
        difference = (getattr(cuda, field).cpu() - getattr(cpu, field)).abs()
        assert float((difference > 1e-3).float().mean()) < 0.005
    torch.testing.assert_close(cuda.landmarks5.cpu(), cpu.landmarks5, atol=1e-3, rtol=0)


def _check_real_model(model: FaceModel) -> None:
    renderer = FaceRenderer(model)
    batch = 4
    rng = np.random.default_rng(0)
    light = torch.from_numpy(np.stack([sample_light(rng, LightConfig()) for _ in range(batch)]))
    output = renderer.render(model.vertices.expand(batch, -1, -1), torch.full((batch, model.num_vertices, 3), 0.5),
                             torch.full((batch, model.num_vertices), 0.3), light,
                             torch.tensor([[0.0, 0.0, 0.0], [35.0, 5.0, 0.0], [-35.0, -10.0, 5.0], [0.0, 15.0, -10.0]]),
                             torch.tensor([60.0, 100.0, 150.0, 250.0]))
    assert torch.isfinite(output.image).all()
    assert float(output.mask.mean()) > 0.5  # the face fills most of the crop
    centre = output.mask[:, 0, 45:95, 38:58]
    assert float(centre.min()) == 1.0  # no holes in the middle of the face
    residual = output.landmarks5 - get_template("synface").tensor().float()
    assert float(residual[0].norm(dim=-1).max()) < 3.0  # frontal: the model's layout is close to the template
    # Turned heads: the least-squares similarity leaves residuals that sum to zero.
    torch.testing.assert_close(residual.mean(1), torch.zeros(batch, 2), atol=1e-3, rtol=0)


@pytest.mark.shared
@pytest.mark.slow
def test_renders_the_ict_model(ict_model_dir: Path) -> None:
    _check_real_model(load_face_model(ict_model_dir))


@pytest.mark.slow
def test_renders_the_builtin_head() -> None:
    from synface.generate.builtin_head import build_builtin_model

    _check_real_model(build_builtin_model())
