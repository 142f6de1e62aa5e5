"""Syn-LFW-like test sets: pose, expression and light statistics of a real aligned set, copied onto synthetic faces.

The paper renders a synthetic copy of LFW by reconstructing each photo's expression,
pose and illumination coefficients with a 3D reconstruction network (Sec. 4.1). We
cannot run such a network, so we estimate cruder stand-ins from what an MTCNN
alignment leaves behind (``align_log.jsonl``: five landmarks per photo) and from the
aligned crops:

- **head pose** (yaw, pitch, roll): the face model's mean-face 3D landmarks fitted to
  the five 2D points under weak perspective (a closed-form affine start refined by
  least squares). Pitch is confounded with face proportions and with how MTCNN
  places the nose tip, so the set's median pitch is taken as level (subtracted);
- **expression**: only the mouth corners move with expression among five points, so
  two proxies are measured, mouth width and mouth drop below the eye line, each
  divided by what the fitted rigid mean face predicts for that pose and normalised by
  the set's median (the median photo is taken as neutral). Each photo takes the
  expression draw from the generator's own prior whose proxies are nearest;
- **illumination**: mean brightness and the left/right and top/bottom brightness
  contrast of a fixed box of the aligned crop. Candidate lights from the generator's
  prior are rendered on one face, measured the same way, and each photo takes the
  nearest candidate (analysis by synthesis on three numbers).

Every synthetic identity stands for one real identity with the same number of
images (identities with many images first when capped), and each synthetic image
takes the statistics of one real image, so the marginals and the per-identity
structure follow the real set. Identities are new people: the test seed differs
from every training seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from synface.errors import DataError

logger = logging.getLogger(__name__)

POSE_LIMITS = np.array([80.0, 45.0, 60.0])  # |yaw|, |pitch|, |roll| the generator is given at most
# Face box of the 112x96 SynFace crop (x0, x1, y0, y1): eyes at y ~ 51.6, mouth corners at y ~ 92.3.
LIGHT_BOX = (22, 74, 38, 100)
SPLIT_X, SPLIT_Y = 48, 70  # left/right and top/bottom halves of the box
GOOD_FIT = 0.02  # rms landmark residual (eye distances) below which the fit is accepted at once


def rotation_matrices(pose_deg: np.ndarray) -> np.ndarray:
    """``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` for (N, 3) yaw, pitch, roll in degrees (as ``generate.camera``); (N, 3, 3)."""
    yaw, pitch, roll = np.radians(np.asarray(pose_deg, dtype=np.float64)).T
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rows = [[cr * cy, cr * sy * sp - sr * cp, cr * sy * cp + sr * sp],
            [sr * cy, sr * sy * sp + cr * cp, sr * sy * cp - cr * sp],
            [-sy, cy * sp, cy * cp]]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def angles_from_rotation(rotation: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rotation_matrices` for one (3, 3) matrix: (3,) yaw, pitch, roll in degrees."""
    yaw = math.asin(float(np.clip(-rotation[2, 0], -1.0, 1.0)))
    pitch = math.atan2(rotation[2, 1], rotation[2, 2])
    roll = math.atan2(rotation[1, 0], rotation[0, 0])
    return np.degrees([yaw, pitch, roll])


def project_weak(points3d: np.ndarray, pose_deg: np.ndarray, scale: float, shift: np.ndarray) -> np.ndarray:
    """Weak-perspective image points (5, 2), y down: ``scale * (x, -y)`` of the rotated points plus ``shift``."""
    rotated = points3d @ rotation_matrices(np.asarray(pose_deg)[None])[0].T  # (5, 3)
    return scale * np.stack([rotated[:, 0], -rotated[:, 1]], axis=1) + shift


def _affine_start(points2d: np.ndarray, points3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Closed-form start: the affine camera fitted by least squares, made orthonormal by SVD."""
    x = points2d - points2d.mean(0)
    X = points3d - points3d.mean(0)
    camera, *_ = np.linalg.lstsq(X, x, rcond=None)  # (3, 2): x = X @ camera
    u, singular, vt = np.linalg.svd(camera.T, full_matrices=False)  # (2, 3) = u diag(s) vt
    rows = u @ vt  # (2, 3) orthonormal rows
    first, second = rows[0], -rows[1]  # image y is down
    rotation = np.stack([first, second, np.cross(first, second)])
    return angles_from_rotation(rotation), float(singular.mean())


