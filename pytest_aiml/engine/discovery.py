"""Repository discovery: which files belong to the repository, and what each one is."""

from __future__ import annotations

import enum
import fnmatch
import functools
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_aiml.artifacts.extensions import MODEL_EXTENSIONS, has_model_extension
from pytest_aiml.engine.reads import (
    MISSING, Read, ReadRecorder, fingerprint, is_binary, read_text_bytes, text_fingerprint, text_limit, view_fingerprint,
)
from pytest_aiml.engine.views import ComputedViews, view_of

log = logging.getLogger("pytest_aiml.discovery")

#: Folders a repository walk never enters when git cannot list the files.
SKIPPED_DIRECTORIES = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", ".tox", ".nox", "node_modules",
        "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "build",
        "dist", ".eggs", "site-packages", ".ipynb_checkpoints", ".idea", ".vscode", "wandb",
        "mlruns", ".dvc",
    }
)

#: Suffixes of model artifacts; the artifact inspection keeps the one list of them.
MODEL_SUFFIXES = MODEL_EXTENSIONS
DATA_SUFFIXES = frozenset(
    {".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".feather", ".arrow", ".avro", ".xlsx", ".txt"}
)
_DEPENDENCY_NAMES = re.compile(
    r"^(requirements[\w.-]*\.(txt|in)|pyproject\.toml|setup\.cfg|setup\.py|Pipfile(\.lock)?|poetry\.lock"
    r"|uv\.lock|pdm\.lock|environment\.ya?ml|conda[\w.-]*\.ya?ml)$"
)
#: Folders whose ``.txt`` and ``.in`` files are all requirement files, whatever their names:
#: ``requirements/base.txt``, ``requirements/pytorch/extra.txt``.
REQUIREMENT_FOLDERS = frozenset({"requirements", "requirements.d"})
_CI_PATTERNS = (
    ".github/workflows/*.yml", ".github/workflows/*.yaml", ".gitlab-ci.yml", "Jenkinsfile",
    ".circleci/config.yml", "azure-pipelines.yml", "bitbucket-pipelines.yml", ".buildkite/*.yml",
    ".travis.yml", "cloudbuild.yaml", "cloudbuild.yml", ".drone.yml",
)
_DEPLOYMENT_NAME = re.compile(
    r"(^|/)(Dockerfile[\w.-]*|[\w.-]*\.dockerfile|docker-compose[\w.-]*\.ya?ml|compose\.ya?ml|Chart\.yaml"
    r"|values[\w.-]*\.ya?ml|kustomization\.ya?ml|serverless\.ya?ml|app\.ya?ml|Procfile|MLproject"
    r"|dvc\.yaml|bentofile\.yaml|model-config\.yaml|config\.pbtxt)$"
)
_MANIFEST_DIRECTORY = re.compile(r"(^|/)(k8s|kubernetes|deploy|deployment|manifests|helm|charts|kserve|seldon)/")


class FileKind(str, enum.Enum):
    PYTHON = "python"
    NOTEBOOK = "notebook"
    MODEL = "model"
    DATA = "data"
    DEPENDENCIES = "dependencies"
    CI = "ci"
    DEPLOYMENT = "deployment"
    OTHER = "other"


@functools.lru_cache(maxsize=65536)
def classify(path: str) -> FileKind:
    """Classify a POSIX path relative to the repository root by its name alone."""
    pure = PurePosixPath(path)
    name = pure.name
    suffix = pure.suffix.lower()
    if suffix in (".py", ".pyi"):
        return FileKind.PYTHON
    if suffix == ".ipynb":
        return FileKind.NOTEBOOK
    if _DEPENDENCY_NAMES.match(name):
        return FileKind.DEPENDENCIES
    if suffix in (".txt", ".in") and not REQUIREMENT_FOLDERS.isdisjoint(part.lower() for part in pure.parts[:-1]):
        return FileKind.DEPENDENCIES
    if any(fnmatch.fnmatchcase(path, pattern) for pattern in _CI_PATTERNS):
        return FileKind.CI
    if _DEPLOYMENT_NAME.search(path):
        return FileKind.DEPLOYMENT
    if suffix in (".yaml", ".yml") and _MANIFEST_DIRECTORY.search(path):
        return FileKind.DEPLOYMENT
    if has_model_extension(name):
        return FileKind.MODEL
    if suffix in DATA_SUFFIXES:
        return FileKind.DATA
    return FileKind.OTHER


@functools.lru_cache(maxsize=65536)
def is_test_path(path: str) -> bool:
    """Tell whether a path is test code (pytest's default naming, or under a tests folder)."""
    pure = PurePosixPath(path)
    if pure.name == "conftest.py" or pure.name.startswith("test_") or pure.stem.endswith("_test"):
        return True
    return any(part in ("tests", "test", "testing") for part in pure.parts[:-1])


def glob_matches(path: str, pattern: str) -> bool:
    """Match a POSIX path against a glob where ``**`` spans folders and ``*`` does not.

    A pattern without a slash matches the file name in any folder, as in ``.gitignore``.
    """
    if "/" not in pattern.rstrip("/"):
        return fnmatch.fnmatchcase(PurePosixPath(path).name, pattern) or _glob_regex(pattern).match(path) is not None
    return _glob_regex(pattern.lstrip("/")).match(path) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    cached = _GLOB_CACHE.get(pattern)
    if cached is not None:
        return cached
    pattern = pattern.rstrip("/") if pattern.endswith("/") else pattern
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        index += 1
    # A folder pattern such as ``data`` or ``notebooks/**`` also covers what lies below.
    compiled = re.compile("".join(out) + "(?:/.*)?$")
    _GLOB_CACHE[pattern] = compiled
    return compiled


_GLOB_CACHE: dict[str, re.Pattern[str]] = {}


@dataclass(frozen=True)
class RepoFiles:
    """The repository's files as sorted POSIX paths relative to ``root``.

    Reads go through :meth:`read_text`, :meth:`read_bytes`, :meth:`read_view` and
    :meth:`size`, or are declared with :meth:`note_read`, so that a computation
    recording them (the repository rules) can be cached by what it read.
    """

    root: Path
    paths: tuple[str, ...]
    reads: ReadRecorder = field(default_factory=ReadRecorder, compare=False, repr=False)
    #: Views that a cold scan computed ahead, which :meth:`read_view` takes for unchanged bytes.
    computed_views: ComputedViews = field(default_factory=ComputedViews, compare=False, repr=False)

    @cached_property
    def by_kind(self) -> dict[FileKind, tuple[str, ...]]:
        grouped: dict[FileKind, list[str]] = {kind: [] for kind in FileKind}
        for path in self.paths:
            grouped[classify(path)].append(path)
        return {kind: tuple(paths) for kind, paths in grouped.items()}

    def of_kind(self, *kinds: FileKind) -> tuple[str, ...]:
        if len(kinds) == 1:
            return self.by_kind[kinds[0]]
        return tuple(path for path in self.paths if classify(path) in kinds)

    def read_text(self, path: str, limit: int | None = None) -> str | None:
        """Read a file as text, or return None when it is missing, too large or binary.

        Without ``limit``, the limit is that of the file's kind (``reads.text_limit``).
        """
        data = self.read_bytes(path, limit)
        return None if data is None else data.decode("utf-8-sig", errors="replace")

    def read_bytes(self, path: str, limit: int | None = None) -> bytes | None:
        """Read a text file's bytes, or return None when it is missing, too large or binary."""
        if limit is None:
            limit = text_limit(path)
        try:
            size, data = read_text_bytes(self.root / path, limit)
        except OSError as error:
            log.debug("cannot read %s: %s", path, error)
            self.reads.record(Read(path, f"text:{limit}"), MISSING)
            return None
        if self.reads.active:
            self.reads.record(Read(path, f"text:{limit}"), text_fingerprint(size, limit, data))
        return None if data is None or is_binary(data) else data

    def read_view(self, path: str, name: str, value_of: Callable[[bytes | None], Any] | None = None) -> Any:
        """Return a view of a text file (one of ``engine.views.VIEWS``), recorded by its value rather than its bytes.

        ``value_of`` computes the value from the file's bytes (None when it is missing, too
        large or binary), for a caller with a faster way than the view, such as a cache. It
        must return what the view would. The result is None when the file cannot be read.
        """
        try:
            size, data = read_text_bytes(self.root / path, text_limit(path))
        except OSError as error:
            log.debug("cannot read %s: %s", path, error)
            self.reads.record(Read(path, f"view:{name}"), MISSING)
            return None
        content = None if data is None or is_binary(data) else data
        if value_of is not None:
            value = value_of(content)
        else:
            known, value = self.computed_views.get(path, name, content)
            if not known:
                value = view_of(name, path, content)
        if self.reads.active:
            self.reads.record(Read(path, f"view:{name}"), view_fingerprint(name, path, size, data, value, known=True))
        return value

    def size(self, path: str) -> int | None:
        """Return a file's size in bytes, or None when it cannot be read."""
        try:
            size = (self.root / path).stat().st_size
        except OSError as error:
            log.debug("cannot stat %s: %s", path, error)
            self.reads.record(Read(path, "size"), MISSING)
            return None
        self.reads.record(Read(path, "size"), str(size))
        return size

    def note_read(self, path: str, head: int | None = None) -> None:
        """Declare a read made by other means (a data file reader): the first ``head`` bytes, or the whole file."""
        if self.reads.active:
            read = Read(path, "whole" if head is None else f"head:{head}")
            self.reads.record(read, fingerprint(self.root, read))


def discover(root: Path, exclude: Sequence[str] = ()) -> RepoFiles:
    """List the repository's files the way git does, minus ``exclude`` globs.

    Inside a git work tree this is ``git ls-files`` plus untracked files that are not
    ignored; elsewhere (or when git is missing) a walk that skips virtual
    environments, caches and build output.
    """
    root = root.resolve()
    listed = _git_files(root)
    if listed is None:
        listed = list(_walk(root))
    kept = sorted(
        {
            path
            for path in listed
            if not any(glob_matches(path, pattern) for pattern in exclude)
            and SKIPPED_DIRECTORIES.isdisjoint(path.split("/")[:-1])
            and (root / path).is_file()
        }
    )
    return RepoFiles(root=root, paths=tuple(kept))


def _git_files(root: Path) -> list[str] | None:
    command = ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-prefix"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if inside.returncode != 0:
            return None
        result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.debug("git unavailable for %s, walking the folder instead: %s", root, error)
        return None
    if result.returncode != 0:
        return None
    # ``git -C root ls-files`` prints paths relative to root, even in a subfolder of the work tree.
    return [entry for entry in result.stdout.decode("utf-8", errors="surrogateescape").split("\0") if entry]


def _walk(root: Path) -> Iterable[str]:
    for folder, directories, files in os.walk(root):
        directories[:] = sorted(
            name for name in directories if name not in SKIPPED_DIRECTORIES and not name.endswith(".egg-info")
        )
        relative = Path(folder).relative_to(root)
        for name in files:
            yield (relative / name).as_posix()
