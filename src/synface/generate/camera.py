"""Head pose rotation and pinhole projection of posed face vertices.

Frames. The model frame is right-handed, in centimetres: +x towards image right in
a frontal view, +y up, +z out of the face towards the camera. Posing rotates the
mesh about the model's ``pivot``; the camera sits on the +z axis of the posed frame,
``camera_distance`` centimetres from the pivot, and looks along -z. So the posed,
pivot-centred frame doubles as the camera frame with the camera at
``(0, 0, camera_distance)``.

Pose ``(yaw, pitch, roll)`` in degrees, ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``
(pitch is applied first, then yaw, then roll), each a right-handed rotation about
its axis:

* positive yaw (about +y) turns the nose towards +x, i.e. the face turns towards
  image **right** (the subject's left);
* positive pitch (about +x) turns the nose towards -y: the face looks **down**;
* positive roll (about +z) turns +x towards +y: the head tilts **counter-clockwise**
  as the image is viewed.

Projection. The virtual photograph has its principal point at the origin, x to the
right and y **down** (image convention), in pixels of a camera with focal length
``focal_length_px``. Because the generator then fits a similarity onto the crop
template, the focal length only sets the units of the image plane; the strength of
perspective is set by ``camera_distance`` alone (50 cm: close-up selfie, 300 cm:
nearly orthographic).
"""

from __future__ import annotations

import math

import torch


def rotation_matrix(pose_deg: torch.Tensor) -> torch.Tensor:
    """Rotation matrices for head poses.

    Args:
        pose_deg: (B, 3) yaw, pitch, roll in degrees (conventions in the module docstring).

    Returns:
        (B, 3, 3) matrices ``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` in the dtype of ``pose_deg``.
    """
    radians = pose_deg * (math.pi / 180.0)
    yaw, pitch, roll = radians.unbind(-1)
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    # Written out element by element so the result does not depend on matmul kernels.
    rows = (
        (cr * cy, cr * sy * sp - sr * cp, cr * sy * cp + sr * sp),
        (sr * cy, sr * sy * sp + cr * cp, sr * sy * cp - cr * sp),
        (-sy, cy * sp, cy * cp),
    )
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def rotate_components(
    entries: torch.Tensor, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotate points given as coordinate planes.

    Args:
        entries: (3, 3, ...) rotation entries ``entries[i, j]`` that broadcast against the planes.
        x, y, z: coordinate planes of one shape.

    Returns:
        The rotated planes. Working on separate contiguous planes keeps every operation
        vectorised, and the elementwise sums give the same bits whatever the batch size.
    """
    x2, y2, z2 = (entries[i, 0] * x + entries[i, 1] * y + entries[i, 2] * z for i in range(3))
    return x2, y2, z2


def rotate_points(rotation: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply (B, 3, 3) rotations to (B, N, 3) points."""
    entries = rotation.permute(1, 2, 0)[..., None]  # (3, 3, B, 1)
    return torch.stack(rotate_components(entries, *points.unbind(-1)), dim=-1)


def pose_points(points: torch.Tensor, pose_deg: torch.Tensor, pivot: torch.Tensor) -> torch.Tensor:
    """Rotate model-frame points about the pivot.

    Args:
        points: (B, N, 3) model-frame points, centimetres.
        pose_deg: (B, 3) yaw, pitch, roll in degrees.
        pivot: (3,) rotation centre in the model frame.

    Returns:
        (B, N, 3) posed points relative to the pivot (the camera frame, camera on +z).
    """
    return rotate_points(rotation_matrix(pose_deg.to(points.dtype)), points - pivot.to(points.dtype))


def project_components(
    x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, camera_distance: torch.Tensor, focal_length_px: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`project` on coordinate planes; ``camera_distance`` must broadcast against them.

    Returns:
        ``(u, v, depth)`` planes of the same shape as ``x``.
    """
    depth = camera_distance.to(z.dtype) - z
    # Guard the division only; callers decide what to do with points behind the camera.
    safe = torch.where(depth.abs() > 1e-6, depth, torch.full_like(depth, 1e-6))
    scale = focal_length_px / safe
    return x * scale, -(y * scale), depth


def project(
    points_cam: torch.Tensor, camera_distance: torch.Tensor, focal_length_px: float = 1000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection of posed points seen from ``(0, 0, camera_distance)`` looking along -z.

    Args:
        points_cam: (B, N, 3) posed, pivot-centred points (see :func:`pose_points`).
        camera_distance: (B,) distance from the camera to the pivot, centimetres.
        focal_length_px: focal length of the virtual photograph in pixels.

    Returns:
        ``(image_points (B, N, 2), depth (B, N))``: image-plane pixels (x right, y down,
        principal point at the origin) and the distance in front of the camera along
        the view axis. Points with ``depth <= 0`` are behind the camera; their image
        coordinates are meaningless and the rasteriser drops their triangles.
    """
    u, v, depth = project_components(*points_cam.unbind(-1), camera_distance[:, None], focal_length_px)
    return torch.stack([u, v], dim=-1), depth
