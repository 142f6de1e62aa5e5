"""CFP-FF / CFP-FP: a tiny hand-made Protocol tree, aligned copies, and the real protocol files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synface.errors import DataError
from synface.eval.cfp import load_cfp
from synface.eval.protocols import load_protocol

# 3 people x (2 frontal + 1 profile); frontal k = person (k-1)//2, profile k = person k-1
SPLITS = {
    "FF": {"01": ("1,2\n", "1,3\n2,5\n"), "02": ("3,4\n5,6\n", "4,6\n")},
    "FP": {"01": ("1,1\n4,2\n", "1,3\n"), "02": ("6,3\n", "5,1\n3,3\n")},
}


def write_cfp(root: Path, images: bool = True, suffix: str = ".jpg") -> None:
    protocol = root / "Protocol"
    (protocol / "Split").mkdir(parents=True)
    frontal = [f"{k + 1} ../Data/Images/{k // 2 + 1:03d}/frontal/{k % 2 + 1:02d}.jpg" for k in range(6)]
    profile = [f"{k + 1} ../Data/Images/{k + 1:03d}/profile/01.jpg" for k in range(3)]
    (protocol / "Pair_list_F.txt").write_text("\n".join(frontal) + "\n")
    (protocol / "Pair_list_P.txt").write_text("\n".join(profile) + "\n")
    for variant, folds in SPLITS.items():
        for fold, (same, diff) in folds.items():
            folder = protocol / "Split" / variant / fold
            folder.mkdir(parents=True)
            (folder / "same.txt").write_text(same)
            (folder / "diff.txt").write_text(diff)
    if images:
        write_cfp_images(root, suffix)


def write_cfp_images(root: Path, suffix: str = ".jpg") -> None:
    rng = np.random.default_rng(1)
    for person in range(1, 4):
        for kind, count in (("frontal", 2), ("profile", 1)):
            folder = root / "Data" / "Images" / f"{person:03d}" / kind
            folder.mkdir(parents=True)
            for number in range(1, count + 1):
                pixels = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{number:02d}{suffix}")


def rel(pair_set, index: int, root: Path) -> str:
    return Path(pair_set.images[index]).relative_to(root).as_posix()


def test_ff_and_fp_from_hand_made_tree(tmp_path):
    write_cfp(tmp_path)
    ff = load_protocol("cfp-ff", tmp_path)
    assert ff.name == "cfp-ff" and ff.num_pairs == 6 and ff.num_folds == 2
    np.testing.assert_array_equal(ff.issame, [True, False, False, True, True, False])
    np.testing.assert_array_equal(ff.folds, [0, 0, 0, 1, 1, 1])
    first = [(rel(ff, a, tmp_path), rel(ff, b, tmp_path)) for a, b in ff.pairs]
    assert first[0] == ("Data/Images/001/frontal/01.jpg", "Data/Images/001/frontal/02.jpg")
    assert first[2] == ("Data/Images/001/frontal/02.jpg", "Data/Images/003/frontal/01.jpg")
    fp = load_protocol("cfp-fp", tmp_path)
    pairs = [(rel(fp, a, tmp_path), rel(fp, b, tmp_path)) for a, b in fp.pairs]
    # the first index is frontal, the second profile
    assert pairs[1] == ("Data/Images/002/frontal/02.jpg", "Data/Images/002/profile/01.jpg")
    assert pairs[4] == ("Data/Images/003/frontal/01.jpg", "Data/Images/001/profile/01.jpg")
    np.testing.assert_array_equal(fp.issame, [True, True, False, True, False, False])


def test_aligned_copy_with_protocol_from_the_original(tmp_path):
    write_cfp(tmp_path / "cfp", images=False)
    write_cfp_images(tmp_path / "aligned", suffix=".png")
    pair_set = load_cfp(tmp_path / "aligned", "FP", protocol=tmp_path / "cfp")
    assert all(Path(image).is_file() and Path(image).suffix == ".png" for image in pair_set.images)
    assert all(Path(image).is_relative_to(tmp_path / "aligned") for image in pair_set.images)
    # the Protocol folder itself works too
    again = load_cfp(tmp_path / "aligned", "FP", protocol=tmp_path / "cfp" / "Protocol")
    assert [str(image) for image in again.images] == [str(image) for image in pair_set.images]


@pytest.mark.parametrize(
    "path,content,match",
    [
        ("Protocol/Split/FF/02/same.txt", "3,4\n5;6\n", r"FF/02/same.txt:2: expected 'i,j'"),
        ("Protocol/Split/FF/01/diff.txt", "1,3\n2,9\n", r"FF/01/diff.txt:2: index 9 is not in Pair_list_F"),
        ("Protocol/Pair_list_F.txt", "1 ../Data/Images/001/frontal/01.jpg\nx y\n",
         r"Pair_list_F.txt:2: expected '<index> <image path>'"),
        ("Protocol/Pair_list_F.txt", "1 ../../etc/passwd\n", r"points outside the CFP folder"),
    ],
)
def test_malformed_protocol_files(tmp_path, path, content, match):
    write_cfp(tmp_path)
    (tmp_path / path).write_text(content)
    with pytest.raises(DataError, match=match):
        load_cfp(tmp_path, "FF")


def test_missing_pieces(tmp_path):
    write_cfp(tmp_path)
    (tmp_path / "Data/Images/003/frontal/01.jpg").unlink()
    with pytest.raises(DataError, match=r"003/frontal/01.jpg listed in .*FF/01/diff.txt:2 does not exist"):
        load_cfp(tmp_path, "FF")
    with pytest.raises(DataError, match="no CFP protocol folder"):
        load_cfp(tmp_path / "Data", "FF")


@pytest.mark.shared
def test_real_cfp_protocol(shared_dir):
    root = shared_dir / "data" / "cfp"
    lists = {}
    for kind in ("F", "P"):
        lines = (root / "Protocol" / f"Pair_list_{kind}.txt").read_text().split("\n")
        lists[kind] = {int(line.split()[0]): line.split()[1] for line in lines if line.strip()}
    for variant in ("FF", "FP"):
        pair_set = load_cfp(root, variant)
        assert pair_set.num_pairs == 7000 and pair_set.num_folds == 10
        for fold in range(10):
            in_fold = pair_set.folds == fold
            assert in_fold.sum() == 700 and pair_set.issame[in_fold].sum() == 350
        kinds = [Path(image).parent.name for image in pair_set.images]
        right = {kinds[index] for index in pair_set.pairs[:, 1]}
        assert {kinds[index] for index in pair_set.pairs[:, 0]} == {"frontal"}
        assert right == ({"frontal"} if variant == "FF" else {"profile"})
        assert all(Path(image).is_file() for image in pair_set.images)
        # same pairs are one person (same identity folder), different pairs two
        people = np.array([Path(image).parent.parent.name for image in pair_set.images])
        same_person = people[pair_set.pairs[:, 0]] == people[pair_set.pairs[:, 1]]
        np.testing.assert_array_equal(same_person, pair_set.issame)
        # spot-check the index mapping of the first FP line against the list files
        if variant == "FP":
            first_line = (root / "Protocol/Split/FP/01/same.txt").read_text().split("\n")[0]
            first, second = first_line.split(",")
            expected = (root / "Protocol" / lists["F"][int(first)]).resolve(), \
                (root / "Protocol" / lists["P"][int(second)]).resolve()
            got = tuple(Path(pair_set.images[index]).resolve() for index in pair_set.pairs[0])
            assert got == expected
