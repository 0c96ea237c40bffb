"""Pinned package versions, read from the repository's dependency files.

Some findings depend on which library version the repository runs: ``torch.load``
without ``weights_only`` is unsafe only where torch < 2.6 may run, because torch 2.6
changed the default to ``weights_only=True``. An unpinned package may run at any
version, so it counts as possibly old.
"""

from __future__ import annotations

import logging
import posixpath
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_aiml.engine.discovery import REQUIREMENT_FOLDERS, FileKind, RepoFiles

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

log = logging.getLogger("pytest_aiml.dependencies")

_LOCK_PACKAGE = re.compile(r'^\s*name\s*=\s*"([^"]+)"\s*\n\s*version\s*=\s*"([^"]+)"', re.MULTILINE)
#: A clause that may put a ceiling on the version: ``<2.6``, ``<=2.5.1``, ``==2.5.*``, ``~=2.4.0``.
_UPPER_CLAUSE = re.compile(r"^\s*(<=|<|===|==|~=)\s*([0-9][\w.*+!-]*)\s*$")
#: Files that record the versions installed, rather than the versions admitted.
LOCK_FILES = frozenset({"poetry.lock", "uv.lock", "pdm.lock"})
#: The files whose requirements a lock file beside them resolves.
LOCKED_MANIFESTS = frozenset({"pyproject.toml", "setup.cfg", "setup.py"})
#: Words in the name of a requirements file, or of a folder above it, for development only:
#: ``requirements-dev.txt``, ``requirements/docs/base.txt``, ``docs/requirements.txt``.
_DEVELOPMENT_NAME = re.compile(
    r"(^|[-_.])(dev|develop|devel|development|test|tests|testing|pytest|unittest|docs?|documentation|lint|linting"
    r"|typing|mypy|style|quality|format|formatting|ci)([-_.]|$)"
)
#: Folders that contain the dependency files of the folder above them: ``requirements/requirements-dev.txt``.
_DEPENDENCY_FOLDERS = frozenset(
    {"requirements", "requirements.d", "reqs", "deps", "dependencies", "envs", "environments", "conda", "docker"}
)
#: The start of a per-requirement option of pip: ``torch==2.1.0 --hash=sha256:...``.
_REQUIREMENT_OPTION = re.compile(r"\s--?[a-z]")
_CONDA_PIN = re.compile(r"^\s*-\s*([A-Za-z0-9_.\-]+)\s*(==?|>=|<=|~=|>|<)\s*([0-9][\w.*+!-]*)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Pin:
    """One requirement on a package, with the file it came from."""

    package: str
    specifier: str
    source: str
    exact: bool
    #: The extra or dependency group of ``pyproject.toml`` that lists it; empty for the main requirements.
    group: str = ""


def collect_pins(repo: RepoFiles) -> dict[str, tuple[Pin, ...]]:
    """Read every dependency file of the repository into pins by normalised package name."""
    found: dict[str, list[Pin]] = {}
    for path in repo.of_kind(FileKind.DEPENDENCIES):
        text = repo.read_text(path)
        if text is None:
            continue
        for pin in _pins_of(path, text):
            found.setdefault(pin.package, []).append(pin)
    return {name: tuple(pins) for name, pins in sorted(found.items())}


def may_run_below(
    pins: Mapping[str, tuple[Pin, ...]], package: str, version: str, path: str | None = None
) -> bool:
    """Tell whether the file at ``path`` may run ``package`` at a version below ``version``.

    Only the pins of the nearest folder at or above ``path`` whose dependency files name
    the package apply, so that one project's requirements do not speak for another's in
    the same repository. The repository root's files are the fallback, and a ``path``
    of None stands for a file at the root. With no pin that applies, any version may run.

    Each dependency file describes an environment the code may run in (the package's
    own requirements, a deployment's, a type checker's), and an old version may run if
    any of them admits one: ``requirements/typing.txt`` pinning ``torch==2.9.1`` does not
    stop ``requirements/base.txt`` from admitting torch 2.1. A lock file records what
    its folder's ``pyproject.toml`` installs, so it speaks for that file.
    """
    entries = _nearest_pins(pins.get(canonicalize_name(package), ()), path)
    return not entries or bool(_files_admitting(entries, Version(version)))


def files_admitting_below(
    pins: Mapping[str, tuple[Pin, ...]], package: str, version: str, path: str | None = None
) -> list[str]:
    """Return the dependency files that apply to ``path`` and admit ``package`` below ``version``, sorted.

    See :func:`may_run_below` for the files that apply.
    """
    return _files_admitting(_nearest_pins(pins.get(canonicalize_name(package), ()), path), Version(version))


def _files_admitting(entries: tuple[Pin, ...], threshold: Version) -> list[str]:
    """Return the files of ``entries`` that admit a version below ``threshold``.

    A lock file replaces the ``pyproject.toml`` beside it.
    """
    locked_folders = {posixpath.dirname(pin.source) for pin in entries if _is_lock_file(pin.source)}
    by_source: dict[str, list[Pin]] = {}
    for pin in entries:
        locked = posixpath.basename(pin.source) in LOCKED_MANIFESTS and posixpath.dirname(pin.source) in locked_folders
        if not locked:
            by_source.setdefault(pin.source, []).append(pin)
    return sorted(source for source, file_pins in by_source.items() if _admits_below(file_pins, threshold))


def _admits_below(entries: Iterable[Pin], threshold: Version) -> bool:
    """Tell whether the pins of one environment admit a version below ``threshold``.

    A specifier that admits no version at or above ``threshold`` (``<2.6``, ``==2.5.*``)
    means an old version runs. Otherwise exact pins decide when present, then the highest
    lower bound does, and with neither, any version may run.
    """
    entries = list(entries)
    if any(_excludes_from(pin.specifier, threshold) for pin in entries):
        return True
    exact_versions = [_version(pin.specifier.lstrip("=")) for pin in entries if pin.exact]
    exact_versions = [found for found in exact_versions if found is not None]
    if exact_versions:
        return any(found < threshold for found in exact_versions)
    lower_bounds: list[Version] = []
    for pin in entries:
        for clause in pin.specifier.split(","):
            match = re.match(r"\s*(>=|>|~=|==)\s*([0-9][\w.+!-]*)", clause)
            if match:
                bound = _version(match.group(2).rstrip(".*"))
                if bound is not None:
                    lower_bounds.append(bound)
    if not lower_bounds:
        return True
    return max(lower_bounds) < threshold


def is_development_pin(pin: Pin) -> bool:
    """Tell whether a pin is for tests, docs or linters only: by its file, or by its extra or dependency group."""
    return is_development_file(pin.source) or _DEVELOPMENT_NAME.search(pin.group.lower()) is not None


def is_development_file(source: str) -> bool:
    """Tell whether a dependency file lists what tests, docs or linters need: ``requirements/test.txt``."""
    *folders, name = source.lower().split("/")
    return any(_DEVELOPMENT_NAME.search(part) is not None for part in (*folders, name.rsplit(".", 1)[0]))


def _is_lock_file(source: str) -> bool:
    return posixpath.basename(source) in LOCK_FILES


def _nearest_pins(entries: tuple[Pin, ...], path: str | None) -> tuple[Pin, ...]:
    """Return the pins of the nearest folder at or above ``path`` that has any, or none."""
    by_folder: dict[str, list[Pin]] = {}
    for pin in entries:
        by_folder.setdefault(_project_folder(pin.source), []).append(pin)
    folder = posixpath.dirname(path) if path else ""
    while folder not in by_folder:
        if not folder:
            return ()
        folder = posixpath.dirname(folder)
    return tuple(by_folder[folder])


def _project_folder(source: str) -> str:
    """Return the folder whose code a dependency file describes.

    ``requirements/dev.txt`` and ``service/docker/requirements.txt`` describe the folder
    above theirs. A ``requirements`` tree may have subfolders per component
    (``requirements/pytorch/base.txt``): it describes the folder above the tree.
    """
    folder = posixpath.dirname(source)
    parts = folder.split("/") if folder else []
    for index, part in enumerate(parts):
        if part.lower() in REQUIREMENT_FOLDERS:
            return "/".join(parts[:index])
    parent, name = posixpath.split(folder)
    return parent if name.lower() in _DEPENDENCY_FOLDERS else folder


def _excludes_from(specifier: str, threshold: Version) -> bool:
    """Tell whether any clause of ``specifier`` rejects every version at or above ``threshold``."""
    for clause in specifier.split(","):
        match = _UPPER_CLAUSE.match(clause)
        if match is None:
            continue
        operator, text = match.groups()
        if operator in ("==", "===") and text.endswith(".*"):
            prefix = _version(text[:-2])
            if prefix is not None and _next_release(prefix.release) <= threshold:
                return True
            continue
        bound = _version(text)
        if bound is None:
            continue
        if operator == "<" and bound <= threshold:
            return True
        if operator in ("<=", "==", "===") and bound < threshold:
            return True
        # ``~=2.4.0`` means ``>=2.4.0, ==2.4.*``: the last release part may grow, the others may not.
        if operator == "~=" and len(bound.release) > 1 and _next_release(bound.release[:-1]) <= threshold:
            return True
    return False


def _next_release(release: tuple[int, ...]) -> Version:
    """Return the first version after every version that starts with ``release``: ``(2, 5)`` -> 2.6."""
    return Version(".".join(str(part) for part in (*release[:-1], release[-1] + 1)))


def pins_as_text(pins: Mapping[str, tuple[Pin, ...]]) -> dict[str, str]:
    """Flatten pins to ``{package: "spec1; spec2"}`` for logs and the rule context."""
    return {name: "; ".join(sorted({pin.specifier for pin in entries})) for name, entries in pins.items()}


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _pins_of(path: str, text: str) -> Iterable[Pin]:
    name = path.rsplit("/", 1)[-1]
    if name.endswith((".txt", ".in")):
        yield from _requirement_lines(path, text.splitlines())
    elif name == "pyproject.toml":
        yield from _pyproject_pins(path, text)
    elif name in LOCK_FILES:
        for match in _LOCK_PACKAGE.finditer(text):
            yield Pin(canonicalize_name(match.group(1)), f"=={match.group(2)}", path, exact=True)
    elif name == "setup.cfg":
        block = re.search(r"install_requires\s*=\s*\n((?:[ \t]+.+\n?)+)", text)
        if block:
            yield from _requirement_lines(path, block.group(1).splitlines())
    elif name.endswith((".yml", ".yaml")):
        for match in _CONDA_PIN.finditer(text):
            operator = "==" if match.group(2) == "=" else match.group(2)
            yield Pin(
                canonicalize_name(match.group(1)), f"{operator}{match.group(3)}", path, exact=operator == "=="
            )
        pip_section = re.search(r"-\s*pip\s*:\s*\n((?:\s+-\s*.+\n?)+)", text)
        if pip_section:
            lines = [line.strip().lstrip("-").strip() for line in pip_section.group(1).splitlines()]
            yield from _requirement_lines(path, lines)


def _requirement_lines(path: str, lines: Iterable[str], group: str = "") -> Iterable[Pin]:
    for raw in lines:
        # pip-compile writes ``torch==2.1.0 \`` followed by ``--hash=...`` lines, or the
        # hashes on the same line: the options after the requirement are not part of it.
        line = raw.split(" #", 1)[0].strip().removesuffix("\\").strip()
        line = _REQUIREMENT_OPTION.split(line, 1)[0].strip()
        if not line or line.startswith(("#", "-", "git+", "http:", "https:")):
            continue
        yield from _requirement(path, line, group)


def _requirement(path: str, line: str, group: str = "") -> Iterable[Pin]:
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        log.debug("%s: not a requirement: %r", path, line)
        return
    specifier = str(requirement.specifier)
    exact = len(requirement.specifier) == 1 and next(iter(requirement.specifier)).operator in ("==", "===")
    exact = exact and "*" not in specifier
    yield Pin(canonicalize_name(requirement.name), specifier, path, exact=exact, group=group)


def _pyproject_pins(path: str, text: str) -> Iterable[Pin]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        log.warning("%s is not valid TOML, its dependencies are not read: %s", path, error)
        return
    project = data.get("project", {})
    groups: list[tuple[str, Any]] = [("", project.get("dependencies", []))]
    groups += list((project.get("optional-dependencies", {}) or {}).items())
    groups += list((data.get("dependency-groups", {}) or {}).items())
    for group, lines in groups:
        if isinstance(lines, list):
            yield from _requirement_lines(path, [line for line in lines if isinstance(line, str)], str(group))
    poetry = data.get("tool", {}).get("poetry", {})
    tables: list[tuple[str, Any]] = [("", poetry.get("dependencies", {}) or {})]
    tables += [(name, group.get("dependencies", {}) or {}) for name, group in (poetry.get("group", {}) or {}).items()]
    for group, table in tables:
        if not isinstance(table, dict):
            continue
        for package, value in table.items():
            version = value.get("version") if isinstance(value, dict) else value
            if not isinstance(version, str) or package == "python":
                continue
            yield from _poetry_pin(path, package, version, str(group))


def _poetry_pin(path: str, package: str, version: str, group: str = "") -> Iterable[Pin]:
    version = version.strip()
    if version in ("*", ""):
        yield Pin(canonicalize_name(package), "", path, exact=False, group=group)
    elif version[0].isdigit():
        yield Pin(canonicalize_name(package), f"=={version}", path, exact="*" not in version, group=group)
    elif version.startswith(("^", "~")) and not version.startswith("~="):
        yield Pin(canonicalize_name(package), _poetry_range(version), path, exact=False, group=group)
    else:
        yield Pin(canonicalize_name(package), version, path, exact=version.startswith("==") and "*" not in version, group=group)


def _poetry_range(version: str) -> str:
    """Translate Poetry's caret or tilde requirement into PEP 440 bounds.

    ``^1.2.3`` admits versions below the next change of the first non-zero part
    (``<2.0``), ``^0.2.3`` below ``0.3``. ``~1.2.3`` and ``~1.2`` admit versions below
    ``1.3``, ``~1`` below ``2``. A version that does not parse keeps only its lower bound.
    """
    lower = version[1:].strip()
    parsed = _version(lower)
    if parsed is None:
        return f">={lower}"
    release = parsed.release
    if version.startswith("^"):
        fixed = next((index for index, part in enumerate(release) if part != 0), len(release) - 1)
    else:
        fixed = min(1, len(release) - 1)
    return f">={lower},<{_next_release(release[: fixed + 1])}"
