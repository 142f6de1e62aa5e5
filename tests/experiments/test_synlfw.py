"""Syn-LFW-like statistics: pose fitting, mouth and light proxies, matching, layouts from counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synface.experiments.exec_data import layout_from_counts
from synface.experiments.synlfw import (
    angles_from_rotation,
    choose_photos,
    fit_pose,
    light_proxies,
    mouth_metrics,
    nearest,
    project_weak,
    rotation_matrices,
)
from synface.generate.camera import pose_points, project, rotation_matrix

# Five face landmarks in cm (eyes, nose tip in front, mouth corners), relative to a pivot behind the face.
POINTS = np.array([[-3.2, 3.5, 9.4], [3.2, 3.5, 9.4], [0.0, 0.3, 13.0], [-2.6, -3.6, 9.7], [2.6, -3.6, 9.7]])


def random_poses(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-50, 50, count), rng.uniform(-25, 25, count), rng.uniform(-30, 30, count)]


def test_rotations_match_the_generator_camera() -> None:
    poses = random_poses(20)
    ours = rotation_matrices(poses)
    theirs = rotation_matrix(torch.tensor(poses)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    for pose, matrix in zip(poses, ours):
        np.testing.assert_allclose(angles_from_rotation(matrix), pose, atol=1e-9)


def test_pose_is_recovered_exactly_under_weak_perspective() -> None:
    for pose in random_poses(25, seed=1):
        observed = project_weak(POINTS, pose, scale=7.0, shift=np.array([48.0, 60.0]))
        estimate, scale, rms = fit_pose(observed, POINTS)
        np.testing.assert_allclose(estimate, pose, atol=1e-3)
        assert scale == pytest.approx(7.0, rel=1e-5) and rms < 1e-6


def test_pose_from_perspective_photos_is_close() -> None:
    """A real camera at 1.5 m: weak perspective costs a few degrees, never more."""
    errors = []
    for pose in random_poses(25, seed=2):
        posed = pose_points(torch.tensor(POINTS)[None], torch.tensor(pose)[None], torch.zeros(3, dtype=torch.float64))
        image, _ = project(posed, torch.tensor([150.0], dtype=torch.float64))
        errors.append(fit_pose(image[0].numpy(), POINTS)[0] - pose)
    errors = np.abs(np.array(errors))
    assert errors.mean(0).max() < 3.0 and errors.max() < 6.0


def test_mouth_metrics_by_hand() -> None:
    # Eyes 10 apart on a level line, mouth 6 wide, 8 below the eye line.
    points = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 4.0], [2.0, 8.0], [8.0, 8.0]])
    np.testing.assert_allclose(mouth_metrics(points), [[0.6, 0.8]])
    # Rotating, scaling and moving the face changes nothing.
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    np.testing.assert_allclose(mouth_metrics(3 * points @ rotation.T + 7), [[0.6, 0.8]], atol=1e-12)


def test_light_proxies_see_the_lit_side() -> None:
    crops = np.full((3, 112, 96, 3), 100, dtype=np.uint8)
    crops[0, :, :48] = 200  # left half bright
    crops[1, :70] = 200  # top half bright
    proxies = light_proxies(crops)
    assert proxies[0, 1] > 0.2 and abs(proxies[0, 2]) < 1e-9
    assert proxies[1, 2] > 0.2 and abs(proxies[1, 1]) < 1e-9
    assert proxies[2, 0] == pytest.approx(100 / 255, abs=1e-6) and abs(proxies[2, 1]) < 1e-9
    arcface = np.pad(crops, ((0, 0), (0, 0), (8, 8), (0, 0)), constant_values=0)
    np.testing.assert_allclose(light_proxies(arcface), proxies)


def test_nearest_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    queries, candidates = rng.normal(size=(30, 3)), rng.normal(size=(12, 3)) * [1, 10, 0.1]
    scale = np.concatenate([queries, candidates]).std(0)
    expected = [int(np.argmin([np.sum(((q - c) / scale) ** 2) for c in candidates])) for q in queries]
    assert nearest(queries, candidates).tolist() == expected


def test_layout_from_counts_keeps_the_order() -> None:
    layout = layout_from_counts(np.array([5, 5, 3, 1, 1, 1]))
    assert layout.group_identities == (2, 1, 3) and layout.group_samples == (5, 3, 1)
    assert layout.resolve().counts.tolist() == [5, 5, 3, 1, 1, 1]


def test_choose_photos_prefers_identities_with_many_photos() -> None:
    entries = {
        "a/1.jpg": {"status": "aligned", "landmarks": [[0, 0]] * 5},
        "b/1.jpg": {"status": "aligned", "landmarks": [[0, 0]] * 5},
        "b/2.jpg": {"status": "aligned", "landmarks": [[0, 0]] * 5},
        "c/1.jpg": {"status": "fallback"},
    }
    chosen = choose_photos(entries, lambda path: path.split("/")[0], max_identities=0)
    assert chosen == [("b", ["b/1.jpg", "b/2.jpg"]), ("a", ["a/1.jpg"])]
    assert choose_photos(entries, lambda path: path.split("/")[0], max_identities=1) == chosen[:1]
