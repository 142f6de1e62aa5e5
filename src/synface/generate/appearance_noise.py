"""Deterministic, batched hash noise shared by the appearance, background and quality models.

Random textures in the generator must be pure functions of stored parameters, identical
on CPU and CUDA and independent of how samples are batched. So instead of drawing from a
random generator, noise is computed from integer hashes of (seed, channel, row, column):
integer arithmetic is exact on every device. A seed is carried in a float32 parameter
vector as a whole number below 2**24 (exactly representable).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MASK32 = 0xFFFFFFFF
SEED_LIMIT = 1 << 24  # float32 holds every integer below this exactly


def hash32(values: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche hash of int64 values (low 32 bits used), returned as int64 in [0, 2**32).

    int64 products may wrap around; only their low 32 bits are kept, which wrapping preserves.
    """
    x = values & MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def hash_combine(*parts: torch.Tensor) -> torch.Tensor:
    """Hash several broadcastable int64 tensors into one int64 tensor in [0, 2**32)."""
    state = torch.zeros((), dtype=torch.int64, device=parts[0].device)
    for part in parts:
        state = hash32(state * 0x9E3779B1 + part.to(torch.int64) + 0x632BE5AB)
    return state


def seeds_from_params(values: torch.Tensor) -> torch.Tensor:
    """Integer seeds (int64) from float parameters holding whole numbers."""
    return torch.round(values).to(torch.int64)


def uniform_grid(seeds: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """Uniform noise in [0, 1) of shape (B, channels, height, width), one field per seed.

    Args:
        seeds: (B,) int64 seeds.
        channels, height, width: size of the field per seed.

    Returns:
        (B, channels, height, width) float32.
    """
    device = seeds.device
    b = seeds.reshape(-1, 1, 1, 1)
    c = torch.arange(channels, device=device).reshape(1, -1, 1, 1)
    prefix = hash_combine(b, c)  # (B, C, 1, 1): the cheap part hashed once per field
    pixel = torch.arange(height * width, device=device).reshape(1, 1, height, width)
    bits = hash32(prefix * 0x9E3779B1 + pixel) >> 8  # 24 random bits: exact in float32
    return bits.to(torch.float32) * (1.0 / (1 << 24))


_TABLE_SIZE = 512
_TABLES: dict[str, torch.Tensor] = {}


def _normal_table(device: torch.device) -> torch.Tensor:
    """A fixed (4, 512, 512) table of standard normal values, made once per device from a fixed seed."""
    key = str(device)
    if key not in _TABLES:
        generator = torch.Generator().manual_seed(20210811)
        _TABLES[key] = torch.randn(4, _TABLE_SIZE, _TABLE_SIZE, generator=generator).to(device)
    return _TABLES[key]


def normal_grid(seeds: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """Standard normal noise (B, channels, height, width): a seed-chosen window of a fixed table.

    Hashing every pixel is too slow on a CPU; instead each (seed, channel) picks one of the
    table's four layers and a wrapped offset into it, so one gather makes the whole field.
    Fields larger than the table repeat.
    """
    device = seeds.device
    b = seeds.reshape(-1, 1)
    c = torch.arange(channels, device=device).reshape(1, -1)
    code = hash_combine(b, c)  # (B, C): layer and offsets from independent bits
    layer = code & 3
    row0 = (code >> 2) % _TABLE_SIZE
    col0 = (code >> 11) % _TABLE_SIZE
    rows = (row0[..., None] + torch.arange(height, device=device)) % _TABLE_SIZE  # (B, C, H)
    cols = (col0[..., None] + torch.arange(width, device=device)) % _TABLE_SIZE  # (B, C, W)
    flat = (layer[..., None, None] * _TABLE_SIZE + rows[..., :, None]) * _TABLE_SIZE + cols[..., None, :]
    return _normal_table(device).reshape(-1)[flat]  # (B, C, H, W)


def value_noise(seeds: torch.Tensor, channels: int, height: int, width: int, cell: float,
                mode: str = "bicubic") -> torch.Tensor:
    """Smooth value noise in [0, 1): a hash lattice every ``cell`` pixels, upsampled.

    Args:
        seeds: (B,) int64 seeds.
        channels, height, width: output size per seed.
        cell: lattice spacing in pixels (>= 1).
        mode: ``bicubic`` (smooth) or ``bilinear`` (faster, creased at lattice lines).

    Returns:
        (B, channels, height, width) float32.
    """
    rows = max(2, math.ceil(height / cell) + 2)
    cols = max(2, math.ceil(width / cell) + 2)
    lattice = uniform_grid(seeds, channels, rows, cols)
    # Sample the lattice so that one lattice step spans ``cell`` output pixels.
    fine = F.interpolate(
        lattice, size=(round((rows - 1) * cell) + 1, round((cols - 1) * cell) + 1),
        mode=mode, align_corners=True,
    )
    return fine[:, :, :height, :width].clamp(0.0, 1.0).contiguous()


def fractal_noise(
    seeds: torch.Tensor, channels: int, height: int, width: int, cell: float, octaves: int = 4,
    mode: str = "bicubic",
) -> torch.Tensor:
    """Zero-mean fractal (fBm-like) noise with unit-ish standard deviation, (B, channels, H, W).

    Octave ``k`` has lattice spacing ``cell / 2**k`` and weight ``0.5**k``.
    """
    total = torch.zeros(seeds.shape[0], channels, height, width, device=seeds.device)
    norm = 0.0
    for octave in range(octaves):
        spacing = max(1.0, cell / (2 ** octave))
        weight = 0.5 ** octave
        total = total + weight * (value_noise(seeds * 131 + octave, channels, height, width, spacing, mode) - 0.5)
        norm += weight * weight
    # A uniform value on [-0.5, 0.5) has variance 1/12; bicubic smoothing lowers it a little more.
    return total / math.sqrt(norm / 12.0)
