"""The sample contract helpers: device conversion, plain labels, image fitting and seeded generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from synface.data.base import plain_targets, prepare_image, seeded_generator, to_network_input
from synface.errors import DataError


@pytest.mark.parametrize("channels_last", [False, True])
def test_network_input_is_x_over_127_5_minus_1(channels_last):
    images = torch.arange(256, dtype=torch.uint8).repeat(6).view(2, 3, 16, 16)
    hwc_view = images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # as get_batch returns
    for source in (images, hwc_view):
        x = to_network_input(source, "cpu", channels_last=channels_last)
        assert x.dtype == torch.float32
        assert torch.equal(x, images.float() / 127.5 - 1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        assert x.is_contiguous(memory_format=memory_format)
    assert x.min() == -1 and x.max() == 1


def test_plain_targets():
    targets, weights = plain_targets(np.array([3, 0]))
    assert targets.tolist() == [[3, 3], [0, 0]] and weights.tolist() == [[1, 0], [1, 0]]
    assert targets.dtype == np.int64 and weights.dtype == np.float32


def test_prepare_image_fits():
    array = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    cropped = prepare_image(image, (112, 96), "aligned", "x.png")
    assert torch.equal(cropped, torch.from_numpy(array[:, 8:104].copy()).permute(2, 0, 1))
    assert prepare_image(image, (56, 48), "resize", "x.png").shape == (3, 56, 48)
    with pytest.raises(DataError, match="x.png: image is 112x112 .* not an aligned crop"):
        prepare_image(image, (56, 48), "aligned", "x.png")
    tall = Image.fromarray(np.zeros((200, 100, 3), np.uint8))
    assert prepare_image(tall, (112, 96), "crop", "t.png").shape == (3, 112, 96)


def test_seeded_generators_depend_on_every_key():
    draws = {keys: torch.rand(3, generator=seeded_generator(*keys)).tolist()
             for keys in [(0, 0), (0, 1), (1, 0), (0, 0, 0)]}
    assert len({tuple(v) for v in draws.values()}) == 4
    assert torch.rand(3, generator=seeded_generator(0, 1)).tolist() == draws[(0, 1)]
