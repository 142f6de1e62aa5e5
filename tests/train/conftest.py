"""Fixtures for the trainer tests: tiny learnable datasets on disk and run configs around them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from synface.train import RunConfig


def write_patterns(root: Path, num_classes: int = 8, samples: int = 24, size: tuple[int, int] = (32, 32),
                   noise: float = 40.0, seed: int = 0, shard_size: int = 64) -> Path:
    """A ``synface-dataset/1`` folder whose classes are noisy copies of one random image each (learnable)."""
    rng = np.random.default_rng(seed)
    height, width = size
    bases = rng.integers(0, 256, size=(num_classes, height, width, 3)).astype(np.float32)
    total = num_classes * samples
    identity = np.repeat(np.arange(num_classes), samples).astype(np.int64)
    noisy = bases[identity] + rng.normal(0.0, noise, size=(total, height, width, 3))
    images = np.clip(noisy, 0, 255).astype(np.uint8)
    (root / "shards").mkdir(parents=True)
    listing = []
    for number, start in enumerate(range(0, total, shard_size)):
        stop = min(start + shard_size, total)
        ids = identity[start:stop]
        weights = np.zeros((stop - start, 2), np.float32)
        weights[:, 0] = 1.0
        np.save(root / "shards" / f"images-{number:05d}.npy", images[start:stop])
        save_file({"labels": np.stack([ids, ids], 1), "label_weights": weights, "identity": ids.copy(),
                   "sample_index": (np.arange(start, stop) % samples).astype(np.int64)},
                  str(root / "shards" / f"meta-{number:05d}.safetensors"))
        listing.append({"index": number, "images": f"shards/images-{number:05d}.npy",
                        "meta": f"shards/meta-{number:05d}.safetensors", "start": start, "stop": stop})
    manifest = {"format": "synface-dataset/1", "num_identities": num_classes, "num_samples": total,
                "num_classes": num_classes, "shards": listing,
                "image": {"height": height, "width": width, "channels": 3, "template": "synface",
                          "dtype": "uint8", "layout": "NHWC"}}
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every training test runs under ``one_torch_thread``."""


@pytest.fixture(scope="session")
def patterns32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 classes x 24 images of 32x32."""
    return write_patterns(tmp_path_factory.mktemp("patterns32") / "data")


@pytest.fixture(scope="session")
def patterns16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes x 8 images of 16x16."""
    return write_patterns(tmp_path_factory.mktemp("patterns16") / "data", num_classes=4, samples=8,
                          size=(16, 16), shard_size=12)


def run_config(dataset: Path, out: Path, **sections: dict[str, Any]) -> RunConfig:
    """A CPU run of the small backbone on ``dataset`` into ``out``; ``sections`` update the defaults."""
    manifest = json.loads((dataset / "dataset.json").read_text())
    image = manifest["image"]
    base: dict[str, dict[str, Any]] = {
        "data": {"kind": "synthetic", "path": str(dataset), "image_size": [image["height"], image["width"]],
                 "batch_size": 16, "workers": 0, "augmentation": "none"},
        "model": {"name": "iresnet_tiny", "num_features": 32},
        "head": {"name": "arcface"},
        "train": {"epochs": 2, "lr": 0.1, "lr_reference_batch": 0, "device": "cpu", "output_dir": str(out),
                  "log_interval": 2, "tensorboard": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return RunConfig.from_dict(base)
