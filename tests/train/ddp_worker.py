"""A torchrun entry point for the data-parallel tests, plus the batch-norm-free backbone they use.

Batch norm normalises each rank's part of a batch on its own (SyncBatchNorm needs
CUDA), so only a backbone without it can match a single process on the whole
batch exactly; :func:`main` registers this one as ``test_linear_embedder`` (the
tests register it only for their own duration).

    torchrun --standalone --nproc_per_node 2 tests/train/ddp_worker.py RUNS.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from synface.models import is_model, register_model


class LinearEmbedder(nn.Module):
    """Flatten the crop and project it: ``(B, 3, H, W)`` -> ``(B, num_features)``."""

    def __init__(self, input_size: Sequence[int] = (16, 16), num_features: int = 16) -> None:
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.num_features = num_features
        self.fc = nn.Linear(3 * self.input_size[0] * self.input_size[1], num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_linear_embedder(**kwargs: object) -> LinearEmbedder:
    """The batch-norm-free test backbone."""
    return LinearEmbedder(**kwargs)  # type: ignore[arg-type]


test_linear_embedder.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def main(runs_file: str) -> None:
    """Fit every run config listed in ``runs_file`` (a JSON list of config dicts) in one process group.

    The group is started here, so ``fit`` uses it and leaves it open for the next run.
    """
    from torch import distributed as dist

    from synface.train import RunConfig, fit

    if not is_model("test_linear_embedder"):
        register_model(test_linear_embedder)
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        for run in json.loads(Path(runs_file).read_text(encoding="utf-8")):
            fit(RunConfig.from_dict(run))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
