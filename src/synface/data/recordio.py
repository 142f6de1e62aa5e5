"""Read and write insightface ``train.rec`` / ``train.idx`` face datasets without MXNet.

File format (dmlc RecordIO as MXNet writes it), all integers little-endian:

* A record is ``magic (u32 0xced7230a) | lrecord (u32) | data | zero padding`` to a
  multiple of 4 bytes. ``lrecord`` holds the data length in its low 29 bits and a
  continuation flag in its top 3 bits: 0 a whole record; 1, 2, 3 the first,
  middle and last part of a record whose data contained the magic number at a
  4-byte-aligned position; the parts are joined with the magic bytes between them.
* The ``.idx`` file has one ``key<TAB>byte offset`` line per record.
* A record's data starts with an image-record header ``(flag u32, label f32, id u64,
  id2 u64)`` (24 bytes). With ``flag > 0`` the label is instead ``flag`` float32
  values that follow the header. The encoded image (JPEG or PNG) comes after.
* insightface datasets put a header record at key 0 with ``flag > 0`` and label
  ``(first identity key, end identity key)``: image records are keys
  ``1 .. first identity key - 1`` and each identity record (keys ``first .. end - 1``)
  carries the range ``[start key, end key)`` of that identity's images as its label.
"""

from __future__ import annotations

import io
import logging
import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from synface.data.base import LabelledImageDataset
from synface.errors import DataError
from synface.io import atomic_open

logger = logging.getLogger(__name__)

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_BITS = 29
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
_IR_FORMAT = "<IfQQ"
_IR_SIZE = struct.calcsize(_IR_FORMAT)  # 24
_EXACT_FLOAT32 = 1 << 24  # integers above this are not exact in float32


@dataclass(frozen=True)
class IRHeader:
    """The image-record header: ``label`` is a tuple when the record carries several values."""

    flag: int
    label: float | tuple[float, ...]
    id: int
    id2: int = 0

    @property
    def first_label(self) -> float:
        """The scalar label, or the first of several."""
        return self.label[0] if isinstance(self.label, tuple) else self.label


# -- framing -------------------------------------------------------------------------------
def _aligned(length: int) -> int:
    return (length + 3) & ~3


def frame_record(data: bytes) -> bytes:
    """Frame one record's data as RecordIO bytes (splitting it where it holds the magic number)."""
    parts: list[bytes] = []
    start = 0
    for position in range(0, len(data) - len(data) % 4, 4):
        if data[position:position + 4] == _MAGIC_BYTES:
            flag = 1 if start == 0 else 2
            parts.append(struct.pack("<II", MAGIC, (flag << _LENGTH_BITS) | (position - start)))
            parts.append(data[start:position])
            start = position + 4
    flag = 3 if start else 0
    tail = data[start:]
    if len(tail) > _LENGTH_MASK:
        raise DataError(f"record of {len(data)} bytes is too large for RecordIO (max {_LENGTH_MASK})")
    parts.append(struct.pack("<II", MAGIC, (flag << _LENGTH_BITS) | len(tail)))
    parts.append(tail + b"\0" * (_aligned(len(tail)) - len(tail)))
    return b"".join(parts)


def read_framed(buffer: Any, offset: int, source: str = "RecordIO") -> tuple[bytes, int]:
    """Read the record starting at ``offset`` of ``buffer`` (bytes or mmap).

    Returns:
        (record data, offset just past the record).

    Raises:
        DataError: a bad magic number, a bad continuation flag or a truncated record.
    """
    pieces: list[bytes] = []
    size = len(buffer)
    while True:
        if offset + 8 > size:
            raise DataError(f"{source}: truncated record header at byte {offset} (file has {size} bytes)")
        magic, lrecord = struct.unpack_from("<II", buffer, offset)
        if magic != MAGIC:
            raise DataError(f"{source}: bad magic 0x{magic:08x} at byte {offset}, expected 0x{MAGIC:08x}")
        flag, length = lrecord >> _LENGTH_BITS, lrecord & _LENGTH_MASK
        start = offset + 8
        if start + length > size:
            raise DataError(f"{source}: record at byte {offset} needs {length} bytes, file ends at {size}")
        expected = (0, 1) if not pieces else (2, 3)
        if flag not in expected:
            raise DataError(f"{source}: continuation flag {flag} at byte {offset}, expected one of {expected}")
        pieces.append(bytes(buffer[start:start + length]))
        offset = start + _aligned(length)
        if flag in (0, 3):
            return _MAGIC_BYTES.join(pieces), offset


# -- image-record header -----------------------------------------------------------------------
def pack_image_record(label: float | Iterable[float], payload: bytes, record_id: int = 0, id2: int = 0) -> bytes:
    """Prefix ``payload`` with an image-record header (``flag`` = number of labels when several)."""
    if isinstance(label, (int, float, np.integer, np.floating)):
        return struct.pack(_IR_FORMAT, 0, float(label), record_id, id2) + payload
    values = np.asarray(list(label), dtype="<f4")
    return struct.pack(_IR_FORMAT, len(values), 0.0, record_id, id2) + values.tobytes() + payload


