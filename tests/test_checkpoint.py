"""Checkpoints: model and resume-state round trips, no pickle anywhere, clear errors."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import pickle
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import synface
from synface.checkpoint import (
    flatten_state,
    load_model,
    load_resume,
    load_state,
    save_model,
    save_resume,
    save_state,
    unflatten_state,
)
from synface.errors import DataError, SynfaceError
from synface.models import create_head, create_model

KWARGS = {"input_size": (32, 32), "num_features": 64, "dropout": 0.1}


@contextlib.contextmanager
def pickle_forbidden() -> Iterator[None]:
    """Make every unpickling entry point fail, so a load that succeeds provably used none."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pickle was used")

    class RefusingUnpickler(pickle.Unpickler):  # a class, so modules may still subclass it
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            refuse()

    with pytest.MonkeyPatch.context() as patch:
        for module, name, replacement in [
            (pickle, "loads", refuse),
            (pickle, "load", refuse),
            (pickle, "Unpickler", RefusingUnpickler),
            (torch, "load", refuse),
        ]:
            patch.setattr(module, name, replacement)
        yield


def test_pickle_is_really_forbidden() -> None:
    with pickle_forbidden(), pytest.raises(AssertionError, match="pickle was used"):
        pickle.loads(pickle.dumps(1))
    with pickle_forbidden(), pytest.raises(AssertionError, match="pickle was used"):
        torch.load("x")


def assert_same(left: Any, right: Any, path: str = "") -> None:
    """Exact, type-preserving equality of nested states (tensors by dtype, shape and value)."""
    assert type(left) is type(right), f"{path}: {type(left)} vs {type(right)}"
    if isinstance(left, torch.Tensor):
        assert left.dtype == right.dtype and left.shape == right.shape and torch.equal(left, right), path
    elif isinstance(left, np.ndarray):
        assert left.dtype == right.dtype and np.array_equal(left, right), path
    elif isinstance(left, dict):
        assert list(left) == list(right), path
        for key in left:
            assert_same(left[key], right[key], f"{path}/{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right)):
            assert_same(a, b, f"{path}/{index}")
    else:
        both_nan = isinstance(left, float) and math.isnan(left) and math.isnan(right)
        assert left == right or both_nan, f"{path}: {left!r} vs {right!r}"


def train_steps(
    model: nn.Module, head: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, steps: int
) -> None:
    for _ in range(steps):
        images = torch.rand(4, 3, 32, 32) * 2 - 1
        loss = head(model(images), torch.randint(0, 5, (4,))).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def test_model_round_trip(tmp_path: Path) -> None:
    model = create_model("iresnet_tiny", **KWARGS)
    model(torch.rand(4, 3, 32, 32))  # non-trivial BN running statistics
    extra = {"epoch": 3, "metrics": {"val/lfw": 0.91}, "config": {"lr": 0.1, "milestones": (24, 30)}}
    written = save_model(tmp_path / "ckpt", model, name="iresnet_tiny", kwargs=KWARGS, extra=extra)
    assert written == tmp_path / "ckpt" / "model.json"
    for path in (tmp_path / "ckpt", written, tmp_path / "ckpt" / "model.safetensors"):
        with pickle_forbidden():
            loaded, meta = load_model(path)
        assert not loaded.training and loaded.input_size == (32, 32) and loaded.num_features == 64
        images = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(loaded(images), model.eval()(images), rtol=0, atol=0)
    assert meta["name"] == "iresnet_tiny" and meta["synface_version"] == synface.__version__
    assert meta["kwargs"] == {"input_size": [32, 32], "num_features": 64, "dropout": 0.1}
    assert meta["extra"]["config"]["milestones"] == [24, 30] and meta["extra"]["metrics"]["val/lfw"] == 0.91
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["model.json", "model.safetensors"]


def test_save_unwraps_compiled_models(tmp_path: Path) -> None:
    model = create_model("iresnet_tiny", **KWARGS)
    save_model(tmp_path, torch.compile(model), name="iresnet_tiny", kwargs=KWARGS)
    loaded, _ = load_model(tmp_path)
    assert set(loaded.state_dict()) == set(model.state_dict())


def test_save_model_refuses_bad_names_and_metadata(tmp_path: Path) -> None:
    model = create_model("iresnet_tiny", **KWARGS)
    with pytest.raises(SynfaceError, match="'tiny' is not a registered model"):
        save_model(tmp_path, model, name="tiny", kwargs=KWARGS)
    with pytest.raises(SynfaceError, match="not JSON-serialisable"):
        save_model(tmp_path, model, name="iresnet_tiny", kwargs=KWARGS, extra={"path": Path("/x")})
    assert not (tmp_path / "model.json").exists()


def test_missing_and_corrupt_model_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"model\.json: checkpoint file not found"):
        load_model(tmp_path)
    model = create_model("iresnet_tiny", **KWARGS)
    save_model(tmp_path, model, name="iresnet_tiny", kwargs=KWARGS)
    weights, meta = tmp_path / "model.safetensors", tmp_path / "model.json"
    good_weights, good_meta = weights.read_bytes(), meta.read_text()

    weights.write_bytes(good_weights[:-10])
    with pytest.raises(DataError, match=r"model\.safetensors: contents do not match model\.json"):
        load_model(tmp_path)
    weights.write_bytes(b"garbage")
    text = json.loads(good_meta)
    text["tensors_sha256"] = __import__("hashlib").sha256(b"garbage").hexdigest()
    meta.write_text(json.dumps(text))
    with pytest.raises(DataError, match=r"model\.safetensors: corrupt safetensors file"):
        load_model(tmp_path)
    weights.write_bytes(good_weights)
    meta.write_text(good_meta[:20])
    with pytest.raises(DataError, match=r"model\.json: unreadable or corrupt"):
        load_model(tmp_path)
    meta.write_text(json.dumps({**json.loads(good_meta), "format": "other/9"}))
    with pytest.raises(DataError, match="has format .other/9., expected format .synface-model/1."):
        load_model(tmp_path)
    meta.write_text(json.dumps({**json.loads(good_meta), "kwargs": {**KWARGS, "num_features": 32}}))
    with pytest.raises(DataError, match=r"model\.safetensors: weights do not fit iresnet_tiny"):
        load_model(tmp_path)
    weights.unlink()
    with pytest.raises(DataError, match=r"model\.safetensors: checkpoint file not found"):
        load_model(tmp_path)


