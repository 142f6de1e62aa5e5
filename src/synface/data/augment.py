"""Batched training augmentation on the device: the paper's recipe and a DigiFace-style pipeline.

Every transform is a picklable module-level class called as ``transform(images,
generator)`` on float ``(B, 3, H, W)`` images in ``[-1, 1]`` (on any device); all
random parameters come from the CPU ``torch.Generator`` passed in, so a seed fixes
the output. Each transform fires per sample with its own probability ``p`` and
leaves the other samples bit-identical; ``p=0`` is the identity.

Pipelines (:func:`create_augmentation`):

* ``paper``: random resize + crop (p=0.5), horizontal flip (p=0.5), random erasing (p=0.5).
* ``digiface``: flip + crop; appearance (Gaussian blur .05, Gaussian noise .035,
  motion blur .05, brightness / contrast / hue / saturation .15 / .3 / .1 / .1,
  greyscale .01, down-up-sampling .01, JPEG .05); warping (aspect ratio .1, then
  scale / rotation / shift, then a four-corner perspective), composed into one
  homography per sample so each image is resampled once.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from kornia.enhance import adjust_hue
from kornia.filters import gaussian_blur2d, motion_blur
from PIL import Image

from synface.errors import ConfigError

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
_LUMA = (0.299, 0.587, 0.114)


def _chosen(p: float, batch: int, generator: torch.Generator) -> torch.Tensor:
    """(K,) CPU indices of the samples a transform with probability ``p`` fires on."""
    return torch.nonzero(torch.rand(batch, generator=generator) < p).flatten()


def _uniform(low: float, high: float, count: int, generator: torch.Generator) -> torch.Tensor:
    """(count,) float32 uniform draws in [low, high) on the CPU."""
    return low + (high - low) * torch.rand(count, generator=generator)


def _on_chosen(
    images: torch.Tensor, chosen: torch.Tensor, function: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Apply ``function`` to the chosen samples only; the others are returned untouched."""
    if len(chosen) == 0:
        return images
    index = chosen.to(images.device)
    return images.index_copy(0, index, function(images.index_select(0, index)).to(images.dtype))