def unpack_image_record(record: bytes, source: str = "record") -> tuple[IRHeader, bytes]:
    """Split a record into its header and the encoded image bytes.

    Raises:
        DataError: the record is shorter than its header says.
    """
    if len(record) < _IR_SIZE:
        raise DataError(f"{source}: {len(record)} bytes, shorter than the {_IR_SIZE}-byte record header")
    flag, label, record_id, id2 = struct.unpack_from(_IR_FORMAT, record, 0)
    payload_start = _IR_SIZE
    if flag > 0:
        payload_start += 4 * flag
        if len(record) < payload_start:
            raise DataError(f"{source}: header announces {flag} labels but the record ends first")
        label = tuple(float(v) for v in np.frombuffer(record, dtype="<f4", count=flag, offset=_IR_SIZE))
    return IRHeader(flag, label, record_id, id2), record[payload_start:]


class RecordIndex:
    """The ``.idx`` table as arrays (millions of records cost two int64 arrays, not a dict).

    Attributes:
        keys: (R,) sorted record keys.
        offsets: (R,) byte offset of each key's record.
    """

    def __init__(self, keys: np.ndarray, offsets: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self.keys, self.offsets = keys[order], offsets[order]
        self._dense = len(keys) > 0 and bool(np.array_equal(self.keys, np.arange(len(keys))))

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: int) -> bool:
        return self._position(key) >= 0

    def __getitem__(self, key: int) -> int:
        position = self._position(key)
        if position < 0:
            raise KeyError(key)
        return int(self.offsets[position])

    def _position(self, key: int) -> int:
        if self._dense:
            return key if 0 <= key < len(self.keys) else -1
        position = int(np.searchsorted(self.keys, key))
        return position if position < len(self.keys) and self.keys[position] == key else -1


