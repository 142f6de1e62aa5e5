"""Face recognition backbones (by registry name) and margin-loss classification heads.

Importing the package registers every backbone, so ``create_model`` and
``list_models`` see them all::

    from synface.models import create_head, create_model

    model = create_model("lresnet50e_ir")                      # (B, 3, 112, 96) -> (B, 512)
    head = create_head("arcface", num_features=512, num_classes=10_000)
    output = head(model(images), targets, weights)            # output.loss, output.logits
"""

from synface.models import iresnet, small  # noqa: F401  (registers the backbones)
from synface.models.export import export_onnx
from synface.models.heads import CombinedMarginHead, HeadOutput, create_head, list_heads
from synface.models.iresnet import IResNet
from synface.models.registry import create_model, is_model, list_models, register_model
from synface.models.sharded_head import ShardedMarginHead
from synface.models.small import MobileFaceNet

__all__ = [
    "CombinedMarginHead",
    "HeadOutput",
    "IResNet",
    "MobileFaceNet",
    "ShardedMarginHead",
    "create_head",
    "create_model",
    "export_onnx",
    "is_model",
    "list_heads",
    "list_models",
    "register_model",
]
