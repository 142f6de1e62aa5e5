"""Data-parallel training: 2 gloo ranks on CPU under torchrun match one process on the same global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from synface.errors import ConfigError
from synface.models import registry
from synface.train import fit
from synface.train.distributed import launched_distributed, resolve_device, setup, teardown

from . import ddp_worker
from .conftest import run_config

ROOT = Path(__file__).resolve().parents[2]


def test_one_process_needs_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_distributed()
    placement = setup("cpu")
    assert (placement.rank, placement.world_size, placement.is_main, placement.distributed) == (0, 1, True, False)
    assert not torch.distributed.is_initialized()
    teardown(placement)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="train.device: 'cuda' but CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="is not a device"):
        resolve_device("tpu7")


def _run_launcher(command: list[str], environment: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run torchrun in its own session, so a hang kills its workers too."""
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        return -1, f"timed out after {timeout}s\n{stderr}"
    return process.returncode, stderr


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    tensors = safetensors.torch.load_file(str(checkpoint / "model.safetensors"))
    tensors["head"] = safetensors.torch.load_file(str(checkpoint / "head.safetensors"))["t0"]
    return tensors


@pytest.mark.slow
def test_two_ranks_match_one_process(patterns16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Registered for this test only, so registry-wide model tests never see it.
    monkeypatch.setitem(registry._MODELS, "test_linear_embedder", ddp_worker.test_linear_embedder)
    # One step per epoch: the global batch is the whole (shuffled) set, so the union of the
    # ranks' halves is exactly the single process's batch.
    common = {"model": {"name": "test_linear_embedder", "num_features": 16},
              "train": {"epochs": 3, "log_interval": 1, "tensorboard": False, "lr_reference_batch": 32,
                        "weight_decay": 5e-4}}
    single = run_config(patterns16, tmp_path / "single", data={"batch_size": 32}, **common)
    reference = fit(single)
    runs = []
    for name, sharded in (("ddp", False), ("ddp_sharded", True)):
        cfg = run_config(patterns16, tmp_path / name, data={"batch_size": 16}, head={"sharded": sharded}, **common)
        runs.append(cfg.to_dict())
    runs_file = tmp_path / "runs.json"
    runs_file.write_text(json.dumps(runs))
    environment = {**os.environ, "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(Path(__file__).with_name("ddp_worker.py")), str(runs_file)]
    returncode, stderr = _run_launcher(command, environment, timeout=240)
    assert returncode == 0, stderr[-3000:]
    expected = _weights(Path(reference["checkpoint"]))
    for name in ("ddp", "ddp_sharded"):
        checkpoint = tmp_path / name / "checkpoints" / "epoch-0003"
        actual = _weights(checkpoint)
        assert actual.keys() == expected.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
        records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        single_records = [json.loads(line) for line in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
        for got, want in zip(records, single_records):
            if "train/loss" in want:
                assert got["train/loss"] == pytest.approx(want["train/loss"], rel=1e-5)
                assert got["train/accuracy"] == pytest.approx(want["train/accuracy"])
    # Only rank 0 wrote: no stray files from rank 1.
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["checkpoints", "config.yaml", "metrics.jsonl"]
