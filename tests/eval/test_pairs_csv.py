"""Generic pairs CSV: paths, labels, folds, and errors that name the file and line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synface.errors import DataError, SynfaceError
from synface.eval.pairs_csv import read_pairs_csv
from synface.eval.protocols import load_protocol


def write_images(root, names):
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(root / name)


def rows(count):
    return [f"img{k % 5}.png,img{(k + 1) % 5}.png,{k % 2}" for k in range(count)]


def test_relative_paths_against_csv_folder_and_default_folds(tmp_path):
    write_images(tmp_path, [f"img{k}.png" for k in range(5)])
    (tmp_path / "pairs.csv").write_text("path1,path2,label\n" + "\n".join(rows(23)) + "\n")
    pair_set = load_protocol("pairs", None, tmp_path / "pairs.csv")
    assert pair_set.name == "pairs" and pair_set.num_pairs == 23 and len(pair_set.images) == 5
    assert pair_set.issame.tolist() == [bool(k % 2) for k in range(23)]
    # insightface's contiguous split: 3 folds of 3 then 7 of 2
    assert np.bincount(pair_set.folds).tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert pair_set.images[pair_set.pairs[0, 0]] == tmp_path / "img0.png"


def test_fold_column_image_root_and_absolute_paths(tmp_path):
    write_images(tmp_path / "faces", ["a.png", "b.png"])
    absolute = tmp_path / "faces" / "a.png"
    text = "Path1,Path2,Label,Fold\n" + "\n".join([
        "a.png,b.png,1,1", f"{absolute},b.png,0,1", "a.png,b.png,true,3", "b.png,a.png,False,3",
        "\"a.png\",b.png,0,2",
    ]) + "\n"
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "custom.csv").write_text(text)
    pair_set = read_pairs_csv(tmp_path / "lists" / "custom.csv", tmp_path / "faces")
    assert pair_set.folds.tolist() == [0, 0, 2, 2, 1]  # sorted distinct values 1, 2, 3
    assert pair_set.issame.tolist() == [True, False, True, False, False]
    assert len(pair_set.images) == 2  # the absolute path is the same image as a.png


@pytest.mark.parametrize(
    "text,match",
    [
        ("a,b,c\n", r"pairs.csv:1: header must be 'path1,path2,label\[,fold\]'"),
        ("path1,path2,label\nimg0.png,img1.png,1\nimg0.png,img1.png\n", r"pairs.csv:3: expected 3 fields"),
        ("path1,path2,label\nimg0.png,img1.png,1\nimg0.png,img1.png,maybe\n", r"pairs.csv:3: label 'maybe'"),
        ("path1,path2,label,fold\nimg0.png,img1.png,1,0\n\nimg0.png,img1.png,1,x\n",
         r"pairs.csv:4: fold 'x'"),
        ("path1,path2,label\nimg0.png,img1.png,1\nimg0.png,,0\n", r"pairs.csv:3: empty image path"),
        ("path1,path2,label\nimg0.png,img9.png,1\nimg0.png,img1.png,0\n",
         r"img9.png listed in .*pairs.csv:2 does not exist"),
        ("path1,path2,label,fold\nimg0.png,img1.png,1,0\nimg0.png,img1.png,0,0\n", "a single value"),
        ("path1,path2,label\nimg0.png,img1.png,1\n", "1 pairs"),
        ("", "empty pairs CSV"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, match):
    write_images(tmp_path, ["img0.png", "img1.png"])
    (tmp_path / "pairs.csv").write_text(text)
    with pytest.raises(DataError, match=match):
        read_pairs_csv(tmp_path / "pairs.csv")


def test_protocol_arguments(tmp_path):
    with pytest.raises(SynfaceError, match="needs --pairs"):
        load_protocol("pairs", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_protocol("pairs", tmp_path, tmp_path / "none.csv")
