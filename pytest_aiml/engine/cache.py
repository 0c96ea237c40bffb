"""The content-hash cache of file analyses.

A file's findings depend on its bytes, the rules that ran and their code, libcst's
version and the repository's pinned versions, and on nothing else. Each entry is
keyed by all of those (never by mtime, which checkouts and CI caches rewrite), kept
one file per key and written through a temporary file and a rename, so concurrent
writers, pytest-xdist workers among them, never leave a torn entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import sysconfig
import tempfile
import types
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_aiml import __version__
from pytest_aiml.engine.findings import Finding, ParseFailure
from pytest_aiml.engine.rule import Rule
from pytest_aiml.engine.runner import FileAnalysis

log = logging.getLogger("pytest_aiml.cache")

FORMAT_VERSION = 1


def rule_source_files(rules: Iterable[type[Rule]]) -> list[Path]:
    """Return the source files of the rules' modules and of the modules they use, sorted.

    A rule's behaviour lives in its module and in the helpers it imports, so an edit to
    either must change the caches' keys. Followed are the modules a rule module refers
    to: an imported module, and the module of an imported class or function. Modules
    of the standard library and of installed packages are left out, unless they belong
    to the rule's own package: their versions change with a new install, and hashing
    them on every run would cost time for nothing. A constant imported by name
    (``from helpers import LIMIT``) cannot be followed, because it does not name its module.
    """
    installed = {str(Path(path).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")
                 if (path := sysconfig.get_paths().get(key))}
    found: dict[str, Path] = {}
    seen: set[str] = set()
    for rule in rules:
        package = rule.__module__.split(".")[0]
        pending = [rule.__module__]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            module = sys.modules.get(name)
            location = getattr(module, "__file__", None)
            if module is None or not location:
                continue
            path = Path(location).resolve()
            own = name.split(".")[0] == package
            if not own and any(str(path).startswith(folder + os.sep) for folder in installed):
                continue
            found[str(path)] = path
            for value in vars(module).values():
                if isinstance(value, types.ModuleType):
                    pending.append(value.__name__)
                elif isinstance(value, (type, types.FunctionType)):
                    pending.append(getattr(value, "__module__", "") or "")
    return [found[key] for key in sorted(found)]


def analysis_salt(rules: Iterable[type[Rule]], pins: Mapping[str, Any]) -> str:
    """Digest everything besides a file's bytes that its analysis depends on.

    The sources of each rule's module and of the helpers it uses are included, so editing
    a rule (a custom rule in a conftest.py, or this package during development)
    invalidates its entries without a version bump.
    """
    digest = hashlib.sha256()
    digest.update(f"{FORMAT_VERSION}\0{__version__}\0{_libcst_version()}\0{sys.version_info[:2]}".encode())
    rules = sorted(rules, key=lambda rule: rule.code)
    for rule in rules:
        digest.update(f"\0{rule.code}\0{rule.__module__}.{rule.__qualname__}".encode())
    for path in rule_source_files(rules):
        digest.update(f"\0{file_digest(path)}".encode())
    digest.update(json.dumps({name: [str(pin) for pin in entries] for name, entries in sorted(pins.items())}).encode())
    return digest.hexdigest()


class AnalysisCache:
    """Cached :class:`FileAnalysis` results under ``directory``; a None directory caches nothing."""

    def __init__(self, directory: Path | None, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self.hits = 0
        self.misses = 0

    def key(self, path: str, content: bytes) -> str:
        return hashlib.sha256(self.salt.encode() + b"\0" + path.encode() + b"\0" + content).hexdigest()

    def get(self, path: str, content: bytes) -> FileAnalysis | None:
        if self.directory is None:
            return None
        entry = self._entry(self.key(path, content))
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            analysis = _from_builtins(data)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            # A damaged entry is a miss; the fresh analysis overwrites it.
            log.debug("ignoring unreadable cache entry %s: %s", entry, error)
            self.misses += 1
            return None
        self.hits += 1
        return analysis

    def put(self, path: str, content: bytes, analysis: FileAnalysis) -> None:
        if self.directory is None:
            return
        entry = self._entry(self.key(path, content))
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=entry.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(_to_builtins(analysis), stream)
            os.replace(temporary, entry)
        except OSError as error:
            log.debug("cannot write cache entry %s: %s", entry, error)

    def _entry(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.json"


class SignalsCache:
    """The text signals of each source file (imports and regex signals), keyed by content hash.

    The inventory reads every Python file and notebook of the repository on every run.
    With this cache, a warm run searches only the files that changed. The entries are
    small and a repository has hundreds of them, so they all live in one file, read once
    and rewritten (atomically) only when something was added.
    """

    FILE_NAME = "signals.json"

    def __init__(self, directory: Path | None, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self.hits = 0
        self.misses = 0
        self._entries: dict[str, list[list[str]]] = self._load()
        self._used: set[str] = set()
        self._added = False

    def key(self, path: str, content: bytes) -> str:
        return hashlib.sha256(path.encode() + b"\0" + content).hexdigest()

    def get(self, key: str) -> tuple[frozenset[str], frozenset[str]] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used.add(key)
        modules, signals = entry
        return frozenset(modules), frozenset(signals)

    def put(self, key: str, modules: frozenset[str], signals: frozenset[str]) -> None:
        self._entries[key] = [sorted(modules), sorted(signals)]
        self._used.add(key)
        self._added = True

    def save(self) -> None:
        """Write the entries this run used, dropping those of files that no longer exist."""
        if self.directory is None or not self._added:
            return
        used_entries = {key: value for key, value in self._entries.items() if key in self._used}
        target = self.directory / self.FILE_NAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump({"salt": self.salt, "entries": used_entries}, stream)
            os.replace(temporary, target)
        except OSError as error:
            log.debug("cannot write %s: %s", target, error)

    def _load(self) -> dict[str, list[list[str]]]:
        if self.directory is None:
            return {}
        target = self.directory / self.FILE_NAME
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.debug("ignoring unreadable %s: %s", target, error)
            return {}
        if not isinstance(data, dict) or data.get("salt") != self.salt or not isinstance(data.get("entries"), dict):
            return {}
        return data["entries"]


def signals_salt() -> str:
    """Digest what a file's signals depend on besides its bytes: the signal tables' source."""
    from pytest_aiml.engine import notebooks, signals

    digest = hashlib.sha256(f"{FORMAT_VERSION}\0{__version__}\0{sys.version_info[:2]}".encode())
    for module in (signals, notebooks):
        digest.update(file_digest(Path(module.__file__ or "")).encode())
    return digest.hexdigest()


def _to_builtins(analysis: FileAnalysis) -> dict[str, Any]:
    return {
        "path": analysis.path,
        "rules": list(analysis.rules),
        "findings": [finding.serialized() for finding in analysis.findings],
        "failure": analysis.failure.serialized() if analysis.failure else None,
    }


def _from_builtins(data: Mapping[str, Any]) -> FileAnalysis:
    failure = data["failure"]
    return FileAnalysis(
        path=data["path"],
        rules=tuple(data["rules"]),
        findings=tuple(Finding.from_serialized(finding) for finding in data["findings"]),
        failure=ParseFailure(**failure) if failure else None,
    )


def file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def _libcst_version() -> str:
    try:
        return metadata.version("libcst")
    except metadata.PackageNotFoundError:
        return "unknown"
