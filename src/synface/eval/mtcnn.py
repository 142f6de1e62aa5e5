"""MTCNN's three networks (P-Net, R-Net, O-Net) and loading their published weights.

The architecture is the one of Zhang et al. (2016), "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks". The weights are the
MIT-licensed ones distributed inside the ``facenet-pytorch`` wheel; `synface assets
install mtcnn` converts them once into safetensors under ``$SYNFACE_HOME/weights/mtcnn``
(see :mod:`synface.eval.mtcnn_weights`), so no pickle is ever read at run time.

Those weights were converted from a model trained on transposed images, so the
dense layers of R-Net and O-Net read their input flattened in (width, height,
channel) order; the convolutions take ordinary NCHW input.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from synface.errors import AssetError
from synface.paths import assets_dir

NETWORK_NAMES = ("pnet", "rnet", "onet")


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, W*H*C) in the order the published dense weights expect."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive field, stride 2.

    Returns (box regression (B, 4, h, w), face probability (B, h, w)).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """Refinement network on 24x24 crops: (box regression (B, 4), face probability (B,))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_whc(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output network on 48x48 crops.

    Returns (box regression (B, 4), landmarks (B, 10) as x1..x5 then y1..y5 relative
    to the box, face probability (B,)).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_whc(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


def mtcnn_weights_dir() -> Path:
    """Where `synface assets install mtcnn` puts the converted weights."""
    return assets_dir("weights") / "mtcnn"


def build_networks() -> dict[str, nn.Module]:
    """Fresh, untrained P/R/O-Nets keyed by name."""
    return {"pnet": PNet(), "rnet": RNet(), "onet": ONet()}


def load_networks(
    folder: str | Path | None = None, device: torch.device | str = "cpu"
) -> tuple[PNet, RNet, ONet]:
    """Load the three networks in eval mode from safetensors files.

    Args:
        folder: folder with pnet/rnet/onet.safetensors; default :func:`mtcnn_weights_dir`.
        device: where to put them.

    Raises:
        AssetError: weights missing (with the command that installs them) or broken.
    """
    folder = Path(folder) if folder is not None else mtcnn_weights_dir()
    networks = build_networks()
    for name, net in networks.items():
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            raise AssetError(
                f"{path}: MTCNN weights not found; run `synface assets install mtcnn` "
                "(or pass a facenet-pytorch wheel or folder with --source)"
            )
        try:
            state = load_file(str(path))
            net.load_state_dict(state, strict=True)
        except (SafetensorError, OSError, RuntimeError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise AssetError(f"{path}: unusable MTCNN weights ({first_line})") from None
        net.to(device).eval().requires_grad_(False)
    return networks["pnet"], networks["rnet"], networks["onet"]  # type: ignore[return-value]


def weights_info(folder: str | Path | None = None) -> dict[str, str]:
    """The provenance record written next to installed weights (empty if absent)."""
    folder = Path(folder) if folder is not None else mtcnn_weights_dir()
    path = folder / "weights.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
