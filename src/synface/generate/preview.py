"""Preview pictures of a generation config: identities x variations, and identity-mixup strips.

The grid shows one identity per row and its first samples across (plain, unmixed
identities, whatever the config's mixup). The mixup strip is the paper's Fig. 4:
one sample's expression, pose, light and background, without photo degradations,
with the identity coefficients blended from one identity (``phi = 0``: all
partner) to the other (``phi = 1``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from synface.errors import ConfigError
from synface.generate.generator import FaceGenerator
from synface.generate.quality import IDENTITY as PRISTINE
from synface.io import atomic_write_bytes

GAP = 2  # pixels between tiles
GAP_VALUE = 255  # white separators


def tile(images: np.ndarray, rows: int, columns: int, gap: int = GAP) -> np.ndarray:
    """Arrange (rows * columns, H, W, 3) uint8 images row by row into one picture."""
    count, height, width, _ = images.shape
    assert count == rows * columns, (count, rows, columns)
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), GAP_VALUE, np.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        canvas[top:top + height, left:left + width] = images[index]
    return canvas


def identity_grid(generator: FaceGenerator, identities: int, variations: int) -> np.ndarray:
    """(rows, columns) picture: identities ``0 .. identities-1`` down, samples ``0 .. variations-1`` across."""
    if identities < 1 or variations < 1:
        raise ConfigError(f"preview: identities ({identities}) and variations ({variations}) must be at least 1")
    identity = np.repeat(np.arange(identities), variations)
    sample = np.tile(np.arange(variations), identities)
    images, _ = generator.render(identity, sample, partners=identity, phis=np.ones(len(identity)))
    return tile(images.cpu().numpy(), identities, variations)


def mixup_strip(generator: FaceGenerator, first: int = 0, second: int = 1, steps: int = 11,
                sample: int = 0) -> np.ndarray:
    """One row: ``first`` blended into ``second``'s identity, ``phi`` from 0 to 1 left to right.

    ``phi`` weights ``first``; every tile shares the expression, pose, light and
    background of sample ``sample`` of ``first``, without photo degradations.
    """
    if steps < 2:
        raise ConfigError(f"preview: a mixup strip needs at least 2 steps, got {steps}")
    if first == second:
        raise ConfigError(f"preview: a mixup strip needs two different identities, got {first} twice")
    phi = np.linspace(0.0, 1.0, steps)
    factors = generator.sample(np.full(steps, first), np.full(steps, sample), np.full(steps, second), phi)
    factors.quality = np.tile(PRISTINE, (steps, 1))  # a blurred or noisy draw would hide the blend
    images, _ = generator.render_factors(factors)
    return tile(images.cpu().numpy(), 1, steps)


def stack(pictures: list[np.ndarray], gap: int = 3 * GAP) -> np.ndarray:
    """Stack pictures of possibly different widths vertically, left-aligned."""
    width = max(p.shape[1] for p in pictures)
    height = sum(p.shape[0] for p in pictures) + gap * (len(pictures) - 1)
    canvas = np.full((height, width, 3), GAP_VALUE, np.uint8)
    top = 0
    for picture in pictures:
        canvas[top:top + picture.shape[0], :picture.shape[1]] = picture
        top += picture.shape[0] + gap
    return canvas


def write_png(picture: np.ndarray, path: str | Path) -> Path:
    """Save an (H, W, 3) uint8 picture as PNG atomically."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def write_preview(generator: FaceGenerator, path: str | Path, identities: int = 4, variations: int = 6,
                  strips: int = 0, strip_steps: int = 11) -> Path:
    """Write the identity grid, optionally followed by identity-mixup strips, to a PNG.

    Args:
        generator: a generator for the config to preview.
        path: the PNG to write.
        identities, variations: grid rows and columns.
        strips: number of mixup strips below the grid (strip ``k`` blends identity
            ``2k + 1`` into ``2k``).
        strip_steps: tiles per strip.

    Returns:
        ``path``.
    """
    pictures = [identity_grid(generator, identities, variations)]
    pictures += [mixup_strip(generator, 2 * k, 2 * k + 1, strip_steps) for k in range(strips)]
    return write_png(stack(pictures), path)
