"""NumPy ``.npy`` headers, and the pickle that follows them in object arrays.

The header is a Python dict literal, parsed with ``ast.literal_eval`` (which evaluates
no code). For dtypes that hold Python objects, ``np.save`` writes the array with
``pickle.dump`` after the header and ``np.load(allow_pickle=True)`` unpickles it, so
that part is walked as a required pickle stream.
"""

from __future__ import annotations

import ast
import math
import re
import struct
from dataclasses import dataclass

from pytest_aiml.artifacts.allowlist import GlobalAllowlist
from pytest_aiml.artifacts.byte_stream import ByteStream
from pytest_aiml.artifacts.findings import ArtifactFindings, record_pickle_scan
from pytest_aiml.artifacts.pickle_scan import scan_pickle_stream

NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 1 << 20
_TYPESTR = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)$")
_FIXED_KIND_SIZES = {"b": 1, "?": 1}


class NpyFormatError(Exception):
    """An invalid ``.npy`` header."""


@dataclass(frozen=True, slots=True)
class NpyHeader:
    """The parsed header; ``itemsize`` is None for dtypes whose size is not computed here."""

    version: tuple[int, int]
    descr: object
    fortran_order: bool
    shape: tuple[int, ...]
    has_objects: bool
    itemsize: int | None
    data_offset: int

    @property
    def data_bytes(self) -> int | None:
        if self.itemsize is None or self.has_objects:
            return None
        return math.prod(self.shape) * self.itemsize


def _descr_has_objects(descr: object) -> bool:
    if isinstance(descr, str):
        match = _TYPESTR.match(descr)
        return match is not None and match.group(1) == "O"
    if isinstance(descr, (list, tuple)):
        return any(_descr_has_objects(part) for part in descr)
    return False


def _descr_itemsize(descr: object) -> int | None:
    """Compute the size of simple typestrs (``<f4``, ``|b1``, ``<U10``); None for structured ones."""
    if not isinstance(descr, str):
        return None
    match = _TYPESTR.match(descr)
    if match is None:
        return None
    kind, digits = match.group(1), match.group(2)
    if digits:
        return int(digits) * (4 if kind == "U" else 1)
    return _FIXED_KIND_SIZES.get(kind)


def read_npy_header(stream: ByteStream) -> NpyHeader:
    """Read and validate a ``.npy`` header from the start of ``stream``."""
    preamble = stream.read(8)
    if len(preamble) < 8 or not preamble.startswith(NPY_MAGIC):
        raise NpyFormatError("missing the \\x93NUMPY magic string")
    major, minor = preamble[6], preamble[7]
    if major == 1:
        length_bytes, length_format = 2, "<H"
    elif major in (2, 3):
        length_bytes, length_format = 4, "<I"
    else:
        raise NpyFormatError(f"unsupported format version {major}.{minor}")
    raw_length = stream.read(length_bytes)
    if len(raw_length) < length_bytes:
        raise NpyFormatError("header length is truncated")
    (header_length,) = struct.unpack(length_format, raw_length)
    if header_length > MAX_HEADER_BYTES:
        raise NpyFormatError(f"header length {header_length} exceeds {MAX_HEADER_BYTES} bytes")
    raw_header = stream.read(header_length)
    if len(raw_header) < header_length:
        raise NpyFormatError("header is truncated")
    encoding = "utf-8" if major == 3 else "latin-1"
    try:
        header = ast.literal_eval(raw_header.decode(encoding))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise NpyFormatError(f"header is not a Python literal: {exc}") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise NpyFormatError(f"header must be a dict with descr, fortran_order and shape, got {header!r:.200}")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(size, int) and size >= 0 for size in shape):
        raise NpyFormatError(f"shape {shape!r} is not a tuple of non-negative integers")
    if not isinstance(header["fortran_order"], bool):
        raise NpyFormatError(f"fortran_order {header['fortran_order']!r} is not a bool")
    descr = header["descr"]
    return NpyHeader(
        version=(major, minor),
        descr=descr,
        fortran_order=header["fortran_order"],
        shape=shape,
        has_objects=_descr_has_objects(descr),
        itemsize=_descr_itemsize(descr),
        data_offset=8 + length_bytes + header_length,
    )


def scan_npy(
    stream: ByteStream,
    findings: ArtifactFindings,
    *,
    member: str | None,
    allowlist: GlobalAllowlist,
    max_opcodes: int,
    data_size: int | None,
) -> None:
    """Validate one ``.npy`` and walk its pickled object part, if any.

    ``data_size`` is the size of the whole ``.npy`` (file or zip member) when known,
    used to check that the data matches the declared shape.
    """
    where = f"member {member!r}" if member else "file"
    try:
        header = read_npy_header(stream)
    except NpyFormatError as exc:
        findings.add_invalid(f"{where}: invalid .npy header: {exc}")
        return
    findings.globals_seen.setdefault("numpy.ndarray", None)
    if header.has_objects:
        scan = scan_pickle_stream(stream, max_opcodes=max_opcodes)
        record_pickle_scan(findings, scan, member=member, allowlist=allowlist, required=True)
        return
    expected = header.data_bytes
    if expected is not None and data_size is not None and data_size - header.data_offset != expected:
        findings.add_invalid(
            f"{where}: holds {data_size - header.data_offset} data bytes but shape "
            f"{header.shape} of {header.descr!r} needs {expected}"
        )
