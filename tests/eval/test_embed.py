"""Batched embedding: input scaling, flip, batching, crop/size checks and image errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from synface.errors import DataError
from synface.eval.embed import decode_image, embed_images, embed_pair_set, fit_to_model
from synface.eval.protocols import PairSet


class TinyNet(nn.Module):
    """A fixed random projection of the whole image: easy to compute by hand."""

    def __init__(self, input_size=(8, 6), features=5):
        super().__init__()
        self.input_size = input_size
        self.projection = nn.Linear(3 * input_size[0] * input_size[1], features, bias=False)

    def forward(self, x):
        assert x.dtype == torch.float32 and -1.0 <= x.min() and x.max() <= 1.0
        return self.projection(x.flatten(1))


def reference(model, images, flip=False):
    x = torch.as_tensor(images).float() / 127.5 - 1.0
    with torch.no_grad():
        out = model(x)
        if flip:
            out = out + model(x.flip(3))
    return out.numpy()


def random_images(count, size=(8, 6), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 3, *size), dtype=np.uint8)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_embed_images_matches_direct_forward(flip, batch_size):
    model = TinyNet()
    images = random_images(10)
    out = embed_images(model, images, batch_size=batch_size, flip=flip)
    assert out.dtype == np.float32 and out.shape == (10, 5)
    np.testing.assert_allclose(out, reference(model, images, flip), rtol=1e-5, atol=1e-5)


def test_embed_images_iterable_and_amp():
    model = TinyNet()
    images = random_images(7)
    batches = [torch.from_numpy(images[:4]), torch.from_numpy(images[4:])]
    np.testing.assert_allclose(embed_images(model, iter(batches)), reference(model, images), atol=1e-5)
    approximate = embed_images(model, images, amp=True)  # bf16 autocast on CPU
    np.testing.assert_allclose(approximate, reference(model, images), atol=0.1)
    with pytest.raises(DataError, match=r"\(N, 3, H, W\) uint8"):
        embed_images(model, images.astype(np.float32))


def in_memory_pair_set(images_hwc, name="mem"):
    count = len(images_hwc)
    pairs = np.arange(count - count % 2).reshape(-1, 2)
    folds = np.arange(len(pairs)) % 2
    return PairSet(name, list(images_hwc), pairs, np.arange(len(pairs)) % 2 == 0, folds)


def test_embed_pair_set_decodes_every_kind_of_source(tmp_path):
    chw = random_images(4)
    hwc = chw.transpose(0, 2, 3, 1)
    Image.fromarray(hwc[0]).save(tmp_path / "a.png")
    buffer = io.BytesIO()
    Image.fromarray(hwc[1]).save(buffer, format="PNG")
    sources = [tmp_path / "a.png", buffer.getvalue(), hwc[2], hwc[3]]
    pair_set = PairSet("mixed", sources, [[0, 1], [2, 3]], [True, False], [0, 1])
    model = TinyNet()
    embeddings = embed_pair_set(model, pair_set, batch_size=3, with_flip=True, workers=2)
    np.testing.assert_allclose(embeddings.plain, reference(model, chw), atol=1e-5)
    np.testing.assert_allclose(embeddings.get(True), reference(model, chw, flip=True), atol=1e-5)
    plain_only = embed_pair_set(model, pair_set)
    assert plain_only.flipped is None
    with pytest.raises(ValueError):
        plain_only.get(True)


def test_grey_and_rgba_images_become_rgb(tmp_path):
    Image.fromarray(np.full((8, 6), 200, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((8, 6, 4), 100, np.uint8)).save(tmp_path / "rgba.png")
    assert decode_image(tmp_path / "grey.png", "g").shape == (8, 6, 3)
    assert decode_image(tmp_path / "rgba.png", "r")[0, 0].tolist() == [100, 100, 100]


def test_unreadable_images_are_named(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match=f"cannot read image {tmp_path / 'broken.jpg'}"):
        decode_image(tmp_path / "broken.jpg", str(tmp_path / "broken.jpg"))
    pair_set = PairSet("bin", [b"garbage", b"garbage"], [[0, 1]], [True], [0], source="x.bin")
    with pytest.raises(DataError, match="cannot read image image #0 of x.bin"):
        embed_pair_set(TinyNet(), pair_set)


def test_size_mismatch_and_synface_crop():
    arcface = np.arange(112 * 112 * 3, dtype=np.int64).reshape(112, 112, 3).astype(np.uint8)
    with pytest.raises(DataError, match="is 112x112 .* model takes 112x96; pass --crop synface"):
        fit_to_model(arcface, (112, 96), None, "face.jpg")
    np.testing.assert_array_equal(fit_to_model(arcface, (112, 96), "synface", "x"), arcface[:, 8:104])
    with pytest.raises(DataError, match="image face.jpg is 250x250 .* takes 112x96"):
        fit_to_model(np.zeros((250, 250, 3), np.uint8), (112, 96), "synface", "face.jpg")
    with pytest.raises(DataError, match="is 112x96 .* takes 112x112"):
        fit_to_model(np.zeros((112, 96, 3), np.uint8), (112, 112), "synface", "x")
    # through a pair set: the crop is applied before the model sees the images
    faces = [np.random.default_rng(k).integers(0, 256, (112, 112, 3), dtype=np.uint8) for k in range(2)]
    model = TinyNet(input_size=(112, 96), features=3)
    pair_set = in_memory_pair_set(faces)
    got = embed_pair_set(model, pair_set, crop="synface").plain
    expected = reference(model, np.stack([face[:, 8:104] for face in faces]).transpose(0, 3, 1, 2))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(DataError, match="pass --crop synface"):
        embed_pair_set(model, pair_set)
