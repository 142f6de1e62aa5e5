"""MTCNN face detection: the three-stage cascade that yields boxes and five landmarks.

Follows the original algorithm (Zhang et al. 2016, as ported to TensorFlow by
facenet and to PyTorch by facenet-pytorch): an image pyramid for P-Net, NMS within
and across scales, box regression and squaring, R-Net then O-Net on zero-padded
crops, and a final NMS by intersection over the smaller box. Boxes follow the
original's 1-based inclusive convention internally; returned landmarks are in
0-based pixel coordinates (top-left pixel centre at (0, 0)), as synface.alignment expects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from synface.config import ConfigBase, require
from synface.eval.mtcnn import load_networks

logger = logging.getLogger(__name__)

SelectionPolicy = Literal["largest_central", "largest", "probability"]


@dataclass(frozen=True)
class DetectorConfig(ConfigBase):
    """MTCNN settings; the defaults are the published ones."""

    min_face_size: float = 20.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    scale_factor: float = 0.709
    selection: SelectionPolicy = "largest_central"
    center_weight: float = 2.0  # for largest_central: area minus this times squared centre offset

    def validate(self) -> None:
        require(self.min_face_size >= 12, "min_face_size", f"{self.min_face_size} is below P-Net's 12 px")
        require(all(0 <= t <= 1 for t in self.thresholds), "thresholds", f"{self.thresholds} not in [0, 1]")
        require(0 < self.scale_factor < 1, "scale_factor", f"{self.scale_factor} is outside (0, 1)")


@dataclass
class Detections:
    """Faces found in one image, best first by score."""

    boxes: np.ndarray      # (N, 4) x1, y1, x2, y2
    scores: np.ndarray     # (N,)
    landmarks: np.ndarray  # (N, 5, 2) pixel (x, y): eyes, nose, mouth corners

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression with the original's inclusive (+1) box areas.

    Args:
        boxes: (N, 4) x1, y1, x2, y2.
        scores: (N,).
        threshold: overlap above which a lower-scored box is dropped.
        mode: "union" (IoU) or "min" (intersection over the smaller area).

    Returns:
        Indices of the kept boxes, highest score first.
    """
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denominator = np.minimum(areas[i], areas[rest]) if mode == "min" else areas[i] + areas[rest] - inter
        order = rest[inter / denominator <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes to squares around their centres (the original's ``rerec``)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + 0.5 * (w - side)
    out[:, 1] = boxes[:, 1] + 0.5 * (h - side)
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply box-regression offsets scaled by inclusive box size (the original's ``bbreg``)."""
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    return boxes[:, :4] + offsets * np.concatenate([w, h, w, h], axis=1)


def _crops(image: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Zero-padded crops of integer 1-based inclusive boxes, resized to size x size by area."""
    _, height, width = image.shape
    out = []
    for x1, y1, x2, y2 in boxes.astype(np.int64):
        patch = image.new_zeros((3, y2 - y1 + 1, x2 - x1 + 1))
        sx0, sy0 = max(x1 - 1, 0), max(y1 - 1, 0)
        sx1, sy1 = min(x2, width), min(y2, height)
        if sx1 > sx0 and sy1 > sy0:
            patch[:, sy0 - (y1 - 1) : sy1 - (y1 - 1), sx0 - (x1 - 1) : sx1 - (x1 - 1)] = image[:, sy0:sy1, sx0:sx1]
        out.append(F.interpolate(patch[None], size=(size, size), mode="area"))
    return (torch.cat(out) - 127.5) * 0.0078125


class FaceDetector:
    """MTCNN detector; call :meth:`detect` on RGB uint8 images."""

    def __init__(self, config: DetectorConfig = DetectorConfig(), device: torch.device | str = "cpu",
                 weights: str | None = None) -> None:
        self.config = config
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = load_networks(weights, self.device)

    def _scales(self, height: int, width: int) -> list[float]:
        scale = 12.0 / self.config.min_face_size
        side = min(height, width) * scale
        scales = []
        while side >= 12:
            scales.append(scale)
            scale *= self.config.scale_factor
            side *= self.config.scale_factor
        return scales

    def _propose(self, image: torch.Tensor) -> np.ndarray:
        """Stage 1: P-Net over the pyramid -> (N, 5) boxes + score, regressed and squared."""
        _, height, width = image.shape
        found = []
        for scale in self._scales(height, width):
            size = (int(height * scale + 1), int(width * scale + 1))
            x = (F.interpolate(image[None], size=size, mode="area") - 127.5) * 0.0078125
            offsets, prob = self.pnet(x)
            ys, xs = torch.nonzero(prob[0] >= self.config.thresholds[0], as_tuple=True)
            if ys.numel() == 0:
                continue
            cells = torch.stack([xs, ys], 1).double().cpu().numpy()
            q1 = np.floor((2 * cells + 1) / scale)
            q2 = np.floor((2 * cells + 12) / scale)
            score = prob[0, ys, xs].double().cpu().numpy()
            reg = offsets[0, :, ys, xs].T.double().cpu().numpy()
            boxes = np.concatenate([q1, q2, score[:, None], reg], axis=1)
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        size = np.concatenate([boxes[:, 2:3] - boxes[:, 0:1], boxes[:, 3:4] - boxes[:, 1:2]], axis=1)
        moved = boxes[:, :4] + boxes[:, 5:9] * np.tile(size, 2)
        return np.concatenate([_square(moved), boxes[:, 4:5]], axis=1)

    @torch.no_grad()
    def detect(self, image: np.ndarray | torch.Tensor) -> Detections:
        """Detect faces in one RGB image (H, W, 3) uint8.

        Returns:
            :class:`Detections`, ordered by score; empty arrays when no face is found.
        """
        tensor = torch.as_tensor(np.array(image, copy=True)).to(self.device, torch.float32).permute(2, 0, 1)
        boxes = self._propose(tensor)
        if len(boxes):  # stage 2: R-Net
            boxes[:, :4] = np.fix(boxes[:, :4])
            offsets, score = self.rnet(_crops(tensor, boxes[:, :4], 24))
            score, offsets = score.double().cpu().numpy(), offsets.double().cpu().numpy()
            keep = score > self.config.thresholds[1]
            boxes = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1)
            offsets = offsets[keep]
            pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
            boxes = np.concatenate([_square(_regress(boxes[pick], offsets[pick])), boxes[pick, 4:5]], axis=1)
        if not len(boxes):
            return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
        # stage 3: O-Net
        boxes[:, :4] = np.fix(boxes[:, :4])
        offsets, points, score = self.onet(_crops(tensor, boxes[:, :4], 48))
        score, offsets, points = (t.double().cpu().numpy() for t in (score, offsets, points))
        keep = score > self.config.thresholds[2]
        boxes, offsets, points, score = boxes[keep], offsets[keep], points[keep], score[keep]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = w * points[:, :5] + boxes[:, 0:1] - 1
        ys = h * points[:, 5:] + boxes[:, 1:2] - 1
        landmarks = np.stack([xs, ys], axis=-1)
        regressed = _regress(boxes, offsets)
        pick = nms(regressed, score, 0.7, mode="min")
        return Detections(regressed[pick], score[pick], landmarks[pick])

    def select(self, detections: Detections, height: int, width: int) -> int | None:
        """Index of the face to align, by the configured policy (None if there is none).

        ``largest_central`` (default) ranks by box area minus ``center_weight`` times the
        squared distance of the box centre from the image centre, so a large face near the
        centre wins over both a small central one and a large one at the border. Taking the
        first box instead is a known bug that costs several LFW points.
        """
        if len(detections) == 0:
            return None
        boxes = detections.boxes
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if self.config.selection == "probability":
            return int(np.argmax(detections.scores))
        if self.config.selection == "largest":
            return int(np.argmax(area))
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
        offset = ((centres - np.array([width / 2, height / 2])) ** 2).sum(1)
        return int(np.argmax(area - self.config.center_weight * offset))
