"""Torch checkpoints (zip, TorchScript, legacy) and tolerant zip reading."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import torch

from pytest_aiml.artifacts.zipread import ZipReadError, open_member, read_zip_members
from tests.artifacts.artifact_builders import SystemCall, build_zip, inspect_path


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))


def optimizer_state() -> dict:
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    return optimizer.state_dict()


BENIGN_OBJECTS = {
    "float32_state_dict": lambda: small_model().state_dict(),
    "bfloat16_state_dict": lambda: {key: value.to(torch.bfloat16) for key, value in small_model().state_dict().items()},
    "parameters": lambda: {"weight": torch.nn.Parameter(torch.ones(2, 2))},
    "optimizer_state": optimizer_state,
    "sizes_and_dtypes": lambda: {"size": torch.Size([2, 3]), "device": torch.device("cpu"), "dtype": torch.float16},
}


@pytest.mark.parametrize("kind", sorted(BENIGN_OBJECTS))
def test_benign_torch_zip_passes(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.pt"
    torch.save(BENIGN_OBJECTS[kind](), path)
    result = inspect_path(path, tmp_path)
    assert result.format == "torch-zip"
    assert result.framework == "pytorch"
    assert result.checks["safety"].status == "pass", result.checks["safety"].details
    assert result.checks["validity"].status == "pass"


@pytest.mark.parametrize("kind", ["float32_state_dict", "optimizer_state"])
def test_benign_legacy_torch_passes(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.pth"
    torch.save(BENIGN_OBJECTS[kind](), path, _use_new_zipfile_serialization=False)
    result = inspect_path(path, tmp_path)
    assert result.format == "torch-legacy"
    assert result.checks["safety"].status == "pass", result.checks["safety"].details
    assert result.checks["validity"].status == "pass"


def test_malicious_legacy_torch_fails(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2), "hook": SystemCall(marker)}, path, _use_new_zipfile_serialization=False)
    result = inspect_path(path, tmp_path)
    assert result.format == "torch-legacy"
    assert result.checks["safety"].status == "fail"
    assert any("system" in detail for detail in result.checks["safety"].details)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_passes(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), path)
    result = inspect_path(path, tmp_path)
    assert result.format == "torchscript"
    assert result.checks["safety"].status == "pass", result.checks["safety"].details


def torch_zip_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def add_member(archive_bytes: bytes, name: str, data: bytes) -> bytes:
    buffer = io.BytesIO(archive_bytes)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_malicious_data_pkl_fails(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2), "hook": SystemCall(marker)}, path)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("data.pkl" in detail for detail in safety.details)


@pytest.mark.parametrize("member", ["archive/extra/notes.txt", "archive/data/99", "README"])
def test_pickle_under_non_pickle_name_fails(tmp_path: Path, marker: Path, member: str) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(add_member(torch_zip_bytes({"w": torch.ones(2)}), member, pickle.dumps(SystemCall(marker))))
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any(member in detail and "system" in detail for detail in safety.details)


def patch_all(data: bytes, signature: bytes, offset: int, value: bytes) -> bytes:
    """Overwrite the field at ``offset`` of every record that starts with ``signature``."""
    patched = bytearray(data)
    position = patched.find(signature)
    while position >= 0:
        patched[position + offset : position + offset + len(value)] = value
        position = patched.find(signature, position + 4)
    return bytes(patched)


def evil_zip(marker: Path, *, compress: bool = False) -> bytes:
    return build_zip([("archive/data.pkl", pickle.dumps({"a": 1})), ("archive/evil.bin", pickle.dumps(SystemCall(marker)))], compress=compress)


def test_bad_crc_still_scanned(tmp_path: Path, marker: Path) -> None:
    data = patch_all(evil_zip(marker), b"PK\x01\x02", 16, b"\0\0\0\0")
    data = patch_all(data, b"PK\x03\x04", 14, b"\0\0\0\0")
    path = tmp_path / "crc.pt"
    path.write_bytes(data)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path).read("archive/evil.bin")
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("archive/evil.bin" in detail for detail in safety.details)


def test_flag_bits_still_scanned(tmp_path: Path, marker: Path) -> None:
    # Data-descriptor (bit 3) and UTF-8 (bit 11) flags change nothing for torch.
    data = patch_all(evil_zip(marker, compress=True), b"PK\x01\x02", 8, struct.pack("<H", 0x0808))
    path = tmp_path / "flags.pt"
    path.write_bytes(data)
    assert inspect_path(path, tmp_path).checks["safety"].status == "fail"


def test_local_name_mismatch_still_scanned(tmp_path: Path, marker: Path) -> None:
    data = evil_zip(marker)
    local_name = data.find(b"archive/evil.bin")
    data = data[:local_name] + b"archive/good.bin" + data[local_name + 16 :]
    path = tmp_path / "names.pt"
    path.write_bytes(data)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path).read("archive/evil.bin")
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "fail"
    assert any("archive/evil.bin" in detail for detail in safety.details)


def test_corrupt_member_next_to_malicious_one(tmp_path: Path, marker: Path) -> None:
    entries = [
        ("archive/data.pkl", zlib.compress(b"not a real deflate stream")[2:10]),
        ("archive/evil.pkl", pickle.dumps(SystemCall(marker))),
    ]
    data = build_zip(entries, compress=True)
    path = tmp_path / "mixed.pt"
    path.write_bytes(data)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "unscannable"
    assert any("archive/evil.pkl" in detail and "system" in detail for detail in safety.details)
    assert any("archive/data.pkl" in detail for detail in safety.details)


def test_encrypted_member_unscannable(tmp_path: Path) -> None:
    data = patch_all(build_zip([("archive/data.pkl", pickle.dumps(1))]), b"PK\x01\x02", 8, b"\x01\x00")
    path = tmp_path / "locked.pt"
    path.write_bytes(data)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "unscannable"
    assert any("encrypted" in detail for detail in safety.details)


def test_nested_archive_unscannable(tmp_path: Path) -> None:
    inner = build_zip([("data.pkl", pickle.dumps(1))])
    path = tmp_path / "nested.pt"
    path.write_bytes(build_zip([("archive/data.pkl", pickle.dumps(1)), ("archive/inner.zip", inner)]))
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "unscannable"
    assert any("nested zip" in detail for detail in safety.details)


def test_truncated_zip_unscannable(tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes(torch_zip_bytes({"w": torch.ones(100)})[:-300])
    result = inspect_path(path, tmp_path)
    assert result.checks["safety"].status == "unscannable"


def test_unsupported_compression_unscannable(tmp_path: Path) -> None:
    data = patch_all(build_zip([("archive/data.pkl", pickle.dumps(1))]), b"PK\x01\x02", 10, struct.pack("<H", 12))
    data = patch_all(data, b"PK\x03\x04", 8, struct.pack("<H", 12))
    path = tmp_path / "bzip.pt"
    path.write_bytes(data)
    safety = inspect_path(path, tmp_path).checks["safety"]
    assert safety.status == "unscannable"
    assert any("compression method 12" in detail for detail in safety.details)


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".ckpt"])
def test_plain_pickle_with_torch_suffix(tmp_path: Path, marker: Path, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(pickle.dumps(SystemCall(marker), protocol=2))
    result = inspect_path(path, tmp_path)
    assert result.format == "pickle"
    assert result.checks["safety"].status == "fail"


def test_zip_reader_lists_duplicates(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a", b"1")
        with pytest.warns(UserWarning):
            archive.writestr("a", b"2")
    members = read_zip_members(io.BytesIO(buffer.getvalue()), len(buffer.getvalue()), max_members=10)
    assert [member.name for member in members] == ["a", "a"]


def test_zip_member_limit_enforced() -> None:
    data = build_zip([(str(index), b"") for index in range(5)])
    with pytest.raises(ZipReadError, match="limit"):
        read_zip_members(io.BytesIO(data), len(data), max_members=3)


def test_deflated_member_streams_back() -> None:
    payload = bytes(range(256)) * 5000
    data = build_zip([("m", payload)], compress=True)
    file = io.BytesIO(data)
    (member,) = read_zip_members(file, len(data), max_members=10)
    stream, notes = open_member(file, len(data), member, max_output_bytes=10**7)
    chunks = []
    while chunk := stream.read(7777):
        chunks.append(chunk)
    assert b"".join(chunks) == payload
    assert notes == ()
