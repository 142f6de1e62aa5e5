"""Fixture writers for the data tests: tiny datasets in the documented on-disk formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file


def write_synthetic(
    root: Path,
    num_identities: int = 4,
    samples_per_identity: int = 3,
    image_size: tuple[int, int] = (8, 6),
    shard_size: int = 5,
    partners: np.ndarray | None = None,
    phi: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Write a ``synface-dataset/1`` folder as docs/architecture.md describes it.

    Samples are ordered by identity then sample index. With ``partners``/``phi``
    ((N*S,) arrays) sample k gets the soft label ``(identity, partner), (phi, 1 - phi)``.

    Returns:
        (N*S, H, W, 3) uint8 all images in global order, to compare reads against.
    """
    rng = np.random.default_rng(seed)
    total = num_identities * samples_per_identity
    height, width = image_size
    images = rng.integers(0, 256, size=(total, height, width, 3), dtype=np.uint8)
    identity = np.repeat(np.arange(num_identities), samples_per_identity).astype(np.int64)
    sample_index = np.tile(np.arange(samples_per_identity), num_identities).astype(np.int64)
    partner = identity.copy() if partners is None else np.asarray(partners, dtype=np.int64)
    ratio = np.ones(total, np.float32) if phi is None else np.asarray(phi, dtype=np.float32)
    labels = np.stack([identity, partner], axis=1)
    weights = np.stack([ratio, 1.0 - ratio], axis=1).astype(np.float32)
    plain = partner == identity
    weights[plain] = (1.0, 0.0)
    shards = root / "shards"
    shards.mkdir(parents=True)
    starts = list(range(0, total, shard_size))
    listing = []
    for number, start in enumerate(starts):
        stop = min(start + shard_size, total)
        np.save(shards / f"images-{number:05d}.npy", images[start:stop])
        n = stop - start
        save_file({
            "labels": labels[start:stop].copy(),
            "label_weights": weights[start:stop].copy(),
            "identity": identity[start:stop].copy(),
            "sample_index": sample_index[start:stop].copy(),
            "mix_partner": partner[start:stop].copy(),
            "mix_phi": ratio[start:stop].copy(),
            "landmarks5": np.zeros((n, 5, 2), np.float32),
        }, str(shards / f"meta-{number:05d}.safetensors"))
        listing.append({"index": number, "images": f"shards/images-{number:05d}.npy",
                        "meta": f"shards/meta-{number:05d}.safetensors", "start": start, "stop": stop})
    manifest = {
        "format": "synface-dataset/1",
        "num_identities": num_identities,
        "num_samples": total,
        "num_classes": num_identities,
        "image": {"height": height, "width": width, "channels": 3, "template": "synface",
                  "dtype": "uint8", "layout": "NHWC"},
        "shards": listing,
    }
    (root / "dataset.json").write_text(json.dumps(manifest))
    return images


@pytest.fixture
def synthetic_writer() -> Callable[..., np.ndarray]:
    """The :func:`write_synthetic` function."""
    return write_synthetic

