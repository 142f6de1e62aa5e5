"""IResNet layout, sizes and cost against the paper and the reference notes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from synface.errors import SynfaceError
from synface.models import IResNet, create_head, create_model
from synface.models.iresnet import IBasicBlock

from .test_registry import cached_model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def stage_blocks(model: IResNet) -> list[list[IBasicBlock]]:
    return [list(stage) for stage in (model.layer1, model.layer2, model.layer3, model.layer4)]


def test_lresnet50e_ir_layout_follows_the_paper() -> None:
    model = cached_model("lresnet50e_ir")
    assert model.input_size == (112, 96)
    assert (model.conv1.kernel_size, model.conv1.stride, model.conv1.out_channels) == ((3, 3), (1, 1), 64)
    assert isinstance(model.bn1, nn.BatchNorm2d) and isinstance(model.act1, nn.PReLU)
    stages = stage_blocks(model)
    assert [len(s) for s in stages] == [3, 4, 14, 3]
    for stage, width in zip(stages, (64, 128, 256, 512)):
        first, *rest = stage
        assert first.conv2.stride == (2, 2) and first.conv1.stride == (1, 1)
        assert first.downsample is not None and first.downsample[0].kernel_size == (1, 1)
        assert all(block.conv2.stride == (1, 1) and block.downsample is None for block in rest)
        assert all(block.conv2.out_channels == width for block in stage)
        assert all(isinstance(block.act, nn.PReLU) for block in stage)
    block = stages[0][1]
    assert [name for name, _ in block.named_children()] == ["bn1", "conv1", "bn2", "act", "conv2", "bn3"]
    assert isinstance(model.bn2, nn.BatchNorm2d) and isinstance(model.dropout, nn.Dropout)
    assert (model.fc.in_features, model.fc.out_features) == (512 * 7 * 6, 512)
    assert isinstance(model.features, nn.BatchNorm1d) and not model.features.weight.requires_grad
    features = model.forward_features(torch.zeros(1, 3, 112, 96))
    assert features.shape == (1, 512, 7, 6)


@pytest.mark.parametrize(
    ("name", "layers"),
    [
        ("iresnet18", [2, 2, 2, 2]),
        ("iresnet34", [3, 4, 6, 3]),
        ("iresnet50", [3, 4, 14, 3]),
        ("iresnet100", [3, 13, 30, 3]),
    ],
)
def test_iresnet_family_layers(name: str, layers: list[int]) -> None:
    model = cached_model(name)
    assert model.input_size == (112, 112)
    assert [len(s) for s in stage_blocks(model)] == layers
    assert model.fc.in_features == 512 * 7 * 7


def test_parameter_counts() -> None:
    # The two differ only in the FC input: 512 x 7 x 7 versus 512 x 7 x 6.
    assert parameter_count(cached_model("iresnet50")) == 43_590_848
    assert parameter_count(cached_model("lresnet50e_ir")) == 41_755_840
    assert 43_590_848 - 41_755_840 == 512 * 512 * 7
    assert parameter_count(cached_model("iresnet18")) == 24_025_600
    assert parameter_count(cached_model("iresnet100")) == 65_156_160


@pytest.mark.parametrize(("name", "gflops"), [("iresnet18", 5.2), ("iresnet50", 12.6)])
def test_forward_flops_match_the_reference_notes(name: str, gflops: float) -> None:
    model = cached_model(name)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 112, 112))
    assert round(counter.get_total_flops() / 1e9, 1) == gflops


def test_options_width_dropout_activation_stem_stride() -> None:
    model = IResNet(
        layers=(1, 1, 1, 1),
        input_size=(64, 48),
        width=0.5,
        dropout=0.2,
        act_layer="relu",
        num_features=64,
        stem_stride=2,
    )
    assert model.layer4[0].conv2.out_channels == 256 and model.dropout.p == 0.2
    assert isinstance(model.act1, nn.ReLU) and model.conv1.stride == (2, 2)
    assert model.layer1[0].conv2.stride == (1, 1) and model.fc.in_features == 256 * 4 * 3
    assert model.eval()(torch.zeros(2, 3, 64, 48)).shape == (2, 64)
    assert IResNet(layers=[1, 1, 1, 1], input_size=[32, 32], act_layer=nn.SiLU).eval()(
        torch.zeros(1, 3, 32, 32)
    ).shape == (1, 512)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": (1, 1, 1)}, "layers: expected 4"),
        ({"input_size": (112, 100)}, r"input_size: \(112, 100\) must be positive multiples of 16"),
        ({"dropout": 1.0}, "dropout: 1.0"),
        ({"act_layer": "tanh"}, "act_layer: unknown activation 'tanh'"),
        ({"stem_stride": 4}, "stem_stride: 4"),
        ({"width": 0}, "width: 0"),
    ],
)
def test_bad_options_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(SynfaceError, match=message):
        IResNet(**{"layers": (1, 1, 1, 1), **kwargs})


def test_zero_init_residual_makes_blocks_identities_plus_shortcut() -> None:
    model = IResNet(layers=(2, 1, 1, 1), input_size=(32, 32), zero_init_residual=True).eval()
    block = model.layer1[1]
    x = torch.randn(1, 64, 16, 16)
    torch.testing.assert_close(block(x), x)


@pytest.mark.slow
def test_iresnet_tiny_learns_a_tiny_task() -> None:
    """Six identities, each a fixed random pattern seen through heavy noise: chance -> perfect."""
    torch.manual_seed(0)
    classes, per_class = 6, 3
    prototypes = torch.rand(classes, 3, 112, 96) * 2 - 1
    labels = torch.arange(classes).repeat_interleave(per_class)

    def accuracy() -> float:
        images = (prototypes[labels] + 0.6 * torch.randn(len(labels), 3, 112, 96)).clamp(-1, 1)
        with torch.no_grad():
            cosine = head(model.eval()(images), labels).cosine
        return (cosine.argmax(1) == labels).float().mean().item()

    model = create_model("iresnet_tiny")
    head = create_head("arcface", 512, classes)
    optimizer = torch.optim.SGD(
        [*model.parameters(), *head.parameters()], lr=0.05, momentum=0.9, weight_decay=5e-4
    )
    before = accuracy()
    losses = []
    for _ in range(6):
        images = (prototypes[labels] + 0.6 * torch.randn(len(labels), 3, 112, 96)).clamp(-1, 1)
        loss = head(model.train()(images), labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    after = accuracy()
    assert before < 0.5 and after >= 0.9 and losses[-1] < losses[0] / 10, (before, after, losses)
