"""The log of a computation's reads of the repository, for reusing its result while they find the same bytes.

The repository rules read the inventory and some files (CI configurations, dependency
files, the modules an app imports, data files). Their results depend on those bytes and
on nothing else in the repository. So a log of each read, with a fingerprint of what it
returned, is a complete cache key. The result is reused while every fingerprint still
matches the file on disk.

A fingerprint covers exactly what the read could see: the whole text file, its size
alone, the first bytes a reader takes, or a view of the file (``engine.views``) such as
its imports. A large data file of which a rule samples the start is not hashed in full
on every run, and a comment added to a module does not change its imports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aiml.engine.views import view_digest, view_of

#: The largest file read as text; larger ones read as None.
TEXT_LIMIT = 2_000_000
#: The largest notebook read as text. A notebook keeps its cells' outputs, plots as
#: base64 images among them, so one of a few megabytes often contains little code.
NOTEBOOK_TEXT_LIMIT = 50_000_000
#: The fingerprint of a file that could not be read (missing, a folder, no permission).
MISSING = "missing"
#: The fingerprint of a text read that returned nothing because the file is over the limit.
TOO_LARGE = "too-large"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Read:
    """One kind of read of one file: ``text:<limit>``, ``size``, ``head:<bytes>``, ``whole`` or ``view:<name>``."""

    path: str
    kind: str


@dataclass
class ReadLog:
    """The reads of one computation, each with the fingerprint of what it returned."""

    fingerprints: dict[Read, str] = field(default_factory=dict)

    def add(self, read: Read, fingerprint: str) -> None:
        self.fingerprints[read] = fingerprint

    def update(self, other: ReadLog) -> None:
        self.fingerprints.update(other.fingerprints)

    def serialized(self) -> list[list[str]]:
        return [[read.path, read.kind, value] for read, value in sorted(self.fingerprints.items(), key=_order)]

    @classmethod
    def from_serialized(cls, rows: Iterable[Iterable[str]]) -> ReadLog:
        log = cls()
        for path, kind, value in rows:
            log.add(Read(str(path), str(kind)), str(value))
        return log

    def unchanged(self, root: Path) -> bool:
        """Tell whether every file still gives the fingerprint it gave when the computation read it."""
        files = FileTexts(root)
        return all(matches(root, read, value, files) for read, value in self.fingerprints.items())


def _order(entry: tuple[Read, str]) -> tuple[str, str]:
    return entry[0].path, entry[0].kind


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def text_limit(path: str) -> int:
    """Return the largest size at which the file at ``path`` is read as text."""
    return NOTEBOOK_TEXT_LIMIT if path.endswith(".ipynb") else TEXT_LIMIT


def text_fingerprint(size: int, limit: int, data: bytes | None) -> str:
    """Fingerprint a text read of a file of ``size`` bytes that returned ``data`` under ``limit``."""
    if size > limit:
        return TOO_LARGE
    return MISSING if data is None else digest(data)


def read_text_bytes(full: Path, limit: int = TEXT_LIMIT) -> tuple[int, bytes | None]:
    """Return a file's size and its bytes, or None for the bytes when it is over ``limit``; OSError when unreadable."""
    size = full.stat().st_size
    return size, None if size > limit else full.read_bytes()


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:8192]


def view_fingerprint(name: str, path: str, size: int, data: bytes | None, value: Any = None, *, known: bool = False) -> str:
    """Fingerprint a view read: the digest of the bytes, then that of the view's value.

    ``value`` is the view as the reader computed it (``known``). Otherwise it is computed here.
    """
    view = view_digest(name, value) if known else _current_view_digest(name, path, data)
    return f"{text_fingerprint(size, text_limit(path), data)}|{view}"


def _current_view_digest(name: str, path: str, data: bytes | None) -> str:
    text = None if data is None or is_binary(data) else data
    return view_digest(name, view_of(name, path, text))


class FileTexts:
    """The fingerprints of text reads of the files under ``root``, each file read and hashed once.

    A log often reads one file in several ways, such as its imports and its names. The
    log of pytorch-lightning's repository rules has 1,427 reads of 647 files. Only the
    fingerprints are kept, not the bytes, so memory does not grow with the repository.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fingerprints: dict[tuple[str, int], str | OSError] = {}

    def fingerprint(self, path: str, limit: int) -> str:
        """Return the fingerprint of a text read of ``path`` under ``limit``. Raise OSError when the file is unreadable."""
        known = self._fingerprints.get((path, limit))
        if known is None:
            try:
                size, data = read_text_bytes(self.root / path, limit)
                known = text_fingerprint(size, limit, data)
            except OSError as error:
                known = error
            self._fingerprints[(path, limit)] = known
        if isinstance(known, OSError):
            raise known
        return known


def fingerprint(root: Path, read: Read, files: FileTexts | None = None) -> str:
    """Compute the fingerprint of ``read`` on the file as it is now."""
    full = root / read.path
    files = files if files is not None else FileTexts(root)
    try:
        if read.kind == "size":
            return str(full.stat().st_size)
        if read.kind.startswith("text:"):
            return files.fingerprint(read.path, int(read.kind.split(":", 1)[1]))
        if read.kind.startswith("head:"):
            with full.open("rb") as stream:
                return digest(stream.read(int(read.kind.split(":", 1)[1])))
        if read.kind == "whole":
            hasher = hashlib.blake2b(digest_size=20)
            with full.open("rb") as stream:
                for chunk in iter(lambda: stream.read(_CHUNK), b""):
                    hasher.update(chunk)
            return hasher.hexdigest()
        if read.kind.startswith("view:"):
            return view_fingerprint(read.kind.split(":", 1)[1], read.path, *read_text_bytes(full, text_limit(read.path)))
    except (OSError, ValueError):
        return MISSING
    # A kind this version does not know comes from another version's entry: never a match.
    return f"unknown kind {read.kind!r}"


def matches(root: Path, read: Read, recorded: str, files: FileTexts | None = None) -> bool:
    """Tell whether ``read`` still gives what it gave when ``recorded``.

    A view read matches when the bytes are the same, or when they changed and the view
    computed from them has the recorded digest.
    """
    files = files if files is not None else FileTexts(root)
    if not read.kind.startswith("view:") or "|" not in recorded:
        return fingerprint(root, read, files) == recorded
    recorded_bytes, recorded_view = recorded.split("|", 1)
    try:
        if files.fingerprint(read.path, text_limit(read.path)) == recorded_bytes:
            return True
        _size, data = read_text_bytes(root / read.path, text_limit(read.path))
    except OSError:
        return False
    return _current_view_digest(read.kind.split(":", 1)[1], read.path, data) == recorded_view


class ReadRecorder:
    """The logs that are recording reads right now; nested computations each get every read."""

    def __init__(self) -> None:
        self._active: list[ReadLog] = []

    @property
    def active(self) -> bool:
        return bool(self._active)

    def record(self, read: Read, value: str) -> None:
        for log in self._active:
            log.add(read, value)

    @contextmanager
    def recording(self) -> Iterator[ReadLog]:
        """Record every read into a new log until the block ends."""
        log = ReadLog()
        self._active.append(log)
        try:
            yield log
        finally:
            self._active.remove(log)