def fit_pose(points2d: np.ndarray, points3d: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Head pose from five 2D landmarks and the model's five 3D landmarks.

    Args:
        points2d: (5, 2) image points (x right, y down), any scale and position.
        points3d: (5, 3) model-frame points (cm, +y up, +z towards the camera).

    Returns:
        ``(pose (3,) yaw/pitch/roll degrees, scale, rms residual in units of the eye distance)``.
    """
    points2d = np.asarray(points2d, dtype=np.float64)
    points3d = np.asarray(points3d, dtype=np.float64)
    eye_distance = max(float(np.linalg.norm(points2d[1] - points2d[0])), 1e-6)
    start, scale = _affine_start(points2d, points3d)

    def residual(params: np.ndarray) -> np.ndarray:
        predicted = project_weak(points3d, params[:3], math.exp(params[3]), params[4:])
        return (predicted - points2d).ravel() / eye_distance

    best = None
    for yaw in (start[0], -start[0]):  # a mirrored start guards against the depth-reversal minimum
        initial = np.array([yaw, start[1], start[2], math.log(max(scale, 1e-6)), 0.0, 0.0])
        initial[4:] = points2d.mean(0) - project_weak(points3d, initial[:3], scale, np.zeros(2)).mean(0)
        solution = least_squares(residual, initial, method="lm", max_nfev=200)
        if best is None or solution.cost < best.cost:
            best = solution
        if math.sqrt(2.0 * best.cost / best.fun.size) < GOOD_FIT:
            break  # a close fit from the affine start needs no second try
    pose = (best.x[:3] + 180.0) % 360.0 - 180.0
    rms = float(np.sqrt(np.mean(best.fun ** 2)))
    return pose, math.exp(best.x[3]), rms


def mouth_metrics(points: np.ndarray) -> np.ndarray:
    """Mouth width and mouth drop below the eye line, in eye distances, of (N, 5, 2) points (y down); (N, 2)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    eye_vector = points[:, 1] - points[:, 0]
    eye_distance = np.maximum(np.linalg.norm(eye_vector, axis=1), 1e-9)
    along = eye_vector / eye_distance[:, None]
    down = np.stack([-along[:, 1], along[:, 0]], axis=1)  # the eye line's normal pointing down the face
    width = np.linalg.norm(points[:, 4] - points[:, 3], axis=1) / eye_distance
    offset = 0.5 * (points[:, 3] + points[:, 4]) - 0.5 * (points[:, 0] + points[:, 1])
    drop = np.sum(offset * down, axis=1) / eye_distance
    return np.stack([width, drop], axis=1)


def light_proxies(crops: np.ndarray) -> np.ndarray:
    """Brightness and left/right, top/bottom contrast of aligned crops (N, 112, 96 or 112, 3) uint8; (N, 3)."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1] != 112 or crops.shape[2] not in (96, 112):
        raise DataError(f"light proxies need aligned 112x96 or 112x112 crops, got {crops.shape}")
    shift = 8 if crops.shape[2] == 112 else 0  # ArcFace crops are the SynFace crop padded by 8 columns
    luminance = crops[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0  # (N, H, W)
    x0, x1, y0, y1 = LIGHT_BOX
    box = luminance[:, y0:y1, x0 + shift:x1 + shift]
    split_x, split_y = SPLIT_X - x0, SPLIT_Y - y0
    left, right = box[:, :, :split_x].mean((1, 2)), box[:, :, split_x:].mean((1, 2))
    top, bottom = box[:, :split_y].mean((1, 2)), box[:, split_y:].mean((1, 2))
    eps = 1e-6
    return np.stack([box.mean((1, 2)), (left - right) / (left + right + eps),
                     (top - bottom) / (top + bottom + eps)], axis=1)


def nearest(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index of the nearest candidate (N,) for each query, each dimension scaled by the pooled std."""
    queries, candidates = np.asarray(queries, np.float64), np.asarray(candidates, np.float64)
    scale = np.concatenate([queries, candidates]).std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    distances = (((queries[:, None, :] - candidates[None, :, :]) / scale) ** 2).sum(-1)  # (N, C)
    return distances.argmin(1)


@dataclass
class RealMeasurements:
    """Per-photo measurements of a real aligned set, in the order used for synthesis.

    Attributes:
        identities: (M,) identity name of each photo; photos of one identity are contiguous.
        files: (M,) relative paths.
        pose: (M, 3) yaw, pitch, roll in degrees (pitch median-centred, clipped).
        mouth: (M, 2) mouth width and drop ratios (median-normalised).
        light: (M, 3) brightness, left/right and top/bottom contrast.
        residual: (M,) rms landmark residual of the pose fit, eye distances.
    """

    identities: np.ndarray
    files: np.ndarray
    pose: np.ndarray
    mouth: np.ndarray
    light: np.ndarray
    residual: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """(N,) photos per identity in order of appearance."""
        _, first, counts = np.unique(self.identities, return_index=True, return_counts=True)
        return counts[np.argsort(first)]


def choose_photos(entries: dict[str, dict], identity_of, max_identities: int) -> list[tuple[str, list[str]]]:
    """Identities (most photos first, then by name) with their landmarked photos, capped at ``max_identities``."""
    groups: dict[str, list[str]] = {}
    for relative, entry in sorted(entries.items()):
        if entry.get("status") == "aligned" and entry.get("landmarks") is not None:
            groups.setdefault(identity_of(relative), []).append(relative)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return ordered[:max_identities] if max_identities else ordered


def measure_real(aligned_root: Path, entries: dict[str, dict], chosen: Sequence[tuple[str, list[str]]],
                 model_points: np.ndarray, read_image) -> RealMeasurements:
    """Fit pose, mouth and light proxies for the chosen photos (see the module docstring)."""
    identities, files, poses, mouths, residuals, crops = [], [], [], [], [], []
    for identity, relatives in chosen:
        for relative in relatives:
            points = np.asarray(entries[relative]["landmarks"], dtype=np.float64).reshape(5, 2)
            pose, scale, rms = fit_pose(points, model_points)
            shift = points.mean(0) - project_weak(model_points, pose, scale, np.zeros(2)).mean(0)
            predicted = project_weak(model_points, pose, scale, shift)
            mouths.append(mouth_metrics(points[None])[0] / mouth_metrics(predicted[None])[0])
            identities.append(identity)
            files.append(relative)
            poses.append(pose)
            residuals.append(rms)
            crops.append(read_image(aligned_root / relative))
    if not files:
        raise DataError(f"{aligned_root}: no aligned photos with landmarks to measure")
    pose = np.asarray(poses)
    pose[:, 1] -= np.median(pose[:, 1])
    pose = np.clip(pose, -POSE_LIMITS, POSE_LIMITS)
    mouth = np.asarray(mouths)
    mouth = mouth / np.median(mouth, axis=0)
    return RealMeasurements(np.asarray(identities), np.asarray(files), pose, mouth,
                            light_proxies(np.stack(crops)), np.asarray(residuals))


def summarise(values: np.ndarray) -> dict[str, float]:
    """Median, 10th and 90th percentile and mean absolute value of a sample (for reports)."""
    values = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(values)), "p10": float(np.percentile(values, 10)),
            "p90": float(np.percentile(values, 90)), "mean_abs": float(np.abs(values).mean())}
