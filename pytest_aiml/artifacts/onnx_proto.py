"""Read the top-level fields of an ONNX ``ModelProto`` without importing onnx.

Protobuf has no magic number, so sniffing walks the top-level fields. Every tag must
be a ``ModelProto`` field with its declared wire type and lengths must stay inside
the file. The walk must end exactly at the end of the file, with a graph present.
Length-delimited fields are skipped by seeking, so the graph and its weights are
never read here. The same walk yields ``model_version``, ``producer_name`` and
``metadata_props`` for versioning and the inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

_VARINT = 0
_LENGTH_DELIMITED = 2
# ModelProto field numbers (onnx.proto3) and their wire types.
_MODEL_FIELDS = {
    1: _VARINT,  # ir_version
    2: _LENGTH_DELIMITED,  # producer_name
    3: _LENGTH_DELIMITED,  # producer_version
    4: _LENGTH_DELIMITED,  # domain
    5: _VARINT,  # model_version
    6: _LENGTH_DELIMITED,  # doc_string
    7: _LENGTH_DELIMITED,  # graph
    8: _LENGTH_DELIMITED,  # opset_import
    14: _LENGTH_DELIMITED,  # metadata_props
    20: _LENGTH_DELIMITED,  # training_info
    25: _LENGTH_DELIMITED,  # functions
    26: _LENGTH_DELIMITED,  # configuration
}
_MAX_TOP_LEVEL_FIELDS = 1_000_000
_MAX_SMALL_FIELD = 1 << 20


class OnnxProtoError(Exception):
    """The bytes are not a well-formed ``ModelProto`` at the top level."""


@dataclass(frozen=True, slots=True)
class OnnxTopLevel:
    """Top-level facts of an ONNX model, read without onnx."""

    ir_version: int | None
    model_version: int | None
    producer_name: str | None
    has_graph: bool
    metadata: dict[str, str] = field(default_factory=dict)


def _read_varint(file: BinaryIO) -> int:
    result = 0
    for shift in range(0, 70, 7):
        byte = file.read(1)
        if not byte:
            raise OnnxProtoError("varint runs past the end of the file")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
    raise OnnxProtoError("varint longer than 10 bytes")


def _parse_string_entry(data: bytes) -> tuple[str, str]:
    """Parse a ``StringStringEntryProto`` (key = 1, value = 2)."""
    values = {1: "", 2: ""}
    position = 0
    while position < len(data):
        tag = data[position]
        position += 1
        if tag & 7 != _LENGTH_DELIMITED or (tag >> 3) not in values:
            raise OnnxProtoError("metadata_props entry has an unexpected field")
        length, shift = 0, 0
        while True:
            if position >= len(data) or shift > 63:
                raise OnnxProtoError("metadata_props entry is truncated")
            byte = data[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if position + length > len(data):
            raise OnnxProtoError("metadata_props entry is truncated")
        values[tag >> 3] = data[position : position + length].decode("utf-8", errors="replace")
        position += length
    return values[1], values[2]


def read_onnx_top_level(file: BinaryIO, size: int) -> OnnxTopLevel:
    """Walk the top-level fields; raise ``OnnxProtoError`` when they are not a ``ModelProto``."""
    file.seek(0)
    values: dict[str, object] = {"ir_version": None, "model_version": None, "producer_name": None}
    metadata: dict[str, str] = {}
    has_graph = False
    for _ in range(_MAX_TOP_LEVEL_FIELDS):
        position = file.tell()
        if position == size:
            break
        tag = _read_varint(file)
        number, wire_type = tag >> 3, tag & 7
        if _MODEL_FIELDS.get(number) != wire_type:
            raise OnnxProtoError(f"byte {position}: field {number} with wire type {wire_type} is not in ModelProto")
        value = _read_varint(file)
        if wire_type == _VARINT:
            values["ir_version" if number == 1 else "model_version"] = value
            continue
        end = file.tell() + value
        if end > size:
            raise OnnxProtoError(f"byte {position}: field {number} runs past the end of the file")
        if number == 7:
            has_graph = True
        if number in (2, 14) and value <= _MAX_SMALL_FIELD:
            data = file.read(value)
            if number == 2:
                values["producer_name"] = data.decode("utf-8", errors="replace")
            else:
                key, text = _parse_string_entry(data)
                metadata[key] = text
        file.seek(end)
    else:
        raise OnnxProtoError(f"more than {_MAX_TOP_LEVEL_FIELDS} top-level fields")
    return OnnxTopLevel(
        ir_version=values["ir_version"],  # type: ignore[arg-type]
        model_version=values["model_version"],  # type: ignore[arg-type]
        producer_name=values["producer_name"],  # type: ignore[arg-type]
        has_graph=has_graph,
        metadata=metadata,
    )
