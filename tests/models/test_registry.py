"""The model registry: names, lookup errors, argument handling, and every model's contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synface.errors import SynfaceError
from synface.models import create_model, is_model, list_models, register_model, registry

PAPER_MODELS = ["iresnet100", "iresnet18", "iresnet34", "iresnet50", "lresnet50e_ir"]
SMALL_MODELS = ["iresnet_tiny", "mobilefacenet"]
SLOW_MODELS = {"iresnet100", "iresnet34", "iresnet50"}  # a second full forward of these costs seconds
_CACHE: dict[str, nn.Module] = {}


def cached_model(name: str) -> nn.Module:
    """Each registry model built once per session, in eval mode (building r100 takes seconds)."""
    if name not in _CACHE:
        torch.manual_seed(0)
        _CACHE[name] = create_model(name).eval()
    return _CACHE[name]


def test_list_models_and_patterns() -> None:
    assert list_models() == sorted(PAPER_MODELS + SMALL_MODELS)
    assert list_models("iresnet*") == ["iresnet100", "iresnet18", "iresnet34", "iresnet50", "iresnet_tiny"]
    assert list_models("nothing*") == []
    assert is_model("lresnet50e_ir") and not is_model("lresnet50")


def test_unknown_model_names_the_closest() -> None:
    with pytest.raises(
        SynfaceError, match=r"unknown model 'lresnet50'; did you mean 'lresnet50e_ir'.*list_models\(\)"
    ):
        create_model("lresnet50")
    with pytest.raises(SynfaceError, match=r"unknown model 'xyz' see synface.models.list_models\(\)"):
        create_model("xyz")


def test_none_kwargs_fall_back_to_defaults_and_bad_kwargs_raise() -> None:
    model = create_model("iresnet_tiny", num_features=None, dropout=None)
    assert model.num_features == 512
    model = create_model("iresnet_tiny", num_features=128)
    assert model(torch.randn(2, 3, 112, 96)).shape == (2, 128)
    with pytest.raises(SynfaceError, match="model 'iresnet_tiny': bad arguments"):
        create_model("iresnet_tiny", colour="red")


def test_register_twice_is_refused() -> None:
    def iresnet50(**kwargs: object) -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="registered twice"):
        register_model(iresnet50)
    assert registry._MODELS["iresnet50"] is not iresnet50


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_finite(name: str) -> None:
    model = cached_model(name)
    height, width = model.input_size
    batch = 1 if name in PAPER_MODELS else 3  # eval-mode BN needs no batch statistics
    with torch.no_grad():
        embeddings = model(torch.rand(batch, 3, height, width) * 2 - 1)
    assert embeddings.shape == (batch, 512)
    assert torch.isfinite(embeddings).all()
    assert embeddings.std() > 0.01


@pytest.mark.parametrize("name", list_models())
def test_wrong_input_size_is_a_clear_error(name: str) -> None:
    model = cached_model(name)
    height, width = model.input_size
    wrong = (112, 112) if (height, width) == (112, 96) else (112, 96)
    expected = (
        rf"{type(model).__name__}: expected images of shape \(B, 3, {height}, {width}\), "
        rf"got \(1, 3, {wrong[0]}, {wrong[1]}\); align faces to {height}x{width} crops"
    )
    with pytest.raises(SynfaceError, match=expected):
        model(torch.zeros(1, 3, *wrong))
    with pytest.raises(SynfaceError, match="expected images of shape"):
        model(torch.zeros(1, height, width))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_MODELS else n for n in list_models()]
)
def test_channels_last_equals_contiguous(name: str) -> None:
    model = cached_model(name)
    x = torch.rand(2, 3, *model.input_size) * 2 - 1
    try:
        with torch.no_grad():
            reference = model(x)
            result = model.to(memory_format=torch.channels_last)(
                x.contiguous(memory_format=torch.channels_last)
            )
    finally:
        model.to(memory_format=torch.contiguous_format)
    # Only the summation order differs, so the error is relative to the largest values
    # (an untrained deep net in eval mode has huge activations); a layout bug is O(1).
    assert (result - reference).abs().max() <= 1e-4 * reference.abs().max()


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_models_train_and_run_under_autocast(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, input_size=(112, 96)).train()
    x = torch.rand(4, 3, 112, 96) * 2 - 1
    model(x).square().mean().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad
    )
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings = model.eval()(x)
    assert embeddings.shape == (4, 512) and torch.isfinite(embeddings.float()).all()


@pytest.mark.gpu
def test_iresnet50_trains_with_bf16_channels_last_on_cuda() -> None:
    from synface.models import create_head

    device = torch.device("cuda")
    model = create_model("iresnet50").to(device, memory_format=torch.channels_last)
    head = create_head("arcface", 512, 100).to(device)
    images = (torch.rand(8, 3, 112, 112, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        output = head(model(images), torch.randint(0, 100, (8,), device=device))
    output.loss.backward()
    assert output.loss.dtype == torch.float32 and torch.isfinite(output.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
