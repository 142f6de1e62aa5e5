"""Measure how fast generated datasets are read: a random-bytes dataset writer and timed read paths.

``python -m synface.data.bench FOLDER`` writes (once) a 20K-image ``synface-dataset/1``
folder of random pixels and prints images/s for the batched reader, the per-item
reader and the full training source. Numbers depend on the machine's page cache,
cores and load; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from synface.data.loader import DataConfig, build_train_source
from synface.data.synthetic import FORMAT, SyntheticDataset
from synface.io import atomic_write_json


def write_random_dataset(root: str | Path, num_identities: int = 400, samples_per_identity: int = 50,
                         image_size: tuple[int, int] = (112, 96), shard_size: int = 1000, seed: int = 0) -> Path:
    """Write a dataset of random pixels with plain labels in the generated format (for benchmarks).

    Returns:
        The dataset folder.
    """
    root = Path(root)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    total = num_identities * samples_per_identity
    identity = np.repeat(np.arange(num_identities, dtype=np.int64), samples_per_identity)
    sample_index = np.tile(np.arange(samples_per_identity, dtype=np.int64), num_identities)
    rng = np.random.default_rng(seed)
    shards = []
    for number, start in enumerate(range(0, total, shard_size)):
        stop = min(start + shard_size, total)
        images = rng.integers(0, 256, (stop - start, *image_size, 3), dtype=np.uint8)
        np.save(root / "shards" / f"images-{number:05d}.npy", images)
        weights = np.zeros((stop - start, 2), np.float32)
        weights[:, 0] = 1.0
        ids = identity[start:stop]
        save_file({"labels": np.stack([ids, ids], 1), "label_weights": weights, "identity": ids.copy(),
                   "sample_index": sample_index[start:stop].copy()},
                  str(root / "shards" / f"meta-{number:05d}.safetensors"))
        shards.append({"index": number, "images": f"shards/images-{number:05d}.npy",
                       "meta": f"shards/meta-{number:05d}.safetensors", "start": start, "stop": stop})
    atomic_write_json(root / "dataset.json", {
        "format": FORMAT, "num_identities": num_identities, "num_samples": total, "num_classes": num_identities,
        "image": {"height": image_size[0], "width": image_size[1], "channels": 3}, "shards": shards,
    })
    return root


def _rate(function: Callable[[], int]) -> float:
    start = time.perf_counter()
    images = function()
    return images / (time.perf_counter() - start)


def measure_read_throughput(root: str | Path, batch_size: int = 512, workers: int = 2,
                            seed: int = 0) -> dict[str, float]:
    """Images/s of the read paths over one epoch of ``root``.

    Returns:
        ``{"get_batch": ..., "getitem": ..., "train_source": ...}``: batched reads of
        random batches, one-by-one reads of 4096 images, and float device batches from
        :func:`synface.data.loader.build_train_source` on the CPU (no augmentation).
    """
    dataset = SyntheticDataset(root)
    order = np.random.default_rng(seed).permutation(len(dataset))
    starts = range(0, len(order) - batch_size + 1, batch_size)

    def batched() -> int:
        for start in starts:
            dataset.get_batch(order[start:start + batch_size])
        return len(starts) * batch_size

    def one_by_one() -> int:
        for index in order[:4096]:
            dataset[int(index)]
        return min(4096, len(order))

    cfg = DataConfig(kind="synthetic", path=str(root), image_size=dataset.image_size, batch_size=batch_size,
                     workers=workers, augmentation="none", seed=seed)
    source = build_train_source(cfg, "cpu")

    def train_source() -> int:
        return sum(len(images) for images, _, _ in source)

    return {"get_batch": _rate(batched), "getitem": _rate(one_by_one), "train_source": _rate(train_source)}


def main(argv: list[str] | None = None) -> int:
    """Write the benchmark dataset if missing, then print the read rates."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="benchmark dataset folder (written on first use, ~650 MB)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not (folder / "dataset.json").is_file():
        write_random_dataset(folder)
    for name, rate in measure_read_throughput(folder, args.batch_size, args.workers).items():
        print(f"{name:14s} {rate:10.0f} images/s")  # noqa: T201 - a benchmark script's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
