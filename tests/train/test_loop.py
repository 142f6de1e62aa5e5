"""The training loop on CPU: it learns, resumes exactly, stops on NaN, refuses foreign checkpoints, saves no pickle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch

from synface.checkpoint import load_model, load_state
from synface.errors import SynfaceError
from synface.train import fit, loop
from synface.train.checkpoints import latest_checkpoint, resolve_checkpoint
from synface.train.logging_utils import read_records

from .conftest import run_config, write_patterns


def _tensors(folder: Path, name: str) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(folder / f"{name}.safetensors"))


def _digest(folder: Path) -> dict[str, str]:
    """Content hash of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_tiny_run_learns_and_writes_a_complete_run_folder(patterns32: Path, tmp_path: Path) -> None:
    cfg = run_config(patterns32, tmp_path / "run", data={"batch_size": 32, "augmentation": "paper"},
                     train={"epochs": 4, "log_interval": 3, "tensorboard": True})
    result = fit(cfg)
    # 8 classes: chance is 12.5%; the last epoch must be far above it.
    assert result["metrics"]["train/epoch_accuracy"] > 0.8
    assert result["steps"] == 4 * 6 and result["num_classes"] == 8
    run = tmp_path / "run"
    records = read_records(run / "metrics.jsonl")
    interval = [r for r in records if "train/loss" in r]
    assert [r["step"] for r in interval] == [3, 6, 9, 12, 15, 18, 21, 24]
    assert interval[-1]["train/loss"] < interval[0]["train/loss"] / 3
    assert [r["epoch"] for r in records if "train/epoch_loss" in r] == [1, 2, 3, 4]
    assert any((run / "tensorboard").iterdir())
    assert (run / "config.yaml").read_text() == cfg.to_yaml()
    checkpoint = Path(result["checkpoint"])
    assert checkpoint == latest_checkpoint(run) == resolve_checkpoint(run) and checkpoint.name == "epoch-0004"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0004", "latest.json"]
    # The backbone rebuilds from model.safetensors + model.json alone.
    model, meta = load_model(checkpoint)
    assert meta["name"] == "iresnet_tiny" and meta["extra"]["epoch"] == 4
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 32)
    head = load_state(checkpoint, name="head")
    assert tuple(head["weight"].shape) == (8, 32) and tuple(head["momentum"].shape) == (8, 32)


def test_checkpoints_hold_no_pickle(patterns16: Path, tmp_path: Path) -> None:
    result = fit(run_config(patterns16, tmp_path / "run", train={"epochs": 1, "precision": "bf16"}))
    files = [p for p in Path(result["run_dir"]).rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".safetensors", ".json", ".jsonl", ".yaml"}
    for path in files:
        data = path.read_bytes()
        assert not data.startswith(b"PK"), f"{path} is a zip (torch.save) archive"
        if path.suffix == ".safetensors":
            # safetensors: an 8-byte little-endian header size, a JSON header, raw tensor bytes.
            size = int.from_bytes(data[:8], "little")
            assert json.loads(data[8:8 + size]) and safetensors.torch.load(data) is not None
        else:
            text = data.decode("utf-8")  # plain text, never a binary pickle
            if path.suffix == ".json":
                json.loads(text)


def _kill_after(monkeypatch: pytest.MonkeyPatch, calls: int) -> None:
    """Make the ``calls``-th train step raise, as a kill in the middle of an epoch would stop the run."""
    real = loop.train_step
    count = {"n": 0}

    def step(*args, **kwargs):
        count["n"] += 1
        if count["n"] == calls:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step)


