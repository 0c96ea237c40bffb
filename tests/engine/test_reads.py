"""The read log: what each kind of read fingerprints, and when a log still matches the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiml.engine import reads
from pytest_aiml.engine.discovery import RepoFiles
from pytest_aiml.engine.reads import MISSING, TOO_LARGE, Read, ReadLog, fingerprint
from pytest_aiml.engine.views import VIEWS


def _repo(root: Path, files: dict[str, bytes]) -> RepoFiles:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return RepoFiles(root=root, paths=tuple(sorted(files)))


def test_reads_are_recorded_only_while_recording(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"requirements.txt": b"torch==2.1.0\n", "ci.yml": b"on: push\n"})
    repo.read_text("ci.yml")
    with repo.reads.recording() as log:
        assert repo.read_text("requirements.txt") == "torch==2.1.0\n"
        repo.size("ci.yml")
    repo.read_text("ci.yml", limit=10)
    assert sorted((read.path, read.kind) for read in log.fingerprints) == [
        ("ci.yml", "size"), ("requirements.txt", "text:2000000"),
    ]
    assert log.fingerprints[Read("ci.yml", "size")] == "9"


def test_nested_recordings_each_get_every_read(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"a.txt": b"a", "b.txt": b"b"})
    with repo.reads.recording() as outer:
        repo.read_text("a.txt")
        with repo.reads.recording() as inner:
            repo.read_text("b.txt")
    assert {read.path for read in outer.fingerprints} == {"a.txt", "b.txt"}
    assert {read.path for read in inner.fingerprints} == {"b.txt"}


def test_edited_file_no_longer_matches(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"requirements.txt": b"torch==2.1.0\n"})
    with repo.reads.recording() as log:
        repo.read_text("requirements.txt")
    assert log.unchanged(tmp_path)
    (tmp_path / "requirements.txt").write_bytes(b"torch==2.6.0\n")
    assert not log.unchanged(tmp_path)


def test_missing_file_matches_until_it_appears(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {})
    with repo.reads.recording() as log:
        assert repo.read_text(".gitattributes") is None
    assert log.fingerprints[Read(".gitattributes", "text:2000000")] == MISSING
    assert log.unchanged(tmp_path)
    (tmp_path / ".gitattributes").write_text("*.pt filter=lfs\n")
    assert not log.unchanged(tmp_path)


def test_oversized_text_read_keeps_size_only(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"big.json": b"x" * 100})
    with repo.reads.recording() as log:
        assert repo.read_text("big.json", limit=50) is None
    assert log.fingerprints[Read("big.json", "text:50")] == TOO_LARGE
    (tmp_path / "big.json").write_bytes(b"y" * 100)
    assert log.unchanged(tmp_path), "the read returned nothing either way"
    (tmp_path / "big.json").write_bytes(b"y" * 10)
    assert not log.unchanged(tmp_path)


def test_binary_file_is_fingerprinted_like_any_text_read(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"blob.txt": b"\0\1\2"})
    with repo.reads.recording() as log:
        assert repo.read_bytes("blob.txt") is None
    assert log.unchanged(tmp_path)
    (tmp_path / "blob.txt").write_bytes(b"now text\n")
    assert not log.unchanged(tmp_path)


def test_head_read_ignores_bytes_past_the_head(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"data/users.csv": b"name,email\nann,ann@example.com\n"})
    with repo.reads.recording() as log:
        repo.note_read("data/users.csv", head=10)
    with (tmp_path / "data/users.csv").open("ab") as stream:
        stream.write(b"bob,bob@example.com\n")
    assert log.unchanged(tmp_path)
    (tmp_path / "data/users.csv").write_bytes(b"id,mail\n")
    assert not log.unchanged(tmp_path)


def test_whole_read_covers_every_byte(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"data/users.parquet": b"PAR1" + b"\0" * 3_000_000})
    with repo.reads.recording() as log:
        repo.note_read("data/users.parquet")
    assert log.unchanged(tmp_path)
    with (tmp_path / "data/users.parquet").open("r+b") as stream:
        stream.seek(2_500_000)
        stream.write(b"\1")
    assert not log.unchanged(tmp_path)


def test_serialized_log_round_trips(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"a.txt": b"a", "m/model.pt": b"weights"})
    with repo.reads.recording() as log:
        repo.read_text("a.txt")
        repo.size("m/model.pt")
        repo.note_read("a.txt", head=1)
    restored = ReadLog.from_serialized(log.serialized())
    assert restored.fingerprints == log.fingerprints
    assert restored.unchanged(tmp_path)


def test_unknown_kind_never_matches(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    assert fingerprint(tmp_path, Read("a.txt", "mtime")).startswith("unknown kind")
    assert not ReadLog({Read("a.txt", "mtime"): "123"}).unchanged(tmp_path)


def test_log_check_reads_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, {"train.py": b"import torch\n\nmodel = torch.nn.Linear(2, 2)\n"})
    with repo.reads.recording() as log:
        repo.read_text("train.py")
        for name in VIEWS:
            repo.read_view("train.py", name)
    assert len(log.fingerprints) == 1 + len(VIEWS) > 2
    opened: list[str] = []
    original = reads.read_text_bytes
    monkeypatch.setattr(reads, "read_text_bytes", lambda full, limit=reads.TEXT_LIMIT: opened.append(full.name) or original(full, limit))
    assert log.unchanged(tmp_path)
    assert opened == ["train.py"]
    (tmp_path / "train.py").write_bytes(b"import numpy\n")
    assert not log.unchanged(tmp_path)
