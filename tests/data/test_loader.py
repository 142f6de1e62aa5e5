"""Config dispatch, DDP sharding of epochs, device batches, the random source and domain mixup wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from synface.data.loader import DataConfig, EpochBatchSampler, build_dataset, build_train_source
from synface.data.synthetic import SyntheticDataset
from synface.errors import ConfigError


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ConfigError, match="kind: unknown 'lmdb'; valid kinds: synthetic, imagefolder, recordio"):
        DataConfig.from_dict({"kind": "lmdb", "path": "x"})
    with pytest.raises(ConfigError, match="domain_mixup.kind: unknown 'csv'"):
        DataConfig.from_dict({"path": "x", "domain_mixup": {"kind": "csv", "path": "y"}})
    with pytest.raises(ConfigError, match="needs a dataset path"):
        DataConfig(kind="imagefolder")
    with pytest.raises(ConfigError, match="augmentation"):
        DataConfig(kind="random", augmentation="strong")


def test_config_yaml_round_trip_with_overrides(tmp_path):
    cfg = DataConfig(kind="random").with_overrides(["batch_size=8", "domain_mixup.kind=att",
                                                    "domain_mixup.path=/faces"])
    path = tmp_path / "data.yaml"
    cfg.to_yaml(path)
    assert DataConfig.from_yaml(path) == cfg and cfg.domain_mixup.path == "/faces"


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_are_disjoint_and_cover_the_epoch(world_size):
    samplers = [EpochBatchSampler(24, 5, seed=1, rank=r, world_size=world_size, drop_last=False)
                for r in range(world_size)]
    parts = [np.concatenate(list(s)) for s in samplers]
    union = np.concatenate(parts)
    assert len(union) == 24 and sorted(union) == list(range(24))
    assert len({len(s) for s in samplers}) == 1  # equal batch counts keep DDP in step
    again = np.concatenate(list(EpochBatchSampler(24, 5, seed=1, rank=0, world_size=world_size, drop_last=False)))
    assert np.array_equal(again, parts[0])
    samplers[0].set_epoch(1)
    assert not np.array_equal(np.concatenate(list(samplers[0])), parts[0])


def test_drop_last_drops_only_the_short_batch():
    sampler = EpochBatchSampler(23, 5, rank=1, world_size=2, drop_last=True)  # 11 per rank
    batches = list(sampler)
    assert len(sampler) == len(batches) == 2 and all(len(b) == 5 for b in batches)


def _to_uint8(images):
    return ((images + 1) * 127.5).round().to(torch.uint8)


@pytest.mark.parametrize("workers", [0, 2])
def test_synthetic_source_shards_device_batches(tmp_path, synthetic_writer, workers):
    images = synthetic_writer(tmp_path, num_identities=6, samples_per_identity=4, shard_size=7)
    lookup = {images[i].tobytes(): i for i in range(len(images))}
    cfg = DataConfig(kind="synthetic", path=str(tmp_path), image_size=(8, 6), augmentation="none",
                     batch_size=4, workers=workers, drop_last=False)
    seen = []
    for rank in range(2):
        source = build_train_source(cfg, "cpu", rank=rank, world_size=2)
        assert source.num_classes == 6 and len(source) == 3
        source.set_epoch(2)
        for x, targets, weights in source:
            assert x.dtype == torch.float32 and x.shape[1:] == (3, 8, 6) and x.abs().max() <= 1
            for image, target in zip(_to_uint8(x), targets):
                index = lookup[image.permute(1, 2, 0).contiguous().numpy().tobytes()]
                assert target.tolist() == [index // 4, index // 4]
                seen.append(index)
            assert torch.equal(weights, torch.tensor([[1.0, 0.0]] * len(x)))
    assert sorted(seen) == list(range(24))


def test_synthetic_subset_through_config(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path, num_identities=4, samples_per_identity=3)
    cfg = DataConfig(kind="synthetic", path=str(tmp_path), image_size=(8, 6), num_identities=2,
                     samples_per_identity=2, batch_size=2, workers=0)
    dataset = build_dataset(cfg)
    assert isinstance(dataset, SyntheticDataset) and len(dataset) == 4 and dataset.num_classes == 2
    with pytest.raises(ConfigError, match=r"image_size: \[112, 96\] but"):
        build_dataset(cfg.replace(image_size=(112, 96)))


def test_random_source_is_deterministic_and_channels_last():
    cfg = DataConfig(kind="random", image_size=(8, 6), batch_size=4, random_num_samples=12,
                     random_num_classes=7, channels_last=True, augmentation="paper", workers=0)
    source = build_train_source(cfg, "cpu")
    assert source.num_classes == 7 and len(source) == 3
    first = list(source)
    second = list(build_train_source(cfg, "cpu"))
    for (x1, t1, _), (x2, t2, _) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(t1, t2)
        assert x1.is_contiguous(memory_format=torch.channels_last)
        assert t1.max() < 7
    source.set_epoch(1)
    assert not torch.equal(next(iter(source))[0], first[0][0])


def _real_tree(root, identities=3, images=2):
    rng = np.random.default_rng(5)
    for identity in range(identities):
        (root / f"p{identity}").mkdir(parents=True)
        for k in range(images):
            Image.fromarray(rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)).save(root / f"p{identity}" / f"{k}.png")


def test_domain_mixup_source_offsets_real_labels_and_keeps_length(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path / "syn", num_identities=4, samples_per_identity=4)
    _real_tree(tmp_path / "real")
    cfg = DataConfig.from_dict({
        "kind": "synthetic", "path": str(tmp_path / "syn"), "image_size": [8, 6], "batch_size": 4,
        "workers": 0, "augmentation": "none", "seed": 3,
        "domain_mixup": {"kind": "imagefolder", "path": str(tmp_path / "real"), "num_identities": 2,
                         "samples_per_identity": 2, "workers": 0},
    })
    source = build_train_source(cfg, "cpu")
    assert source.num_classes == 4 + 2 and len(source) == 4
    batches = list(source)
    assert len(batches) == 4  # the 4-image real subset is cycled to the synthetic length
    ratios = set()
    for _, targets, weights in batches:
        assert targets.shape == (4, 3) and weights.shape == (4, 3)
        assert targets[:, :2].max() < 4 and set(targets[:, 2].tolist()) <= {4, 5}
        assert torch.allclose(weights.sum(1), torch.ones(4), atol=1e-6)
        ratios.add(round(1 - weights[0, 2].item(), 6))
    again = [w for _, _, w in build_train_source(cfg, "cpu")]
    assert all(torch.equal(a, b[2]) for a, b in zip(again, batches))
    assert all(round(r * 20, 4).is_integer() for r in ratios)
