"""Tests of SH irradiance, specular, vertex normals and sRGB against slow references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synface.generate.lighting import (
    SH_NORM,
    environment_to_sh,
    radiance_to_light,
    sh_polynomials,
)
from synface.generate.shading import (
    SH_SCALE,
    diffuse_irradiance,
    dominant_light,
    sh_basis,
    specular_shading,
    srgb_decode,
    srgb_encode,
    vertex_incidence,
    vertex_normals,
)


def _sphere_quadrature(nodes: int = 160, angles: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """Directions (N, 3) and weights (N,) integrating exactly over the unit sphere for smooth functions."""
    cos_theta, weight_theta = np.polynomial.legendre.leggauss(nodes)
    phi = (np.arange(angles) + 0.5) * (2 * math.pi / angles)
    c, p = np.meshgrid(cos_theta, phi, indexing="ij")
    s = np.sqrt(1 - c**2)
    directions = np.stack([s * np.cos(p), s * np.sin(p), c], -1).reshape(-1, 3)
    weights = (weight_theta[:, None] * np.full(angles, 2 * math.pi / angles)).reshape(-1)
    return directions, weights


def _normals(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.normal(size=(count, 3))
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _render_factor(normals: np.ndarray, light: np.ndarray) -> np.ndarray:
    """diffuse_irradiance for one light over (N, 3) normals -> (N, 3)."""
    planes = torch.from_numpy(normals.T.copy()).double()[:, :, None]  # (3, N, 1)
    out = diffuse_irradiance(planes, torch.from_numpy(light).double()[None])
    return out[:, :, 0].T.numpy()


def test_basis_constants_and_ambient() -> None:
    assert SH_SCALE[0] == pytest.approx(math.sqrt(math.pi) / 2)
    basis = sh_basis(torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    assert basis[:, 0].tolist() == pytest.approx([SH_SCALE[0]] * 2)
    light = np.zeros(27)
    light[[0, 9, 18]] = [0.2 / SH_SCALE[0], 0.5 / SH_SCALE[0], 1.0 / SH_SCALE[0]]
    factor = _render_factor(_normals(50), light)
    np.testing.assert_allclose(factor, np.tile([0.2, 0.5, 1.0], (50, 1)), rtol=1e-12)


def test_polynomials_are_orthonormal_with_sh_norm() -> None:
    directions, weights = _sphere_quadrature(40, 80)
    basis = np.stack([SH_NORM * sh_polynomials(d) for d in directions])  # (N, 9)
    gram = (basis * weights[:, None]).T @ basis
    np.testing.assert_allclose(gram, np.eye(9), atol=1e-10)


def test_irradiance_matches_numerical_integration_for_band_limited_light() -> None:
    # A band-limited environment (degree <= 2) has an exact 9-term irradiance.
    directions, weights = _sphere_quadrature()
    rng = np.random.default_rng(3)
    coefficients = rng.normal(size=(9, 3)) * 0.3
    coefficients[0] += 2.0
    radiance = np.stack([SH_NORM * sh_polynomials(d) for d in directions]) @ coefficients  # (N, 3)
    normals = _normals(20)
    cosine = np.clip(normals @ directions.T, 0, None)  # (20, N)
    expected = (cosine * weights) @ radiance / math.pi  # Lambertian outgoing radiance per unit albedo
    got = _render_factor(normals, radiance_to_light(coefficients))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)


def test_directional_light_matches_closed_form_and_true_cosine() -> None:
    # Second-order SH of a clamped cosine: s * (1/4 + cos/2 + 5/32 (3 cos^2 - 1)).
    direction = np.array([0.3, 0.5, 0.8])
    direction /= np.linalg.norm(direction)
    light = environment_to_sh(np.zeros(3), [(direction, np.array([1.0, 0.5, 2.0]), 0.0)])
    normals = _normals(200, seed=1)
    cosine = normals @ direction
    closed = 0.25 + cosine / 2 + 5.0 / 32.0 * (3 * cosine**2 - 1)
    got = _render_factor(normals, light)
    np.testing.assert_allclose(got, closed[:, None] * [1.0, 0.5, 2.0], atol=1e-10)
    # The approximation stays within 0.1 of the exact clamped cosine (known bound ~0.094).
    assert np.abs(got[:, 0] - np.clip(cosine, 0, None)).max() < 0.1


def test_dominant_light_recovers_a_directional_light() -> None:
    direction = np.array([-0.6, 0.3, 0.74])
    direction /= np.linalg.norm(direction)
    light = environment_to_sh(np.full(3, 0.3), [(direction, np.array([0.8, 0.6, 0.4]), 0.0)])
    found, strength = dominant_light(torch.from_numpy(light)[None])
    np.testing.assert_allclose(found[0].numpy(), direction, atol=1e-12)
    np.testing.assert_allclose(strength[0].numpy(), [0.8, 0.6, 0.4], atol=1e-12)


def test_specular_peaks_at_the_half_vector() -> None:
    light_dir = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    light = torch.from_numpy(environment_to_sh(np.zeros(3), [(light_dir.numpy(), np.ones(3), 0.0)]))[None]
    view = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    half = torch.nn.functional.normalize(light_dir + view, dim=0)
    angles = torch.linspace(-0.5, 0.5, 201, dtype=torch.float64)
    normals = torch.stack([torch.zeros_like(angles), torch.sin(angles), torch.cos(angles)])[:, :, None]

    def shade(n: torch.Tensor) -> torch.Tensor:
        return specular_shading(n, view[:, None, None].expand_as(n), light, shininess=30.0)

    out = shade(normals)[0, :, 0]
    # The lobe peaks near the half vector (pulled slightly towards the light by n.l).
    assert float(angles[out.argmax()]) == pytest.approx(math.atan2(float(half[1]), float(half[2])), abs=0.05)
    at_half = shade(half[:, None, None])[:, 0, 0]
    expected = (38 / (8 * math.pi)) * float(half @ light_dir)  # (s + 8) / (8 pi) * (n.h)^s * n.l, n = h
    torch.testing.assert_close(at_half, torch.full((3,), expected, dtype=torch.float64))
    assert float(shade(-normals).abs().max()) == 0.0


def _slow_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(vertices)
    for a, b, c in triangles.tolist():
        n = torch.linalg.cross(vertices[b] - vertices[a], vertices[c] - vertices[a])
        for v in (a, b, c):
            out[v] += n
    return torch.nn.functional.normalize(out, dim=-1)


def test_vertex_normals_match_slow_reference_including_high_valence_and_subsets() -> None:
    torch.manual_seed(0)
    # A fan of 40 triangles around vertex 0 (valence 40) plus a strip: exercises the overflow table.
    ring = 40
    angles = torch.arange(ring) * (2 * math.pi / ring)
    rim = torch.stack([torch.cos(angles), torch.sin(angles), 0.2 * torch.randn(ring)], -1)
    vertices = torch.cat([torch.tensor([[0.0, 0.0, 0.5]]), rim, rim[:10] * 1.5 + 0.1 * torch.randn(10, 3)])
    fan = [(0, 1 + i, 1 + (i + 1) % ring) for i in range(ring)]
    strip = [(1 + i, 41 + i, 2 + i) for i in range(9)]
    triangles = torch.tensor(fan + strip)
    incidence = vertex_incidence(triangles, len(vertices))
    assert incidence.overflow_vertices.tolist() == [0]
    batch = torch.stack([vertices, vertices * torch.tensor([1.0, -2.0, 0.5])], dim=-1)  # (V, 3, 2)
    planes = batch.permute(1, 0, 2).contiguous()  # (3, V, 2)
    full = vertex_normals(planes, triangles, incidence)
    for b in range(2):
        torch.testing.assert_close(full[:, :, b].T, _slow_normals(batch[:, :, b], triangles), atol=1e-6, rtol=0)
    subset = torch.tensor([0, 3, 17, 45])
    torch.testing.assert_close(vertex_normals(planes, triangles, incidence, subset), full[:, subset], atol=1e-6, rtol=0)


def test_srgb_transfer() -> None:
    linear = torch.linspace(0, 1, 1001)
    torch.testing.assert_close(srgb_decode(srgb_encode(linear)), linear, atol=1e-6, rtol=0)
    assert float(srgb_encode(torch.tensor(0.5))) == pytest.approx(0.735357, abs=1e-5)
    assert float(srgb_encode(torch.tensor(0.002))) == pytest.approx(0.02584, abs=1e-6)
    assert float(srgb_encode(torch.tensor(1.5))) == 1.0
