"""Real sets: CFP and AT&T layouts, CFP's fold split, and the deterministic Real_N_S choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from synface.data.real import ATTDataset, CFPDataset, cfp_fold_identities, cfp_split, real_subset
from synface.errors import ConfigError, DataError


def _fake_cfp(root, identities=4, size=(20, 16)):
    """CFP's layout with tiny images, two folds of two identities each."""
    rng = np.random.default_rng(0)
    f_lines, p_lines = [], []
    for person in range(1, identities + 1):
        for view, count, lines in (("frontal", 3, f_lines), ("profile", 2, p_lines)):
            folder = root / "Data" / "Images" / f"{person:03d}" / view
            folder.mkdir(parents=True)
            for k in range(1, count + 1):
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{k:02d}.jpg")
                lines.append(f"{len(lines) + 1} ../Data/Images/{person:03d}/{view}/{k:02d}.jpg")
    protocol = root / "Protocol"
    protocol.mkdir()
    (protocol / "Pair_list_F.txt").write_text("\n".join(f_lines) + "\n")
    (protocol / "Pair_list_P.txt").write_text("\n".join(p_lines) + "\n")
    for setting in ("FF", "FP"):
        for fold in range(1, 11):
            folder = protocol / "Split" / setting / f"{fold:02d}"
            folder.mkdir(parents=True)
            # Fold 1 pairs identities 1-2, fold 2 identities 3-4, others reuse fold 2's.
            base_f = 1 if fold == 1 else 7
            base_p = 1 if fold == 1 else 5
            second = base_f + 3 if setting == "FF" else base_p + 2
            (folder / "same.txt").write_text(f"{base_f},{base_f + 1}\n")
            (folder / "diff.txt").write_text(f"{base_f},{second}\n")


def test_cfp_layout_labels_and_centre_crop(tmp_path):
    _fake_cfp(tmp_path)
    dataset = CFPDataset(tmp_path, image_size=(8, 6), crop="center")
    assert dataset.identity_names == ["001", "002", "003", "004"] and len(dataset) == 20
    assert dataset.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    assert [p.parent.name for p in dataset.paths[:5]] == ["frontal"] * 3 + ["profile"] * 2
    assert dataset[0][0].shape == (3, 8, 6)
    frontal = CFPDataset(tmp_path, image_size=(8, 6), views=("frontal",), exclude_identities={"002"}, crop="center")
    assert frontal.identity_names == ["001", "003", "004"] and len(frontal) == 9


def test_cfp_aligned_mode_refuses_unaligned_photos(tmp_path):
    _fake_cfp(tmp_path)
    with pytest.raises(DataError, match=r"001/frontal/01\.jpg: image is 20x16.*not an aligned crop"):
        CFPDataset(tmp_path, image_size=(8, 6))[0]
    with pytest.raises(ConfigError, match="views"):
        CFPDataset(tmp_path, views=("side",))


def test_cfp_aligned_copy_is_read_as_is(tmp_path):
    # An aligned copy: same layout, 112x112 ArcFace crops -> exact 112x96 centre columns.
    array = np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    folder = tmp_path / "Data" / "Images" / "001" / "frontal"
    folder.mkdir(parents=True)
    Image.fromarray(array).save(folder / "01.jpg", quality=100)
    dataset = CFPDataset(tmp_path, image_size=(112, 96))
    decoded = np.asarray(Image.open(folder / "01.jpg").convert("RGB"))
    assert torch.equal(dataset[0][0], torch.from_numpy(decoded[:, 8:104].copy()).permute(2, 0, 1))


def test_cfp_fold_identities_and_split(tmp_path):
    _fake_cfp(tmp_path)
    folds = cfp_fold_identities(tmp_path)
    assert folds[1] == ["001", "002"] and folds[2] == ["003", "004"]
    train, test = cfp_split(tmp_path, [1])
    assert train == ["003", "004"] and test == ["001", "002"]
    with pytest.raises(ConfigError, match="outside 1..10"):
        cfp_split(tmp_path, [11])
    (tmp_path / "Protocol" / "Split" / "FF" / "03" / "same.txt").write_text("1;2\n")
    with pytest.raises(DataError, match=r"FF/03/same\.txt: line 1"):
        cfp_fold_identities(tmp_path)


