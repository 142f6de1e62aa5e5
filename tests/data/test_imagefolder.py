"""Identity-per-folder trees: deterministic labels, size handling and named errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from synface.data.imagefolder import ImageFolderDataset
from synface.errors import ConfigError, DataError


def _tree(tmp_path, size=(8, 6)):
    rng = np.random.default_rng(0)
    arrays = {}
    # Created out of order on purpose: labels must follow sorted names, not creation order.
    for name, files in (("bob", ["2.png", "10.png"]), ("alice", ["b.png", "a.png", "c.png"])):
        (tmp_path / name).mkdir()
        for file in files:
            array = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
            Image.fromarray(array).save(tmp_path / name / file)
            arrays[f"{name}/{file}"] = array
    (tmp_path / "alice" / "notes.txt").write_text("not an image")
    return arrays


def test_labels_and_order_are_sorted(tmp_path):
    arrays = _tree(tmp_path)
    dataset = ImageFolderDataset(tmp_path, image_size=(8, 6), fit="error")
    assert dataset.identity_names == ["alice", "bob"] and dataset.num_classes == 2
    names = [f"{p.parent.name}/{p.name}" for p in dataset.paths]
    assert names == ["alice/a.png", "alice/b.png", "alice/c.png", "bob/10.png", "bob/2.png"]
    assert dataset.labels.tolist() == [0, 0, 0, 1, 1]
    for index, name in enumerate(names):
        image, targets, weights = dataset[index]
        assert torch.equal(image, torch.from_numpy(arrays[name]).permute(2, 0, 1))
        assert targets.tolist() == [dataset.labels[index]] * 2 and weights.tolist() == [1.0, 0.0]
    images, targets, _ = dataset.get_batch([4, 0])
    assert images.shape == (2, 3, 8, 6) and targets[:, 0].tolist() == [1, 0]


def test_other_sizes_are_resized_or_refused(tmp_path):
    _tree(tmp_path, size=(10, 10))
    assert ImageFolderDataset(tmp_path, image_size=(8, 6))[0][0].shape == (3, 8, 6)
    with pytest.raises(DataError, match=r"a\.png: image is 10x10 \(HxW\), expected 8x6"):
        ImageFolderDataset(tmp_path, image_size=(8, 6), fit="error").verify()
    with pytest.raises(ConfigError, match="fit"):
        ImageFolderDataset(tmp_path, fit="stretch")


def test_greyscale_is_replicated_to_rgb(tmp_path):
    (tmp_path / "x").mkdir()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(8, 6)).save(tmp_path / "x" / "g.pgm")
    image = ImageFolderDataset(tmp_path, image_size=(8, 6), fit="error")[0][0]
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert image[0, 1, 0].item() == 6


def test_empty_identity_folder_is_named(tmp_path):
    _tree(tmp_path)
    (tmp_path / "carol").mkdir()
    with pytest.raises(DataError, match=r"carol: identity folder holds no images"):
        ImageFolderDataset(tmp_path)


def test_unreadable_image_is_named(tmp_path):
    _tree(tmp_path)
    (tmp_path / "bob" / "3.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    dataset = ImageFolderDataset(tmp_path, image_size=(8, 6))
    with pytest.raises(DataError, match=r"bob/3\.jpg: cannot decode image"):
        dataset.verify()


def test_missing_or_flat_root_is_an_error(tmp_path):
    with pytest.raises(DataError, match="image folder not found"):
        ImageFolderDataset(tmp_path / "nope")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(DataError, match="no identity sub-folders"):
        ImageFolderDataset(tmp_path)


def test_exported_dataset_keeps_its_soft_labels(tmp_path, synthetic_writer):
    from synface.data.synthetic import SyntheticDataset
    from synface.generate.export import export_image_folder

    partners = np.array([1, 1, 2, 0, 3, 1, 2, 0, 2, 3, 0, 3])
    phi = np.linspace(0.3, 0.9, 12)
    synthetic_writer(tmp_path / "gen", partners=partners, phi=phi)
    export_image_folder(tmp_path / "gen", tmp_path / "out")
    source = SyntheticDataset(tmp_path / "gen")
    exported = ImageFolderDataset(tmp_path / "out", image_size=(8, 6), fit="error")
    assert len(exported) == 12 and exported.num_classes == 4
    for index in range(12):
        image, targets, weights = exported[index]
        expected = source[index]
        assert torch.equal(image, expected[0]) and torch.equal(targets, expected[1])
        assert torch.allclose(weights, expected[2], atol=1e-5)
    plain = ImageFolderDataset(tmp_path / "out", image_size=(8, 6), soft_labels=False)
    assert plain[0][1].tolist() == [0, 0] and plain[0][2].tolist() == [1.0, 0.0]


def test_labels_csv_errors_name_the_line(tmp_path):
    _tree(tmp_path)
    rows = ["path,id_a,w_a,id_b,w_b", "alice/a.png,0,1,0,0"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="line 2 names identity 0, which has no folder"):
        ImageFolderDataset(tmp_path, image_size=(8, 6))
    (tmp_path / "labels.csv").write_text("path,id_a,w_a,id_b,w_b\nx.png,zero,1,0,0\n")
    with pytest.raises(DataError, match="line 2 is"):
        ImageFolderDataset(tmp_path, image_size=(8, 6))