def _grey(images: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma of RGB images."""
    weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


@dataclass
class Compose:
    """Apply transforms in order."""

    transforms: Sequence[Transform]

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in self.transforms:
            images = transform(images, generator)
        return images


@dataclass
class HorizontalFlip:
    """Mirror left-right (a true mirror: column ``x`` goes to ``W - 1 - x``)."""

    p: float = 0.5

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return _on_chosen(images, _chosen(self.p, len(images), generator), lambda x: x.flip(-1))


@dataclass
class RandomResizeCrop:
    """Enlarge by a random factor in ``[1, max_scale]`` and cut a random window of the original size."""

    p: float = 0.5
    max_scale: float = 1.25

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _chosen(self.p, len(images), generator)
        scale = _uniform(1.0, self.max_scale, len(chosen), generator)
        # Window centre in normalised coordinates, keeping the window inside the enlarged image.
        room = 1.0 - 1.0 / scale
        shift = (2.0 * torch.rand(len(chosen), 2, generator=generator) - 1.0) * room[:, None]
        theta = torch.zeros(len(chosen), 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / scale
        theta[:, :, 2] = shift

        def crop(x: torch.Tensor) -> torch.Tensor:
            grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
            return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

        return _on_chosen(images, chosen, crop)


@dataclass
class RandomErasing:
    """Fill a random rectangle (area fraction and aspect ratio drawn per sample) with ``value``.

    ``value=0`` is mid-grey in ``[-1, 1]`` images.
    """

    p: float = 0.5
    area: tuple[float, float] = (0.02, 0.33)
    ratio: tuple[float, float] = (0.3, 3.3)
    value: float = 0.0

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _, _, height, width = images.shape
        chosen = _chosen(self.p, len(images), generator)
        count = len(chosen)
        area = _uniform(*self.area, count, generator) * height * width
        ratio = torch.exp(_uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), count, generator))
        box_h = torch.sqrt(area * ratio).round().clamp(1, height)
        box_w = torch.sqrt(area / ratio).round().clamp(1, width)
        top = (torch.rand(count, generator=generator) * (height - box_h + 1)).floor()
        left = (torch.rand(count, generator=generator) * (width - box_w + 1)).floor()

        def erase(x: torch.Tensor) -> torch.Tensor:
            rows = torch.arange(height, device=x.device).view(1, height, 1)
            cols = torch.arange(width, device=x.device).view(1, 1, width)
            y0, x0, h, w = (v.to(x.device).view(-1, 1, 1) for v in (top, left, box_h, box_w))
            inside = (rows >= y0) & (rows < y0 + h) & (cols >= x0) & (cols < x0 + w)  # (K, H, W)
            return torch.where(inside[:, None], torch.full_like(x, self.value), x)

        return _on_chosen(images, chosen, erase)


@dataclass
class GaussianBlur:
    """Gaussian blur with a per-sample sigma (pixels)."""

    p: float = 0.05
    sigma: tuple[float, float] = (0.3, 1.5)
    kernel_size: int = 7

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _chosen(self.p, len(images), generator)
        sigma = _uniform(*self.sigma, len(chosen), generator)
        return _on_chosen(images, chosen, lambda x: gaussian_blur2d(
            x, (self.kernel_size, self.kernel_size), sigma.to(x.device, x.dtype)[:, None].repeat(1, 2)))


@dataclass
class GaussianNoise:
    """Additive Gaussian noise; ``std`` in units of the [-1, 1] range."""

    p: float = 0.035
    std: tuple[float, float] = (0.02, 0.1)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _chosen(self.p, len(images), generator)
        std = _uniform(*self.std, len(chosen), generator)
        noise = torch.randn((len(chosen), *images.shape[1:]), generator=generator) * std.view(-1, 1, 1, 1)
        return _on_chosen(images, chosen, lambda x: (x + noise.to(x.device, x.dtype)).clamp(-1, 1))


@dataclass
class MotionBlur:
    """Linear motion blur with a random angle and direction."""

    p: float = 0.05
    kernel_size: int = 7

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _chosen(self.p, len(images), generator)
        angle = _uniform(-180.0, 180.0, len(chosen), generator)
        direction = _uniform(-1.0, 1.0, len(chosen), generator)
        return _on_chosen(images, chosen, lambda x: motion_blur(
            x, self.kernel_size, angle.to(x.device, x.dtype), direction.to(x.device, x.dtype)))


@dataclass
class ColorJitter:
    """Brightness, contrast, saturation and hue, each firing with its own probability.

    Factors are multiplicative (brightness, contrast about the image's mean grey,
    saturation about its luma); ``hue`` is a shift in fractions of the colour circle.
    """

    p_brightness: float = 0.15
    p_contrast: float = 0.3
    p_hue: float = 0.1
    p_saturation: float = 0.1
    brightness: tuple[float, float] = (0.6, 1.4)
    contrast: tuple[float, float] = (0.6, 1.4)
    saturation: tuple[float, float] = (0.5, 1.5)
    hue: tuple[float, float] = (-0.05, 0.05)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        unit = (images + 1.0) * 0.5  # [0, 1]
        for p, bounds, adjust in (
            (self.p_brightness, self.brightness, _brightness),
            (self.p_contrast, self.contrast, _contrast),
            (self.p_saturation, self.saturation, _saturation),
            (self.p_hue, self.hue, _hue),
        ):
            chosen = _chosen(p, len(images), generator)
            factor = _uniform(*bounds, len(chosen), generator).view(-1, 1, 1, 1)
            unit = _on_chosen(unit, chosen, lambda x, f=factor, a=adjust: a(x, f.to(x.device, x.dtype)).clamp(0, 1))
        return unit * 2.0 - 1.0


def _brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return x * factor


def _contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = _grey(x).mean((2, 3), keepdim=True)  # (K, 1, 1, 1)
    return (x - mean) * factor + mean


def _saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    grey = _grey(x)
    return (x - grey) * factor + grey


def _hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return adjust_hue(x, factor.flatten() * 2.0 * math.pi)


@dataclass
class Grayscale:
    """Replace colour by luma in all three channels."""

    p: float = 0.01

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return _on_chosen(images, _chosen(self.p, len(images), generator), lambda x: _grey(x).expand_as(x))


@dataclass
class DownUpSample:
    """Shrink by a random factor (area average) and enlarge back (bilinear): low-resolution look."""

    p: float = 0.01
    factor: tuple[float, float] = (1.5, 4.0)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _, _, height, width = images.shape
        chosen = _chosen(self.p, len(images), generator)
        factors = _uniform(*self.factor, len(chosen), generator).tolist()

        def resample(x: torch.Tensor) -> torch.Tensor:
            out = []
            for image, f in zip(x, factors):
                small = (max(1, round(height / f)), max(1, round(width / f)))
                low = F.interpolate(image[None], size=small, mode="area")
                out.append(F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False))
            return torch.cat(out)

        return _on_chosen(images, chosen, resample)


@dataclass
class JPEGCompression:
    """A real JPEG round trip (PIL) at a random quality; the few chosen images visit the CPU."""

    p: float = 0.05
    quality: tuple[int, int] = (30, 90)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _chosen(self.p, len(images), generator)
        qualities = torch.randint(self.quality[0], self.quality[1] + 1, (len(chosen),), generator=generator).tolist()

        def compress(x: torch.Tensor) -> torch.Tensor:
            pixels = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            out = []
            for array, quality in zip(pixels, qualities):
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
                out.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")))
            decoded = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device)
            return decoded.to(x.dtype) / 127.5 - 1.0

        return _on_chosen(images, chosen, compress)


@dataclass
class RandomWarp:
    """Aspect-ratio change, then scale / rotation / shift, then a four-corner perspective, in one resampling.

    Geometry is in pixel units about the image centre, so rotations stay rotations
    on non-square crops. Each stage fires with its own probability.
    """

    p_aspect: float = 0.1
    p_affine: float = 0.5
    p_perspective: float = 0.3
    aspect: tuple[float, float] = (0.85, 1.0 / 0.85)
    scale: tuple[float, float] = (0.9, 1.1)
    rotation: float = 10.0  # degrees, either way
    shift: float = 0.05  # fraction of width / height, either way
    corner: float = 0.06  # perspective corner jitter, fraction of width / height

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch, _, height, width = images.shape
        forward = warp_matrices(self, batch, height, width, generator)  # (B, 3, 3) input -> output pixels
        moved = torch.nonzero((forward - torch.eye(3)).abs().amax((1, 2)) > 0).flatten()
        if len(moved) == 0:
            return images
        to_normalised = torch.diag(torch.tensor([2.0 / width, 2.0 / height, 1.0], dtype=torch.float64))
        sample = to_normalised @ torch.linalg.inv(forward[moved]) @ torch.linalg.inv(to_normalised)
        return _on_chosen(images, moved, lambda x: _warp(x, sample.to(x.device, torch.float32)))


def warp_matrices(warp: RandomWarp, batch: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(B, 3, 3) float64 forward homographies (pixels about the centre) drawn for :class:`RandomWarp`."""
    eye = torch.eye(3, dtype=torch.float64).repeat(batch, 1, 1)
    aspect, affine, perspective = eye.clone(), eye.clone(), eye.clone()
    chosen = _chosen(warp.p_aspect, batch, generator)
    ratio = torch.exp(_uniform(math.log(warp.aspect[0]), math.log(warp.aspect[1]), len(chosen), generator)).double()
    aspect[chosen, 0, 0], aspect[chosen, 1, 1] = ratio.sqrt(), 1.0 / ratio.sqrt()
    chosen = _chosen(warp.p_affine, batch, generator)
    scale = _uniform(*warp.scale, len(chosen), generator).double()
    angle = torch.deg2rad(_uniform(-warp.rotation, warp.rotation, len(chosen), generator).double())
    shift = (2 * torch.rand(len(chosen), 2, generator=generator).double() - 1) * warp.shift
    affine[chosen, 0, 0], affine[chosen, 0, 1] = scale * torch.cos(angle), -scale * torch.sin(angle)
    affine[chosen, 1, 0], affine[chosen, 1, 1] = scale * torch.sin(angle), scale * torch.cos(angle)
    affine[chosen, 0, 2], affine[chosen, 1, 2] = shift[:, 0] * width, shift[:, 1] * height
    chosen = _chosen(warp.p_perspective, batch, generator)
    half = torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64)
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64) * half
    jitter = (2 * torch.rand(len(chosen), 4, 2, generator=generator).double() - 1) * warp.corner * 2 * half
    if len(chosen):
        perspective[chosen] = homography_from_points(corners.expand(len(chosen), 4, 2), corners + jitter)
    return perspective @ affine @ aspect


