"""`synface train`, `export-onnx` and `bench` end to end on tiny inputs."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from synface import cli
from synface.train.bench import run_train_benchmark

from .conftest import run_config


def _config_file(dataset: Path, tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    run_config(dataset, tmp_path / "unused", train={"epochs": 1}).to_yaml(path)
    return path


@pytest.mark.slow
def test_train_resume_and_export_onnx(patterns16: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config, run = _config_file(patterns16, tmp_path), tmp_path / "run"
    assert cli.main(["-q", "train", str(config), "train.epochs=2", "--out", str(run), "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 4 and Path(result["checkpoint"]).name == "epoch-0002"
    assert (run / "train.log").exists() and (run / "config.yaml").exists()

    # Again without --resume: refused in one line, exit status 2.
    assert cli.main(["-q", "train", str(config), "train.epochs=2", "--out", str(run)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("synface: error:") and "already holds a run" in error and "\n" not in error

    # Resuming a finished run trains nothing more.
    assert cli.main(["-q", "train", str(config), "train.epochs=2", "--out", str(run), "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 4

    onnx_path = tmp_path / "model.onnx"
    assert cli.main(["-q", "export-onnx", str(run), str(onnx_path)]) == 0
    graph = onnx.load(str(onnx_path)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["embedding"]
    dims = [d.dim_value or d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 16, 16]


def test_bad_config_is_one_line_before_any_work(patterns16: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    config = _config_file(patterns16, tmp_path)
    assert cli.main(["-q", "train", str(config), "model.name=resnet9", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("synface: error: model.name: unknown model 'resnet9'") and "\n" not in error
    assert not (tmp_path / "run").exists()
    assert cli.main(["-q", "export-onnx", str(tmp_path / "nothing"), str(tmp_path / "x.onnx")]) == 2
    assert "not a checkpoint" in capsys.readouterr().err


def test_train_benchmark_random_and_disk(patterns32: Path) -> None:
    random = run_train_benchmark("iresnet_tiny", batch_size=4, num_classes=10, precision="fp32",
                                 channels_last=False, source="random", device="cpu", steps=2, warmup=1,
                                 augmentation="none", num_features=32, image_size=(32, 32))
    assert random["images_per_second"] > 0 and random["num_classes"] == 10 and random["image_size"] == [32, 32]
    disk = run_train_benchmark("iresnet_tiny", batch_size=48, precision="fp32", channels_last=True,
                               source="disk", data_path=str(patterns32), device="cpu", steps=4, warmup=1,
                               num_features=32, workers=0, image_size=(32, 32))
    # 192 images make 4 batches of 48: the 5 steps run over two epochs.
    assert disk["num_classes"] == 8 and disk["steps"] == 4 and disk["seconds_per_step"] > 0


def test_train_benchmark_rejects_bad_sources() -> None:
    from synface.errors import ConfigError

    with pytest.raises(ConfigError, match="source 'disk' needs data_path"):
        run_train_benchmark("iresnet_tiny", source="disk", device="cpu")
    with pytest.raises(ConfigError, match="unknown source 'tape'"):
        run_train_benchmark("iresnet_tiny", source="tape", device="cpu")


def test_bench_commands(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["-q", "bench", "train", "--model", "iresnet_tiny", "--batch-size", "2", "--steps", "1",
                     "--warmup", "0", "--num-classes", "5", "--precision", "fp32", "--no-channels-last",
                     "--augmentation", "none", "--image-size", "32", "32", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["model"], result["batch_size"], result["channels_last"]) == ("iresnet_tiny", 2, False)

    calls = {}

    def fake_generate_benchmark(**kwargs):
        calls.update(kwargs)
        return {"images_per_second": 1.0}

    import synface.generate.bench

    monkeypatch.setattr(synface.generate.bench, "run_generate_benchmark", fake_generate_benchmark)
    assert cli.main(["-q", "bench", "generate", "--config", "tiny", "--batch-size", "3", "--iterations", "2",
                     "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out) == {"images_per_second": 1.0}
    assert (calls["batch_size"], calls["iterations"], str(calls["device"])) == (3, 2, "cpu")
    assert calls["config"].layout is not None