def test_flatten_round_trip_keeps_types() -> None:
    state = {
        0: {"step": torch.tensor(3.0), "buffer": torch.arange(6, dtype=torch.int16).view(2, 3)},
        "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None, "flag": True}],
        "rng": ("MT19937", np.arange(5, dtype=np.uint32), 2, 0, 0.0),
        "nan": float("nan"),
        "numpy_scalar": np.float32(1.5),
        "shared": [torch.ones(2)] * 2,
        2.5: "float key",
    }
    tensors, structure = flatten_state(state)
    json.dumps(structure)
    restored = unflatten_state(tensors, json.loads(json.dumps(structure)))
    state["numpy_scalar"] = 1.5
    assert_same(restored, state)
    with pytest.raises(SynfaceError, match="state /bad: cannot store a value of type object"):
        flatten_state({"bad": object()})


@pytest.mark.parametrize("optimizer_name", ["sgd", "adamw"])
def test_resume_reproduces_training_exactly(tmp_path: Path, optimizer_name: str) -> None:
    def build() -> tuple[nn.Module, nn.Module, torch.optim.Optimizer, Any]:
        torch.manual_seed(1)
        model = create_model("iresnet_tiny", **KWARGS)
        head = create_head("arcface", 64, 5)
        parameters = [*model.parameters(), *head.parameters()]
        if optimizer_name == "sgd":
            optimizer = torch.optim.SGD(parameters, lr=0.1, momentum=0.9, weight_decay=5e-4)
        else:
            optimizer = torch.optim.AdamW(parameters, lr=1e-3)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)
        return model, head, optimizer, scheduler

    model, head, optimizer, scheduler = build()
    train_steps(model, head, optimizer, scheduler, 3)
    save_model(tmp_path, model, name="iresnet_tiny", kwargs=KWARGS)
    save_resume(
        tmp_path,
        epoch=1,
        step=3,
        optimizer=optimizer,
        scheduler=scheduler,
        others={"head": head},
        extra={"best": 0.5},
    )
    saved_optimizer = copy.deepcopy(optimizer.state_dict())  # later steps mutate the live buffers
    python_draw, numpy_draw = random.random(), np.random.rand()
    train_steps(model, head, optimizer, scheduler, 2)
    expected = [p.detach().clone() for p in [*model.parameters(), *head.parameters()]]

    with pickle_forbidden():
        resumed, _ = load_model(tmp_path)
    resumed.train()
    _, new_head, new_optimizer, new_scheduler = build()
    # The optimizer must refer to the resumed model's parameters.
    new_optimizer.param_groups[0]["params"] = [*resumed.parameters(), *new_head.parameters()]
    with pickle_forbidden():
        info = load_resume(
            tmp_path, optimizer=new_optimizer, scheduler=new_scheduler, others={"head": new_head}
        )
    assert info == {"epoch": 1, "step": 3, "extra": {"best": 0.5}}
    assert_same(new_optimizer.state_dict(), saved_optimizer)
    assert (random.random(), np.random.rand()) == (python_draw, numpy_draw)
    train_steps(resumed, new_head, new_optimizer, new_scheduler, 2)
    for got, want in zip([*resumed.parameters(), *new_head.parameters()], expected):
        assert torch.equal(got, want)


def test_resume_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"resume\.json: checkpoint file not found"):
        load_resume(tmp_path)
    save_resume(tmp_path, epoch=0, step=0, include_rng=False)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)
    with pytest.raises(DataError, match="has no saved optimizer state"):
        load_resume(tmp_path, optimizer=optimizer)
    with pytest.raises(DataError, match="has no saved RNG state"):
        load_resume(tmp_path)
    assert load_resume(tmp_path, restore_rng=False)["step"] == 0
    save_state(tmp_path, {"x": torch.ones(1)}, name="other")
    structure = json.loads((tmp_path / "other.json").read_text())
    structure["structure"] = {"$dict": [["x", {"$tensor": "t9"}]]}
    (tmp_path / "other.json").write_text(json.dumps(structure))
    with pytest.raises(DataError, match=r"other\.json: state structure: tensor 't9' is missing"):
        load_state(tmp_path, name="other")
