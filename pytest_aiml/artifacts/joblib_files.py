"""joblib's pickle layout: array data inside the stream, and whole-file compression.

``joblib.dump`` pickles each NumPy array as a ``NumpyArrayWrapper`` and writes the
array's raw bytes straight after the wrapper's ``BUILD`` opcode. joblib's unpickler
reads them there, so a plain opcode walk would stumble into the data. The layout
(joblib 1.2 to 1.5): an optional padding-length byte plus that many padding bytes
when the wrapper's state has ``numpy_array_alignment_bytes``, then
``prod(shape) * itemsize`` bytes. Object arrays are a complete nested pickle instead.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import re
import zlib
from typing import BinaryIO

from pytest_aiml.artifacts.byte_stream import CHUNK_SIZE, ByteStream, FileObjectStream
from pytest_aiml.artifacts.pickle_scan import ArrayPayload, PickledObject

WRAPPER_CLASS = "joblib.numpy_pickle.NumpyArrayWrapper"
_DTYPE_STRING = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)")

# joblib recognises compressed files by these prefixes (joblib/compressor.py).
COMPRESSION_PREFIXES = (
    (b"ZF", "zlib-legacy"),
    (b"\x1f\x8b", "gzip"),
    (b"BZ", "bz2"),
    (b"\xfd7zXZ", "xz"),
    (b"\x5d\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x78", "zlib"),
)


class UnsupportedCompression(Exception):
    """The file uses a compression that the standard library cannot read (lz4)."""


def detect_compression(head: bytes) -> str | None:
    """Name joblib's compression from the file's first bytes, or None for plain pickles."""
    for prefix, name in COMPRESSION_PREFIXES:
        if head.startswith(prefix):
            return name
    return None


def _dtype_itemsize(dtype: object) -> tuple[int, bool] | None:
    """Return (itemsize, has_objects) of a pickled ``numpy.dtype``, or None if unknown."""
    if not isinstance(dtype, PickledObject) or dtype.callable_name != "numpy.dtype":
        return None
    args = dtype.args
    if not isinstance(args, tuple) or not args or not isinstance(args[0], str):
        return None
    match = _DTYPE_STRING.match(args[0])
    if match is None:
        return None
    kind, digits = match.group(1), match.group(2)
    state = dtype.state
    # The pickled state is (version, byteorder, subarray, names, fields, elsize, alignment, flags).
    declared_size = state[5] if isinstance(state, tuple) and len(state) >= 8 else -1
    flags = state[7] if isinstance(state, tuple) and len(state) >= 8 else 0
    has_objects = kind == "O" or (isinstance(flags, int) and bool(flags & 1))
    if isinstance(declared_size, int) and declared_size > 0:
        return declared_size, has_objects
    if digits:
        size = int(digits)
        return (size * 4 if kind == "U" else size), has_objects
    if kind in ("b", "B", "?"):
        return 1, has_objects
    return None


def joblib_array_payload(obj: PickledObject) -> ArrayPayload | None:
    """Describe the raw bytes joblib reads after ``BUILD`` on a ``NumpyArrayWrapper``.

    Returns None for other objects. Raises ``ValueError`` when the wrapper's state is
    not literal enough to know the byte count, so the stream is reported as unscannable.
    """
    if obj.callable_name != WRAPPER_CLASS:
        return None
    state = obj.state
    if not isinstance(state, dict):
        raise ValueError("NumpyArrayWrapper state is not a literal dict")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(size, int) and size >= 0 for size in shape):
        raise ValueError(f"NumpyArrayWrapper shape {shape!r} is not a tuple of sizes")
    dtype_info = _dtype_itemsize(state.get("dtype"))
    if dtype_info is None:
        raise ValueError("NumpyArrayWrapper dtype cannot be resolved")
    itemsize, has_objects = dtype_info
    if has_objects:
        return ArrayPayload(padding_prefix=False, byte_count=0, nested_pickle=True)
    padding = state.get("numpy_array_alignment_bytes") is not None
    return ArrayPayload(padding_prefix=padding, byte_count=math.prod(shape) * itemsize, nested_pickle=False)


class _ZlibFile:
    """Minimal readable file over a zlib stream, for ``FileObjectStream``."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._inflater = zlib.decompressobj()
        self._buffer = b""

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size and not self._inflater.eof:
            pending = self._inflater.unconsumed_tail or self._file.read(CHUNK_SIZE)
            if not pending:
                break
            self._buffer += self._inflater.decompress(pending, CHUNK_SIZE)
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        return chunk


def open_decompressed(file: BinaryIO, compression: str, max_output_bytes: int) -> ByteStream:
    """Open the decompressed content of a joblib-compressed file as a stream.

    Raises ``UnsupportedCompression`` for lz4 and the pre-0.9.3 "ZF" format.
    """
    file.seek(0)
    if compression == "gzip":
        reader: object = gzip.GzipFile(fileobj=file, mode="rb")
    elif compression == "bz2":
        reader = bz2.BZ2File(file, mode="rb")
    elif compression in ("xz", "lzma"):
        reader = lzma.LZMAFile(file, mode="rb")
    elif compression == "zlib":
        reader = _ZlibFile(file)
    else:
        raise UnsupportedCompression(
            f"{compression} compression is not supported by the scanner"
        )
    return FileObjectStream(reader, max_output_bytes)  # type: ignore[arg-type]
