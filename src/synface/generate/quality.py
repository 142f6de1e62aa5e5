"""Camera and photo quality degradations of rendered face crops: blur, noise, resampling, JPEG, colour.

Real face photos are blurred, noisy, resampled, JPEG-compressed and colour-shifted;
clean renders are not. Each image gets a parameter vector (:data:`PARAM_NAMES`) drawn by
:func:`sample_quality`; :func:`degrade` applies it to a batch. Every effect has a neutral
value and :data:`IDENTITY` (all effects neutral) returns the input exactly. Noise comes
from hash seeds stored in the parameters, so the result is a pure function of
(image, parameters), independent of the device and the batch it is computed in.

Order (as in a camera): optical blur, motion blur, down-up resampling, sensor noise,
white balance / exposure / contrast / gamma / saturation, then JPEG compression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from synface.config import ConfigBase, require
from synface.errors import DataError
from synface.generate.appearance_noise import SEED_LIMIT, normal_grid, seeds_from_params

PARAM_NAMES: tuple[str, ...] = (
    "blur_sigma",       # Gaussian blur, pixels (0: none)
    "motion_length",    # motion-blur streak length, pixels (0: none)
    "motion_angle",     # streak direction, degrees
    "resample_scale",   # down-up sampling factor in (0, 1] (1: none)
    "noise_sigma",      # signal-independent sensor noise std (0: none)
    "noise_shot",       # signal-dependent noise: std = noise_shot * sqrt(value)
    "noise_chroma",     # 0: same noise in all channels (luma), 1: independent per channel
    "noise_seed",       # whole number below 2**24
    "gain_red",         # white-balance gains (1: none)
    "gain_green",
    "gain_blue",
    "exposure",         # brightness multiplier (1: none)
    "contrast",         # contrast about mid-grey (1: none)
    "gamma",            # output = input ** gamma (1: none)
    "saturation",       # 0: greyscale, 1: none
    "jpeg_quality",     # JPEG quality 1..100; 0 (or above 100): no compression
)
NEUTRAL: dict[str, float] = {
    "blur_sigma": 0.0, "motion_length": 0.0, "motion_angle": 0.0, "resample_scale": 1.0,
    "noise_sigma": 0.0, "noise_shot": 0.0, "noise_chroma": 0.0, "noise_seed": 0.0,
    "gain_red": 1.0, "gain_green": 1.0, "gain_blue": 1.0, "exposure": 1.0, "contrast": 1.0,
    "gamma": 1.0, "saturation": 1.0, "jpeg_quality": 0.0,
}
IDENTITY = np.array([NEUTRAL[name] for name in PARAM_NAMES], dtype=np.float32)
_INDEX = {name: i for i, name in enumerate(PARAM_NAMES)}
_TONE = ("gain_red", "gain_green", "gain_blue", "exposure", "contrast", "gamma", "saturation")


def _range(value: tuple[float, float], name: str, low: float, high: float) -> None:
    require(len(value) == 2 and low <= value[0] <= value[1] <= high, name,
            f"{value} must be (min, max) with {low} <= min <= max <= {high}")


@dataclass(frozen=True)
class QualityConfig(ConfigBase):
    """How often each degradation happens and how strong it may be.

    Probabilities are per image and independent; ranges are (min, max) of a uniform draw
    (``jpeg_quality`` and ``resample_scale`` uniform, blur sigmas log-uniform-ish via uniform).
    ``frozen`` makes every image pristine (the identity parameters).

    The defaults aim at aligned crops of press and web photos (LFW, CFP): mostly sharp,
    usually mildly JPEG-compressed, with occasional blur, resampling and sensor noise,
    and usually the extra contrast and saturation of a camera's picture style; the
    ranges allow much harsher degradations when raised.
    """

    frozen: bool = False
    blur_probability: float = 0.08
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    motion_probability: float = 0.02
    motion_length: tuple[float, float] = (1.5, 4.0)
    resample_probability: float = 0.08
    resample_scale: tuple[float, float] = (0.45, 0.85)
    noise_probability: float = 0.25
    noise_sigma: tuple[float, float] = (0.002, 0.01)
    noise_shot: tuple[float, float] = (0.0, 0.01)
    noise_chroma: tuple[float, float] = (0.0, 0.5)
    white_balance_probability: float = 0.4
    white_balance_strength: float = 0.1
    tone_probability: float = 0.7
    exposure: tuple[float, float] = (0.8, 1.25)
    contrast: tuple[float, float] = (0.9, 1.4)
    gamma: tuple[float, float] = (0.85, 1.2)
    saturation_probability: float = 0.5
    saturation: tuple[float, float] = (0.8, 1.45)
    grayscale_probability: float = 0.02
    jpeg_probability: float = 0.6
    jpeg_quality: tuple[float, float] = (35.0, 95.0)

    def validate(self) -> None:
        for name in ("blur", "motion", "resample", "noise", "white_balance", "tone",
                     "saturation", "grayscale", "jpeg"):
            value = getattr(self, f"{name}_probability")
            require(0.0 <= value <= 1.0, f"{name}_probability", f"{value} is outside [0, 1]")
        _range(self.blur_sigma, "blur_sigma", 0.0, 10.0)
        _range(self.motion_length, "motion_length", 0.0, 30.0)
        _range(self.resample_scale, "resample_scale", 0.05, 1.0)
        _range(self.noise_sigma, "noise_sigma", 0.0, 0.5)
        _range(self.noise_shot, "noise_shot", 0.0, 0.5)
        _range(self.noise_chroma, "noise_chroma", 0.0, 1.0)
        require(0.0 <= self.white_balance_strength <= 0.5, "white_balance_strength",
                f"{self.white_balance_strength} is outside [0, 0.5]")
        _range(self.exposure, "exposure", 0.05, 5.0)
        _range(self.contrast, "contrast", 0.05, 5.0)
        _range(self.gamma, "gamma", 0.2, 5.0)
        _range(self.saturation, "saturation", 0.0, 3.0)
        _range(self.jpeg_quality, "jpeg_quality", 1.0, 100.0)


def sample_quality(rng: np.random.Generator, config: QualityConfig = QualityConfig()) -> np.ndarray:
    """Draw one image's degradation parameters.

    Args:
        rng: the sample's generator.
        config: probabilities and ranges.

    Returns:
        (Kq,) float32 in the order of :data:`PARAM_NAMES`.
    """
    params = IDENTITY.copy()
    if config.frozen:
        return params
    draws = rng.random(9)  # which effects happen is decided up front, one draw per effect

    def set_uniform(name: str, bounds: tuple[float, float]) -> None:
        params[_INDEX[name]] = rng.uniform(*bounds)

    if draws[0] < config.blur_probability:
        set_uniform("blur_sigma", config.blur_sigma)
    if draws[1] < config.motion_probability:
        set_uniform("motion_length", config.motion_length)
        set_uniform("motion_angle", (0.0, 180.0))
    if draws[2] < config.resample_probability:
        set_uniform("resample_scale", config.resample_scale)
    if draws[3] < config.noise_probability:
        set_uniform("noise_sigma", config.noise_sigma)
        set_uniform("noise_shot", config.noise_shot)
        set_uniform("noise_chroma", config.noise_chroma)
        params[_INDEX["noise_seed"]] = float(rng.integers(1, SEED_LIMIT))
    if draws[4] < config.white_balance_probability:
        tint = rng.normal(0.0, config.white_balance_strength / 2, size=3).clip(
            -config.white_balance_strength, config.white_balance_strength)
        params[[_INDEX["gain_red"], _INDEX["gain_green"], _INDEX["gain_blue"]]] = np.exp(tint - tint.mean())
    if draws[5] < config.tone_probability:
        set_uniform("exposure", config.exposure)
        set_uniform("contrast", config.contrast)
        set_uniform("gamma", config.gamma)
    if draws[6] < config.saturation_probability:
        set_uniform("saturation", config.saturation)
    if draws[7] < config.grayscale_probability:
        params[_INDEX["saturation"]] = 0.0
    if draws[8] < config.jpeg_probability:
        set_uniform("jpeg_quality", config.jpeg_quality)
    return params


# -- filters ----------------------------------------------------------------------------
def _grouped_filter(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each image with its own (kh, kw) kernel, edge-padded; kernels (B, kh, kw)."""
    b, c, h, w = images.shape
    kh, kw = kernels.shape[-2:]
    padded = F.pad(images.reshape(1, b * c, h, w), (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    weight = kernels.repeat_interleave(c, 0).unsqueeze(1).to(images.dtype)  # (B*C, 1, kh, kw)
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur image ``i`` with a Gaussian of std ``sigma[i]`` pixels (separable); sigma (B,)."""
    radius = max(1, math.ceil(3.0 * float(sigma.max())))
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    weights = torch.exp(-0.5 * (taps / sigma.clamp_min(1e-3)[:, None]) ** 2)  # (B, K)
    # Each image keeps its own 3-sigma support, whatever the largest sigma in the batch.
    weights = torch.where(taps.abs() <= torch.ceil(3.0 * sigma)[:, None], weights, 0.0)
    weights = weights / weights.sum(1, keepdim=True)
    out = _grouped_filter(images, weights[:, None, :])
    return _grouped_filter(out, weights[:, :, None])


def motion_blur(images: torch.Tensor, length: torch.Tensor, angle_degrees: torch.Tensor) -> torch.Tensor:
    """Average along a straight streak of ``length`` pixels at ``angle_degrees``; both (B,)."""
    radius = max(1, math.ceil(float(length.max()) / 2.0 + 1.0))
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    y, x = torch.meshgrid(taps, taps, indexing="ij")  # (K, K)
    theta = torch.deg2rad(angle_degrees)[:, None, None]
    along = x * torch.cos(theta) - y * torch.sin(theta)  # image y points down
    across = x * torch.sin(theta) + y * torch.cos(theta)
    half = (length / 2.0)[:, None, None]
    # Anti-aliased segment: one pixel wide, ends fading over one pixel.
    weights = (1.0 - across.abs()).clamp_min(0.0) * (half + 0.5 - along.abs()).clamp(0.0, 1.0)
    weights = weights / weights.sum((1, 2), keepdim=True)
    return _grouped_filter(images, weights)


def resample_down_up(images: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Shrink each image by ``scale[i]`` (antialiased) and enlarge it back (bilinear); scale (B,)."""
    _, _, h, w = images.shape
    out = images.clone()
    sizes = torch.stack([(h * scale).round().clamp_min(4), (w * scale).round().clamp_min(4)], 1).long()
    for size in torch.unique(sizes, dim=0).tolist():
        chosen = (sizes == sizes.new_tensor(size)).all(1)
        small = F.interpolate(images[chosen], size=tuple(size), mode="bilinear", antialias=True,
                              align_corners=False)
        out[chosen] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out.clamp(0.0, 1.0)


# -- JPEG ------------------------------------------------------------------------------
# The standard luminance and chrominance quantisation tables (ITU T.81, Annex K).
_LUMA_TABLE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA_TABLE = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32


def _dct_matrix(device: torch.device) -> torch.Tensor:
    """Orthonormal 8-point DCT-II matrix (8, 8): row k is frequency k."""
    n = torch.arange(8, dtype=torch.float64)
    matrix = torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / 16.0) * math.sqrt(2.0 / 8.0)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(device=device, dtype=torch.float32)


def _quality_scale(quality: torch.Tensor) -> torch.Tensor:
    """libjpeg's quality -> table scale factor (percent -> fraction), quality (B,) in [1, 100]."""
    return torch.where(quality < 50, 50.0 / quality, 2.0 - quality / 50.0).clamp_min(0.01)


def jpeg_compress(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG round trip approximation: YCbCr, 4:2:0 chroma, 8x8 DCT quantisation; quality (B,).

    Rounds coefficients like a baseline encoder but skips entropy coding (lossless anyway).
    """
    h, w = images.shape[-2:]
    pad_h, pad_w = (-h) % 16, (-w) % 16
    x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") * 255.0
    r, g, bl = x[:, 0], x[:, 1], x[:, 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)  # (B, 2, H/2, W/2)
    scale = _quality_scale(quality)
    dct = _dct_matrix(images.device)
    luma = _quantise(luma[:, None] - 128.0, images.new_tensor(_LUMA_TABLE), scale, dct)[:, 0] + 128.0
    chroma = _quantise(chroma, images.new_tensor(_CHROMA_TABLE), scale, dct)
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = chroma[:, 0], chroma[:, 1]
    rgb = torch.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], 1)
    return (rgb[:, :, :h, :w] / 255.0).clamp(0.0, 1.0)


def _quantise(planes: torch.Tensor, table: torch.Tensor, scale: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """Blockwise DCT, round to multiples of the scaled table, inverse DCT; planes (B, C, H, W)."""
    b, c, h, w = planes.shape
    blocks = planes.reshape(b, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)  # (B,C,h8,w8,8,8)
    flat = blocks.reshape(b, -1, 64)  # one GEMM with the 64x64 separable DCT beats many 8x8 ones
    basis = torch.kron(dct, dct)  # (64, 64): vec(D X D^T) = (D kron D) vec(X)
    step = torch.floor(table * scale.reshape(-1, 1, 1) + 0.5).clamp(1.0, 255.0)  # (B, 1, 64)
    coefficients = flat @ basis.T
    restored = (torch.round(coefficients / step) * step) @ basis
    return restored.reshape(b, c, h // 8, w // 8, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)


def _column(params: torch.Tensor, name: str) -> torch.Tensor:
    return params[:, _INDEX[name]]


def _apply(images: torch.Tensor, active: torch.Tensor, effect, *columns: torch.Tensor) -> torch.Tensor:
    """Run ``effect(images[active], *columns[active])`` on the active images (B,) only."""
    if not bool(active.any()):
        return images
    index = active.nonzero().squeeze(1)
    out = images.clone()
    out[index] = effect(images[index], *(column[index] for column in columns)).to(images.dtype)
    return out


def _add_noise(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    sigma = _column(params, "noise_sigma").reshape(-1, 1, 1, 1)
    shot = _column(params, "noise_shot").reshape(-1, 1, 1, 1)
    chroma = _column(params, "noise_chroma").reshape(-1, 1, 1, 1).clamp(0.0, 1.0)
    h, w = images.shape[-2:]
    fields = normal_grid(seeds_from_params(_column(params, "noise_seed")), 4, h, w).to(images.dtype)
    # Luma noise is shared by the channels; chroma noise is independent per channel.
    noise = (1.0 - chroma) * fields[:, :1] + chroma * fields[:, 1:]  # (B, 3, H, W)
    std = sigma + shot * images.clamp_min(0.0).sqrt()
    return (images + std * noise).clamp(0.0, 1.0)


def _tone(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    gains = params[:, [_INDEX["gain_red"], _INDEX["gain_green"], _INDEX["gain_blue"]]]
    exposure = _column(params, "exposure").reshape(-1, 1, 1, 1)
    contrast = _column(params, "contrast").reshape(-1, 1, 1, 1)
    gamma = _column(params, "gamma").reshape(-1, 1, 1, 1)
    saturation = _column(params, "saturation").reshape(-1, 1, 1, 1)
    out = images * gains.reshape(-1, 3, 1, 1) * exposure
    out = ((out - 0.5) * contrast + 0.5).clamp(0.0, 1.0)
    out = out.clamp_min(1e-6) ** gamma
    grey = (out * out.new_tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1, keepdim=True)
    return (grey + saturation * (out - grey)).clamp(0.0, 1.0)


def degrade(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Apply per-image camera degradations.

    Args:
        images: (B, 3, H, W) sRGB in [0, 1].
        params: (B, Kq) rows from :func:`sample_quality` (any device; moved to the images').

    Returns:
        (B, 3, H, W) degraded images in [0, 1]; images whose parameters are
        :data:`IDENTITY` come back bit-for-bit unchanged.

    Raises:
        DataError: images or parameters of the wrong shape.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise DataError(f"degrade: images must be (B, 3, H, W), got {tuple(images.shape)}")
    if params.ndim != 2 or params.shape != (images.shape[0], len(PARAM_NAMES)):
        raise DataError(
            f"degrade: params must be ({images.shape[0]}, {len(PARAM_NAMES)}), got {tuple(params.shape)}")
    params = params.to(device=images.device, dtype=torch.float32)
    out = images
    column = {name: params[:, i] for i, name in enumerate(PARAM_NAMES)}
    out = _apply(out, column["blur_sigma"] > 0, gaussian_blur, column["blur_sigma"])
    out = _apply(out, column["motion_length"] > 0, motion_blur, column["motion_length"], column["motion_angle"])
    out = _apply(out, column["resample_scale"] < 1, resample_down_up, column["resample_scale"])
    noisy = (column["noise_sigma"] > 0) | (column["noise_shot"] > 0)
    out = _apply(out, noisy, _add_noise, params)
    tone = params[:, [_INDEX[n] for n in _TONE]]
    out = _apply(out, (tone != tone.new_tensor([NEUTRAL[n] for n in _TONE])).any(1), _tone, params)
    quality = column["jpeg_quality"]
    out = _apply(out, (quality > 0) & (quality <= 100), jpeg_compress, quality.clamp(1.0, 100.0))
    return out


def blockiness(images: torch.Tensor) -> torch.Tensor:
    """Mean squared luminance step across 8x8 block boundaries over that inside blocks, (B,).

    Steps are taken along both axes; about 1 for natural images, JPEG blocking raises it.
    """
    grey = images.mean(1)  # (B, H, W)
    across, inside = [], []
    for steps in (grey[:, :, 1:] - grey[:, :, :-1], (grey[:, 1:] - grey[:, :-1]).transpose(1, 2)):
        energy = steps ** 2  # (B, rows, steps): step k lies between pixels k and k + 1
        boundary = torch.zeros(energy.shape[-1], dtype=torch.bool, device=images.device)
        boundary[7::8] = True
        across.append(energy[..., boundary].mean((1, 2)))
        inside.append(energy[..., ~boundary].mean((1, 2)))
    return (across[0] + across[1]) / (inside[0] + inside[1]).clamp_min(1e-12)


__all__ = [
    "IDENTITY", "NEUTRAL", "PARAM_NAMES", "QualityConfig", "blockiness", "degrade", "sample_quality",
]
