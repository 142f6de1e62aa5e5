"""Batched face embedding: decode a pair set's images, check their size, run the model.

Images are decoded with PIL as RGB and fed as float ``x / 127.5 - 1`` in ``(B, 3, H, W)``.
A crop must already have the model's ``input_size``; the only conversion offered is
``crop="synface"``, which takes columns 8..103 of a 112x112 ArcFace crop to make the
112x96 SynFace crop (the two templates differ by exactly that shift). With ``flip``
the embedding is ``f(x) + f(mirror(x))`` before any normalisation, as arcface_torch does.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from synface.errors import DataError
from synface.eval.protocols import ImageSource, PairSet
from synface.progress import progress

logger = logging.getLogger(__name__)

CROPS = ("synface",)
_ARCFACE_SIZE, _SYNFACE_SIZE = (112, 112), (112, 96)


def decode_image(source: ImageSource, name: str) -> np.ndarray:
    """Decode one image to (H, W, 3) uint8 RGB.

    Args:
        source: a path, encoded bytes, or an (H, W, 3) uint8 array (returned as is).
        name: how to name the image in an error message.

    Raises:
        DataError: the file is missing or not a decodable image.
    """
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise DataError(f"image {name} is {source.dtype} {source.shape}, expected (H, W, 3) uint8")
        return np.asarray(source)
    from PIL import Image, UnidentifiedImageError

    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        with Image.open(handle) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DataError(f"cannot read image {name}: {error}") from None


def fit_to_model(image: np.ndarray, input_size: tuple[int, int] | None, crop: str | None,
                 name: str) -> np.ndarray:
    """``image`` if it has the model's size, else the SynFace crop of it if asked.

    Raises:
        DataError: the size does not match (the message gives both sizes and the fix).
    """
    if input_size is None or image.shape[:2] == tuple(input_size):
        return image
    size = f"{image.shape[0]}x{image.shape[1]}"
    model_size = f"{input_size[0]}x{input_size[1]}"
    if image.shape[:2] == _ARCFACE_SIZE and tuple(input_size) == _SYNFACE_SIZE:
        if crop == "synface":
            return image[:, 8:104]  # (112, 96, 3): the SynFace crop inside the ArcFace crop
        raise DataError(f"image {name} is {size} (H x W) but the model takes {model_size}; "
                        "pass --crop synface to use columns 8..103 of these ArcFace crops")
    raise DataError(f"image {name} is {size} (H x W) but the model takes {model_size}; "
                    f"align the images to {model_size} (synface align)")


def iter_image_batches(
    pair_set: PairSet, batch_size: int, input_size: tuple[int, int] | None,
    crop: str | None = None, workers: int = 4,
) -> Iterator[torch.Tensor]:
    """Decode a pair set's images in order, as (B, 3, H, W) uint8 batches.

    Raises:
        DataError: an image that cannot be read or has the wrong size.
    """
    if crop is not None and crop not in CROPS:
        raise DataError(f"unknown crop {crop!r}; valid: {', '.join(CROPS)}")

    def load(index: int) -> np.ndarray:
        name = pair_set.describe_image(index)
        return fit_to_model(decode_image(pair_set.images[index], name), input_size, crop, name)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(pair_set.images), batch_size):
            images = list(pool.map(load, range(start, min(start + batch_size, len(pair_set.images)))))
            shapes = {image.shape for image in images}
            if len(shapes) > 1:
                raise DataError(f"{pair_set.source or pair_set.name}: images of different sizes "
                                f"{sorted(shapes)}; align them all to one crop size")
            yield torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # (B, 3, H, W)


def _forward(model: nn.Module, images: torch.Tensor, device: torch.device, amp: bool) -> torch.Tensor:
    x = images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)  # (B, 3, H, W)
    with torch.autocast(device.type, enabled=amp):
        return model(x).float()  # (B, D)


@torch.inference_mode()
def embed_batches(
    model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device | str = "cpu",
    amp: bool = False, with_flip: bool = False, total: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings of uint8 batches, plain and (optionally) of the mirrored images.

    Args:
        model: returns (B, D) embeddings of float [-1, 1] input; put in eval mode here.
        batches: (B, 3, H, W) uint8 tensors or arrays.
        device: where the model runs (it is moved there).
        amp: run under ``torch.autocast`` (fp16 on CUDA, bf16 on CPU).
        with_flip: also embed the horizontally mirrored images.
        total: number of images, for the progress bar.

    Returns:
        ``(plain, mirrored)``: (N, D) float32 each; ``mirrored`` is None without ``with_flip``.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    plain, mirrored = [], []
    with progress(total=total, desc="embedding", unit="img") as bar:
        for images in batches:
            images = torch.as_tensor(images)
            plain.append(_forward(model, images, device, amp).cpu())
            if with_flip:
                mirrored.append(_forward(model, images.flip(3), device, amp).cpu())
            bar.update(len(images))
    if not plain:
        raise DataError("no images to embed")
    flipped = torch.cat(mirrored).numpy() if with_flip else None
    return torch.cat(plain).numpy(), flipped


def _as_batches(images: torch.Tensor | np.ndarray | Iterable[torch.Tensor], batch_size: int
                ) -> tuple[Iterable[torch.Tensor], int | None]:
    if isinstance(images, (torch.Tensor, np.ndarray)):
        tensor = torch.as_tensor(images)
        if tensor.ndim != 4 or tensor.shape[1] != 3 or tensor.dtype != torch.uint8:
            raise DataError(f"images must be (N, 3, H, W) uint8, got {tuple(tensor.shape)} "
                            f"{tensor.dtype}")
        return (tensor[start:start + batch_size] for start in range(0, len(tensor), batch_size)), len(tensor)
    return images, None


def embed_images(
    model: nn.Module, images: torch.Tensor | np.ndarray | Iterable[torch.Tensor],
    batch_size: int = 256, device: torch.device | str = "cpu", flip: bool = False,
    amp: bool = False,
) -> np.ndarray:
    """Embed uint8 images in batches.

    Args:
        model: returns (B, D) embeddings of float [-1, 1] input.
        images: (N, 3, H, W) uint8, or an iterable of such batches.
        batch_size: images per forward pass (when ``images`` is one array).
        device: where the model runs.
        flip: return ``f(x) + f(mirror(x))`` (not normalised), as arcface_torch.
        amp: run under ``torch.autocast``.

    Returns:
        (N, D) float32 embeddings.
    """
    batches, total = _as_batches(images, batch_size)
    plain, mirrored = embed_batches(model, batches, device, amp, flip, total)
    return plain + mirrored if mirrored is not None else plain


@dataclass(frozen=True)
class PairEmbeddings:
    """Embeddings of a pair set's images: plain, and summed with the mirrored image's."""

    plain: np.ndarray  # (N, D)
    flipped: np.ndarray | None  # (N, D) f(x) + f(mirror(x)), or None when not computed

    def get(self, flip: bool) -> np.ndarray:
        """The embeddings for one flip setting."""
        if not flip:
            return self.plain
        if self.flipped is None:
            raise ValueError("flipped embeddings were not computed")
        return self.flipped


def embed_pair_set(
    model: nn.Module, pair_set: PairSet, batch_size: int = 256,
    device: torch.device | str = "cpu", with_flip: bool = False, amp: bool = False,
    crop: str | None = None, workers: int | None = None,
) -> PairEmbeddings:
    """Embed every image of ``pair_set`` once (plain, and mirrored when ``with_flip``).

    Args:
        model: a backbone; its ``input_size`` (H, W) attribute, when present, is checked.
        pair_set: the images to embed.
        batch_size: images per forward pass.
        device: where the model runs.
        with_flip: also compute ``f(x) + f(mirror(x))``.
        amp: run under ``torch.autocast``.
        crop: ``"synface"`` to cut 112x96 crops out of 112x112 ArcFace crops.
        workers: image decoding threads (default: up to 4, by CPU count).

    Returns:
        The embeddings, in the order of ``pair_set.images``.

    Raises:
        DataError: an unreadable image or one whose size does not fit the model.
    """
    input_size = getattr(model, "input_size", None)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    batches = iter_image_batches(pair_set, batch_size, input_size, crop, workers)
    logger.info("embedding %d images of %s", len(pair_set.images), pair_set.name)
    plain, mirrored = embed_batches(model, batches, device, amp, with_flip, len(pair_set.images))
    return PairEmbeddings(plain, plain + mirrored if mirrored is not None else None)

