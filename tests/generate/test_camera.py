"""Tests of the pose rotation conventions and the pinhole projection."""

from __future__ import annotations

import math

import pytest
import torch

from synface.generate.camera import pose_points, project, rotate_points, rotation_matrix


def _axis_rotation(axis: str, degrees: float) -> torch.Tensor:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64)
    if axis == "y":
        return torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float64)
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)


def test_rotation_is_roll_yaw_pitch_composition() -> None:
    pose = torch.tensor([[25.0, -40.0, 70.0], [0.0, 0.0, 0.0], [-90.0, 10.0, -5.0]], dtype=torch.float64)
    rotation = rotation_matrix(pose)
    for matrix, (yaw, pitch, roll) in zip(rotation, pose.tolist()):
        expected = _axis_rotation("z", roll) @ _axis_rotation("y", yaw) @ _axis_rotation("x", pitch)
        torch.testing.assert_close(matrix, expected)
        torch.testing.assert_close(matrix @ matrix.T, torch.eye(3, dtype=torch.float64))
        assert float(torch.linalg.det(matrix)) == pytest.approx(1.0)


def test_sign_conventions() -> None:
    nose = torch.tensor([[[0.0, 0.0, 1.0]]])
    # Positive yaw turns the face towards +x (image right); positive pitch looks down.
    yawed = pose_points(nose, torch.tensor([[30.0, 0.0, 0.0]]), torch.zeros(3))[0, 0]
    assert yawed[0] > 0.4 and yawed[2] > 0.8
    pitched = pose_points(nose, torch.tensor([[0.0, 30.0, 0.0]]), torch.zeros(3))[0, 0]
    assert pitched[1] < -0.4
    # Positive roll turns +x towards +y: counter-clockwise as the image is viewed (image y is down).
    right = torch.tensor([[[1.0, 0.0, 0.0]]])
    rolled = pose_points(right, torch.tensor([[0.0, 0.0, 30.0]]), torch.zeros(3))
    image, _ = project(rolled, torch.tensor([100.0]))
    assert image[0, 0, 0] > 0 and image[0, 0, 1] < 0


def test_pose_rotates_about_the_pivot() -> None:
    pivot = torch.tensor([1.0, -2.0, 3.0])
    points = torch.stack([pivot, pivot + torch.tensor([0.0, 0.0, 1.0])])[None]
    posed = pose_points(points, torch.tensor([[90.0, 0.0, 0.0]]), pivot)
    torch.testing.assert_close(posed[0, 0], torch.zeros(3))
    torch.testing.assert_close(posed[0, 1], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)


def test_rotate_points_matches_matmul() -> None:
    torch.manual_seed(0)
    rotation = rotation_matrix(torch.randn(4, 3, dtype=torch.float64) * 40)
    points = torch.randn(4, 7, 3, dtype=torch.float64)
    torch.testing.assert_close(rotate_points(rotation, points), points @ rotation.transpose(1, 2))


def test_projection() -> None:
    points = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 1.0, 0.0], [2.0, 1.0, 10.0], [2.0, 1.0, -10.0]]])
    image, depth = project(points, torch.tensor([50.0]), focal_length_px=1000.0)
    torch.testing.assert_close(depth[0], torch.tensor([50.0, 50.0, 40.0, 60.0]))
    torch.testing.assert_close(image[0, 0], torch.zeros(2))
    torch.testing.assert_close(image[0, 1], torch.tensor([40.0, -20.0]))  # +y is up: image y decreases
    # Nearer points spread further from the centre (perspective).
    assert image[0, 2, 0] > image[0, 1, 0] > image[0, 3, 0] > 0
    torch.testing.assert_close(image[0, 2], torch.tensor([50.0, -25.0]))
