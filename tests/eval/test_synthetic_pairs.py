"""The synthetic protocol: balanced, identity-disjoint, deterministic pairs from a generated dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from synface.errors import ConfigError, DataError
from synface.eval.protocols import load_protocol
from synface.eval.synthetic_pairs import build_pairs


def write_dataset(root, num_identities=24, samples=4, mixed_every=0, shard_size=7):
    """A synface-dataset/1 folder (docs/architecture.md); every ``mixed_every``-th sample mixed."""
    rng = np.random.default_rng(0)
    total = num_identities * samples
    images = rng.integers(0, 256, (total, 8, 6, 3), dtype=np.uint8)
    identity = np.repeat(np.arange(num_identities), samples).astype(np.int64)
    partner = identity.copy()
    if mixed_every:
        partner[::mixed_every] = (identity[::mixed_every] + 1) % num_identities
    phi = np.where(partner == identity, 1.0, 0.6).astype(np.float32)
    (root / "shards").mkdir(parents=True)
    listing = []
    for number, start in enumerate(range(0, total, shard_size)):
        part = slice(start, min(start + shard_size, total))
        names = {"images": f"shards/images-{number:05d}.npy", "meta": f"shards/meta-{number:05d}.safetensors"}
        np.save(root / names["images"], images[part])
        save_file({
            "labels": np.stack([identity, partner], 1)[part].copy(),
            "label_weights": np.stack([phi, 1 - phi], 1)[part].copy(),
            "identity": identity[part].copy(),
            "sample_index": np.tile(np.arange(samples), num_identities)[part].astype(np.int64),
            "mix_partner": partner[part].copy(),
            "mix_phi": phi[part].copy(),
        }, str(root / names["meta"]))
        listing.append({"index": number, **names, "start": start, "stop": part.stop})
    (root / "dataset.json").write_text(json.dumps({
        "format": "synface-dataset/1", "num_identities": num_identities, "num_samples": total,
        "num_classes": num_identities, "shards": listing,
        "image": {"height": 8, "width": 6, "channels": 3, "template": "synface", "dtype": "uint8",
                  "layout": "NHWC"},
    }))
    return images, identity, phi


def check_structure(pairs, issame, folds, identity, per_fold):
    assert np.bincount(folds).tolist() == [2 * per_fold] * 10
    same_person = identity[pairs[:, 0]] == identity[pairs[:, 1]]
    np.testing.assert_array_equal(same_person, issame)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    assert len({tuple(sorted(row)) for row in pairs.tolist()}) == len(pairs)  # no repeats
    for fold in range(10):
        in_fold = folds == fold
        assert issame[in_fold].sum() == per_fold
        people = set(identity[pairs[in_fold].ravel()].tolist())
        others = set(identity[pairs[~in_fold].ravel()].tolist())
        assert not people & others  # identity-disjoint folds


@pytest.mark.parametrize("num_identities,samples,num_pairs", [(20, 3, 60), (200, 10, 2000)])
def test_build_pairs_balanced_and_deterministic(num_identities, samples, num_pairs):
    # the small case enumerates candidates, the large one samples them
    identity = np.repeat(np.arange(num_identities), samples)
    pairs, issame, folds = build_pairs(identity, num_pairs, 10, seed=3)
    check_structure(pairs, issame, folds, identity, num_pairs // 20)
    again = build_pairs(identity, num_pairs, 10, seed=3)
    for first, second in zip((pairs, issame, folds), again):
        np.testing.assert_array_equal(first, second)
    assert not np.array_equal(build_pairs(identity, num_pairs, 10, seed=4)[0], pairs)


def test_build_pairs_limits():
    identity = np.repeat(np.arange(20), 2)
    with pytest.raises(DataError, match="possible positive"):
        build_pairs(identity, 60, 10)  # 2 positives possible per fold, 3 asked
    with pytest.raises(DataError, match="at least 20"):
        build_pairs(np.repeat(np.arange(19), 3), 20, 10)
    with pytest.raises(ConfigError, match="multiple of 2 x 10"):
        build_pairs(identity, 30, 10)


def test_load_synthetic_reads_images_and_skips_mixed_samples(tmp_path):
    images, identity, phi = write_dataset(tmp_path / "syn", mixed_every=5)
    pair_set = load_protocol("synthetic", tmp_path / "syn", num_pairs=100)
    assert pair_set.name == "synthetic" and pair_set.num_pairs == 100 and pair_set.num_folds == 10
    # map every image back to its dataset sample by content
    lookup = {images[k].tobytes(): k for k in range(len(images))}
    samples = np.array([lookup[np.asarray(image).tobytes()] for image in pair_set.images])
    assert np.all(phi[samples] == 1.0)  # identity-mixup samples are never used
    check_structure(samples[pair_set.pairs], pair_set.issame, pair_set.folds, identity, 5)
    assert "sample" in pair_set.describe_image(0)


def test_load_synthetic_errors(tmp_path):
    with pytest.raises(DataError):
        load_protocol("synthetic", tmp_path)  # no dataset.json
    write_dataset(tmp_path / "tiny", num_identities=12)
    with pytest.raises(DataError, match="12 identities"):
        load_protocol("synthetic", tmp_path / "tiny", num_pairs=20)
