from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synface.alignment import (
    align_faces,
    apply_affine,
    get_template,
    invert_affine,
    umeyama,
    warp_affine,
)
from synface.errors import ConfigError


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def _reference_umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Closed form for 2-D similarity via complex least squares: dst = a * src + b."""
    zs = src[:, 0] + 1j * src[:, 1]
    zd = dst[:, 0] + 1j * dst[:, 1]
    zs_c, zd_c = zs - zs.mean(), zd - zd.mean()
    a = (np.conj(zs_c) * zd_c).sum() / (np.abs(zs_c) ** 2).sum()
    b = zd.mean() - a * zs.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def test_umeyama_recovers_exact_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, size=(5, 2))
    truth = _similarity(1.7, 0.3, 12.0, -4.0)
    dst = src @ truth[:, :2].T + truth[:, 2]
    fit = umeyama(torch.from_numpy(src), torch.from_numpy(dst)).numpy()
    np.testing.assert_allclose(fit, truth, atol=1e-9)


def test_umeyama_matches_least_squares_reference_on_noisy_points():
    rng = np.random.default_rng(1)
    for _ in range(20):
        src = rng.uniform(0, 250, size=(5, 2))
        dst = rng.uniform(0, 112, size=(5, 2))
        fit = umeyama(torch.from_numpy(src), torch.from_numpy(dst)).numpy()
        np.testing.assert_allclose(fit, _reference_umeyama(src, dst), atol=1e-9)


def test_templates_and_inverse():
    syn, arc = get_template("synface"), get_template("arcface")
    assert (syn.height, syn.width, arc.height, arc.width) == (112, 96, 112, 112)
    np.testing.assert_allclose(arc.tensor()[:, 0] - syn.tensor()[:, 0], 8.0)
    m = torch.from_numpy(_similarity(0.8, -0.4, 3.0, 9.0))
    pts = torch.rand(7, 2, dtype=torch.float64) * 100
    back = apply_affine(invert_affine(m), apply_affine(m, pts))
    torch.testing.assert_close(back, pts)
    with pytest.raises(ConfigError, match="unknown crop template"):
        get_template("vgg")


def test_warp_matches_direct_pixel_lookup():
    """A pure translation by whole pixels must copy pixels exactly (centre convention)."""
    img = torch.arange(3 * 40 * 50, dtype=torch.float32).reshape(1, 3, 40, 50)
    m = torch.tensor([[[1.0, 0.0, -7.0], [0.0, 1.0, -5.0]]], dtype=torch.float64)
    out = warp_affine(img, m, 20, 30)
    torch.testing.assert_close(out, img[:, :, 5:25, 7:37])


def test_align_faces_puts_landmarks_on_template():
    """Draw dots at the landmarks of a randomly placed face; after alignment they sit on the template."""
    template = get_template("arcface")
    to_image = _similarity(2.3, 0.25, 120.0, 60.0)  # the face is 2.3x larger in the photo
    tpl = template.tensor().numpy()
    src_pts = tpl @ to_image[:, :2].T + to_image[:, 2]
    truth = invert_affine(torch.from_numpy(to_image)).numpy()
    img = torch.zeros(1, 1, 400, 400)
    yy, xx = torch.meshgrid(torch.arange(400.0), torch.arange(400.0), indexing="ij")
    for x, y in src_pts:
        img[0, 0] += torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.3**2))  # about 1 px wide in the crop
    crops, matrix = align_faces(img, torch.from_numpy(src_pts)[None], template)
    np.testing.assert_allclose(matrix[0].numpy(), truth, atol=1e-9)
    crop = crops[0, 0]
    for x, y in tpl:
        xi, yi = int(round(x)), int(round(y))
        window = crop[yi - 5 : yi + 6, xi - 5 : xi + 6]
        w = window / window.sum()
        ys, xs = torch.meshgrid(torch.arange(yi - 5.0, yi + 6), torch.arange(xi - 5.0, xi + 6), indexing="ij")
        assert abs(float((w * xs).sum()) - x) < 0.05
        assert abs(float((w * ys).sum()) - y) < 0.05
