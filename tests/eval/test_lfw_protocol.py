"""LFW pair lists (view 2 pairs.txt, view 1 pairsDev*.txt) in their exact official format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synface.errors import DataError, SynfaceError
from synface.eval.lfw import load_lfw, load_lfw_view1, read_lfw_pairs
from synface.eval.protocols import load_protocol

PEOPLE = [f"Person_{chr(65 + k)}{chr(97 + k)}" for k in range(12)]
IMAGES_PER_PERSON = 4


def write_lfw_images(root: Path, suffix: str = ".jpg") -> None:
    rng = np.random.default_rng(0)
    for name in PEOPLE:
        (root / name).mkdir(parents=True)
        for number in range(1, IMAGES_PER_PERSON + 1):
            pixels = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{number:04d}{suffix}")


def lfw_lines(folds: int, per_fold: int, seed: int = 0) -> tuple[list[str], list[tuple]]:
    """Pair lines in LFW's layout and the (name1, n1, name2, n2) they encode."""
    rng = np.random.default_rng(seed)
    lines, pairs = [], []
    for _ in range(folds):
        for _ in range(per_fold):
            name = PEOPLE[rng.integers(len(PEOPLE))]
            first, second = rng.choice(np.arange(1, IMAGES_PER_PERSON + 1), 2, replace=False)
            lines.append(f"{name}\t{first}\t{second}")
            pairs.append((name, first, name, second))
        for _ in range(per_fold):
            one, two = rng.choice(len(PEOPLE), 2, replace=False)
            first, second = rng.integers(1, IMAGES_PER_PERSON + 1, 2)
            lines.append(f"{PEOPLE[one]}\t{first}\t{PEOPLE[two]}\t{second}")
            pairs.append((PEOPLE[one], first, PEOPLE[two], second))
    return lines, pairs


def write_view2(path: Path, folds: int = 10, per_fold: int = 300) -> list[tuple]:
    lines, pairs = lfw_lines(folds, per_fold)
    path.write_text(f"{folds}\t{per_fold}\n" + "\n".join(lines) + "\n")
    return pairs


def test_view2_official_shape(tmp_path):
    write_lfw_images(tmp_path / "lfw")
    expected = write_view2(tmp_path / "pairs.txt")
    # pairs.txt next to the image folder is found without --pairs
    pair_set = load_lfw(tmp_path / "lfw")
    assert pair_set.name == "lfw" and pair_set.num_pairs == 6000 and pair_set.num_folds == 10
    for fold in range(10):
        block = slice(600 * fold, 600 * (fold + 1))
        assert np.all(pair_set.folds[block] == fold)
        assert pair_set.issame[block][:300].all() and not pair_set.issame[block][300:].any()
    assert len(pair_set.images) == len({str(image) for image in pair_set.images})  # distinct
    for row in (0, 299, 300, 5999):
        name1, n1, name2, n2 = expected[row]
        first, second = (pair_set.images[i] for i in pair_set.pairs[row])
        assert first == tmp_path / "lfw" / name1 / f"{name1}_{n1:04d}.jpg"
        assert second == tmp_path / "lfw" / name2 / f"{name2}_{n2:04d}.jpg"


def test_view1_dev_lists(tmp_path):
    write_lfw_images(tmp_path)
    lines, _ = lfw_lines(1, 30)
    (tmp_path / "pairsDevTest.txt").write_text("30\n" + "\n".join(lines) + "\n")
    pair_set = load_protocol("lfw-view1", tmp_path)
    assert pair_set.num_pairs == 60 and pair_set.num_folds == 10
    assert pair_set.issame[:30].all() and not pair_set.issame[30:].any()
    for fold in range(10):  # balanced: 3 same + 3 different, consecutive within each block
        members = np.flatnonzero(pair_set.folds == fold)
        np.testing.assert_array_equal(members, [3 * fold, 3 * fold + 1, 3 * fold + 2,
                                                30 + 3 * fold, 31 + 3 * fold, 32 + 3 * fold])
    with pytest.raises(DataError, match="use protocol lfw-view1"):
        load_lfw(tmp_path, tmp_path / "pairsDevTest.txt")
    write_view2(tmp_path / "pairs.txt", folds=2, per_fold=3)
    with pytest.raises(DataError, match="use protocol lfw$"):
        load_lfw_view1(tmp_path, tmp_path / "pairs.txt")


def test_png_copies_are_accepted(tmp_path):
    write_lfw_images(tmp_path / "aligned", suffix=".png")
    write_view2(tmp_path / "pairs.txt", folds=2, per_fold=3)
    pair_set = load_lfw(tmp_path / "aligned", tmp_path / "pairs.txt")
    assert all(Path(image).suffix == ".png" for image in pair_set.images)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda lines: lines.__setitem__(3, "Person_Aa\t1"), r"pairs.txt:4: expected a same-person"),
        (lambda lines: lines.__setitem__(5, "Person_Aa\t1\tPerson_Bb\tx"), r"pairs.txt:6: image number 'x'"),
        (lambda lines: lines.__setitem__(2, "Person_Aa\t1\tPerson_Bb\t2"), r"pairs.txt:3: expected a same"),
        (lambda lines: lines.__setitem__(5, "Person_Aa\t1\t2"), r"pairs.txt:6: expected a different"),
        (lambda lines: lines.pop(), r"pairs.txt:12: header '2 3' announces 12 pair lines, the file has 11"),
        (lambda lines: lines.append("Person_Aa\t1\t2"), r"pairs.txt:14: header '2 3' announces 12"),
        (lambda lines: lines.__setitem__(0, "ten\t3"), r"pairs.txt:1: fold count 'ten'"),
        (lambda lines: lines.__setitem__(0, "2 3 4"), r"pairs.txt:1: header must be"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, edit, match):
    lines, _ = lfw_lines(2, 3)
    lines = ["2\t3", *lines]
    edit(lines)
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=match):
        read_lfw_pairs(tmp_path / "pairs.txt")


def test_blank_lines_keep_line_numbers(tmp_path):
    lines, _ = lfw_lines(2, 3)
    lines = ["2\t3", "", *lines[:4], "Person_Aa\t1\tbad", *lines[5:]]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"pairs.txt:7: expected a different"):
        read_lfw_pairs(tmp_path / "pairs.txt")


def test_missing_image_is_named(tmp_path):
    write_lfw_images(tmp_path)
    write_view2(tmp_path / "pairs.txt", folds=2, per_fold=3)
    lines = (tmp_path / "pairs.txt").read_text().splitlines()
    lines[1] = "Person_Aa\t1\t9"
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    expected = tmp_path / "Person_Aa" / "Person_Aa_0009.jpg"
    with pytest.raises(DataError, match=f"image {expected} listed in .*pairs.txt:2 does not exist"):
        load_lfw(tmp_path)


def test_missing_inputs(tmp_path):
    with pytest.raises(DataError, match="image folder .* does not exist"):
        load_lfw(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no pairs.txt in"):
        load_lfw(tmp_path)
    with pytest.raises(SynfaceError, match="needs --data"):
        load_protocol("lfw", None)
    with pytest.raises(SynfaceError, match="unknown protocol 'lwf'; did you mean lfw"):
        load_protocol("lwf", tmp_path)
