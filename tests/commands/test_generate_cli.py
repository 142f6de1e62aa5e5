"""`synface generate / preview / export` end to end on a tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synface.cli import main

TINY = """\
layout: {group_identities: [2], group_samples: [1]}
mixup: {mode: fixed, phi: 0.8}
render: {supersample: 1}
shard_size: 2
batch_size: 2
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.mark.slow
def test_generate_resume_preview_export(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dataset"
    assert main(["-q", "generate", str(config_file), "--out", str(out), "--device", "cpu", "seed=4"]) == 0
    printed = capsys.readouterr().out
    assert "face model: " in printed and "2 images of 2 identities" in printed
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["config"]["seed"] == 4 and summary["mixup"] == "fixed"
    assert summary["face_model"]["name"] in printed

    # Same command again: nothing to do, same files.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["-q", "generate", str(config_file), "--out", str(out), "--device", "cpu", "seed=4"]) == 0
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # Another config on the same folder is refused with one line.
    assert main(["-q", "generate", str(config_file), "--out", str(out), "seed=5"]) == 2
    assert "different config" in capsys.readouterr().err

    export = tmp_path / "export"
    assert main(["-q", "export", str(out), str(export)]) == 0
    lines = (export / "labels.csv").read_text().splitlines()
    assert lines == ["path,id_a,w_a,id_b,w_b", "0/0000.png,0,0.8,1,0.2", "1/0000.png,1,0.8,0,0.2"]

    picture = tmp_path / "grid.png"
    assert main(["-q", "preview", str(config_file), "--out", str(picture), "--identities", "1",
                 "--variations", "1", "--mixup-strip", "--steps", "2", "--device", "cpu"]) == 0
    image = np.asarray(Image.open(picture))
    assert image.shape == (112 + 6 + 112, 2 * 96 + 2, 3)  # grid, gap, strip


def test_bad_override_is_one_line_and_writes_nothing(config_file: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "never"
    assert main(["generate", str(config_file), "--out", str(out), "mixup.phi=1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "synface: error: mixup.phi: 1.5 is outside [0, 1]"
    assert not out.exists()
    assert main(["generate", str(config_file), "--out", str(out), "layout.group_samples=[2, -1]",
                 "layout.group_identities=[1, 1]"]) == 2
    assert "layout.group_samples[1]: -1 must be a positive count" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_config_and_export_of_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", "no_such_config", "--out", str(tmp_path / "x")]) == 2
    assert "bundled config" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "not a complete synface dataset" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()
