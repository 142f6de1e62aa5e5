"""`synface assets`: import-ict and list, their output and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synface.cli import main
from synface.generate import ict
from synface.generate.facemodel import FaceModel, save_face_model

ICT_ARCHIVE = Path(__file__).resolve().parents[2].parent / "shared" / "assets" / "ict-facekit" / "FaceXModel.tar.xz"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNFACE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def tiny_model(name: str) -> FaceModel:
    vertices = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return FaceModel(
        name=name, vertices=vertices, triangles=torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]),
        identity_basis=torch.zeros(2, 4, 3), expression_basis=torch.zeros(1, 4, 3), expression_names=("jawOpen",),
        regions=torch.zeros(4, dtype=torch.long), landmarks5_index=torch.zeros(5, 1, dtype=torch.long),
        landmarks5_weight=torch.ones(5, 1), landmarks68_index=torch.zeros(68, 1, dtype=torch.long),
        landmarks68_weight=torch.ones(68, 1), pivot=torch.zeros(3), source="test",
    )


def test_list_shows_the_builtin_head_as_default_when_nothing_is_imported(home: Path, capsys) -> None:
    assert main(["assets", "list"]) == 0
    assert capsys.readouterr().out == "builtin (default): built-in head made by code\n"


def test_list_shows_imported_models_with_their_sizes(home: Path, capsys) -> None:
    save_face_model(tiny_model("ict-facekit"), home / "facemodels" / "ict-facekit")
    assert main(["assets", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "builtin: built-in head made by code"
    assert lines[1].startswith("ict-facekit (default): 4 vertices, 2 identity modes, 1 expressions; ")
    assert str(home / "facemodels" / "ict-facekit") in lines[1]


def test_import_ict_reports_what_it_wrote(home: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(ict, "read_ict_facekit", lambda source: source)
    monkeypatch.setattr(ict, "build_ict_model", lambda files, name: tiny_model(name))
    assert main(["assets", "import-ict", str(tmp_path), "--name", "mine"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"imported face model 'mine' into {home / 'facemodels' / 'mine'}: ")
    assert "4 vertices, 2 identity modes, 1 expressions" in out
    assert (home / "facemodels" / "mine" / "model.json").is_file()


def test_import_ict_errors_are_one_line(home: Path, tmp_path: Path, capsys) -> None:
    assert main(["assets", "import-ict", str(tmp_path / "missing.tar.xz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synface: error: ") and "missing.tar.xz: no such file or folder" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["assets", "import-ict", str(tmp_path), "--name", "a/b"]) == 2
    assert "name: 'a/b' is not a valid model name" in capsys.readouterr().err
    assert not (home / "facemodels").exists() or list((home / "facemodels").iterdir()) == []


def test_assets_without_an_action_prints_usage(home: Path, capsys) -> None:
    assert main(["assets"]) == 2
    assert "import-ict" in capsys.readouterr().out


@pytest.mark.shared
@pytest.mark.slow
def test_import_ict_on_the_real_archive(home: Path, capsys) -> None:
    if not ICT_ARCHIVE.is_file():
        pytest.skip(f"needs {ICT_ARCHIVE}")
    assert main(["--quiet", "assets", "import-ict", str(ICT_ARCHIVE)]) == 0
    out = capsys.readouterr().out
    assert f"into {home / 'facemodels' / 'ict-facekit'}: 24591 vertices, 100 identity modes, 53 expressions" in out
    assert main(["assets", "list"]) == 0
    assert "ict-facekit (default): 24591 vertices" in capsys.readouterr().out


def test_install_mtcnn_from_a_folder_and_refuse_a_missing_source(home, tmp_path, capsys):
    from synface.eval.mtcnn import build_networks, mtcnn_weights_dir

    source = tmp_path / "weights"
    source.mkdir()
    for name, net in build_networks().items():
        torch.save(net.state_dict(), source / f"{name}.pt")
    assert main(["assets", "install", "mtcnn", "--source", str(source)]) == 0
    assert "installed MTCNN weights" in capsys.readouterr().out
    assert sorted(p.name for p in mtcnn_weights_dir().iterdir()) == [
        "onet.safetensors", "pnet.safetensors", "rnet.safetensors", "weights.json"]
    assert main(["assets", "install", "mtcnn", "--source", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such wheel or folder" in capsys.readouterr().err
