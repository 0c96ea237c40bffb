"""Dispatch an artifact to the readers of its format and collect their findings."""

from __future__ import annotations

import logging
import lzma
import zlib
from pathlib import Path
from typing import BinaryIO

from pytest_aiml.artifacts import sniff
from pytest_aiml.artifacts.byte_stream import FileSlice, StreamLimitError
from pytest_aiml.artifacts.findings import ArtifactFindings, ReadOptions, record_pickle_scan
from pytest_aiml.artifacts.joblib_files import (
    UnsupportedCompression,
    detect_compression,
    joblib_array_payload,
    open_decompressed,
)
from pytest_aiml.artifacts.keras_check import check_hdf5, parse_keras_config
from pytest_aiml.artifacts.numpy_files import scan_npy
from pytest_aiml.artifacts.onnx_check import check_onnx
from pytest_aiml.artifacts.onnx_proto import OnnxProtoError, OnnxTopLevel, read_onnx_top_level
from pytest_aiml.artifacts.pickle_scan import scan_pickle_sequence
from pytest_aiml.artifacts.safetensors_check import read_safetensors_header
from pytest_aiml.artifacts.torch_files import scan_legacy_torch
from pytest_aiml.artifacts.zip_scan import list_members, scan_zip_members
from pytest_aiml.artifacts.zipread import ZipMember, ZipReadError

logger = logging.getLogger("pytest_aiml.artifacts")

# Formats with no reader here: their safety is "unscannable" by definition.
UNSUPPORTED_FORMATS = {
    sniff.SEVEN_ZIP: "7z archives are not unpacked",
    sniff.TAR: "tar archives are not unpacked",
    sniff.GGUF: "GGUF files (which can hold chat templates) are not inspected",
    sniff.TFLITE: "TensorFlow Lite flatbuffers are not inspected",
    sniff.TENSORFLOW_PB: "TensorFlow protobuf graphs are not inspected",
}


def read_pickle_file(file: BinaryIO, size: int, findings: ArtifactFindings, options: ReadOptions) -> None:
    """Walk a raw or joblib pickle file, decompressing joblib's whole-file compression."""
    compression = detect_compression(file.read(8))
    if compression is not None:
        try:
            stream = open_decompressed(file, compression, options.max_output_bytes)
        except UnsupportedCompression as exc:
            findings.add_unscannable(str(exc))
            return
        findings.notes.append(f"{compression}-compressed")
    else:
        stream = FileSlice(file, 0, size, size)
    scans = scan_pickle_sequence(stream, max_opcodes=options.max_opcodes, array_payload=joblib_array_payload)
    for index, scan in enumerate(scans):
        record_pickle_scan(findings, scan, member=None, allowlist=options.allowlist, required=index == 0)
    if compression is None and any(scan.array_payloads for scan in scans):
        # pickle.load does not skip joblib's inline array bytes, so they are walked as
        # plain opcodes too. A file then cannot hide a payload from either loader.
        plain = scan_pickle_sequence(FileSlice(file, 0, size, size), max_opcodes=options.max_opcodes, primary_count=0)
        for scan in plain:
            record_pickle_scan(findings, scan, member=None, allowlist=options.allowlist, required=False)


def read_zip_artifact(
    file: BinaryIO, size: int, format_name: str, findings: ArtifactFindings, options: ReadOptions
) -> None:
    """Scan every member of a zip-based artifact; ``.keras`` configs are walked as well."""
    try:
        members = list_members(file, size, options)
    except ZipReadError as exc:
        findings.add_unscannable(str(exc))
        return
    text_members = {}
    if format_name == sniff.KERAS_ZIP:

        def read_config(member: ZipMember, data: bytes) -> None:
            parse_keras_config(data, f"member {member.name!r}", findings)

        text_members["config.json"] = read_config
        if "config.json" not in [member.name for member in members]:
            findings.add_invalid("config.json is missing")
    scan_zip_members(file, size, members, findings, options, text_members=text_members)
    if format_name in (sniff.TORCH_ZIP, sniff.TORCHSCRIPT) and not any(
        member.name.endswith("data.pkl") for member in members
    ):
        findings.add_invalid("data.pkl is missing")


def read_onnx_metadata(file: BinaryIO, size: int, findings: ArtifactFindings) -> OnnxTopLevel | None:
    """Read ``model_version`` and ``metadata_props`` without onnx; None when malformed."""
    try:
        top_level = read_onnx_top_level(file, size)
    except OnnxProtoError as exc:
        findings.add_invalid(f"not a well-formed ONNX model: {exc}")
        return None
    findings.metadata.update(top_level.metadata)
    return top_level


def read_artifact(
    path: Path, format_name: str, size: int, findings: ArtifactFindings, options: ReadOptions, *, run_onnx_checker: bool
) -> OnnxTopLevel | None:
    """Run the readers of ``format_name`` over the file; returns ONNX top-level facts for ONNX.

    Decompression failures and unreadable files end up in ``findings.unscannable``.
    """
    onnx_top_level = None
    try:
        with path.open("rb") as file:
            if format_name in (sniff.PICKLE, sniff.JOBLIB):
                read_pickle_file(file, size, findings, options)
            elif format_name == sniff.TORCH_LEGACY:
                scan_legacy_torch(file, size, findings, options)
            elif format_name in (sniff.TORCH_ZIP, sniff.TORCHSCRIPT, sniff.NPZ, sniff.KERAS_ZIP, sniff.ZIP):
                read_zip_artifact(file, size, format_name, findings, options)
            elif format_name == sniff.NPY:
                scan_npy(
                    FileSlice(file, 0, size, size),
                    findings,
                    member=None,
                    allowlist=options.allowlist,
                    max_opcodes=options.max_opcodes,
                    data_size=size,
                )
            elif format_name == sniff.SAFETENSORS:
                read_safetensors_header(file, size, findings, options.max_config_bytes)
            elif format_name == sniff.ONNX:
                onnx_top_level = read_onnx_metadata(file, size, findings)
        if format_name == sniff.ONNX:
            check_onnx(path, findings, run_checker=run_onnx_checker)
        elif format_name == sniff.HDF5:
            check_hdf5(path, findings)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, StreamLimitError) as exc:
        logger.debug("reading %s failed: %s", path, exc)
        findings.add_unscannable(f"the file cannot be read completely: {exc}")
    return onnx_top_level
