"""Where training metrics go: ``metrics.jsonl`` in the run folder, TensorBoard, and one log line per interval.

Each record is one JSON line ``{"step": ..., "epoch": ..., "train/loss": ...}``
with ``train/`` and ``val/`` prefixes. On resume, records written after the
checkpoint being resumed (by the interrupted process) are dropped first, so the
file reads as one uninterrupted run. Only the main process writes.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from synface.io import atomic_write_text

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class MetricsLogger:
    """Appends metric records to ``metrics.jsonl`` and, optionally, TensorBoard.

    Args:
        run_dir: the run folder.
        enabled: False on every rank but the main one (then nothing is written).
        resume_step: when resuming, the checkpoint's step; later records are dropped.
        tensorboard: also write TensorBoard events under ``run_dir/tensorboard``.
    """

    def __init__(self, run_dir: str | os.PathLike[str], enabled: bool = True,
                 resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        self.writer: Any = None
        if not enabled:
            return
        if resume_step is not None:
            truncate_records(self.path, resume_step)
        elif self.path.exists():
            self.path.unlink()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported here: slow, and only rank 0 needs it

            self.writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR), purge_step=resume_step)

    def log(self, step: int, epoch: int, metrics: dict[str, float]) -> None:
        """Write one record (non-finite values become ``null`` in JSON)."""
        if not self.enabled:
            return
        record = {"step": step, "epoch": epoch}
        record.update({key: _json_number(value) for key, value in metrics.items()})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush and close TensorBoard files."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def truncate_records(path: Path, last_step: int) -> None:
    """Keep only the records of ``path`` with ``step <= last_step`` (atomically)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by the kill that interrupted the run
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= last_step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` for log lines."""
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def format_interval(epoch: int, epochs: int, step: int, steps: int, metrics: dict[str, float],
                    eta_seconds: float) -> str:
    """The interval log line: epoch, step in epoch, loss, accuracy, lr, images/s, time left."""
    return (f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {metrics['train/loss']:.4f} "
            f"acc {100 * metrics['train/accuracy']:.2f}% lr {metrics['train/lr']:.3g} "
            f"{metrics['train/images_per_second']:.0f} img/s eta {format_duration(eta_seconds)}")


def _json_number(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