def homography_from_points(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) homographies mapping four (B, 4, 2) source points exactly onto target points."""
    x, y = source[..., 0], source[..., 1]
    u, v = target[..., 0], target[..., 1]
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], dim=-1)  # (B, 4, 8)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], dim=-1)
    system = torch.cat([rows_u, rows_v], dim=1)  # (B, 8, 8)
    solution = torch.linalg.solve(system, torch.cat([u, v], dim=1))  # (B, 8)
    return torch.cat([solution, torch.ones_like(solution[:, :1])], dim=1).view(-1, 3, 3)


def _warp(images: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """Resample through (B, 3, 3) output -> input homographies in normalised coordinates."""
    identity = torch.eye(2, 3, device=images.device).expand(len(images), 2, 3)
    base = F.affine_grid(identity, list(images.shape), align_corners=False)  # (B, H, W, 2)
    points = torch.cat([base, torch.ones_like(base[..., :1])], dim=-1)  # (B, H, W, 3)
    mapped = torch.einsum("bij,bhwj->bhwi", sample, points)
    grid = mapped[..., :2] / mapped[..., 2:].clamp_min(1e-6)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass
class NoAugmentation:
    """The identity (keeps the call signature uniform)."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return images


def paper_augmentation() -> Compose:
    """The official recipe: random resize + crop (p=0.5), horizontal flip, random erasing."""
    return Compose([RandomResizeCrop(p=0.5), HorizontalFlip(p=0.5), RandomErasing(p=0.5)])


def digiface_augmentation() -> Compose:
    """DigiFace-1M's on-the-fly augmentation (flip + crop, appearance, warping)."""
    return Compose([
        HorizontalFlip(p=0.5),
        RandomResizeCrop(p=0.5),
        GaussianBlur(p=0.05),
        GaussianNoise(p=0.035),
        MotionBlur(p=0.05),
        ColorJitter(),
        Grayscale(p=0.01),
        DownUpSample(p=0.01),
        JPEGCompression(p=0.05),
        RandomWarp(),
    ])


AUGMENTATIONS: dict[str, Callable[[], Transform]] = {
    "none": NoAugmentation,
    "paper": paper_augmentation,
    "digiface": digiface_augmentation,
}


def create_augmentation(name: str) -> Transform:
    """The named pipeline (``none``, ``paper``, ``digiface``).

    Raises:
        ConfigError: an unknown name, listing the valid ones.
    """
    try:
        return AUGMENTATIONS[name]()
    except KeyError:
        raise ConfigError(f"augmentation: unknown {name!r}; valid: {', '.join(AUGMENTATIONS)}") from None
