"""Improved-residual ResNets (LResNet50E-IR and the iresnet family) as face embedders.

All variants share one body: a stride-1 3x3 stem (stride 2 in the small CPU
variant), four stages whose first block halves the resolution, and an "E" output
head (BN - Dropout - Flatten - FC - BN) that maps the final feature map to the
embedding. LResNet50E-IR, the SynFace
paper's backbone, is the 50-layer body on 112x96 crops (final map 7x6); the
iresnet18/34/50/100 variants use 112x112 crops (final map 7x7).

The code uses only convolutions, batch norm, PReLU and one linear layer, so it
runs unchanged with ``channels_last`` memory format, autocast and ``torch.compile``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from synface.errors import SynfaceError
from synface.models.registry import register_model

logger = logging.getLogger(__name__)

ActLayer = str | type[nn.Module]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "prelu": nn.PReLU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


def make_activation(act_layer: ActLayer, channels: int) -> nn.Module:
    """Build one activation module for ``channels`` channels.

    Args:
        act_layer: a name (``"prelu"``, ``"relu"``, ``"silu"``, ``"gelu"``) or a module
            class; PReLU gets one learnable slope per channel.
        channels: number of channels the activation sees.

    Returns:
        The activation module.

    Raises:
        SynfaceError: an unknown activation name.
    """
    if isinstance(act_layer, str):
        if act_layer not in _ACTIVATIONS:
            valid = ", ".join(sorted(_ACTIVATIONS))
            raise SynfaceError(f"act_layer: unknown activation {act_layer!r}; valid: {valid}")
        act_layer = _ACTIVATIONS[act_layer]
    if issubclass(act_layer, nn.PReLU):
        return act_layer(channels)
    return act_layer()


def check_input_size(x: torch.Tensor, input_size: tuple[int, int], model: str) -> None:
    """Raise a clear error unless ``x`` is a ``(B, 3, H, W)`` batch of the expected size."""
    if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != input_size:
        height, width = input_size
        raise SynfaceError(
            f"{model}: expected images of shape (B, 3, {height}, {width}), got {tuple(x.shape)}; "
            f"align faces to {height}x{width} crops or build the model with input_size={tuple(x.shape[-2:])}"
        )


class IBasicBlock(nn.Module):
    """Improved residual block: BN - conv3x3 - BN - act - conv3x3(stride) - BN, plus shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, act_layer: ActLayer) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act = make_activation(act_layer, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv1(self.bn1(x))
        out = self.conv2(self.act(self.bn2(out)))
        return self.bn3(out) + shortcut


class IResNet(nn.Module):
    """Improved-residual ResNet mapping aligned face crops to embeddings.

    Args:
        layers: number of blocks in each of the four stages, e.g. ``(3, 4, 14, 3)``.
        input_size: crop size ``(H, W)``; each stage halves it, so both must be
            divisible by 16 (112x96 -> 7x6, 112x112 -> 7x7).
        num_features: embedding size.
        dropout: dropout probability before the FC layer (0 disables it).
        width: channel multiplier applied to ``widths``.
        widths: base channel counts of the four stages.
        act_layer: activation inside the stem and blocks.
        zero_init_residual: zero the last BN of each block so blocks start as identities.
        stem_stride: 1 (the standard layout) or 2, which moves the first stage's
            downsampling into the stem: the same output size for about a quarter of
            the full-resolution work (used by the small CPU variant).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 14, 3),
        input_size: Sequence[int] = (112, 112),
        num_features: int = 512,
        dropout: float = 0.0,
        width: float = 1.0,
        widths: Sequence[int] = (64, 128, 256, 512),
        act_layer: ActLayer = "prelu",
        zero_init_residual: bool = False,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        self.layers = tuple(int(n) for n in layers)
        self.input_size: tuple[int, int] = (int(input_size[0]), int(input_size[1]))
        self.num_features = int(num_features)
        if len(self.layers) != 4 or min(self.layers) < 1:
            raise SynfaceError(f"layers: expected 4 positive block counts, got {list(layers)}")
        if len(widths) != 4:
            raise SynfaceError(f"widths: expected 4 channel counts, got {list(widths)}")
        if self.input_size[0] % 16 or self.input_size[1] % 16 or min(self.input_size) < 16:
            raise SynfaceError(f"input_size: {self.input_size} must be positive multiples of 16")
        if not 0.0 <= dropout < 1.0:
            raise SynfaceError(f"dropout: {dropout} is outside [0, 1)")
        if width <= 0:
            raise SynfaceError(f"width: {width} must be positive")
        if stem_stride not in (1, 2):
            raise SynfaceError(f"stem_stride: {stem_stride} must be 1 or 2")
        channels = [max(8, round(c * width)) for c in widths]
        self.conv1 = nn.Conv2d(3, channels[0], 3, stride=stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.act1 = make_activation(act_layer, channels[0])
        stages = []
        in_channels = channels[0]
        strides = (2 // stem_stride, 2, 2, 2)
        for blocks, out_channels, stride in zip(self.layers, channels, strides):
            stage = [IBasicBlock(in_channels, out_channels, stride, act_layer)]
            stage += [IBasicBlock(out_channels, out_channels, 1, act_layer) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            in_channels = out_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        final_height, final_width = self.input_size[0] // 16, self.input_size[1] // 16
        self.bn2 = nn.BatchNorm2d(in_channels)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(in_channels * final_height * final_width, self.num_features)
        self.features = nn.BatchNorm1d(self.num_features)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, IBasicBlock):
                    nn.init.zeros_(module.bn3.weight)
        # The embedding BN keeps gamma fixed at 1 (as the reference LResNet-E
        # implementations do): the embedding scale is then set by the data alone.
        self.features.weight.requires_grad_(False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and the four stages: ``(B, 3, H, W)`` -> ``(B, C, H/16, W/16)``."""
        check_input_size(x, self.input_size, type(self).__name__)
        x = self.act1(self.bn1(self.conv1(x)))  # (B, 64, H, W), or H/2, W/2 with stem_stride 2
        x = self.layer1(x)  # (B, 64, H/2, W/2)
        x = self.layer2(x)  # (B, 128, H/4, W/4)
        x = self.layer3(x)  # (B, 256, H/8, W/8)
        return self.layer4(x)  # (B, 512, H/16, W/16)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Output head: ``(B, C, h, w)`` feature map -> ``(B, num_features)`` embedding."""
        x = self.dropout(self.bn2(features))
        x = self.fc(torch.flatten(x, 1))  # (B, num_features)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch of aligned crops in ``[-1, 1]``: ``(B, 3, H, W)`` -> ``(B, num_features)``."""
        return self.forward_head(self.forward_features(x))


@register_model
def lresnet50e_ir(*, input_size: Sequence[int] = (112, 96), **kwargs: object) -> IResNet:
    """LResNet50E-IR (the SynFace paper's backbone): stages (3, 4, 14, 3) on 112x96 crops."""
    return IResNet(layers=(3, 4, 14, 3), input_size=input_size, **kwargs)  # type: ignore[arg-type]


@register_model
def iresnet18(*, input_size: Sequence[int] = (112, 112), **kwargs: object) -> IResNet:
    """iresnet18: stages (2, 2, 2, 2) on 112x112 ArcFace crops."""
    return IResNet(layers=(2, 2, 2, 2), input_size=input_size, **kwargs)  # type: ignore[arg-type]


@register_model
def iresnet34(*, input_size: Sequence[int] = (112, 112), **kwargs: object) -> IResNet:
    """iresnet34: stages (3, 4, 6, 3) on 112x112 ArcFace crops."""
    return IResNet(layers=(3, 4, 6, 3), input_size=input_size, **kwargs)  # type: ignore[arg-type]


@register_model
def iresnet50(*, input_size: Sequence[int] = (112, 112), **kwargs: object) -> IResNet:
    """iresnet50: the LResNet50E-IR body on 112x112 ArcFace crops (FC from 512x7x7)."""
    return IResNet(layers=(3, 4, 14, 3), input_size=input_size, **kwargs)  # type: ignore[arg-type]


@register_model
def iresnet100(*, input_size: Sequence[int] = (112, 112), **kwargs: object) -> IResNet:
    """iresnet100: stages (3, 13, 30, 3) on 112x112 ArcFace crops."""
    return IResNet(layers=(3, 13, 30, 3), input_size=input_size, **kwargs)  # type: ignore[arg-type]
