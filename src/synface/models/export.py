"""Export a face embedder to ONNX with a dynamic batch axis.

The exported graph takes ``input`` of shape ``(batch, 3, H, W)`` (float32 pixels
in ``[-1, 1]``) and returns ``embedding`` of shape ``(batch, num_features)``; it is
checked with ``onnx.checker`` before it is written, atomically.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from synface.errors import SynfaceError
from synface.io import atomic_write_bytes

logger = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "embedding"


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_size: Sequence[int] | None = None,
    *,
    opset: int = 17,
) -> Path:
    """Write ``model`` (in inference mode) to an ONNX file with a dynamic batch axis.

    The model is copied to the CPU in eval mode, so batch norm uses its running
    statistics and dropout is off; the caller's model is left untouched.

    Args:
        model: a backbone mapping ``(B, 3, H, W)`` to ``(B, num_features)``.
        path: destination ``.onnx`` file.
        input_size: crop size ``(H, W)``; defaults to the model's ``input_size``.
        opset: ONNX operator set version.

    Returns:
        The path written.

    Raises:
        SynfaceError: no input size is known, or the exported graph fails the ONNX checker.
    """
    import onnx  # imported here: only export needs it

    if input_size is None:
        input_size = getattr(model, "input_size", None)
        if input_size is None:
            raise SynfaceError(
                f"export_onnx: {type(model).__name__} has no input_size; pass input_size=(H, W)"
            )
    height, width = (int(v) for v in input_size)
    exported = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).float().eval()
    example = torch.zeros(2, 3, height, width)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated upstream, but it needs no
        # extra packages; tracing warnings about the input-size check are expected.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            exported,
            (example,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    data = buffer.getvalue()
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except onnx.checker.ValidationError as error:
        raise SynfaceError(f"export_onnx: the exported graph for {path} is invalid: {error}") from None
    path = Path(path)
    atomic_write_bytes(path, data)
    logger.info("wrote %s (%.1f MB, input %dx%d)", path, len(data) / 1e6, height, width)
    return path