@pytest.mark.parametrize("precision", ["fp32", pytest.param("fp16", marks=pytest.mark.slow)])
def test_resume_continues_exactly(patterns16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  precision: str) -> None:
    # Dropout, augmentation, momentum and the fp16 grad scale all have to come back for the weights to match.
    sections = {"data": {"augmentation": "paper", "batch_size": 8},
                "model": {"name": "iresnet_tiny", "num_features": 32, "dropout": 0.3},
                "train": {"epochs": 2, "warmup_epochs": 0.5, "milestones": [0.7], "log_interval": 1,
                          "precision": precision}}
    whole = fit(run_config(patterns16, tmp_path / "whole", **sections))
    _kill_after(monkeypatch, calls=6)  # 4 steps per epoch: dies in the middle of epoch 2
    with pytest.raises(KeyboardInterrupt):
        fit(run_config(patterns16, tmp_path / "resumed", **sections))
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path / "resumed").name == "epoch-0001"
    sections["train"] = {**sections["train"], "resume": True}
    resumed = fit(run_config(patterns16, tmp_path / "resumed", **sections))
    assert resumed["steps"] == whole["steps"] == 8
    for name in ("model", "head"):
        expected, actual = _tensors(Path(whole["checkpoint"]), name), _tensors(Path(resumed["checkpoint"]), name)
        assert expected.keys() == actual.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=f"{name} {key}")
    losses = [[r["train/loss"] for r in read_records(Path(result["run_dir"]) / "metrics.jsonl") if "train/loss" in r]
              for result in (whole, resumed)]
    assert len(losses[1]) == 8 and losses[1] == pytest.approx(losses[0], abs=1e-6)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(
        patterns16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = loop.train_step
    count = {"n": 0}

    def step(*args, **kwargs):
        output = real(*args, **kwargs)
        count["n"] += 1
        return output._replace(loss=output.loss * float("nan")) if count["n"] == 7 else output

    monkeypatch.setattr(loop, "train_step", step)
    cfg = run_config(patterns16, tmp_path / "run", data={"batch_size": 8}, train={"epochs": 3, "log_interval": 4})
    with pytest.raises(SynfaceError, match=r"NaN or infinite at step 7 \(epoch 2, batch 3 of 4\)"):
        fit(cfg)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert latest_checkpoint(tmp_path / "run").name == "epoch-0001"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-0001", "latest.json"]


def test_resume_refuses_a_different_config_and_writes_nothing(patterns16: Path, tmp_path: Path) -> None:
    fit(run_config(patterns16, tmp_path / "run", train={"epochs": 1}))
    before = _digest(tmp_path / "run")
    changed = run_config(patterns16, tmp_path / "run", data={"batch_size": 8}, model={"num_features": 16},
                         train={"epochs": 1, "resume": True})
    with pytest.raises(SynfaceError) as error:
        fit(changed)
    message = str(error.value)
    assert "data.batch_size (16 -> 8)" in message and "model.num_features (32 -> 16)" in message
    assert "steps_per_epoch" not in message  # config fields are compared before the data is read
    with pytest.raises(SynfaceError, match="already holds a run"):
        fit(run_config(patterns16, tmp_path / "run", train={"epochs": 1}))
    assert _digest(tmp_path / "run") == before


def test_resume_of_a_finished_run_changes_nothing(patterns16: Path, tmp_path: Path) -> None:
    first = fit(run_config(patterns16, tmp_path / "run", train={"epochs": 1}))
    weights = _digest(Path(first["checkpoint"]))
    again = fit(run_config(patterns16, tmp_path / "run", train={"epochs": 1, "resume": True, "log_interval": 5}))
    assert again["checkpoint"] == first["checkpoint"] and again["steps"] == first["steps"]
    assert _digest(Path(again["checkpoint"])) == weights


def test_validation_metrics_are_logged(patterns16: Path, tmp_path: Path) -> None:
    # Pairs of a held-out generated set (other identities) validate; never a test set.
    held_out = write_patterns(tmp_path / "held_out", num_classes=6, samples=4, size=(16, 16), seed=5)
    validation = {"protocol": "synthetic", "data": str(held_out), "options": {"num_pairs": 40, "num_folds": 2},
                  "rules": ["synface", "arcface"], "every": 2}
    cfg = run_config(patterns16, tmp_path / "run", data={"batch_size": 16}, train={"epochs": 3},
                     validation=validation)
    result = fit(cfg)
    records = read_records(tmp_path / "run" / "metrics.jsonl")
    validated = [r["epoch"] for r in records if "val/synthetic/synface/accuracy" in r]
    assert validated == [2, 3]  # every 2 epochs, and after the last
    metrics = result["metrics"]
    assert 0.0 <= metrics["val/synthetic/synface/accuracy"] <= 1.0
    assert "val/synthetic/arcface+flip/auc" in metrics
