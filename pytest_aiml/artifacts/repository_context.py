"""Repository-wide facts that versioning and documentation checks look up per artifact.

Built once per (root, file list) and shared by every artifact of a run: LFS rules
from ``.gitattributes``, paths tracked by DVC, documentation text, and Python files
that use the MLflow model registry.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_aiml.artifacts.lfs import LfsRule, lfs_tracked, parse_gitattributes

logger = logging.getLogger("pytest_aiml.artifacts")

MAX_TEXT_BYTES = 1 << 20
DOC_SUFFIXES = (".md", ".rst", ".txt", ".adoc", ".markdown")
_REGISTRY_MARKERS = ("register_model", "registered_model_name", "models:/", "mlflowclient")


@dataclass(frozen=True, slots=True)
class RepositoryContext:
    """Facts about the repository around the artifacts; texts are lower-cased."""

    files: frozenset[str]
    lfs_rules: tuple[LfsRule, ...]
    dvc_outputs: tuple[tuple[str, str], ...]
    documents: tuple[tuple[str, str], ...]
    registry_code: tuple[tuple[str, str], ...]

    def lfs_tracked(self, rel_path: str) -> bool:
        return lfs_tracked(rel_path, list(self.lfs_rules))

    def dvc_entry(self, rel_path: str) -> tuple[str, str] | None:
        """Return (tracked path, md5) of the DVC output that covers ``rel_path``, if any."""
        for output, digest in self.dvc_outputs:
            if rel_path == output or rel_path.startswith(output.rstrip("/") + "/"):
                return output, digest
        return None


def read_text(path: Path) -> str | None:
    """Read a small text file, or None when it is missing, too large or not text."""
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        logger.debug("cannot read %s: %s", path, exc)
        return None


def yaml_document(text: str, where: str) -> Any:
    """Parse YAML text, or return None when it is not valid YAML, logging the error with ``where``."""
    # Imported here, because only a repository with model artifacts reads YAML beside them,
    # and a run that takes its results from the cache should not pay for the import.
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        logger.debug("invalid YAML in %s: %s", where, exc)
        return None


def _dvc_outputs(root: Path, rel_path: str) -> list[tuple[str, str]]:
    text = read_text(root / rel_path)
    if text is None:
        return []
    # Invalid YAML gives None, which has no outputs.
    document = yaml_document(text, rel_path)
    base = PurePosixPath(rel_path).parent
    entries: list[dict[str, object]] = []
    if isinstance(document, dict):
        if isinstance(document.get("outs"), list):
            entries.extend(item for item in document["outs"] if isinstance(item, dict))
        for stage in (document.get("stages") or {}).values() if isinstance(document.get("stages"), dict) else ():
            for item in stage.get("outs", []) if isinstance(stage, dict) else []:
                entries.append(item if isinstance(item, dict) else {"path": item})
    outputs = []
    for entry in entries:
        path_text = entry.get("path")
        if path_text is None and len(entry) == 1:
            # dvc.yaml writes an output with options as "- models/model.pt: {cache: false}".
            path_text = next(iter(entry))
        if isinstance(path_text, str):
            joined = path_text if str(base) == "." else str(base / path_text)
            outputs.append((joined, str(entry.get("md5") or "")))
    return outputs


def _build(root: Path, repo_files: tuple[str, ...]) -> RepositoryContext:
    rules: list[tuple[int, int, LfsRule]] = []
    dvc_outputs: list[tuple[str, str]] = []
    documents: list[tuple[str, str]] = []
    registry_code: list[tuple[str, str]] = []
    for rel_path in repo_files:
        name = rel_path.rsplit("/", 1)[-1]
        lowered = name.lower()
        if name == ".gitattributes":
            text = read_text(root / rel_path)
            directory = rel_path.rsplit("/", 1)[0] if "/" in rel_path else ""
            for index, rule in enumerate(parse_gitattributes(text or "", directory)):
                # Deeper .gitattributes files take precedence, and later lines within one.
                rules.append((directory.count("/") + bool(directory), index, rule))
        elif lowered.endswith(".dvc") or lowered in ("dvc.yaml", "dvc.lock"):
            dvc_outputs.extend(_dvc_outputs(root, rel_path))
        elif lowered.endswith(DOC_SUFFIXES):
            text = read_text(root / rel_path)
            if text:
                documents.append((rel_path, text.lower()))
        elif lowered.endswith(".py"):
            text = read_text(root / rel_path)
            lowered_text = (text or "").lower()
            if "mlflow" in lowered_text and any(marker in lowered_text for marker in _REGISTRY_MARKERS):
                registry_code.append((rel_path, lowered_text))
    rules.sort(key=lambda item: (item[0], item[1]))
    return RepositoryContext(
        files=frozenset(repo_files),
        lfs_rules=tuple(rule for _depth, _index, rule in rules),
        dvc_outputs=tuple(dvc_outputs),
        documents=tuple(documents),
        registry_code=tuple(registry_code),
    )


@functools.lru_cache(maxsize=4)
def _cached(root: str, repo_files: tuple[str, ...]) -> RepositoryContext:
    return _build(Path(root), repo_files)


def build_repository_context(root: Path, repo_files: Sequence[str]) -> RepositoryContext:
    """Build (or reuse, for the same root and file list) the repository context."""
    return _cached(str(root), tuple(repo_files))
