"""ONNX export: a valid graph with a dynamic batch axis that computes what torch computes."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from torch import nn

from synface.errors import SynfaceError
from synface.models import create_model, export_onnx


def run_reference(path: Path, images: torch.Tensor) -> torch.Tensor:
    (embeddings,) = ReferenceEvaluator(onnx.load(str(path))).run(None, {"input": images.numpy()})
    return torch.from_numpy(embeddings)


@pytest.mark.parametrize("name", ["iresnet_tiny", "mobilefacenet"])
def test_export_matches_torch_for_another_batch_size(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    kwargs = {"input_size": (32, 32)} if name == "mobilefacenet" else {}
    model = create_model(name, **kwargs)
    model(torch.rand(8, 3, *model.input_size) * 2 - 1)  # one training step's BN statistics
    model.train()  # export must still use eval mode, and leave the caller's model alone
    path = export_onnx(model, tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx" and model.training
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    batch = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch" and graph.graph.output[0].name == "embedding"
    images = torch.rand(3, 3, *model.input_size) * 2 - 1
    with torch.no_grad():
        expected = model.eval()(images)
    torch.testing.assert_close(run_reference(path, images), expected, rtol=1e-3, atol=1e-4)


def test_export_with_channels_last_model_and_explicit_size(tmp_path: Path) -> None:
    model = create_model("iresnet_tiny", input_size=(32, 32)).eval().to(memory_format=torch.channels_last)
    export_onnx(model, tmp_path / "nested" / "tiny.onnx", input_size=(32, 32))
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(
        run_reference(tmp_path / "nested" / "tiny.onnx", images), expected, rtol=1e-3, atol=1e-4
    )
    assert not list((tmp_path / "nested").glob(".*.tmp"))


def test_export_needs_an_input_size(tmp_path: Path) -> None:
    with pytest.raises(SynfaceError, match=r"Flatten has no input_size; pass input_size=\(H, W\)"):
        export_onnx(nn.Flatten(), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_export_lresnet50e_ir_is_valid(tmp_path: Path) -> None:
    path = export_onnx(create_model("lresnet50e_ir"), tmp_path / "lresnet50e_ir.onnx")
    graph = onnx.load(str(path))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 112, 96]
    assert path.stat().st_size > 4 * 40_000_000
