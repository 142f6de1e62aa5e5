"""Reading generated datasets: images, soft labels, batched reads, validation errors and subsets."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from synface.data.base import remap_soft_labels
from synface.data.synthetic import SyntheticDataset
from synface.errors import ConfigError, DataError


def test_items_and_labels_match_what_was_written(tmp_path, synthetic_writer):
    partners = np.array([1, 1, 2, 0, 3, 1, 2, 0, 2, 3, 0, 3])
    phi = np.linspace(0.3, 0.9, 12)
    images = synthetic_writer(tmp_path, partners=partners, phi=phi)
    dataset = SyntheticDataset(tmp_path)
    assert len(dataset) == 12 and dataset.num_classes == 4 and dataset.image_size == (8, 6)
    for k in range(12):
        image, targets, weights = dataset[k]
        assert image.dtype == torch.uint8 and image.shape == (3, 8, 6)
        assert torch.equal(image, torch.from_numpy(images[k]).permute(2, 0, 1))
        identity = k // 3
        assert targets.tolist() == [identity, partners[k]]
        if partners[k] == identity:
            assert weights.tolist() == [1.0, 0.0]
        else:
            assert weights.tolist() == pytest.approx([phi[k], 1 - phi[k]], abs=1e-6)


def test_get_batch_equals_items_in_request_order_across_shards(tmp_path, synthetic_writer):
    images = synthetic_writer(tmp_path, num_identities=5, samples_per_identity=4, shard_size=3)
    dataset = SyntheticDataset(tmp_path)
    indices = [19, 0, 7, 7, 3, 12, 1]
    batch, targets, weights = dataset.get_batch(indices)
    assert batch.shape == (7, 3, 8, 6) and batch.dtype == torch.uint8
    expected = torch.stack([torch.from_numpy(images[i]).permute(2, 0, 1) for i in indices])
    assert torch.equal(batch, expected)
    assert targets[:, 0].tolist() == [i // 4 for i in indices]
    assert torch.equal(weights, torch.tensor([[1.0, 0.0]] * 7))


def test_dataset_pickles_without_its_memory_maps(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    dataset = SyntheticDataset(tmp_path)
    dataset.get_batch([0, 11])
    assert dataset._memmaps
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._memmaps == {}
    assert torch.equal(clone[5][0], dataset[5][0])


def test_missing_manifest_names_the_file(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    (tmp_path / "dataset.json").unlink()
    with pytest.raises(DataError, match="dataset.json: not found"):
        SyntheticDataset(tmp_path)


def test_wrong_format_is_refused(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    manifest["format"] = "something/2"
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="something/2"):
        SyntheticDataset(tmp_path)


def test_truncated_shard_names_the_file(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    path = tmp_path / "shards" / "images-00001.npy"
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"images-00001\.npy: truncated"):
        SyntheticDataset(tmp_path)


def test_missing_image_shard_names_the_file(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    (tmp_path / "shards" / "images-00002.npy").unlink()
    with pytest.raises(DataError, match=r"images-00002\.npy: shard image file missing"):
        SyntheticDataset(tmp_path)


def test_image_size_mismatch_names_the_file(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    np.save(tmp_path / "shards" / "images-00000.npy", np.zeros((5, 8, 7, 3), np.uint8))
    with pytest.raises(DataError, match=r"images-00000\.npy: images are 8x7"):
        SyntheticDataset(tmp_path)


def test_image_count_mismatch_names_the_file(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    np.save(tmp_path / "shards" / "images-00000.npy", np.zeros((4, 8, 6, 3), np.uint8))
    with pytest.raises(DataError, match=r"images-00000\.npy: holds 4 images, dataset.json says 5"):
        SyntheticDataset(tmp_path)


def test_meta_row_count_mismatch_names_the_file(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    path = tmp_path / "shards" / "meta-00001.safetensors"
    meta = load_file(str(path))
    meta["labels"] = meta["labels"][:3]
    save_file(meta, str(path))
    with pytest.raises(DataError, match=r"meta-00001\.safetensors: labels has shape \(3, 2\)"):
        SyntheticDataset(tmp_path)


def test_missing_meta_file_and_bad_shard_listing(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    manifest["shards"][1]["start"] = 6
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"shards\[1\] covers \[6, 10\), expected to start at 5"):
        SyntheticDataset(tmp_path)
    (tmp_path / "shards" / "meta-00000.safetensors").unlink()
    with pytest.raises(DataError, match=r"meta-00000\.safetensors: shard meta file missing"):
        SyntheticDataset(tmp_path)


def test_wrong_dtype_shard_is_refused(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    np.save(tmp_path / "shards" / "images-00000.npy", np.zeros((5, 8, 6, 3), np.float32))
    with pytest.raises(DataError, match=r"images-00000\.npy: holds float32"):
        SyntheticDataset(tmp_path)


def test_labels_outside_declared_identities_are_refused(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path, partners=np.full(12, 7), phi=np.full(12, 0.5))
    with pytest.raises(DataError, match="outside the 4 identities"):
        SyntheticDataset(tmp_path)


# -- subsets ------------------------------------------------------------------------------
def _mixed(tmp_path, synthetic_writer):
    # 4 identities x 3 samples; partners chosen so identities 0-1 mix with 2-3 in places.
    partners = np.array([1, 2, 0, 0, 3, 0, 1, 2, 3, 2, 0, 1])
    phi = np.array([0.8, 0.6, 1.0, 0.7, 0.9, 1.0, 0.5, 1.0, 1.0, 0.4, 0.6, 1.0])
    synthetic_writer(tmp_path, partners=partners, phi=phi)
    return SyntheticDataset(tmp_path), partners, phi


def test_subset_drop_keeps_only_consistent_samples(tmp_path, synthetic_writer):
    dataset, partners, phi = _mixed(tmp_path, synthetic_writer)
    subset = dataset.subset(num_identities=2, samples_per_identity=3, partners="drop")
    # Samples 0..5 belong to identities 0, 1; samples 1 (partner 2) and 4 (partner 3) leave.
    assert subset.num_classes == 2
    assert subset.identity.tolist() == [0, 0, 1, 1]
    assert subset.sample_index.tolist() == [0, 2, 0, 2]
    assert subset.dropped == 2 and subset.relabelled == 0
    assert subset.targets.tolist() == [[0, 1], [0, 0], [1, 0], [1, 0]]
    np.testing.assert_allclose(subset.weights, [[0.8, 0.2], [1, 0], [0.7, 0.3], [1, 0]], atol=1e-6)
    assert subset.targets.max() < subset.num_classes


def test_subset_relabel_turns_outside_partners_into_plain_labels(tmp_path, synthetic_writer):
    dataset, _, _ = _mixed(tmp_path, synthetic_writer)
    subset = dataset.subset(num_identities=2, partners="relabel")
    assert len(subset) == 6 and subset.relabelled == 2 and subset.dropped == 0
    assert subset.targets.tolist() == [[0, 1], [0, 0], [0, 0], [1, 0], [1, 1], [1, 0]]
    np.testing.assert_allclose(subset.weights[1], [1, 0])
    np.testing.assert_allclose(subset.weights[4], [1, 0])
    np.testing.assert_allclose(subset.weights.sum(1), 1.0, atol=1e-6)
    image, targets, _ = subset[4]
    assert torch.equal(image, dataset[4][0]) and targets.tolist() == [1, 1]


def test_subset_samples_are_the_first_by_sample_index(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path, num_identities=3, samples_per_identity=4, shard_size=4)
    subset = SyntheticDataset(tmp_path).subset(num_identities=2, samples_per_identity=2)
    assert subset.identity.tolist() == [0, 0, 1, 1]
    assert subset.sample_index.tolist() == [0, 1, 0, 1]
    assert subset._positions.tolist() == [0, 1, 4, 5]
    nested = subset.subset(num_identities=1)
    assert nested.num_classes == 1 and nested._positions.tolist() == [0, 1]


def test_subset_of_higher_identities_renumbers_classes():
    # The kept identities 5 and 9 become classes 0 and 1; partner 7 is outside.
    targets = np.array([[5, 9], [9, 7], [9, 9]])
    weights = np.array([[0.6, 0.4], [0.3, 0.7], [1.0, 0.0]], np.float32)
    lookup = np.full(10, -1)
    lookup[[5, 9]] = [0, 1]
    new_targets, new_weights, keep, relabelled = remap_soft_labels(targets, weights, lookup, "relabel")
    assert keep.tolist() == [True, True, True] and relabelled == 1
    assert new_targets.tolist() == [[0, 1], [1, 1], [1, 1]]
    np.testing.assert_allclose(new_weights, [[0.6, 0.4], [1, 0], [1, 0]])
    _, _, keep, _ = remap_soft_labels(targets, weights, lookup, "drop")
    assert keep.tolist() == [True, False, True]


def test_subset_asking_too_much_is_an_error(tmp_path, synthetic_writer):
    synthetic_writer(tmp_path)
    dataset = SyntheticDataset(tmp_path)
    with pytest.raises(DataError, match="fewer than the 9"):
        dataset.subset(num_identities=9)
    with pytest.raises(DataError, match="fewer than the 5"):
        dataset.subset(samples_per_identity=5)
    with pytest.raises(ConfigError, match="partners"):
        dataset.subset(partners="keep")  # type: ignore[arg-type]


@pytest.mark.slow
def test_reads_what_the_dataset_writer_wrote(tmp_path):
    from synface.errors import AssetError
    from synface.generate.export import iter_shards
    from synface.generate.sampling import GenerateConfig
    from synface.generate.writer import generate_dataset

    config = GenerateConfig.from_dict({"layout": "3_2", "mixup": {"mode": "grid"}, "render": {"supersample": 1},
                                       "shard_size": 4, "batch_size": 3})
    try:
        generate_dataset(config, tmp_path / "dataset")
    except AssetError as error:
        pytest.skip(f"no default face model available: {error}")
    dataset = SyntheticDataset(tmp_path / "dataset")
    images = np.concatenate([shard[0] for shard in iter_shards(tmp_path / "dataset")])
    labels = np.concatenate([shard[1]["labels"] for shard in iter_shards(tmp_path / "dataset")])
    assert len(dataset) == 6 and dataset.num_classes == 3 and dataset.image_size == images.shape[1:3]
    batch, targets, weights = dataset.get_batch([5, 0, 3])
    assert torch.equal(batch, torch.from_numpy(images[[5, 0, 3]]).permute(0, 3, 1, 2))
    assert targets.tolist() == labels[[5, 0, 3]].tolist()
    assert targets.max() < 3 and torch.allclose(weights.sum(1), torch.ones(3))
