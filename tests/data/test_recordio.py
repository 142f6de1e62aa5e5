"""insightface RecordIO: hand-built bytes from the format description, and the writer's round trip."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from synface.data.recordio import (
    MAGIC,
    RecordIODataset,
    frame_record,
    read_framed,
    unpack_image_record,
    write_recordio,
)
from synface.errors import DataError


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")  # lossless, so pixels can be compared
    return buffer.getvalue()


def _record(data: bytes) -> bytes:
    """One whole record: magic, lrecord (flag 0 | length), data, zero padding to 4 bytes."""
    pad = (-len(data)) % 4
    return struct.pack("<II", 0xCED7230A, len(data)) + data + b"\0" * pad


def _hand_built(tmp_path, images):
    """An insightface-style set: record 0 header, image records 1..3, identity records 4..5."""
    header = struct.pack("<IfQQ", 2, 0.0, 0, 0) + struct.pack("<2f", 4.0, 6.0)
    records = {0: header}
    labels = [0, 0, 1]
    for key, (array, label) in enumerate(zip(images, labels), start=1):
        # Image 3 carries its label as a one-value array (flag 1), as some sets do.
        if key == 3:
            records[key] = struct.pack("<IfQQ", 1, 0.0, key, 0) + struct.pack("<f", label) + _png(array)
        else:
            records[key] = struct.pack("<IfQQ", 0, float(label), key, 0) + _png(array)
    records[4] = struct.pack("<IfQQ", 2, 0.0, 4, 0) + struct.pack("<2f", 1.0, 3.0)
    records[5] = struct.pack("<IfQQ", 2, 0.0, 5, 0) + struct.pack("<2f", 3.0, 4.0)
    blob, lines = b"", []
    for key in (0, 1, 2, 3, 4, 5):
        lines.append(f"{key}\t{len(blob)}")
        blob += _record(records[key])
    (tmp_path / "train.rec").write_bytes(blob)
    (tmp_path / "train.idx").write_text("\n".join(lines) + "\n")


def test_reader_on_hand_built_bytes(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (6, 5, 3), dtype=np.uint8) for _ in range(3)]
    _hand_built(tmp_path, images)
    dataset = RecordIODataset(tmp_path, image_size=(6, 5), fit="error")
    assert len(dataset) == 3 and dataset.num_classes == 2
    assert dataset.labels.tolist() == [0, 0, 1]
    for index, array in enumerate(images):
        image, targets, weights = dataset[index]
        assert torch.equal(image, torch.from_numpy(array).permute(2, 0, 1))
        assert targets.tolist() == [dataset.labels[index]] * 2 and weights.tolist() == [1.0, 0.0]


def test_reader_without_header_record_uses_all_keys(tmp_path):
    array = np.full((4, 4, 3), 7, np.uint8)
    blob = _record(struct.pack("<IfQQ", 0, 3.0, 0, 0) + _png(array))
    (tmp_path / "x.rec").write_bytes(blob + _record(struct.pack("<IfQQ", 0, 1.0, 1, 0) + _png(array)))
    (tmp_path / "x.idx").write_text(f"0\t0\n1\t{len(blob)}\n")
    dataset = RecordIODataset(tmp_path / "x", image_size=(4, 4))
    assert dataset.labels.tolist() == [3, 1] and dataset.num_classes == 4


def test_continuation_parts_are_joined_with_the_magic():
    magic = struct.pack("<I", MAGIC)
    data = b"abcd" + magic + b"efgh" + magic + b"xyz"
    expected = (
        struct.pack("<II", MAGIC, (1 << 29) | 4) + b"abcd"
        + struct.pack("<II", MAGIC, (2 << 29) | 4) + b"efgh"
        + struct.pack("<II", MAGIC, (3 << 29) | 3) + b"xyz\0"
    )
    assert frame_record(data) == expected
    record, end = read_framed(expected + _record(b"next"), 0)
    assert record == data and end == len(expected)
    # A magic at an unaligned position is ordinary data.
    unaligned = b"ab" + magic + b"c"
    assert frame_record(unaligned) == _record(unaligned)


def test_multi_value_labels_unpack():
    header, payload = unpack_image_record(struct.pack("<IfQQ", 3, 0.0, 9, 0) + struct.pack("<3f", 1, 2, 3) + b"img")
    assert header.flag == 3 and header.label == (1.0, 2.0, 3.0) and header.id == 9
    assert payload == b"img" and header.first_label == 1.0


def test_bad_magic_and_truncation_name_the_file(tmp_path):
    array = np.zeros((4, 4, 3), np.uint8)
    good = _record(struct.pack("<IfQQ", 0, 0.0, 0, 0) + _png(array))
    (tmp_path / "a.rec").write_bytes(b"\x01\x02\x03\x04" + good[4:])
    (tmp_path / "a.idx").write_text("0\t0\n")
    with pytest.raises(DataError, match=r"a\.rec record 0: bad magic 0x04030201"):
        RecordIODataset(tmp_path / "a", image_size=(4, 4))
    (tmp_path / "b.rec").write_bytes(good[:-12])
    (tmp_path / "b.idx").write_text("0\t0\n")
    with pytest.raises(DataError, match=r"b\.rec record 0: record at byte 0 needs"):
        RecordIODataset(tmp_path / "b", image_size=(4, 4))


def test_malformed_index_line_is_named(tmp_path):
    (tmp_path / "train.rec").write_bytes(b"")
    (tmp_path / "train.idx").write_text("0\t0\nbogus line\n")
    with pytest.raises(DataError, match="line 2"):
        RecordIODataset(tmp_path)


def test_undecodable_image_names_the_record(tmp_path):
    blob = _record(struct.pack("<IfQQ", 0, 0.0, 0, 0) + b"not an image at all")
    (tmp_path / "c.rec").write_bytes(blob)
    (tmp_path / "c.idx").write_text("0\t0\n")
    dataset = RecordIODataset(tmp_path / "c", image_size=(4, 4))
    with pytest.raises(DataError, match=r"c\.rec record 0: cannot decode image"):
        dataset[0]


def test_writer_round_trip_matches_hand_built_layout(tmp_path):
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, (6, 5, 3), dtype=np.uint8) for _ in range(5)]
    labels = [4, 4, 2, 2, 2]
    # PNG bytes pass through unchanged, so the round trip is exact.
    count = write_recordio(tmp_path / "train", [(_png(a), y) for a, y in zip(arrays, labels)])
    assert count == 5
    dataset = RecordIODataset(tmp_path, image_size=(6, 5), fit="error")
    assert dataset.labels.tolist() == labels
    for index, array in enumerate(arrays):
        assert torch.equal(dataset[index][0], torch.from_numpy(array).permute(2, 0, 1))
    header, _ = dataset.read(0)
    assert header.flag == 2 and header.label == (6.0, 8.0)
    assert dataset.read(6)[0].label == (1.0, 3.0) and dataset.read(7)[0].label == (3.0, 6.0)
    lines = (tmp_path / "train.idx").read_text().splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == list(range(8))


def test_writer_encodes_raw_arrays_and_refuses_split_labels(tmp_path):
    array = np.full((8, 8, 3), 120, np.uint8)
    write_recordio(tmp_path / "jpeg", [(array, 0), (torch.from_numpy(array).permute(2, 0, 1), 1)])
    dataset = RecordIODataset(tmp_path / "jpeg", image_size=(8, 8))
    assert (dataset[1][0].int() - 120).abs().max() <= 2  # JPEG of a flat image is near exact
    with pytest.raises(DataError, match="label 0 reappears"):
        write_recordio(tmp_path / "bad", [(array, 0), (array, 1), (array, 0)])
    assert not (tmp_path / "bad.rec").exists()


def test_arcface_crop_becomes_synface_crop_by_centre_columns(tmp_path):
    array = np.random.default_rng(2).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    write_recordio(tmp_path / "train", [(_png(array), 0)])
    dataset = RecordIODataset(tmp_path, image_size=(112, 96), fit="crop")
    assert torch.equal(dataset[0][0], torch.from_numpy(array[:, 8:104]).permute(2, 0, 1))


def test_index_with_sparse_unsorted_keys(tmp_path):
    from synface.data.recordio import read_index

    (tmp_path / "s.idx").write_text("9\t64\n5\t0\n12\t128\n")
    index = read_index(tmp_path / "s.idx")
    assert index.keys.tolist() == [5, 9, 12] and index[9] == 64 and index[12] == 128
    assert 5 in index and 6 not in index and 0 not in index
    with pytest.raises(KeyError):
        index[13]