def read_index(path: Path) -> RecordIndex:
    """Parse a ``.idx`` file (``key<TAB>offset`` per line).

    Raises:
        DataError: missing file or a malformed line (named with its number).
    """
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise DataError(f"{path}: RecordIO index not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read RecordIO index ({error})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        # Fast path for millions of lines: whitespace-separated integers, two per line.
        values = np.fromstring(text, dtype=np.int64, sep=" ") if text.strip() else np.zeros(0, np.int64)
        well_formed = len(values) == 2 * len(lines)
    except ValueError:
        well_formed = False
    if not well_formed:
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split("\t")
            if line.strip() and (len(fields) != 2 or not all(f.strip().lstrip("-").isdigit() for f in fields)):
                raise DataError(f"{path}: line {number} is {line!r}, expected 'key<TAB>offset'")
        raise DataError(f"{path}: malformed RecordIO index")
    pairs = values.reshape(-1, 2)
    return RecordIndex(pairs[:, 0].copy(), pairs[:, 1].copy())


# -- the dataset -----------------------------------------------------------------------------------
class RecordIODataset(LabelledImageDataset):
    """An insightface RecordIO face dataset (``train.rec`` + ``train.idx``).

    Args:
        path: the folder holding ``train.rec``/``train.idx``, or a path prefix
            (``data/faces`` for ``data/faces.rec`` + ``data/faces.idx``).
        image_size: expected (height, width); insightface sets are 112x112.
        fit: how other sizes are handled (see :func:`synface.data.base.prepare_image`);
            ``crop`` turns 112x112 ArcFace crops into exact 112x96 SynFace crops.

    Raises:
        DataError: missing files, a malformed index, or a corrupt header record.
    """

    def __init__(self, path: str | Path, image_size: tuple[int, int] = (112, 112), fit: str = "crop") -> None:
        path = Path(path)
        prefix = path / "train" if path.is_dir() else path
        self.rec_path = prefix.with_name(prefix.name + ".rec")
        self.idx_path = prefix.with_name(prefix.name + ".idx")
        if not self.rec_path.is_file():
            raise DataError(f"{self.rec_path}: RecordIO file not found")
        self.offsets = read_index(self.idx_path)
        self.image_size = image_size
        self.fit = fit
        self._buffer: mmap.mmap | None = None
        self.keys, self.labels = self._scan_labels()
        self.identity_names = [str(c) for c in range(int(self.labels.max(initial=-1)) + 1)]
        logger.info("%s: %d images of %d identities", self.rec_path, len(self.keys), self.num_classes)

    def _scan_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Image keys and their class labels, from the identity records when present."""
        if 0 not in self.offsets or self.read(0)[0].flag <= 0:
            return self.offsets.keys, self._labels_of(self.offsets.keys)
        header, _ = self.read(0)
        if not isinstance(header.label, tuple) or len(header.label) < 2:
            raise DataError(f"{self.rec_path}: header record 0 has label {header.label!r}, expected 2 values")
        first_identity, end_identity = int(header.label[0]), int(header.label[1])
        keys = np.arange(1, first_identity, dtype=np.int64)
        labels = np.full(len(keys), -1, dtype=np.int64)
        for identity_key in range(first_identity, end_identity):
            identity, _ = self.read(identity_key)
            if not isinstance(identity.label, tuple) or len(identity.label) < 2:
                raise DataError(f"{self.rec_path}: identity record {identity_key} has label {identity.label!r}")
            start, end = int(identity.label[0]), int(identity.label[1])
            if not 1 <= start <= end <= first_identity:
                raise DataError(f"{self.rec_path}: identity record {identity_key} has range [{start}, {end}) "
                                f"outside image keys 1..{first_identity - 1}")
            if end > start:
                # An identity record asserts its images share one class: read the first one's.
                labels[start - 1:end - 1] = int(self.read(start)[0].first_label)
        if (labels < 0).any():
            missing = int(keys[np.argmax(labels < 0)])
            raise DataError(f"{self.rec_path}: image key {missing} lies in no identity record's range")
        return keys, labels

    def _labels_of(self, keys: np.ndarray) -> np.ndarray:
        return np.asarray([int(self.read(int(k))[0].first_label) for k in keys], dtype=np.int64)

    def read(self, key: int) -> tuple[IRHeader, bytes]:
        """Header and payload of the record with ``key``.

        Raises:
            DataError: unknown key or a corrupt record.
        """
        if self._buffer is None:
            with self.rec_path.open("rb") as handle:
                self._buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        if key not in self.offsets:
            raise DataError(f"{self.idx_path}: no record with key {key}")
        source = f"{self.rec_path} record {key}"
        record, _ = read_framed(self._buffer, self.offsets[key], source)
        return unpack_image_record(record, source)

    def describe(self, index: int) -> str:
        return f"{self.rec_path} record {int(self.keys[index])}"

    def load_image(self, index: int) -> Image.Image:
        key = int(self.keys[index])
        header, payload = self.read(key)
        if int(header.first_label) != self.labels[index]:
            raise DataError(f"{self.describe(index)}: label {header.first_label} disagrees with "
                            f"its identity record ({self.labels[index]})")
        try:
            image = Image.open(io.BytesIO(payload))
            image.load()
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"{self.describe(index)}: cannot decode image ({error})") from None
        return image

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_buffer"] = None
        return state


# -- writing ----------------------------------------------------------------------------------------
def encode_image(image: np.ndarray | torch.Tensor | bytes, quality: int = 95) -> bytes:
    """JPEG bytes of a uint8 image ((H, W, 3) array or (3, H, W) tensor); bytes pass through."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_recordio(
    path_prefix: str | Path,
    samples: Iterable[tuple[np.ndarray | torch.Tensor | bytes, int]],
    quality: int = 95,
) -> int:
    """Write ``(image, label)`` samples as an insightface RecordIO set (``.rec`` + ``.idx``).

    Images of one label must come together (insightface's identity records are
    ranges); labels need not be consecutive numbers. Both files appear atomically.

    Args:
        path_prefix: ``out/train`` writes ``out/train.rec`` and ``out/train.idx``.
        samples: (image, class label) pairs; images as uint8 (H, W, 3) arrays,
            (3, H, W) tensors or already encoded bytes.
        quality: JPEG quality for raw images.

    Returns:
        The number of images written.

    Raises:
        DataError: a label reappears after other labels.
    """
    prefix = Path(path_prefix)
    rec_path = prefix.with_name(prefix.name + ".rec")
    idx_path = prefix.with_name(prefix.name + ".idx")
    index_lines: list[str] = []
    ranges: list[tuple[int, int]] = []
    seen: set[int] = set()
    key = 1
    with atomic_open(rec_path) as handle:
        # Record 0 has a fixed size (24 + 2 x 4 bytes); its final values are written last.
        placeholder = frame_record(pack_image_record((0.0, 0.0), b""))
        handle.write(placeholder)
        index_lines.append("0\t0")
        position = len(placeholder)
        current = None
        for image, label in samples:
            label = int(label)
            if not 0 <= label < _EXACT_FLOAT32:
                raise DataError(f"{rec_path}: label {label} is outside 0..{_EXACT_FLOAT32 - 1} "
                                "(RecordIO stores labels as float32)")
            if label != current:
                if label in seen:
                    raise DataError(f"{rec_path}: label {label} reappears after other labels; "
                                    "group each identity's images together")
                seen.add(label)
                ranges.append((key, key))
                current = label
            framed = frame_record(pack_image_record(float(label), encode_image(image, quality), key))
            handle.write(framed)
            index_lines.append(f"{key}\t{position}")
            position += len(framed)
            ranges[-1] = (ranges[-1][0], key + 1)
            key += 1
        first_identity = key
        for start, end in ranges:
            framed = frame_record(pack_image_record((float(start), float(end)), b"", key))
            handle.write(framed)
            index_lines.append(f"{key}\t{position}")
            position += len(framed)
            key += 1
        handle.seek(0)
        header = frame_record(pack_image_record((float(first_identity), float(key)), b""))
        assert len(header) == len(placeholder)
        handle.write(header)
    with atomic_open(idx_path) as handle:
        handle.write(("\n".join(index_lines) + "\n").encode("ascii"))
    return first_identity - 1
