"""`synface eval` end to end: protocols, rules, flip, crop, table, JSON and ROC outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from synface.cli import main
from synface.commands.eval import PROTOCOLS
from synface.eval.binfile import write_bin
from synface.eval.protocols import list_protocols


class PersonNet(nn.Module):
    """Embeds a crop by its mean colour: images of one 'person' share a base colour."""

    def __init__(self, input_size=(112, 96)):
        super().__init__()
        self.input_size = input_size
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x.mean(dim=(2, 3)) * self.scale - 0.01


def person_image(person: int, rng, size=(112, 112)) -> np.ndarray:
    base = np.array([(person * 53) % 256, (person * 97) % 256, (person * 31) % 256])
    noise = rng.integers(-20, 21, size=(*size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_lfw(root, people=8, per_person=3, folds=2, per_fold=6):
    rng = np.random.default_rng(0)
    names = [f"Person_{k}" for k in range(people)]
    for person, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for number in range(1, per_person + 1):
            Image.fromarray(person_image(person, rng)).save(root / name / f"{name}_{number:04d}.png")
    lines = [f"{folds}\t{per_fold}"]
    for _ in range(folds):
        for _ in range(per_fold):
            name = names[rng.integers(people)]
            lines.append(f"{name}\t1\t{rng.integers(2, per_person + 1)}")
        for _ in range(per_fold):
            one, two = rng.choice(people, 2, replace=False)
            lines.append(f"{names[one]}\t{rng.integers(1, per_person + 1)}\t{names[two]}\t1")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def fake_checkpoint(monkeypatch):
    """Stands in for synface.checkpoint.load_model: any path loads a PersonNet."""
    monkeypatch.setattr("synface.checkpoint.load_model",
                        lambda path: (PersonNet(), {"name": "person_net", "path": str(path)}))


def test_command_protocol_names_match_the_registry():
    assert set(PROTOCOLS) == set(list_protocols())


@pytest.mark.slow
def test_eval_lfw_and_bin_in_one_call(tmp_path, fake_checkpoint, capsys):
    write_lfw(tmp_path / "lfw")
    rng = np.random.default_rng(1)
    people = rng.integers(0, 8, size=40)
    images = [person_image(int(p), rng) for p in people]
    issame = [bool(people[2 * k] == people[2 * k + 1]) for k in range(20)]
    write_bin(tmp_path / "custom.bin", images, issame)
    status = main(["eval", "--model", "m", "--protocol", "lfw", "--protocol", "bin",
                   "--data", str(tmp_path / "lfw"), "--data", str(tmp_path / "custom.bin"),
                   "--rule", "all", "--crop", "synface", "--batch-size", "7",
                   "--out", str(tmp_path / "results.json"), "--roc", str(tmp_path / "roc.png"),
                   "--roc-points"])
    output = capsys.readouterr().out
    assert status == 0, output
    rows = [line.split() for line in output.splitlines()[2:8]]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("lfw", "synface", "no"), ("lfw", "arcface", "yes"), ("lfw", "tpr-fpr", "no"),
        ("custom", "synface", "no"), ("custom", "arcface", "yes"), ("custom", "tpr-fpr", "no")]
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["model_meta"]["name"] == "person_net"
    assert document["settings"]["crop"] == "synface"
    assert [entry["rule"] for entry in document["settings"]["rules"]] == ["synface", "arcface", "tpr-fpr"]
    assert [p["pairs"] for p in document["pair_sets"]] == [24, 20]
    lfw_synface = document["results"][0]
    assert lfw_synface["folds"] == 2 and lfw_synface["flip"] is False
    assert lfw_synface["accuracy_mean"] > 0.9  # the colour "identity" is easy to verify
    assert len(lfw_synface["roc"]["fpr"]) == len(lfw_synface["roc"]["tpr"]) > 2
    with Image.open(tmp_path / "roc.png") as image:
        assert image.format == "PNG"


def test_eval_flip_override_and_errors(tmp_path, fake_checkpoint, capsys):
    write_lfw(tmp_path / "lfw")
    status = main(["eval", "--model", "m", "--protocol", "lfw", "--data", str(tmp_path / "lfw"),
                   "--rule", "arcface", "--no-flip", "--crop", "synface"])
    assert status == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:3] == ["lfw", "arcface", "no"]
    # 112x112 crops into a 112x96 model without --crop: refused, with both sizes named
    status = main(["eval", "--model", "m", "--protocol", "lfw", "--data", str(tmp_path / "lfw")])
    error = capsys.readouterr().err
    assert status == 2 and "is 112x112 (H x W) but the model takes 112x96" in error
    assert "--crop synface" in error
    status = main(["eval", "--model", "m", "--protocol", "lfw", "--protocol", "cfp-fp",
                   "--data", "a", "--data", "b", "--data", "c"])
    assert status == 2 and "--data: given 3 times for 2 protocols" in capsys.readouterr().err
    status = main(["eval", "--model", "m", "--protocol", "lfw", "--data", str(tmp_path / "none")])
    assert status == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_with_a_saved_random_weight_checkpoint(tmp_path, capsys):
    from synface.checkpoint import save_model
    from synface.models import create_model

    model = create_model("iresnet_tiny", num_features=32)
    save_model(tmp_path / "ckpt", model, name="iresnet_tiny", kwargs={"num_features": 32})
    write_lfw(tmp_path / "lfw")
    status = main(["eval", "--model", str(tmp_path / "ckpt"), "--protocol", "lfw",
                   "--data", str(tmp_path / "lfw"), "--crop", "synface", "--flip",
                   "--out", str(tmp_path / "r.json")])
    assert status == 0, capsys.readouterr().err
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["model_meta"]["name"] == "iresnet_tiny"
    result = document["results"][0]
    assert result["flip"] is True and 0.0 <= result["accuracy_mean"] <= 1.0
    assert 0.0 <= result["auc"] <= 1.0


def test_eval_on_chosen_folds_only(tmp_path, fake_checkpoint, capsys):
    write_lfw(tmp_path / "lfw", folds=4, per_fold=5)
    out = tmp_path / "results.json"
    status = main(["eval", "--model", "m", "--protocol", "lfw", "--data", str(tmp_path / "lfw"),
                   "--crop", "synface", "--folds", "2-3", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    document = json.loads(out.read_text())
    assert document["settings"]["folds"] == [2, 3]
    assert document["pair_sets"][0]["pairs"] == 20 and document["results"][0]["folds"] == 2
    status = main(["eval", "--model", "m", "--protocol", "lfw", "--data", str(tmp_path / "lfw"),
                   "--crop", "synface", "--folds", "3-7"])
    assert status == 2 and "has 4 folds, asked for folds [5, 6, 7]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--model", "m", "--protocol", "lfw", "--folds", "six"])
