"""Property tests: random and mutated bytes never crash or hang a reader.

Every result must be a verdict (pass, fail, skip) or "unscannable"; no exception may
escape and no payload may run.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_aiml.artifacts.byte_stream import BytesStream, StreamLimitError
from pytest_aiml.artifacts.findings import ArtifactFindings
from pytest_aiml.artifacts.inspect import inspect_artifact
from pytest_aiml.artifacts.keras_check import parse_keras_config
from pytest_aiml.artifacts.numpy_files import NpyFormatError, read_npy_header
from pytest_aiml.artifacts.onnx_proto import OnnxProtoError, read_onnx_top_level
from pytest_aiml.artifacts.pickle_scan import scan_pickle_stream
from pytest_aiml.artifacts.results import STATUSES
from pytest_aiml.artifacts.sniff import FORMATS, sniff_format
from pytest_aiml.artifacts.zipread import ZipReadError, open_member, read_zip_members

FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def seed_artifacts() -> dict[str, bytes]:
    """Small valid artifacts of each family, the starting points for mutation."""
    npy = io.BytesIO()
    np.save(npy, np.arange(6, dtype=np.float32))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
        handle.writestr("archive/data/0", b"\0" * 16)
    header = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    return {
        "model.pkl": pickle.dumps({"layers": [1, 2, (3, "x")], "name": "m"}, protocol=4),
        "model0.pkl": pickle.dumps({"a": [1, "b"]}, protocol=0),
        "array.npy": npy.getvalue(),
        "model.pt": archive.getvalue(),
        "model.safetensors": struct.pack("<Q", len(header)) + header + b"\0" * 8,
        "model.onnx": b"\x08\x08\x12\x04test\x3a\x04\x0a\x02\x08\x01",
    }


SEEDS = seed_artifacts()


@st.composite
def mutated_artifact(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[position:]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[position : position + draw(st.integers(1, 16))]
    return name, bytes(data)


def assert_verdicts(path: Path, root: Path) -> None:
    result = inspect_artifact(path, path.name, root=root, repo_files=[path.name])
    assert result.format in FORMATS
    for check in result.checks.values():
        assert check.status in STATUSES


@FUZZ
@given(artifact=mutated_artifact())
def test_mutated_artifacts_give_verdicts(tmp_path: Path, marker: Path, artifact: tuple[str, bytes]) -> None:
    name, data = artifact
    path = tmp_path / name
    path.write_bytes(data)
    assert_verdicts(path, tmp_path)


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".pkl", ".pt", ".npy", ".safetensors", ".onnx", ".keras", ".joblib", ".bin"]))
def test_random_bytes_give_verdicts(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    assert sniff_format(path) in FORMATS
    assert_verdicts(path, tmp_path)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_pickle_walker_never_raises(data: bytes) -> None:
    for speculative in (False, True):
        scan = scan_pickle_stream(BytesStream(data), speculative=speculative, max_opcodes=100_000)
        assert scan.complete or scan.error


@FUZZ
@given(data=st.binary(max_size=4096))
def test_zip_reader_raises_only_zip_errors(data: bytes) -> None:
    file = io.BytesIO(b"PK\x03\x04" + data)
    try:
        members = read_zip_members(file, len(data) + 4, max_members=100)
        for member in members:
            stream, _notes = open_member(file, len(data) + 4, member, max_output_bytes=1 << 20)
            stream.read(1 << 16)
    except (ZipReadError, zlib.error, StreamLimitError):
        # The scanner turns each of these into an "unscannable" member.
        pass


@FUZZ
@given(data=st.binary(max_size=1024))
def test_npy_header_raises_only_format_errors(data: bytes) -> None:
    try:
        read_npy_header(BytesStream(b"\x93NUMPY" + data))
    except NpyFormatError:
        pass


@FUZZ
@given(data=st.binary(max_size=1024))
def test_onnx_walk_raises_only_proto_errors(data: bytes) -> None:
    try:
        read_onnx_top_level(io.BytesIO(data), len(data))
    except OnnxProtoError:
        pass


@FUZZ
@given(data=st.recursive(st.none() | st.booleans() | st.text(max_size=8), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["class_name", "config", "module", "layers", "name"]), inner, max_size=4), max_leaves=30))
def test_keras_walk_never_raises(data: object) -> None:
    import json

    findings = ArtifactFindings()
    parse_keras_config(json.dumps(data), "config.json", findings)
    assert isinstance(findings.offending, list)
