"""Small, fast face embedders for CPU demos, tests and high-throughput training.

Two variants: ``iresnet_tiny``, the iresnet body at a quarter of the width with
two blocks per stage and a stride-2 stem (cheap enough to train on a laptop CPU
at 112x96), and
``mobilefacenet``, the MobileFaceNet layout (inverted residual bottlenecks, a
global depthwise convolution instead of flattening) with a configurable
embedding size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from synface.errors import SynfaceError
from synface.models.iresnet import ActLayer, IResNet, check_input_size, make_activation
from synface.models.registry import register_model

# (expansion, out_channels, blocks, stride) for each bottleneck stage of MobileFaceNet.
_MOBILEFACENET_STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class ConvBlock(nn.Sequential):
    """Conv - BN - optional activation (a depthwise conv when ``groups == in_channels``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        groups: int = 1,
        act_layer: ActLayer | None = "prelu",
    ) -> None:
        padding = (kernel // 2) if isinstance(kernel, int) else 0
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if act_layer is not None:
            layers.append(make_activation(act_layer, out_channels))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand - 3x3 depthwise (stride) - 1x1 linear projection."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, expansion: int, act_layer: ActLayer
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.body = nn.Sequential(
            ConvBlock(in_channels, hidden, 1, act_layer=act_layer),
            ConvBlock(hidden, hidden, 3, stride, groups=hidden, act_layer=act_layer),
            ConvBlock(hidden, out_channels, 1, act_layer=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MobileFaceNet(nn.Module):
    """MobileFaceNet: a stride-2 stem, bottleneck stages and a global depthwise conv head.

    Args:
        input_size: crop size ``(H, W)``, both divisible by 16.
        num_features: embedding size.
        width: channel multiplier for the stem and bottleneck stages.
        act_layer: activation after every non-linear conv.
    """

    def __init__(
        self,
        input_size: Sequence[int] = (112, 112),
        num_features: int = 512,
        width: float = 1.0,
        act_layer: ActLayer = "prelu",
    ) -> None:
        super().__init__()
        self.input_size: tuple[int, int] = (int(input_size[0]), int(input_size[1]))
        self.num_features = int(num_features)
        if self.input_size[0] % 16 or self.input_size[1] % 16 or min(self.input_size) < 16:
            raise SynfaceError(f"input_size: {self.input_size} must be positive multiples of 16")
        if width <= 0:
            raise SynfaceError(f"width: {width} must be positive")
        stem = max(8, round(64 * width))
        self.stem = nn.Sequential(
            ConvBlock(3, stem, 3, stride=2, act_layer=act_layer),  # (B, 64, H/2, W/2)
            ConvBlock(stem, stem, 3, groups=stem, act_layer=act_layer),
        )
        blocks: list[nn.Module] = []
        in_channels = stem
        for expansion, channels, count, stride in _MOBILEFACENET_STAGES:
            out_channels = max(8, round(channels * width))
            for index in range(count):
                blocks.append(
                    Bottleneck(in_channels, out_channels, stride if index == 0 else 1, expansion, act_layer)
                )
                in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)  # (B, 128, H/16, W/16)
        self.conv_out = ConvBlock(in_channels, 512, 1, act_layer=act_layer)
        final = (self.input_size[0] // 16, self.input_size[1] // 16)
        # Global depthwise conv: a learned spatial weighting instead of average pooling.
        self.gdc = ConvBlock(512, 512, final, groups=512, act_layer=None)  # (B, 512, 1, 1)
        self.fc = nn.Linear(512, self.num_features, bias=False)
        self.features = nn.BatchNorm1d(self.num_features)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # fan_in: PyTorch's fan_out ignores groups and would shrink depthwise kernels.
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, bottlenecks and the 1x1 expansion: ``(B, 3, H, W)`` -> ``(B, 512, H/16, W/16)``."""
        check_input_size(x, self.input_size, type(self).__name__)
        return self.conv_out(self.blocks(self.stem(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global depthwise conv, linear projection and BN: -> ``(B, num_features)``."""
        x = torch.flatten(self.gdc(features), 1)  # (B, 512)
        return self.features(self.fc(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch of aligned crops in ``[-1, 1]``: ``(B, 3, H, W)`` -> ``(B, num_features)``."""
        return self.forward_head(self.forward_features(x))


@register_model
def iresnet_tiny(
    *, input_size: Sequence[int] = (112, 96), width: float = 0.25, stem_stride: int = 2, **kwargs: object
) -> IResNet:
    """A quarter-width iresnet18 (stages (2, 2, 2, 2), widths 16..128, stride-2 stem) on 112x96 crops."""
    return IResNet(
        layers=(2, 2, 2, 2),
        input_size=input_size,
        width=width,
        stem_stride=stem_stride,
        **kwargs,  # type: ignore[arg-type]
    )


@register_model
def mobilefacenet(*, input_size: Sequence[int] = (112, 112), **kwargs: object) -> MobileFaceNet:
    """MobileFaceNet on 112x112 ArcFace crops (pass ``input_size=(112, 96)`` for SynFace crops)."""
    return MobileFaceNet(input_size=input_size, **kwargs)  # type: ignore[arg-type]
