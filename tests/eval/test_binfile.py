"""insightface .bin files: round trip, Python 2 / numpy variants, and refusal of malicious pickles."""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from synface.errors import DataError
from synface.eval.binfile import read_bin, write_bin
from synface.eval.embed import decode_image
from synface.eval.protocols import load_protocol


def encode(pixels: np.ndarray, format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format)
    return buffer.getvalue()


def random_images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(count)]


def test_round_trip_bytes_arrays_and_paths(tmp_path):
    pixels = random_images(24)
    (tmp_path / "file.png").write_bytes(encode(pixels[2], "PNG"))
    images = [encode(p, "JPEG") if k % 3 == 0 else p for k, p in enumerate(pixels)]
    images[2] = tmp_path / "file.png"
    issame = [bool(k % 2) for k in range(12)]
    write_bin(tmp_path / "custom.bin", images, issame)
    stored, labels = read_bin(tmp_path / "custom.bin")
    assert labels.dtype == bool and labels.tolist() == issame
    assert stored[0] == images[0] and stored[2] == (tmp_path / "file.png").read_bytes()
    for k in (1, 2, 4):  # arrays and the PNG path decode losslessly
        np.testing.assert_array_equal(decode_image(stored[k], "x"), pixels[k])
    pair_set = load_protocol("bin", tmp_path / "custom.bin")
    assert pair_set.name == "custom" and pair_set.num_pairs == 12
    np.testing.assert_array_equal(pair_set.pairs, np.arange(24).reshape(12, 2))
    np.testing.assert_array_equal(pair_set.folds, [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert pair_set.describe_image(5) == f"image #5 of {tmp_path / 'custom.bin'}"


def python2_pickle(images: list[bytes], issame: list[bool]) -> bytes:
    """What Python 2's pickle protocol 2 writes for (list of str, list of bool)."""
    out = [b"\x80\x02]q\x00("]
    for image in images:
        out.append(b"T" + struct.pack("<I", len(image)) + image)  # BINSTRING: a py2 str
    out.append(b"e]q\x01(")
    out += [b"\x88" if value else b"\x89" for value in issame]
    out.append(b"e\x86q\x02.")
    return b"".join(out)


def test_python2_file_is_read_as_bytes(tmp_path):
    images = [encode(p, "JPEG") for p in random_images(20)]  # non-ASCII: needs encoding="bytes"
    issame = [True] * 5 + [False] * 5
    (tmp_path / "lfw.bin").write_bytes(python2_pickle(images, issame))
    stored, labels = read_bin(tmp_path / "lfw.bin")
    assert stored == images and labels.tolist() == issame


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("labels", ["array", "numpy-scalars", "ints"])
def test_numpy_and_python3_variants(tmp_path, protocol, labels):
    images = [encode(p, "PNG") for p in random_images(4)]
    issame = {"array": np.array([True, False]), "numpy-scalars": [np.bool_(True), np.bool_(False)],
              "ints": [1, 0]}[labels]
    (tmp_path / "x.bin").write_bytes(pickle.dumps((images, issame), protocol=protocol))
    stored, read = read_bin(tmp_path / "x.bin")
    assert stored == images and read.tolist() == [True, False]


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalExploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("exploit", [Exploit, EvalExploit])
@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_is_refused_without_running(tmp_path, exploit, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(([exploit(marker), b"x"], [True]), protocol=protocol)
    assert b"system" in payload or b"eval" in payload  # the payload names the dangerous call
    (tmp_path / "evil.bin").write_bytes(payload)
    with pytest.raises(DataError, match="is not a verification .bin pickle.*not allowed"):
        read_bin(tmp_path / "evil.bin")
    assert not marker.exists()


def test_codecs_encode_is_restricted_to_latin1(tmp_path):
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    (tmp_path / "codec.bin").write_bytes(payload)
    with pytest.raises(DataError, match="refusing _codecs.encode"):
        read_bin(tmp_path / "codec.bin")


@pytest.mark.parametrize(
    "content,match",
    [
        (b"not a pickle at all", "is not a verification .bin pickle"),
        (pickle.dumps({"images": []}), r"expected a pickled \(images, issame\) pair"),
        (pickle.dumps(([b"a", b"b", b"c"], [True])), "3 images for 1 pairs"),
        (pickle.dumps(([b"a", "text"], [True])), "not a list of encoded images"),
        (pickle.dumps(([b"a", b"b"], ["yes"])), "not a list of booleans"),
        (pickle.dumps(([b"a", b"b"], np.array([0.5]))), "dtype float64, expected bool"),
        (pickle.dumps(([b"a", b"b"], np.array([True], dtype=object))), "dtype object"),
        (b"", "is not a verification .bin pickle"),
    ],
)
def test_not_a_verification_pickle(tmp_path, content, match):
    (tmp_path / "bad.bin").write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_bin(tmp_path / "bad.bin")


def test_missing_file_and_count_errors(tmp_path):
    with pytest.raises(DataError, match="cannot read verification file"):
        read_bin(tmp_path / "nothing.bin")
    with pytest.raises(DataError, match="3 images for 1 pairs"):
        write_bin(tmp_path / "x.bin", [b"a", b"b", b"c"], [True])
    assert not (tmp_path / "x.bin").exists()
    write_bin(tmp_path / "small.bin", [b"a", b"b"], [True])
    with pytest.raises(DataError, match="10-fold evaluation needs at least 10"):
        load_protocol("bin", tmp_path / "small.bin")
