"""Validate safetensors headers with the rules of the reference ``safetensors`` crate.

A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON,
then the tensor buffer. The reference loader rejects each of these:

- N above 100,000,000, or past the end of the file;
- a header that is not UTF-8, does not start with ``{`` or is not valid JSON;
- an unknown dtype;
- offsets that are not contiguous from 0 or do not cover the buffer exactly;
- a span that differs from shape x dtype size, computed with u64 overflow checks.
 Duplicate JSON keys are rejected here as well, because
which duplicate wins differs between parsers.
"""

from __future__ import annotations

import json
import math
import struct
from typing import BinaryIO

from pytest_aiml.artifacts.findings import ArtifactFindings

MAX_HEADER_SIZE = 100_000_000
METADATA_KEY = "__metadata__"
U64_MAX = 2**64 - 1
# Size of one element in bits; sub-byte float formats pack several elements per byte.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64,
    "F64": 64, "I64": 64, "U64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


class _DuplicateKeyError(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def read_safetensors_header(file: BinaryIO, size: int, findings: ArtifactFindings, max_header_bytes: int) -> dict[str, object] | None:
    """Read and validate the header, adding each problem to ``findings.invalid``.

    Returns the parsed header when it is at least a JSON object, so that metadata
    and tensor names are available even when other fields are invalid.
    """
    file.seek(0)
    prefix = file.read(8)
    if len(prefix) < 8:
        findings.add_invalid(f"file is {size} bytes, shorter than the 8-byte header length")
        return None
    (header_length,) = struct.unpack("<Q", prefix)
    limit = min(MAX_HEADER_SIZE, max_header_bytes)
    if header_length > limit:
        findings.add_invalid(f"header length {header_length} exceeds the {limit}-byte limit")
        return None
    if header_length + 8 > size:
        findings.add_invalid(f"header length {header_length} runs past the end of the {size}-byte file")
        return None
    raw = file.read(header_length)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.add_invalid(f"header is not valid UTF-8: {exc}")
        return None
    if not text.startswith("{"):
        findings.add_invalid("header does not start with '{'")
        return None
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except _DuplicateKeyError as exc:
        findings.add_invalid(f"header has duplicate key {exc.args[0]!r}")
        return None
    except (ValueError, RecursionError) as exc:
        findings.add_invalid(f"header is not valid JSON: {exc}")
        return None
    if not isinstance(header, dict):
        findings.add_invalid("header is not a JSON object")
        return None
    _validate_header(header, size - 8 - header_length, findings)
    return header


def _validate_metadata(metadata: object, findings: ArtifactFindings) -> None:
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        findings.add_invalid("__metadata__ must map strings to strings")
        return
    findings.metadata.update(metadata)


def _tensor_span(name: str, info: object, findings: ArtifactFindings) -> tuple[int, int, int] | None:
    """Return (begin, end, expected byte count) of one tensor entry, or None when invalid."""
    if not isinstance(info, dict):
        findings.add_invalid(f"tensor {name!r}: entry is not an object")
        return None
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BITS:
        findings.add_invalid(f"tensor {name!r}: unknown dtype {dtype!r}")
        return None
    if not isinstance(shape, list) or not all(isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape):
        findings.add_invalid(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
        return None
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U64_MAX for value in offsets)
    ):
        findings.add_invalid(f"tensor {name!r}: data_offsets {offsets!r} is not two unsigned integers")
        return None
    elements = math.prod(shape)
    bits = elements * DTYPE_BITS[dtype]
    if elements > U64_MAX or bits > U64_MAX:
        findings.add_invalid(f"tensor {name!r}: shape {shape} overflows a 64-bit size")
        return None
    if bits % 8:
        findings.add_invalid(f"tensor {name!r}: {elements} elements of {dtype} do not fill whole bytes")
        return None
    return offsets[0], offsets[1], bits // 8


def _validate_header(header: dict[str, object], buffer_size: int, findings: ArtifactFindings) -> None:
    spans: list[tuple[int, int, int, str]] = []
    for name, info in header.items():
        if name == METADATA_KEY:
            _validate_metadata(info, findings)
            continue
        findings.strings.setdefault(name, None)
        span = _tensor_span(name, info, findings)
        if span is not None:
            spans.append((span[0], span[1], span[2], name))
    spans.sort()
    position = 0
    for begin, end, expected, name in spans:
        if begin != position or end < begin:
            findings.add_invalid(
                f"tensor {name!r}: data_offsets [{begin}, {end}] are not contiguous (expected start {position})"
            )
        elif end - begin != expected:
            findings.add_invalid(
                f"tensor {name!r}: span of {end - begin} bytes differs from shape x dtype size {expected}"
            )
        position = max(position, end)
    if position != buffer_size:
        findings.add_invalid(f"tensors cover {position} bytes but the data buffer holds {buffer_size}")