def test_real_subset_first_and_seeded(tmp_path):
    _fake_cfp(tmp_path)
    dataset = CFPDataset(tmp_path, image_size=(8, 6), crop="center")
    first = real_subset(dataset, num_identities=2, samples_per_identity=3, exclude_identities={"001"})
    assert first.identity_names == ["002", "003"] and first.num_classes == 2
    assert first.indices.tolist() == [5, 6, 7, 10, 11, 12]
    assert first.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert first[3][1].tolist() == [1, 1]
    seeded = real_subset(dataset, 2, 3, seed=7)
    again = real_subset(dataset, 2, 3, seed=7)
    assert seeded.indices.tolist() == again.indices.tolist()
    assert len(set(dataset.labels[seeded.indices].tolist())) == 2
    assert np.bincount(seeded.labels).tolist() == [3, 3]
    other = [real_subset(dataset, 2, 3, seed=s).indices.tolist() for s in range(8)]
    assert len({tuple(o) for o in other}) > 1  # the seed matters
    with pytest.raises(DataError, match="only 3 identities"):
        real_subset(dataset, 4, 2, exclude_identities={"004"})
    with pytest.raises(DataError, match="only 0 identities"):
        real_subset(dataset, 1, 6)


@pytest.mark.shared
def test_real_cfp_layout_and_folds(shared_dir):
    root = shared_dir / "data" / "cfp"
    folds = cfp_fold_identities(root)
    assert all(len(names) == 50 for names in folds.values())
    assert folds[1][0] == "001" and folds[10][-1] == "500"
    train, test = cfp_split(root, [6, 7, 8, 9, 10])
    assert len(train) == 250 and len(test) == 250 and not set(train) & set(test)
    dataset = CFPDataset(root, exclude_identities=test, crop="center")
    assert dataset.num_classes == 250 and len(dataset) == 250 * 14
    image, targets, weights = dataset[0]
    assert image.shape == (3, 112, 96) and image.dtype == torch.uint8 and targets.tolist() == [0, 0]
    subset = real_subset(dataset, 20, 10)
    assert len(subset) == 200 and subset.identity_names[0] == "001"


@pytest.mark.shared
def test_real_att_faces(shared_dir):
    dataset = ATTDataset(shared_dir / "data" / "att_faces")
    assert dataset.num_classes == 40 and len(dataset) == 400
    assert dataset.identity_names[:3] == ["s1", "s2", "s3"] and dataset.paths[1].name == "2.pgm"
    image, targets, _ = dataset[395]
    assert image.shape == (3, 112, 96) and targets.tolist() == [39, 39]
    assert torch.equal(image[0], image[2])


def test_real_subset_keeps_soft_labels_inside_and_relabels_outside(tmp_path):
    from synface.data.imagefolder import ImageFolderDataset

    rows = ["path,id_a,w_a,id_b,w_b"]
    mixes = {("0", 0): (2, 0.7), ("1", 1): (0, 0.6)}
    for identity in ("0", "1", "2"):
        (tmp_path / identity).mkdir()
        for k in range(2):
            Image.fromarray(np.full((4, 4, 3), 10 * k, np.uint8)).save(tmp_path / identity / f"{k}.png")
            partner, phi = mixes.get((identity, k), (int(identity), 1.0))
            rows.append(f"{identity}/{k}.png,{identity},{phi},{partner},{1 - phi:.6g}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    dataset = ImageFolderDataset(tmp_path, image_size=(4, 4))
    subset = real_subset(dataset, num_identities=2, samples_per_identity=2)
    assert subset.relabelled == 1
    assert subset.targets.tolist() == [[0, 0], [0, 0], [1, 1], [1, 0]]
    np.testing.assert_allclose(subset.weights, [[1, 0], [1, 0], [1, 0], [0.6, 0.4]], atol=1e-6)
    assert subset[3][1].tolist() == [1, 0]
